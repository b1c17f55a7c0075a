#include "ra/store/sqlite/db.h"

#include "ra/store/store.h"

namespace scep {
namespace sqlite {

[[noreturn]] void fail(sqlite3* db, int code, const std::string& operation,
                       DuplicateHandler on_duplicate) {
    // The extended code says which kind of constraint broke; which rule
    // that is, only the statement knows (its caller passed on_duplicate).
    const int extended = db ? sqlite3_extended_errcode(db) : code;
    const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    const std::string what =
        operation + ": " + message + " (SQLite error " + std::to_string(code) + ")";
    if (on_duplicate &&
        (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY)) {
        on_duplicate(what);
    }
    throw StoreError(what);
}

Query& Query::bindText(int index, const std::string& value) {
    check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
    return *this;
}

Query& Query::bindBlob(int index, const Bytes& value) {
    // sqlite3_bind_blob(nullptr, 0) would bind NULL, and an empty vector's
    // data() may well be nullptr: bind a zero-length blob explicitly.
    if (value.empty()) {
        check(sqlite3_bind_zeroblob(stmt_, index, 0));
    } else {
        check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT));
    }
    return *this;
}

Query& Query::bindInt(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
}

Query& Query::bindNull(int index) {
    check(sqlite3_bind_null(stmt_, index));
    return *this;
}

bool Query::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    check(rc);
    return false;  // not reached: check() throws for anything but SQLITE_OK
}

std::string Query::text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

Bytes Query::blob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data ? Bytes(data, data + size) : Bytes();
}

Database::Database(const std::string& path, const std::string& operation) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        path.c_str(), &raw,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
        nullptr);
    db_.reset(raw);  // the handle must be closed even when opening failed
    if (rc != SQLITE_OK) {
        fail(raw, rc, operation);
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kSqliteBusyTimeoutMs);
    // The index pages an enrollment touches (a dozen indexes, random keys)
    // stop fitting SQLite's default 2 MiB cache long before a million
    // certificates: every insert would read them back through pread().
    exec("PRAGMA cache_size = -32768", operation);  // KiB: 32 MiB per connection
}

Query Database::query(const char* sql, const std::string& operation) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        sqlite3_stmt* stmt = nullptr;
        const int rc =
            sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        if (rc != SQLITE_OK) {
            fail(db_.get(), rc, operation);
        }
        it = statements_.emplace(sql, StmtPtr(stmt)).first;
    }
    return Query(db_.get(), it->second.get(), operation);
}

void Database::exec(const char* sql, const std::string& operation) {
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        fail(db_.get(), rc, operation);
    }
}

std::int64_t Database::pragmaInteger(const char* sql, const std::string& operation) {
    Query q = query(sql, operation);
    return q.step() ? q.integer(0) : -1;
}

Transaction::Transaction(Database& db, const std::string& operation)
    : db_(db), operation_(operation) {
    db_.query("BEGIN IMMEDIATE", operation_).run();
}

Transaction::~Transaction() {
    // SQLite may already have rolled back by itself (SQLITE_FULL, IOERR...);
    // a second ROLLBACK would only report an error.
    if (!committed_ && !sqlite3_get_autocommit(db_.get())) {
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

void Transaction::commit() {
    // A deferred foreign key violation surfaces here; the transaction then
    // stays open and the destructor rolls it back.
    db_.query("COMMIT", operation_).run();
    committed_ = true;
}

ReadTransaction::ReadTransaction(Database& db, const std::string& operation) : db_(db) {
    db_.query("BEGIN DEFERRED", operation).run();
}

ReadTransaction::~ReadTransaction() {
    if (!sqlite3_get_autocommit(db_.get())) {
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

std::exception_ptr runInSavepoint(Database& db, const char* name, const std::string& operation,
                                  const std::function<void()>& body) {
    const std::string release = std::string("RELEASE ") + name;
    db.query((std::string("SAVEPOINT ") + name).c_str(), operation).run();
    try {
        body();
        db.query(release.c_str(), operation).run();
        return nullptr;
    } catch (...) {
        const std::exception_ptr error = std::current_exception();
        if (sqlite3_get_autocommit(db.get())) {
            throw;
        }
        db.query((std::string("ROLLBACK TO ") + name).c_str(), operation).run();
        db.query(release.c_str(), operation).run();
        return error;
    }
}

}  // namespace sqlite
}  // namespace scep
