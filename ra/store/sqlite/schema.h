// The database schema: the DDL of every version and the migrations between
// them. See schema.cc for the invariants the schema enforces on its own.
#pragma once

#include <string>

#include "ra/store/sqlite/db.h"

namespace scep {
namespace sqlite {

// Bump together with a migration step in schema.cc.
inline constexpr int kSchemaVersion = 5;

// Creates the schema in an empty database or upgrades an older one in place,
// in one write transaction. Throws StoreError for a database that is another
// application's or newer than kSchemaVersion. `path` names the file in errors.
void migrateSchema(Database& db, const std::string& path);

// The full-text indexes' queues (schema.cc, kMigrationV5): how many rows
// wait, and indexing them all in one statement each. The caller holds a
// write transaction for the drain.
std::int64_t searchQueueLength(Database& db, const std::string& operation);
void drainSearchQueues(Database& db, const std::string& operation);

}  // namespace sqlite
}  // namespace scep
