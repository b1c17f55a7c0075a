// store_seed: grows a scep-ra database to N certificates for
// bench/store/store-growth.sh, with the requests and audit rows real MIC
// enrollments leave (see seed_sql.h for the mix).
//
//   store_seed --db STATE_DIR/scep-ra.db --certificates N [--now UNIX]
//
// The database must hold at least one real MIC enrollment (the script makes
// one with scep_load): its CSR, signer certificate and certificate DER are
// the template every seeded row carries, so sizes are a real enrollment's.
// The rows go in through the store's tables with foreign keys on, one
// transaction per time slice, oldest first, so request ids grow with time as
// they do in a live RA.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

#include "bench/store/seed_sql.h"
#include "ra/store/sqlite/db.h"
#include "ra/store/store.h"

namespace {

using scep::Bytes;
using scep::sqlite::Database;
using scep::sqlite::Query;

struct Options {
    std::string db;
    std::int64_t certificates = 0;
    std::int64_t now = 0;
};

struct Template {
    Bytes csr;
    Bytes signer;
    Bytes der;
    std::string issuer;
    std::string manufacturer_issuer;
    std::string peer;
};

// How many rows of each kind, for `certificates` in all.
struct Mix {
    std::int64_t current = 0;
    std::int64_t previous = 0;
    std::int64_t gone = 0;
    std::int64_t pending = 0;
    std::int64_t rejected = 0;
    std::int64_t failures = 0;
};

Mix mixFor(std::int64_t certificates) {
    Mix mix;
    mix.gone = certificates / 20;
    mix.previous = certificates / 5;
    mix.current = certificates - mix.gone - mix.previous;
    mix.pending = std::max<std::int64_t>(10, certificates / 1000);
    mix.rejected = std::max<std::int64_t>(5, certificates / 2000);
    mix.failures = certificates / 20;
    return mix;
}

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "store_seed: " << problem
              << "\nusage: store_seed --db PATH --certificates N [--now UNIX-SECONDS]\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) {
            usage(arg + " needs a value");
        }
        const std::string value = argv[++i];
        if (arg == "--db") {
            options.db = value;
        } else if (arg == "--certificates") {
            options.certificates = std::strtoll(value.c_str(), nullptr, 10);
        } else if (arg == "--now") {
            options.now = std::strtoll(value.c_str(), nullptr, 10);
        } else {
            usage("unknown option " + arg);
        }
    }
    if (options.db.empty() || options.certificates < 100) {
        usage("--db and --certificates (at least 100) are required");
    }
    if (options.now == 0) {
        options.now = static_cast<std::int64_t>(std::time(nullptr));
    }
    return options;
}

// The first MIC enrollment in the database, read through the store's API
// (which also creates or migrates the schema).
Template readTemplate(const std::string& path) {
    const auto store = scep::openSqliteStore(path);
    for (const auto& request : store->listRequests(scep::RequestStatus::issued)) {
        if (request.method != "mic") {
            continue;
        }
        const auto cert = store->findCertificate(request.cert_serial);
        if (!cert) {
            break;
        }
        const std::string key = "\"manufacturer_issuer\":\"";
        const auto at = request.details.find(key);
        const auto end = at == std::string::npos ? at : request.details.find('"', at + key.size());
        return {request.csr,
                request.signer,
                cert->der,
                cert->issuer,
                end == std::string::npos
                    ? ""
                    : request.details.substr(at + key.size(), end - at - key.size()),
                request.peer};
    }
    std::cerr << "store_seed: " << path
              << " holds no issued MIC enrollment to copy (enroll one phone first)\n";
    std::exit(1);
}

// Binds the first `count` of ?1..?7 (seed_sql.h): SQLite refuses an index
// beyond the highest one a statement names.
void run(Database& db, const char* sql, const Mix& mix, std::int64_t now, int count) {
    const std::int64_t values[] = {mix.current,  mix.previous, mix.gone, mix.pending,
                                   mix.rejected, mix.failures, now};
    Query q = db.query(sql, "seed plan");
    for (int i = 0; i < count; ++i) {
        q.bindInt(i + 1, values[i]);
    }
    q.run();
}

void plan(Database& db, const Mix& mix, std::int64_t now) {
    db.exec(scep::seed::kPlanTable, "seed plan");
    run(db, scep::seed::kPlanCurrentAndGone, mix, now, 7);
    run(db, scep::seed::kPlanPrevious, mix, now, 2);
    run(db, scep::seed::kPlanLinkPrevious, mix, now, 2);
    run(db, scep::seed::kPlanOthers, mix, now, 7);
    {
        Query q = db.query(scep::seed::kPlanRevocations, "seed plan");
        q.bindInt(1, now).run();
    }
    db.exec(scep::seed::kPlanIndex, "seed plan");
}

void writeSlice(Database& db, const Template& t, std::int64_t from, std::int64_t to) {
    const std::string operation = "seed slice";
    db.query("BEGIN IMMEDIATE", operation).run();
    db.query(scep::seed::kSliceSupersede, operation).bindInt(1, from).bindInt(2, to).run();
    db.query(scep::seed::kSliceRequests, operation)
        .bindInt(1, from)
        .bindInt(2, to)
        .bindBlob(3, t.csr)
        .bindBlob(4, t.signer)
        .bindText(5, t.manufacturer_issuer)
        .bindText(6, t.peer)
        .run();
    db.query(scep::seed::kSliceCertificates, operation)
        .bindInt(1, from)
        .bindInt(2, to)
        .bindText(3, t.issuer)
        .bindBlob(4, t.der)
        .run();
    db.query(scep::seed::kSliceAudit, operation)
        .bindInt(1, from)
        .bindInt(2, to)
        .bindText(3, t.peer)
        .run();
    // The deferred foreign keys (cert_serial, superseded_by) are checked here.
    db.query("COMMIT", operation).run();
}

std::int64_t count(Database& db, const char* sql) {
    return db.pragmaInteger(sql, "seed count");
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const auto started = std::chrono::steady_clock::now();
    try {
        const Template t = readTemplate(options.db);
        const Mix mix = mixFor(options.certificates);
        Database db(options.db, "seed open");
        db.exec("PRAGMA foreign_keys = ON", "seed open");
        db.exec("PRAGMA temp_store = MEMORY", "seed open");
        plan(db, mix, options.now);
        // Slices of at most 61 days: a renewal (335+ days after the
        // certificate it supersedes) never shares one with it.
        constexpr std::int64_t kDay = 86400;
        const std::int64_t first = options.now - 731 * kDay;
        const std::int64_t slices = std::max<std::int64_t>(12, options.certificates / 50000);
        const std::int64_t width = (options.now + 1 - first + slices - 1) / slices;
        for (std::int64_t from = first; from <= options.now; from += width) {
            writeSlice(db, t, from, from + width);
        }
        db.exec("DROP TABLE temp.seed", "seed done");
        // The seed's rows wait in the full-text indexes' queues; opening the
        // store indexes them, here rather than in the first scep-ra to start.
        scep::openSqliteStore(options.db).reset();
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)", "seed done");
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::cout << "seeded " << options.db << " in " << seconds << " s: certificates "
                  << count(db, "SELECT count(*) FROM certificates") << " (revoked "
                  << count(db, "SELECT count(*) FROM certificates WHERE revoked = 1")
                  << ", superseded "
                  << count(db, "SELECT count(*) FROM certificates WHERE superseded_by IS NOT NULL")
                  << "), requests " << count(db, "SELECT count(*) FROM requests") << " (pending "
                  << count(db, "SELECT count(*) FROM requests WHERE status = 'pending'")
                  << "), audit rows " << count(db, "SELECT count(*) FROM audit") << "\n";
    } catch (const std::exception& e) {
        std::cerr << "store_seed: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
