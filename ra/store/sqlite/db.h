// The SQLite wrapper the store is written in: a connection with its cache of
// prepared statements, one execution of a statement (Query), and write and
// read transactions. Nothing here knows the schema.
//
// None of it locks: the store holds its mutex around every use (see
// sqlite_store.cc), which also makes sqlite3_errmsg() belong to the failing
// call.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include <sqlite3.h>

#include "common/fingerprint.h"
#include "ra/store/sqlite/handle.h"

namespace scep {
namespace sqlite {

// What a UNIQUE or PRIMARY KEY violation of one statement means: the
// statement that failed names the rule, since each insert can clash on only
// the keys its caller knows. Throws the caller's exception for `what`.
using DuplicateHandler = void (*)(const std::string& what);

// Throws StoreError with the operation name and SQLite's message; a
// UNIQUE / PRIMARY KEY violation (by sqlite3_extended_errcode) goes to
// `on_duplicate` first when given.
[[noreturn]] void fail(sqlite3* db, int code, const std::string& operation,
                       DuplicateHandler on_duplicate = nullptr);

// A value bound to a search's '?' parameters.
using Param = std::variant<std::int64_t, std::string>;

// One execution of a cached prepared statement. The destructor resets it and
// clears its bindings, so a statement never keeps a read transaction open or
// carries values into its next use, whatever path (return, exception) leaves
// the scope.
class Query {
public:
    Query(sqlite3* db, sqlite3_stmt* stmt, const std::string& operation)
        : db_(db), stmt_(stmt), operation_(operation) {}
    ~Query() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    // A UNIQUE / PRIMARY KEY violation of this statement throws through
    // `handler` (see DuplicateHandler) instead of a plain StoreError.
    Query& onDuplicate(DuplicateHandler handler) {
        on_duplicate_ = handler;
        return *this;
    }

    Query& bindText(int index, const std::string& value);
    Query& bindBlob(int index, const Bytes& value);
    Query& bindInt(int index, std::int64_t value);
    Query& bindNull(int index);
    // NULL when empty: for the nullable references (cert_serial).
    Query& bindTextOrNull(int index, const std::string& value) {
        return value.empty() ? bindNull(index) : bindText(index, value);
    }
    // NULL when absent or 0 (request_id references).
    Query& bindIdOrNull(int index, std::optional<std::int64_t> value) {
        return value && *value != 0 ? bindInt(index, *value) : bindNull(index);
    }

    // Binds `params` to ?first, ?first+1, ...; returns the next index.
    template <typename Params>
    int bindAll(const Params& params, int first = 1) {
        for (const auto& param : params) {
            if (const auto* number = std::get_if<std::int64_t>(&param)) {
                bindInt(first++, *number);
            } else {
                bindText(first++, std::get<std::string>(param));
            }
        }
        return first;
    }

    // True while there is a row to read, false once done.
    bool step();
    // For statements that return no rows.
    void run() {
        while (step()) {
        }
    }

    bool isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    std::string text(int column) const;
    Bytes blob(int column) const;

private:
    void check(int rc) {
        if (rc != SQLITE_OK) {
            fail(db_, rc, operation_, on_duplicate_);
        }
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_;
    const std::string& operation_;
    DuplicateHandler on_duplicate_ = nullptr;
};

struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A connection and its prepared statements, keyed by SQL text (all of it
// constant or assembled from constant fragments), prepared on first use.
class Database {
public:
    // Opens read-write, creating the file, with extended result codes and
    // the busy timeout; throws StoreError naming `operation`.
    Database(const std::string& path, const std::string& operation);

    Query query(const char* sql, const std::string& operation);
    void exec(const char* sql, const std::string& operation);
    // The first column of the first row, -1 when there is none.
    std::int64_t pragmaInteger(const char* sql, const std::string& operation);
    sqlite3* get() const { return db_.get(); }

private:
    SqliteHandle db_;  // declared before the cache: statements are finalized first
    std::unordered_map<std::string, StmtPtr> statements_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit()
// succeeded. Declared after the lock and before any Query, so the statements
// are reset before the rollback and the rollback happens before the mutex is
// released.
class Transaction {
public:
    Transaction(Database& db, const std::string& operation);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Database& db_;
    const std::string& operation_;
    bool committed_ = false;
};

// A read transaction (BEGIN DEFERRED): the statements run inside it see one
// snapshot, so a search's total and its page agree even while the CLI
// writes. Same declaration order rules as Transaction; nothing to commit, so
// it always ends with ROLLBACK.
class ReadTransaction {
public:
    ReadTransaction(Database& db, const std::string& operation);
    ~ReadTransaction();
    ReadTransaction(const ReadTransaction&) = delete;
    ReadTransaction& operator=(const ReadTransaction&) = delete;

private:
    Database& db_;
};

// Runs `body` in SAVEPOINT `name`, inside the caller's transaction. If it
// throws, only its own writes are undone, and the exception is returned. If
// SQLite ended the whole transaction by itself (SQLITE_FULL, IOERR), nothing
// else of it survives either: the exception is rethrown.
std::exception_ptr runInSavepoint(Database& db, const char* name, const std::string& operation,
                                  const std::function<void()>& body);

}  // namespace sqlite
}  // namespace scep
