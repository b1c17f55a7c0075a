// The CA and RA material in state-dir: loaded, or created on first start
// (CA, RA certificate, admin TLS identity; keys created 0600), and the
// names of the files there.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/openssl_ptr.h"
#include "ra/ca/local_ca.h"
#include "ra/config.h"

namespace scep {

// The certificate and key the RA signs replies with and receives requests
// encrypted to. Always RSA: SCEP clients cannot use anything else.
struct RaIdentity {
    X509Ptr cert;
    EvpPkeyPtr key;
};

// The CA, the RA's SCEP identity and the admin listener's TLS identity.
struct CaMaterial {
    std::unique_ptr<LocalCa> ca;
    RaIdentity ra;
    RaIdentity admin;  // TLS server identity of the admin listener (empty when disabled)
    std::vector<std::string> created;  // files created by this start, for the operator
};

// File names inside state-dir: the database, and the lock `serve`,
// `init` and `restore` hold so that only one of them works on it at a time.
constexpr const char* kDatabaseFile = "scep-ra.db";
constexpr const char* kLockFile = "scep-ra.lock";

// What bootstrapState() may create. No mode ever replaces an existing key.
enum class Creation {
    none,         // admin commands: load what exists; missing material is an error
    first_start,  // serve: a CA only in a new (empty) state-dir; service certificates as needed
    init,         // scep-ra init: a CA wherever none exists and no earlier CA's records remain
};

// Loads or creates CA and RA material per `config` and checks that it fits
// together (keys match certificates, the RA certificate is issued by the CA,
// RSA, not expired). The RA and admin certificates are re-issued for their
// existing keys when they have fewer than 30 days left (or no longer fit);
// their keys are only generated where none exist. A state-dir with a CA key
// but no CA certificate (or the reverse), or one that is not empty but has
// no CA, is refused with the file and the fix named.
CaMaterial bootstrapState(const Config& config, std::time_t now,
                          Creation creation = Creation::first_start);

// Creates state-dir with mode 0700 unless it exists; throws if it cannot,
// or if the path is not a directory.
void makeStateDir(const std::string& dir);

// True when state-dir does not exist or holds nothing but the lock.
bool isNewStateDir(const Config& config);

// The paths bootstrapState() uses inside state-dir.
std::string stateFile(const Config& config, const char* name);

}  // namespace scep
