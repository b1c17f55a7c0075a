// SQLite database files as whole files: is one there at all, and a
// consistent copy of one while another process may be writing to it.
#pragma once

#include <cstdint>
#include <string>

namespace scep {

// PRAGMA user_version of the database at `path`: -1 when the file does not
// exist, 0 when it is empty (0 bytes) or holds no schema yet. Never creates
// the file. Throws std::runtime_error when it is not an SQLite database.
std::int64_t sqliteSchemaVersion(const std::string& path);

// Copies the database at `from` into `to` (created, or replacing an empty
// one) with SQLite's online backup API: a consistent snapshot even while
// other connections write to `from`. `from` must pass PRAGMA
// integrity_check. Throws std::runtime_error naming the file and the reason.
void copySqliteDatabase(const std::string& from, const std::string& to);

}  // namespace scep
