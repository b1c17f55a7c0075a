// Reading the store: single-row look-ups, listings, and the admin API's
// filtered searches with their counts (their SQL: search_sql.cc).

#include <limits>
#include <mutex>

#include "ra/store/sqlite/rows.h"
#include "ra/store/sqlite/search_sql.h"
#include "ra/store/sqlite/sqlite_store.h"

namespace scep {
namespace sqlite {

namespace {

// Every remaining row of `q`, each read by readRow.
template <typename ReadRow>
auto readAll(Query& q, ReadRow readRow) {
    std::vector<decltype(readRow(q))> out;
    while (q.step()) {
        out.push_back(readRow(q));
    }
    return out;
}

}  // namespace

std::optional<RequestRecord> SqliteStore::findRequest(std::int64_t id) {
    static const std::string operation = "findRequest";
    static const char* const sql = "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindInt(1, id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readRequest(q);
}

std::optional<RequestRecord> SqliteStore::findRequestByTransaction(
    const std::string& transaction_id) {
    static const std::string operation = "findRequestByTransaction";
    static const char* const sql =
        "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE transaction_id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindText(1, transaction_id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readRequest(q);
}

std::vector<RequestRecord> SqliteStore::requestsAtCa() {
    static const std::string operation = "requestsAtCa";
    static const char* const sql =
        "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE ca_state <> '' ORDER BY id";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    return readAll(q, readRequest);
}

std::vector<RequestRecord> SqliteStore::listRequests(std::optional<RequestStatus> status) {
    static const std::string operation = "listRequests";
    // Two statements rather than "?1 IS NULL OR status = ?1", which could not
    // use the status index.
    static const char* const all = "SELECT " SCEP_REQUEST_COLUMNS " FROM requests ORDER BY id";
    static const char* const filtered =
        "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE status = ?1 ORDER BY id";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(status ? filtered : all, operation);
    if (status) {
        q.bindText(1, requestStatusName(*status));
    }
    return readAll(q, readRequest);
}

std::optional<CertificateRecord> SqliteStore::findCertificate(const std::string& serial) {
    static const std::string operation = "findCertificate";
    static const char* const sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates WHERE serial = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindText(1, serial);
    if (!q.step()) {
        return std::nullopt;
    }
    return readCertificate(q);
}

std::vector<CertificateRecord> SqliteStore::listCertificates() {
    static const std::string operation = "listCertificates";
    static const char* const sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates ORDER BY rowid";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    return readAll(q, readCertificate);
}

std::vector<CertificateRecord> SqliteStore::activeCertificatesFor(const std::string& common_name,
                                                                  std::int64_t at,
                                                                  Superseded superseded) {
    static const std::string operation = "activeCertificatesFor";
    // Valid at `at`: certificateState() in SQL (store.h; notAfter is
    // inclusive, RFC 5280 4.1.2.5).
    static const char* const all_sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS
        " FROM certificates "
        "WHERE cn_key = lower(rtrim(?1, '.')) AND revoked = 0 AND not_after >= ?2 "
        "ORDER BY not_after DESC, serial";
    static const char* const current_sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS
        " FROM certificates "
        "WHERE cn_key = lower(rtrim(?1, '.')) AND revoked = 0 AND not_after >= ?2 "
        "AND superseded_by IS NULL ORDER BY not_after DESC, serial";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(superseded == Superseded::include ? all_sql : current_sql, operation);
    q.bindText(1, common_name).bindInt(2, at);
    return readAll(q, readCertificate);
}

std::vector<CertificateRecord> SqliteStore::revokedCertificates() {
    static const std::string operation = "revokedCertificates";
    static const char* const sql = "SELECT " SCEP_CERTIFICATE_COLUMNS
                                   " FROM certificates "
                                   "WHERE revoked = 1 ORDER BY revoked_at, serial";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    return readAll(q, readCertificate);
}

std::vector<CertificateRecord> SqliteStore::revocations() {
    static const std::string operation = "revocations";
    // certificates_revocations covers it: no row is read.
    static const char* const sql =
        "SELECT serial, revocation_reason, revoked_at FROM certificates "
        "WHERE revoked = 1 ORDER BY revoked_at, serial";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    return readAll(q, [](Query& row) {
        CertificateRecord c;
        c.serial = row.text(0);
        c.revoked = true;
        c.revocation_reason = static_cast<int>(row.integer(1));
        c.revoked_at = row.integer(2);
        return c;
    });
}

std::vector<AuditEvent> SqliteStore::listAudit(std::size_t limit, std::int64_t before_id) {
    static const std::string operation = "listAudit";
    static const char* const sql =
        "SELECT " SCEP_AUDIT_COLUMNS " FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2";
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    if (limit == 0) {
        return {};
    }
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindInt(1, before_id > 0 ? before_id : kMax)
        .bindInt(
            2, limit > static_cast<std::uint64_t>(kMax) ? kMax : static_cast<std::int64_t>(limit));
    return readAll(q, readAudit);
}

// The total and the page come from one read snapshot, so they agree.
template <typename T, typename ReadRow>
Page<T> SqliteStore::searchPage(const std::string& operation, const SearchSql& sql,
                                std::size_t limit, std::size_t offset, ReadRow readRow) {
    Page<T> page;
    std::lock_guard<std::mutex> lock(mutex_);
    ReadTransaction snapshot(db_, operation);
    {
        Query q = db_.query(sql.count.c_str(), operation);
        const int next = q.bindAll(sql.params);
        // Counting stops at the first match past `ahead`.
        constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
        const std::int64_t start = pageOffset(offset);
        const std::int64_t ahead =
            start > kMax - static_cast<std::int64_t>(kTextSearchCountAhead) - 1
                ? kMax - 1
                : start + static_cast<std::int64_t>(kTextSearchCountAhead);
        if (sql.counts_ahead) {
            q.bindInt(next, ahead + 1);
        }
        const std::int64_t total = q.step() ? q.integer(0) : 0;
        page.total_exact = !sql.counts_ahead || total <= ahead;
        page.total = static_cast<std::size_t>(page.total_exact ? total : ahead);
    }
    if (page.total == 0) {
        return page;
    }
    Query q = db_.query(sql.page.c_str(), operation);
    const int next = q.bindAll(sql.params);
    q.bindInt(next, pageLimit(limit)).bindInt(next + 1, pageOffset(offset));
    page.items = readAll(q, readRow);
    return page;
}

Page<RequestRecord> SqliteStore::findRequests(const RequestFilter& filter) {
    return searchPage<RequestRecord>("findRequests", requestSearchSql(filter), filter.limit,
                                     filter.offset, [](Query& q) { return readRequest(q); });
}

Page<CertificateView> SqliteStore::findCertificates(const CertificateFilter& filter) {
    return searchPage<CertificateView>(
        "findCertificates", certificateSearchSql(filter, filter.now != 0 ? filter.now : now()),
        filter.limit, filter.offset, [](Query& q) {
            CertificateView view;
            view.certificate = readCertificate(q);
            view.model = q.text(12);
            view.mac = q.text(13);
            return view;
        });
}

std::size_t SqliteStore::countRequests(RequestStatus status) {
    static const std::string operation = "countRequests";
    static const char* const sql = "SELECT count(*) FROM requests WHERE status = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindText(1, requestStatusName(status));
    return q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
}

std::size_t SqliteStore::countValidCertificates(std::int64_t from, std::int64_t to) {
    static const std::string operation = "countValidCertificates";
    if (to <= from) {
        return 0;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ReadTransaction snapshot(db_, operation);
    return static_cast<std::size_t>(validFrom(from, operation) - validFrom(to, operation));
}

// Not revoked, not_after >= at: valid at `at` as certificateState() has it
// (store.h). The days after at's from valid_by_expiry_day (schema.cc,
// kMigrationV5), at's own day from certificates_validity: a few hundred
// rows and one day's certificates, whatever the size of the store. Its
// days are not_after / 86400, which rounds towards zero: from at >= 0 on,
// every certificate of a later day expires at or after the end of at's.
std::int64_t SqliteStore::validFrom(std::int64_t at, const std::string& operation) {
    constexpr std::int64_t kDay = 86400;
    if (at < 0 || at > std::numeric_limits<std::int64_t>::max() - kDay) {
        static const char* const sql =
            "SELECT count(*) FROM certificates WHERE revoked = 0 AND not_after >= ?1";
        Query q = db_.query(sql, operation);
        q.bindInt(1, at);
        return q.step() ? q.integer(0) : 0;
    }
    static const char* const sql =
        "SELECT coalesce((SELECT sum(certificates) FROM valid_by_expiry_day WHERE day > ?1), 0) + "
        "(SELECT count(*) FROM certificates WHERE revoked = 0 AND not_after >= ?2 AND "
        "not_after < ?3)";
    const std::int64_t day = at / kDay;
    Query q = db_.query(sql, operation);
    q.bindInt(1, day).bindInt(2, at).bindInt(3, (day + 1) * kDay);
    return q.step() ? q.integer(0) : 0;
}

std::optional<TokenRecord> SqliteStore::findToken(const std::string& id) {
    static const std::string operation = "findToken";
    static const char* const sql = "SELECT " SCEP_TOKEN_COLUMNS " FROM tokens WHERE id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindText(1, id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readToken(q);
}

std::vector<TokenRecord> SqliteStore::listTokens() {
    static const std::string operation = "listTokens";
    static const char* const sql = "SELECT " SCEP_TOKEN_COLUMNS " FROM tokens ORDER BY name";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    return readAll(q, readToken);
}

}  // namespace sqlite
}  // namespace scep
