// An SQLite connection as the store and the whole-file tools (backup,
// schema probe) both hold it.
#pragma once

#include <memory>

#include <sqlite3.h>

namespace scep {

struct SqliteCloser {
    void operator()(sqlite3* db) const {
        // v2: never fails with SQLITE_BUSY; owners finalize their
        // statements before the connection goes anyway.
        sqlite3_close_v2(db);
    }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

// How long a connection waits for a writer in another process (serve,
// backup and the admin CLI share one database).
inline constexpr int kSqliteBusyTimeoutMs = 5000;

}  // namespace scep
