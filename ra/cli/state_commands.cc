// The commands that create, copy, restore and show the CA's state.
#include <algorithm>
#include <ctime>
#include <iostream>
#include <stdexcept>

#include "common/fingerprint.h"
#include "ra/auth/authenticator.h"
#include "ra/ca/upstream/upstream_ca.h"
#include "ra/cli/commands.h"
#include "ra/crypto.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/audit_vocabulary.h"
#include "ra/ops/event_log.h"
#include "ra/store/state_dir.h"

namespace scep::cli {

// Creates what state-dir lacks, on the operator's word: a CA where none is
// (and no earlier CA's records remain), or an empty database for an existing
// CA whose database was lost. Never replaces a key or a database.
int init(const Config& config) {
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    const bool new_database = databaseMissing(config);
    const CaMaterial state = bootstrapState(config, std::time(nullptr), Creation::init);
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    const std::string ca_key = stateFile(config, "ca.key");
    const bool new_ca =
        std::find(state.created.begin(), state.created.end(), ca_key) != state.created.end();
    if (!new_ca && !new_database) {
        std::cout << "state-dir '" << config.ra.state_dir
                  << "' already holds a CA and its database; "
                  << "nothing to do\n";
        return 0;
    }
    AuditEvent event;
    event.actor = operatorName();
    event.action = auditActionName(AuditAction::init);
    event.outcome = outcomeName(Outcome::success);
    event.reason = new_ca ? "new CA and database"
                          : "new empty database for the existing CA: earlier records and "
                            "revocations are not in it";
    EventLog log;
    AuditTrail(*store, log, [] { return std::time(nullptr); }).writeAlways(event);
    for (const auto& file : state.created) {
        std::cout << "created " << file << "\n";
    }
    std::cout << "created " << stateFile(config, kDatabaseFile) << "\n";
    if (!new_ca) {
        std::cerr << "scep-ra: warning: the new database holds none of the earlier requests, "
                     "certificates or revocations; revoke again what must stay revoked\n";
    }
    printFingerprints(state.ca->certificate(), std::cout);
    return 0;
}

// Puts a backup back (serve must be stopped), then checks that the result
// starts: CA, RA and database load together.
int restore(const Config& config, const Arguments& args) {
    if (args.positional.size() != 1) {
        throw std::invalid_argument("restore needs exactly one backup directory");
    }
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    for (const auto& file : restoreStateDir(config, args.positional[0])) {
        std::cout << "restored " << file << "\n";
    }
    const CaMaterial state = bootstrapState(config, std::time(nullptr), Creation::none);
    requireDatabase(config);
    openSqliteStore(stateFile(config, kDatabaseFile))->ping();
    printFingerprints(state.ca->certificate(), std::cout);
    return 0;
}

int backup(const Config& config, const Arguments& args) {
    if (args.positional.size() != 1) {
        throw std::invalid_argument("backup needs exactly one (new) directory");
    }
    for (const auto& file : backupStateDir(config, args.positional[0])) {
        std::cout << file << "\n";
    }
    return 0;
}

int fingerprint(const Config& config, const CaMaterial& state, const Arguments& args) {
    const auto digest = digestFromName(args.option("digest", "sha256"));
    if (!digest) {
        throw std::invalid_argument("--digest must be sha1, sha256, sha384 or sha512");
    }
    // What phones must trust: with an upstream CA, its root as serve last
    // fetched (and pinned) it.
    X509Ptr upstream_root;
    if (config.ca.backend == CaBackend::scep) {
        const std::string kept = stateFile(config, kUpstreamChainFile);
        if (!fileExists(kept)) {
            throw std::runtime_error("'" + kept +
                                     "' does not exist yet: 'scep-ra serve' fetches the upstream "
                                     "CA's chain on its first start");
        }
        upstream_root = loadCertificateFile(kept);
    }
    X509& root = upstream_root ? *upstream_root : state.ca->certificate();
    std::cout << toHex(certificateFingerprint(root, *digest)) << "\n";
    return 0;
}

int checkConfig(const Config& config) {
    const ManufacturerRoots roots(config.auth.manufacturer_roots);
    std::cout << config.path << ": OK, " << config.dhcp.profiles.size() << " profile(s); "
              << config.auth.manufacturer_roots << ": " << roots.anchorCount() << " root(s), "
              << roots.intermediateCount() << " intermediate(s)\n";
    return 0;
}

}  // namespace scep::cli
