#include "ra/store/sqlite/files.h"

#include <sys/stat.h>

#include <memory>
#include <stdexcept>

#include "ra/store/sqlite/handle.h"

namespace scep {

namespace {

SqliteHandle openDb(const std::string& path, int flags) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    SqliteHandle db(raw);  // closed even when opening failed
    if (rc != SQLITE_OK) {
        throw std::runtime_error("cannot open '" + path + "': " + sqlite3_errstr(rc));
    }
    sqlite3_busy_timeout(raw, kSqliteBusyTimeoutMs);
    return db;
}

std::string singleText(sqlite3* db, const char* sql, const std::string& path) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    std::string value;
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(stmt, 0);
        value = text ? reinterpret_cast<const char*>(text) : "";
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        throw std::runtime_error("'" + path + "': " + sqlite3_errmsg(db));
    }
    return value;
}

}  // namespace

std::int64_t sqliteSchemaVersion(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        return -1;
    }
    if (info.st_size == 0) {
        return 0;
    }
    const SqliteHandle db = openDb(path, SQLITE_OPEN_READWRITE);  // no CREATE: never makes a file
    const std::string version = singleText(db.get(), "PRAGMA user_version", path);
    return version.empty() ? 0 : std::stoll(version);
}

void copySqliteDatabase(const std::string& from, const std::string& to) {
    const SqliteHandle source = openDb(from, SQLITE_OPEN_READWRITE);
    const std::string check = singleText(source.get(), "PRAGMA integrity_check", from);
    if (check != "ok") {
        throw std::runtime_error("'" + from + "' fails PRAGMA integrity_check: " + check);
    }
    const SqliteHandle target = openDb(to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    sqlite3_backup* backup = sqlite3_backup_init(target.get(), "main", source.get(), "main");
    if (!backup) {
        throw std::runtime_error("cannot copy '" + from + "' to '" + to +
                                 "': " + sqlite3_errmsg(target.get()));
    }
    // All pages in one step: one read transaction on the source, so the copy
    // is one consistent snapshot whatever other connections commit meanwhile.
    int rc = sqlite3_backup_step(backup, -1);
    const int finished = sqlite3_backup_finish(backup);
    if (rc == SQLITE_DONE) {
        rc = finished;
    }
    if (rc != SQLITE_OK) {
        throw std::runtime_error("cannot copy '" + from + "' to '" + to +
                                 "': " + sqlite3_errstr(rc));
    }
}

}  // namespace scep
