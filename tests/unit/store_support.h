// Test material for the store's unit tests (test_store_*.cc): a raw second
// connection to the database, sample rows, the frozen schemas of earlier
// releases, the search tests' data set, and running N threads at once.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "ra/ca/certificate.h"
#include "ra/store/store.h"

namespace storetest {

using scep::AuditEvent;
using scep::Bytes;
using scep::CertificateRecord;
using scep::CertificateView;
using scep::Page;
using scep::RequestRecord;
using scep::Store;

// A second, independent connection to the store's file, as the admin or an
// attacker with file access would have it.
class RawDb {
public:
    explicit RawDb(const std::string& path, bool create = false) {
        const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
        if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("cannot open " + path + ": " + message);
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    // Runs SQL; returns the error message, empty on success.
    std::string exec(const std::string& sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) {
            return "";
        }
        std::string message = error ? error : "unknown error";
        sqlite3_free(error);
        return message.empty() ? "error" : message;
    }
    // One column (the first by default) of every row, as text.
    std::vector<std::string> column(const std::string& sql, int index = 0) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        std::vector<std::string> out;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            const auto* text = sqlite3_column_text(stmt, index);
            out.emplace_back(text ? reinterpret_cast<const char*>(text) : "NULL");
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        return out;
    }
    std::string scalar(const std::string& sql) {
        const auto rows = column(sql);
        return rows.empty() ? "" : rows.front();
    }
    long long count(const std::string& sql) { return std::stoll(scalar(sql)); }
    // FTS5's integrity-check with rank 1, which also compares each full-text
    // index with its table: "" when both agree. Rows still queued for an
    // index (schema v5) count as missing from it: close the store first.
    std::string searchIndexErrors() {
        return exec(
            "INSERT INTO certificates_cn (certificates_cn, rank) VALUES ('integrity-check', 1);"
            "INSERT INTO fts_request_text (fts_request_text, rank) "
            "VALUES ('integrity-check', 1)");
    }
    // The `detail` lines of EXPLAIN QUERY PLAN (parameters left unbound).
    std::vector<std::string> plan(const std::string& sql) {
        return column("EXPLAIN QUERY PLAN " + sql, 3);
    }

private:
    sqlite3* db_ = nullptr;
};

Bytes bytes(std::initializer_list<int> values);
RequestRecord sampleRequest(const std::string& transaction_id, const std::string& cn = "SEP001");
CertificateRecord sampleCertificate(const std::string& serial, const std::string& cn = "SEP001",
                                    std::int64_t not_after = 4102444800 /* 2100 */);
AuditEvent event(const std::string& action, const std::string& outcome = "success");
void checkSameRequest(const RequestRecord& a, const RequestRecord& b);
void checkSameCertificate(const CertificateRecord& a, const CertificateRecord& b);
std::vector<std::string> serials(const std::vector<CertificateRecord>& certs);
std::size_t auditCount(Store& store);
// The events with this action, newest first.
std::vector<AuditEvent> auditWith(Store& store, const std::string& action);
// The certificate with this serial (REQUIREs it exists).
CertificateRecord certificate(Store& store, const std::string& serial);

// Starts `count` threads running body(0) ... body(count - 1) at once, joins
// them all, and returns what each threw (its what(); "" when it did not).
std::vector<std::string> runThreads(int count, const std::function<void(int)>& body);

// The version 1 schema exactly as the first release created it (a frozen copy
// of kSchemaV1 in ra/store/sqlite/schema.cc): the migration must upgrade databases
// that look like this, whatever later edits happen to the source.
extern const char* const kV1Schema;
// Migration 1 -> 2 exactly as released (a frozen copy of kMigrationV2).
extern const char* const kV2Migration;
// A v1 database as the first release left it: WAL, application_id,
// user_version 1.
void createV1Database(const std::string& path);
// A v2 database as the second release left it.
void createV2Database(const std::string& path);

constexpr std::int64_t kNow = 2000000000;
// The one day constant: tests are also compiled together (the sanitized
// unity build), where a second kDay would be ambiguous.
using scep::kDay;

// A MIC-authenticated request as ra/scep/responder.cc records it, or (empty model)
// a challenge request without model / mac in its details.
RequestRecord deviceRequest(const std::string& transaction_id, const std::string& cn,
                            const std::string& model, const std::string& mac,
                            std::int64_t created_at);
std::vector<std::int64_t> ids(const Page<RequestRecord>& page);
std::vector<std::string> serials(const Page<CertificateView>& page);

using Ids = std::vector<std::int64_t>;
using Serials = std::vector<std::string>;

// The requests the search tests share; ids 1..6 in this order.
//  1  pending   CP-8841 00:1A:2B:3C:4D:5E  t=1000
//  2  issued    CP-8875 00:AA:BB:CC:DD:EE  t=2000
//  3  pending   challenge (no model/mac)   t=3000
//  4  rejected  CP-8841 00:1A:2B:3C:4D:5E  t=4000
//  5  pending   CP-8841 00:11:22:33:44:FF  t=5000
//  6  pending   details not JSON           t=6000
void addSearchRequests(Store& store);
Ids findIds(Store& store, scep::RequestFilter filter);

}  // namespace storetest
