// Guarding state-dir against operator mistakes: one process that may
// create or restore at a time, a CA never running without its records, and
// backup/restore that never overwrite a key or a record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ra/config.h"

namespace scep {

// An exclusive lock on state-dir (flock on scep-ra.lock), held by `serve`,
// `init` and `restore`. Throws std::runtime_error when another of them
// holds it.
class StateDirLock {
public:
    explicit StateDirLock(const Config& config);
    ~StateDirLock();
    StateDirLock(const StateDirLock&) = delete;
    StateDirLock& operator=(const StateDirLock&) = delete;

private:
    int fd_ = -1;
};

// Where a CA exists, its database must too: without it every revocation is
// forgotten and the CRL comes out empty. Throws std::runtime_error naming
// the database and the two ways out (restore a backup, or `scep-ra init`
// to start an empty one deliberately) when it is missing, empty (0 bytes)
// or holds no schema.
void requireDatabase(const Config& config);

// Bytes an unprivileged process may still write in `dir` (statvfs
// f_bavail); 0 when it cannot be read.
std::uint64_t availableBytes(const std::string& dir);

// True when the database file is missing, empty or holds no schema.
bool databaseMissing(const Config& config);

// `scep-ra backup DIR`: creates DIR (0700; it must not exist) holding a
// consistent online copy of the database (SQLite's backup API, safe while
// `serve` runs), the CA, RA and admin certificates and keys found in
// state-dir (keys 0600), the CRL, and SHA256SUMS (sha256sum -c format).
// Returns the files written.
std::vector<std::string> backupStateDir(const Config& config, const std::string& destination);

// `scep-ra restore DIR`: checks SHA256SUMS and the database's integrity,
// then copies into state-dir what is missing there. It never overwrites:
// a key or certificate already present must be identical to the backup's,
// and the database must be missing or empty (an empty file and its stale
// -wal/-shm are moved aside, not deleted). Everything is checked before
// anything is written. Needs the StateDirLock (serve stopped). Returns the
// files restored.
std::vector<std::string> restoreStateDir(const Config& config, const std::string& source);

}  // namespace scep
