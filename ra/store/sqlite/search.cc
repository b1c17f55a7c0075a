// Reading the store: single-row look-ups, listings, and the admin API's
// filtered searches with their counts.
//
// The search's WHERE clause is assembled from the constant fragments below,
// one per filter that is set, so every combination is a plain conjunction
// the planner can match against an index ("?1 IS NULL OR status = ?1" could
// not use one). Each shape is prepared once and cached like any other
// statement: at most 2^6 request and 2^4 certificate shapes, times
// count/page. Values are only ever bound as parameters.

#include <algorithm>
#include <limits>
#include <mutex>

#include "ra/store/sqlite/rows.h"
#include "ra/store/sqlite/sqlite_store.h"

namespace scep {
namespace sqlite {

namespace {

constexpr std::size_t kMaxPageSize = 500;

}  // namespace

struct Search {
    std::string where;          // "" or " WHERE a AND b ..."
    std::vector<Param> params;  // one per '?' in `where`, in order

    void add(const char* condition) {
        where += where.empty() ? " WHERE " : " AND ";
        where += condition;
    }
};

namespace {

// For LIKE ... ESCAPE '\': the user's '%', '_' and '\' match themselves.
std::string escapeLike(const std::string& text) {
    std::string out;
    out.reserve(text.size() + 8);
    for (const char ch : text) {
        if (ch == '\\' || ch == '%' || ch == '_') {
            out += '\\';
        }
        out += ch;
    }
    return out;
}

std::string upperAscii(std::string text) {
    for (char& ch : text) {
        if (ch >= 'a' && ch <= 'z') {
            ch = static_cast<char>(ch - 'a' + 'A');
        }
    }
    return text;
}

std::int64_t pageLimit(std::size_t limit) {
    return static_cast<std::int64_t>(std::clamp<std::size_t>(limit, 1, kMaxPageSize));
}

std::int64_t pageOffset(std::size_t offset) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return offset > kMax ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(offset);
}

// Characters, not bytes: the trigram index needs 3 of them.
std::size_t utf8Length(const std::string& text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    }));
}

// An FTS5 query for the rows of a trigram index that hold every trigram of
// `text` (each a quoted 3-character string: one token), any case: all rows
// whose column contains `text`, and some more, which the exact LIKE then
// drops. The index alone answers it (detail=none reads no row). Text of
// fewer than 3 characters has no trigram; more than 16 are not needed.
std::string trigramQuery(const std::string& text) {
    std::vector<std::size_t> starts;  // of each UTF-8 character
    for (std::size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
            starts.push_back(i);
        }
    }
    starts.push_back(text.size());
    std::string query;
    for (std::size_t i = 0; i + 3 < starts.size() && i < 16; ++i) {
        std::string trigram = text.substr(starts[i], starts[i + 3] - starts[i]);
        query += query.empty() ? "\"" : " AND \"";
        for (const char ch : trigram) {
            query += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        }
        query += '"';
    }
    return query;
}

// Substring of the CN or the identity. From 3 characters on, the candidates
// come from the trigram index fts_request_text (both columns) and the rows
// still queued for it (schema.cc, kMigrationV5), and the exact LIKE
// decides; shorter text: a scan in id order that stops once the page is
// full (the total still counts them all).
void addRequestText(Search& s, const std::string& text) {
    const std::string pattern = "%" + escapeLike(text) + "%";
    if (utf8Length(text) >= 3) {
        s.add(
            "id IN (SELECT rowid FROM fts_request_text WHERE fts_request_text MATCH ? "
            "UNION ALL SELECT id FROM fts_request_text_queue)");
        s.params.emplace_back(trigramQuery(text));
    }
    s.add("(common_name LIKE ? ESCAPE '\\' OR identity LIKE ? ESCAPE '\\')");
    s.params.emplace_back(pattern);
    s.params.emplace_back(pattern);
}

Search requestSearch(const RequestFilter& f) {
    Search s;
    if (f.status) {
        s.add("status = ?");  // requests_status (status, id)
        s.params.emplace_back(std::string(requestStatusName(*f.status)));
    }
    if (!f.model.empty()) {
        s.add("model = ?");  // requests_model
        s.params.emplace_back(f.model);
    }
    if (!f.mac.empty()) {
        s.add("mac = ?");  // requests_mac
        s.params.emplace_back(f.mac);
    }
    if (!f.text.empty()) {
        addRequestText(s, f.text);
    }
    if (f.since != 0) {
        s.add("created_at >= ?");
        s.params.emplace_back(f.since);
    }
    if (f.until != 0) {
        s.add("created_at < ?");
        s.params.emplace_back(f.until);
    }
    return s;
}

std::string requestCountSql(const Search& s) {
    return "SELECT count(*) FROM requests" + s.where;
}

std::string requestPageSql(const Search& s) {
    return "SELECT " SCEP_REQUEST_COLUMNS " FROM requests" + s.where +
           " ORDER BY id DESC LIMIT ? OFFSET ?";
}

// The serials that start with `prefix`, as a range of the (BINARY) primary
// key: [prefix, prefix with its last byte one higher). A range, not LIKE or
// GLOB with a parameter, so the plan does not depend on the value bound.
// Serials are upper-case hex, and the text is upper-cased: the same matches
// as LIKE 'PREFIX%'.
std::pair<std::string, std::string> prefixRange(const std::string& prefix) {
    std::string high = prefix;
    while (!high.empty() && static_cast<unsigned char>(high.back()) == 0xFF) {
        high.pop_back();
    }
    if (high.empty()) {
        return {prefix, prefix};  // only 0xFF bytes: no hex serial starts with it
    }
    high.back() = static_cast<char>(static_cast<unsigned char>(high.back()) + 1);
    return {prefix, high};
}

// CN substring (any case), serial prefix, or exactly the MAC of the request
// the certificate came from (through requests_mac, once). From 3 characters
// on, each alternative is an index look-up, so SQLite answers the OR as the
// union of three look-ups: the CN through the trigram index certificates_cn
// and its queue (candidates, then the exact LIKE on the row), the serial as
// a prefix range of its primary key, the MAC through requests_mac. Shorter
// text matches too much for an index to help: a scan.
void addCertificateText(Search& s, const std::string& text) {
    const std::string upper = upperAscii(text);
    if (utf8Length(text) >= 3) {
        s.add(
            "((c.rowid IN (SELECT rowid FROM certificates_cn WHERE certificates_cn MATCH ? "
            "UNION ALL SELECT id FROM certificates_cn_queue) AND "
            "c.common_name LIKE ? ESCAPE '\\') OR (c.serial >= ? AND c.serial < ?) OR "
            "c.request_id IN (SELECT id FROM requests WHERE mac = ?))");
        const auto [low, high] = prefixRange(upper);
        s.params.emplace_back(trigramQuery(text));
        s.params.emplace_back("%" + escapeLike(text) + "%");
        s.params.emplace_back(low);
        s.params.emplace_back(high);
        s.params.emplace_back(upper);
        return;
    }
    s.add(
        "(c.common_name LIKE ? ESCAPE '\\' OR c.serial LIKE ? ESCAPE '\\' OR "
        "c.request_id IN (SELECT id FROM requests WHERE mac = ?))");
    s.params.emplace_back("%" + escapeLike(text) + "%");
    s.params.emplace_back(escapeLike(upper) + "%");
    s.params.emplace_back(upper);
}

// `at` is the filter's `now`, already defaulted.
Search certificateSearch(const CertificateFilter& f, std::int64_t at) {
    Search s;
    if (!f.text.empty()) {
        addCertificateText(s, f.text);
    }
    if (f.state) {
        // certificateState() in SQL (store.h: the one rule; notAfter is
        // inclusive, RFC 5280 4.1.2.5).
        switch (*f.state) {
        case CertificateState::revoked:
            s.add("c.revoked = 1");  // certificates_revoked (partial)
            break;
        case CertificateState::expired:
            s.add("c.revoked = 0 AND c.not_after < ?");
            s.params.emplace_back(at);
            break;
        case CertificateState::valid:
            s.add("c.revoked = 0 AND c.not_after >= ?");
            s.params.emplace_back(at);
            break;
        }
    }
    if (f.expiring_before != 0) {
        // Valid at `at` (certificateState), not_after before the bound.
        s.add("c.revoked = 0 AND c.not_after >= ? AND c.not_after < ?");
        s.params.emplace_back(at);
        s.params.emplace_back(f.expiring_before);
    }
    return s;
}

std::string certificateCountSql(const Search& s) {
    return "SELECT count(*) FROM certificates AS c" + s.where;
}

// The page is chosen from the indexes alone (certificates_validity covers
// the state and expiring filters, certificates_not_before the whole list),
// and only its rows are read: sorting thousands of matches with their DER
// would read them all.
std::string certificatePageSql(const Search& s) {
    return "SELECT " SCEP_CERTIFICATE_COLUMNS_C
           ", coalesce(r.model, ''), coalesce(r.mac, '') "
           "FROM certificates AS c LEFT JOIN requests AS r ON r.id = c.request_id "
           "WHERE c.rowid IN (SELECT c.rowid FROM certificates AS c" +
           s.where +
           " ORDER BY c.not_before DESC, c.serial LIMIT ? OFFSET ?) "
           "ORDER BY c.not_before DESC, c.serial";
}

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
Page<T> SqliteStore::searchPage(const std::string& operation, const Search& search,
                                const std::string& count_sql, const std::string& page_sql,
                                std::size_t limit, std::size_t offset, ReadRow readRow) {
    Page<T> page;
    std::lock_guard<std::mutex> lock(mutex_);
    ReadTransaction snapshot(db_, operation);
    {
        Query q = db_.query(count_sql.c_str(), operation);
        q.bindAll(search.params);
        page.total = q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
    }
    if (page.total == 0) {
        return page;
    }
    Query q = db_.query(page_sql.c_str(), operation);
    const int next = q.bindAll(search.params);
    q.bindInt(next, pageLimit(limit)).bindInt(next + 1, pageOffset(offset));
    page.items = readAll(q, readRow);
    return page;
}

Page<RequestRecord> SqliteStore::findRequests(const RequestFilter& filter) {
    const Search search = requestSearch(filter);
    return searchPage<RequestRecord>("findRequests", search, requestCountSql(search),
                                     requestPageSql(search), filter.limit, filter.offset,
                                     [](Query& q) { return readRequest(q); });
}

Page<CertificateView> SqliteStore::findCertificates(const CertificateFilter& filter) {
    const Search search = certificateSearch(filter, filter.now != 0 ? filter.now : now());
    return searchPage<CertificateView>("findCertificates", search, certificateCountSql(search),
                                       certificatePageSql(search), filter.limit, filter.offset,
                                       [](Query& q) {
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
    // Valid at `from` as certificateState() has it (store.h), expiring before `to`.
    static const char* const sql =
        "SELECT count(*) FROM certificates WHERE revoked = 0 AND not_after >= ?1 AND "
        "not_after < ?2";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = db_.query(sql, operation);
    q.bindInt(1, from).bindInt(2, to);
    return q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
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

// For tests/unit/test_store_search.cc only (it declares them itself; they are not
// part of the Store interface): the exact SQL findRequests/findCertificates
// prepare for a filter, so the test can EXPLAIN QUERY PLAN it.
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);

std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count) {
    const sqlite::Search search = sqlite::requestSearch(filter);
    return count ? sqlite::requestCountSql(search) : sqlite::requestPageSql(search);
}

std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count) {
    const sqlite::Search search = sqlite::certificateSearch(filter, filter.now);
    return count ? sqlite::certificateCountSql(search) : sqlite::certificatePageSql(search);
}

}  // namespace scep
