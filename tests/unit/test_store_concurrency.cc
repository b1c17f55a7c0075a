// The store under concurrency: threads on one store, two stores on one file,
// and a writer killed mid-transaction.
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

TEST_CASE("store: concurrent writers on one store — one winner per transactionID") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    constexpr int kThreads = 8;
    constexpr int kShared = 25;  // transaction IDs every thread tries
    constexpr int kOwn = 10;     // transaction IDs only one thread uses

    std::vector<std::atomic<int>> added(kShared);
    std::vector<std::atomic<int>> issued(kShared);
    std::atomic<int> duplicates{0}, own_added{0}, unexpected{0};

    const std::vector<std::string> errors = runThreads(kThreads, [&](int t) {
        for (int k = 0; k < kShared; ++k) {
            RequestRecord r = sampleRequest("shared-" + std::to_string(k));
            try {
                store->addPendingRequest(r, event("enroll", "pending"));
                ++added[k];
            } catch (const DuplicateTransaction&) {
                ++duplicates;
            }
            if (k < kOwn) {
                RequestRecord own =
                    sampleRequest("own-" + std::to_string(t) + "-" + std::to_string(k));
                store->addPendingRequest(own, event("enroll", "pending"));
                ++own_added;
            }
            const auto found = store->findRequestByTransaction(r.transaction_id);
            if (!found) {
                ++unexpected;
                continue;
            }
            const std::string serial = "S-" + std::to_string(t) + "-" + std::to_string(k);
            if (store->issuePending(found->id, sampleCertificate(serial), event("approve"))) {
                ++issued[k];
            }
        }
    });
    for (const auto& e : errors) {
        CHECK_MESSAGE(e.empty(), e);
    }
    CHECK(unexpected == 0);
    for (int k = 0; k < kShared; ++k) {
        CHECK_MESSAGE(added[k] == 1, "shared-", k);
        CHECK_MESSAGE(issued[k] == 1, "shared-", k);
    }
    CHECK(duplicates == (kThreads - 1) * kShared);
    CHECK(own_added == kThreads * kOwn);

    const auto all = store->listRequests(std::nullopt);
    CHECK(all.size() == static_cast<std::size_t>(kShared + kThreads * kOwn));
    CHECK(store->listRequests(RequestStatus::issued).size() == kShared);
    CHECK(store->listRequests(RequestStatus::pending).size() ==
          static_cast<std::size_t>(kThreads * kOwn));
    const auto certs = store->listCertificates();
    CHECK(certs.size() == kShared);
    for (const auto& c : certs) {
        const auto r = store->findRequest(c.request_id);
        REQUIRE(r);
        CHECK(r->cert_serial == c.serial);
        CHECK(r->transaction_id.rfind("shared-", 0) == 0);
    }
    // One audit event per committed write (enrolls + approvals), plus one
    // per certificate superseded: all share the CN SEP001, one stays current.
    CHECK(auditCount(*store) == all.size() + kShared + (kShared - 1));
    CHECK(std::count_if(certs.begin(), certs.end(),
                        [](const CertificateRecord& c) { return c.superseded_by.empty(); }) == 1);
    // Refused writes were rolled back to their savepoint inside shared
    // transactions (group commit): the full-text indexes and their queues
    // kept in step (closing the store indexes what is queued).
    store.reset();
    RawDb raw(dir.file("ra.db"));
    CHECK(raw.count("SELECT count(*) FROM fts_request_text_queue") == 0);
    CHECK(raw.searchIndexErrors() == "");
    CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
}

TEST_CASE("store: two stores on one file (server and CLI) do not lose writes") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto server = openSqliteStore(path);
    auto cli = openSqliteStore(path);
    // Kept small: each store's total work must stay well under the 5 s busy
    // timeout even on a slow disk, because SQLite's file lock is not fair.
    constexpr int kPerThread = 15;
    std::atomic<int> decided{0};
    const std::vector<std::string> errors = runThreads(4, [&](int t) {
        Store& store = t % 2 ? *cli : *server;
        for (int i = 0; i < kPerThread; ++i) {
            RequestRecord r = sampleRequest("tx-" + std::to_string(i));
            try {
                store.addPendingRequest(r, event("enroll", "pending"));
            } catch (const DuplicateTransaction&) {
                r = *store.findRequestByTransaction(r.transaction_id);
            }
            if (store.issuePending(r.id,
                                   sampleCertificate(std::to_string(t) + "-" + std::to_string(i)),
                                   event("approve"))) {
                ++decided;
            }
        }
    });
    for (const auto& e : errors) {
        CHECK_MESSAGE(e.empty(), e);
    }
    CHECK(decided == kPerThread);
    CHECK(server->listRequests(RequestStatus::issued).size() == kPerThread);
    CHECK(cli->listCertificates().size() == kPerThread);
    // Enroll + approve each, and every certificate but the last of the
    // shared CN superseded.
    CHECK(auditCount(*server) == 2 * kPerThread + (kPerThread - 1));
}

namespace {

// What the crash child reports after each COMMIT returned.
struct Committed {
    std::int64_t kind;  // 0 addIssuedRequest, 1 addPendingRequest, 2 issuePending
    std::int64_t request_id;
};

// Runs in the forked child: writes until killed, reporting each commit.
[[noreturn]] void crashChild(const std::string& path, int round, int report_fd) {
    try {
        auto store = openSqliteStore(path);
        std::int64_t last_pending = 0;
        for (std::int64_t i = 0;; ++i) {
            const std::string tx = "r" + std::to_string(round) + "-" + std::to_string(i);
            Committed c{};
            switch (i % 3) {
            case 0: {
                RequestRecord r = sampleRequest(tx, "CN" + tx);
                store->addIssuedRequest(r, sampleCertificate("C" + tx, "CN" + tx), event("enroll"));
                c = {0, r.id};
                break;
            }
            case 1: {
                RequestRecord r = sampleRequest(tx, "CN" + tx);
                store->addPendingRequest(r, event("enroll", "pending"));
                last_pending = r.id;
                c = {1, r.id};
                break;
            }
            default:
                if (!store->issuePending(last_pending, sampleCertificate("C" + tx, "CN" + tx),
                                         event("approve"))) {
                    _exit(3);
                }
                c = {2, last_pending};
            }
            if (write(report_fd, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) {
                _exit(4);
            }
        }
    } catch (...) {
        _exit(2);
    }
}

// Kills and reaps the child if the test leaves early.
struct ChildGuard {
    pid_t pid;
    ~ChildGuard() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

}  // namespace

TEST_CASE("store: SIGKILL mid-write loses no commit and leaves no half-written state") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    std::random_device device;
    const unsigned seed = device();
    INFO("seed ", seed);
    std::mt19937 rng(seed);
    std::vector<Committed> committed;
    long long reported_requests = 0;

    for (int round = 0; round < 8; ++round) {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crashChild(path, round, fds[1]);
        }
        close(fds[1]);
        ChildGuard guard{pid};

        std::vector<char> buffer;
        auto readSome = [&](int timeout_ms) {
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, timeout_ms) <= 0) {
                return false;
            }
            char chunk[4096];
            const ssize_t n = read(fds[0], chunk, sizeof chunk);
            if (n <= 0) {
                return false;  // EOF: the child is gone
            }
            buffer.insert(buffer.end(), chunk, chunk + n);
            return true;
        };
        // Wait for the first commit (bounded: a child that cannot write at
        // all shows up as a failure below, not as a hang).
        for (int i = 0; i < 300 && buffer.size() < sizeof(Committed); ++i) {
            if (!readSome(100) && waitpid(pid, nullptr, WNOHANG) != 0) {
                break;
            }
        }
        REQUIRE_MESSAGE(buffer.size() >= sizeof(Committed), "the writer child never committed");
        // Let it run for a random while, draining its reports, then kill it
        // wherever it is: inside a transaction, an fsync, or between writes.
        const auto deadline =
            std::chrono::steady_clock::now() +
            std::chrono::microseconds(std::uniform_int_distribution<int>(0, 40000)(rng));
        while (std::chrono::steady_clock::now() < deadline) {
            readSome(1);
        }
        REQUIRE(kill(pid, SIGKILL) == 0);
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        guard.pid = 0;
        CHECK_MESSAGE(WIFSIGNALED(status), "child exited by itself with status ",
                      WEXITSTATUS(status));
        while (readSome(0)) {
        }
        close(fds[0]);
        const std::size_t records = buffer.size() / sizeof(Committed);
        for (std::size_t i = 0; i < records; ++i) {
            Committed c;
            std::memcpy(&c, buffer.data() + i * sizeof c, sizeof c);
            committed.push_back(c);
            reported_requests += c.kind != 2;
        }

        // Recovery: the store opens the killed writer's WAL...
        auto store = openSqliteStore(path);
        RawDb raw(path);
        CHECK(raw.column("PRAGMA integrity_check") == std::vector<std::string>{"ok"});
        CHECK(raw.column("PRAGMA foreign_key_check").empty());
        // ...every issued request has its certificate, and vice versa...
        CHECK(raw.count("SELECT count(*) FROM requests r WHERE status = 'issued' AND NOT EXISTS "
                        "(SELECT 1 FROM certificates c WHERE c.serial = r.cert_serial AND "
                        "c.request_id = r.id)") == 0);
        CHECK(raw.count("SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM "
                        "requests r WHERE r.id = c.request_id AND r.status = 'issued' AND "
                        "r.cert_serial = c.serial)") == 0);
        // ...every write came with its audit event and nothing else did...
        const long long requests = raw.count("SELECT count(*) FROM requests");
        const long long certificates = raw.count("SELECT count(*) FROM certificates");
        CHECK(raw.count("SELECT count(*) FROM audit WHERE action = 'enroll'") == requests);
        CHECK(raw.count("SELECT count(*) FROM audit WHERE outcome = 'success'") == certificates);
        CHECK(raw.count("SELECT count(*) FROM audit") ==
              requests + raw.count("SELECT count(*) FROM audit WHERE action = 'approve'"));
        // ...and nothing the child saw committed is missing.
        // (The child may have committed once more before it could report.)
        CHECK(requests >= reported_requests);
        CHECK(requests <= reported_requests + round + 1);
        std::vector<std::int64_t> lost;
        for (const auto& c : committed) {
            const auto r = store->findRequest(c.request_id);
            const bool issued = r && r->status == RequestStatus::issued &&
                                store->findCertificate(r->cert_serial).has_value();
            if (!r || (c.kind != 1 && !issued)) {
                lost.push_back(c.request_id);
            }
        }
        CHECK_MESSAGE(lost.empty(), lost.size(), " of ", committed.size(),
                      " reported commits are missing, first request id ",
                      lost.empty() ? 0 : lost.front());
    }
}

TEST_CASE("store v3: concurrent issuing keeps the identity rules (threads and two stores)") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto server = openSqliteStore(path);
    auto cli = openSqliteStore(path);
    constexpr int kWriters = 12;
    for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        const std::string cn = "race-" + std::to_string(round) + ".example.nl";
        // Challenge approvals: 12 pending requests for one CN, approved at once.
        std::vector<std::int64_t> pending;
        for (int i = 0; i < kWriters; ++i) {
            RequestRecord r =
                sampleRequest("p-" + std::to_string(round) + "-" + std::to_string(i),
                              i % 2 ? cn : "Race-" + std::to_string(round) + ".Example.NL.");
            server->addPendingRequest(r, event("enroll", "pending"));
            pending.push_back(r.id);
        }
        std::atomic<int> approved{0}, taken{0}, other{0}, superseding{0};
        runThreads(kWriters, [&](int i) {
            Store& store = i % 2 ? *cli : *server;
            IssueRules exclusive;
            exclusive.exclusive = true;
            try {
                if (store.issuePending(
                        pending[i],
                        sampleCertificate("C" + std::to_string(round) + "-" + std::to_string(i),
                                          cn),
                        event("approve"), exclusive)) {
                    ++approved;
                }
            } catch (const IdentityTaken&) {
                ++taken;
            } catch (const std::exception&) {
                ++other;
            }
            // And MIC enrollments of another identity, which supersede.
            RequestRecord m = sampleRequest("m-" + std::to_string(round) + "-" + std::to_string(i),
                                            "mic-" + std::to_string(round));
            try {
                store.addIssuedRequest(
                    m,
                    sampleCertificate("M" + std::to_string(round) + "-" + std::to_string(i),
                                      "mic-" + std::to_string(round)),
                    event("enroll"));
                ++superseding;
            } catch (const std::exception&) {
                ++other;
            }
        });
        CHECK(approved == 1);
        CHECK(taken == kWriters - 1);
        CHECK(other == 0);
        CHECK(superseding == kWriters);
        CHECK(server->activeCertificatesFor(cn, 1800000000, Store::Superseded::include).size() ==
              1);
        CHECK(server->listRequests(RequestStatus::pending).size() ==
              static_cast<std::size_t>((round + 1) * (kWriters - 1)));
        const auto mic = server->activeCertificatesFor("mic-" + std::to_string(round), 1800000000,
                                                       Store::Superseded::include);
        CHECK(mic.size() == kWriters);  // superseded, not revoked
        CHECK(std::count_if(mic.begin(), mic.end(), [](const CertificateRecord& c) {
                  return c.superseded_by.empty();
              }) == 1);
    }
}
