// The SQL of the admin API's searches (search_sql.h).
//
// The search's WHERE clause is assembled from the constant fragments below,
// one per filter that is set, so every combination is a plain conjunction
// the planner can match against an index ("?1 IS NULL OR status = ?1" could
// not use one). Each shape is prepared once and cached like any other
// statement: at most 2^6 request and 2^4 certificate shapes, times
// count/page. Values are only ever bound as parameters.
//
// A text search is different: its matches are found in the order of the
// rows' ids, newest first, so that a page is the first matches found and
// the count stops kTextSearchCountAhead matches past the page (store.h).
// Sorting or counting all of them would check every candidate in its row:
// at a million certificates, the 200,000 of one phone model took 1.7 s.

#include "ra/store/sqlite/search_sql.h"

#include <algorithm>
#include <initializer_list>
#include <limits>

#include "ra/store/sqlite/rows.h"

namespace scep {
namespace sqlite {

namespace {

constexpr std::size_t kMaxPageSize = 500;

// The filters of a search: conditions joined by AND, and their parameters.
struct Search {
    std::vector<const char*> conditions;
    std::vector<Param> params;  // one per '?' in the conditions, in order

    void add(const char* condition) { conditions.push_back(condition); }
    // " WHERE a AND b", or "" without conditions; `lead` " AND " instead
    // continues a WHERE of the caller's.
    std::string where(const char* lead = " WHERE ") const {
        std::string out;
        for (const char* condition : conditions) {
            out += out.empty() ? lead : " AND ";
            out += condition;
        }
        return out;
    }
};

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

// The row ids of a text search, newest first: a compound SELECT whose
// arms each yield their ids in descending order without sorting them (an
// FTS5 table walks its rowids backwards, a table its rowid), so that
// "ORDER BY 1 DESC LIMIT n" merges them and stops after n, and a count
// with a LIMIT stops too. Every arm carries the search's other filters.
struct Arms {
    std::string sql;
    std::vector<Param> params;

    void add(const std::string& select, std::initializer_list<Param> own, const Search& filters) {
        sql += sql.empty() ? "" : " UNION ALL ";
        sql += select + filters.where(" AND ");
        params.insert(params.end(), own);
        params.insert(params.end(), filters.params.begin(), filters.params.end());
    }

    // The page: `page_head` ends in "IN (", `page_tail` orders the rows.
    SearchSql searchSql(const std::string& page_head, const std::string& page_tail) const {
        return {"SELECT count(*) FROM (" + sql + " LIMIT ?)",
                page_head + sql + " ORDER BY 1 DESC LIMIT ? OFFSET ?)" + page_tail, params, true};
    }
};

// Requests with every filter but the text, as conditions on `r`.
Search requestFilters(const RequestFilter& f) {
    Search s;
    if (f.status) {
        s.add("r.status = ?");  // requests_status (status, id)
        s.params.emplace_back(std::string(requestStatusName(*f.status)));
    }
    if (!f.model.empty()) {
        s.add("r.model = ?");  // requests_model
        s.params.emplace_back(f.model);
    }
    if (!f.mac.empty()) {
        s.add("r.mac = ?");  // requests_mac
        s.params.emplace_back(f.mac);
    }
    if (f.since != 0) {
        s.add("r.created_at >= ?");
        s.params.emplace_back(f.since);
    }
    if (f.until != 0) {
        s.add("r.created_at < ?");
        s.params.emplace_back(f.until);
    }
    return s;
}

constexpr const char* kRequestText =
    "(r.common_name LIKE ? ESCAPE '\\' OR r.identity LIKE ? ESCAPE '\\')";

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

// Certificates with every filter but the text, as conditions on `c`. `at`
// is the filter's `now`, already defaulted.
Search certificateFilters(const CertificateFilter& f, std::int64_t at) {
    Search s;
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

constexpr const char* kCertificatePageHead =
    "SELECT " SCEP_CERTIFICATE_COLUMNS_C
    ", coalesce(r.model, ''), coalesce(r.mac, '') "
    "FROM certificates AS c LEFT JOIN requests AS r ON r.id = c.request_id "
    "WHERE c.rowid IN (";

}  // namespace

std::int64_t pageLimit(std::size_t limit) {
    return static_cast<std::int64_t>(std::clamp<std::size_t>(limit, 1, kMaxPageSize));
}

std::int64_t pageOffset(std::size_t offset) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return offset > kMax ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(offset);
}

SearchSql requestSearchSql(const RequestFilter& f) {
    Search filters = requestFilters(f);
    const std::string pattern = "%" + escapeLike(f.text) + "%";
    if (f.text.empty() || !f.mac.empty()) {
        // A MAC picks a handful of rows through requests_mac: the text is
        // one more condition on them, and the count is exact.
        if (!f.text.empty()) {
            filters.add(kRequestText);
            filters.params.emplace_back(pattern);
            filters.params.emplace_back(pattern);
        }
        const std::string where = filters.where();
        return {"SELECT count(*) FROM requests AS r" + where,
                "SELECT " SCEP_REQUEST_COLUMNS " FROM requests AS r" + where +
                    " ORDER BY r.id DESC LIMIT ? OFFSET ?",
                filters.params, false};
    }
    // The CN or the identity holds the text. From 3 characters on, the
    // candidates are those of the trigram index fts_request_text (both
    // columns) and the rows still queued for it (schema.cc, kMigrationV5),
    // the exact LIKE deciding; shorter text: every row.
    Arms arms;
    const std::string text = std::string(" WHERE ") + kRequestText;
    if (utf8Length(f.text) >= 3) {
        arms.add(
            "SELECT f.rowid FROM fts_request_text AS f CROSS JOIN requests AS r ON r.id = f.rowid "
            "WHERE fts_request_text MATCH ? AND " +
                std::string(kRequestText),
            {trigramQuery(f.text), pattern, pattern}, filters);
        arms.add(
            "SELECT q.id FROM fts_request_text_queue AS q CROSS JOIN requests AS r "
            "ON r.id = q.id" +
                text,
            {pattern, pattern}, filters);
    } else {
        arms.add("SELECT r.id FROM requests AS r" + text, {pattern, pattern}, filters);
    }
    return arms.searchSql("SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE id IN (",
                          " ORDER BY id DESC");
}

// Without text, the page is chosen from the indexes alone
// (certificates_validity covers the state and expiring filters,
// certificates_not_before the whole list), and only its rows are read:
// sorting thousands of matches with their DER would read them all.
//
// With text: the CN holds it (any case), the serial starts with it, or it
// is exactly the MAC of the request the certificate came from. From 3
// characters on, the arms are the CN through the trigram index
// certificates_cn and its queue (candidates, the exact LIKE deciding), the
// serial as a prefix range of its primary key, and the MAC through
// requests_mac; each arm leaves out what an earlier one matched, so a
// certificate is counted once. Shorter text matches too much for an index
// to help: every row, newest first.
SearchSql certificateSearchSql(const CertificateFilter& f, std::int64_t at) {
    const Search filters = certificateFilters(f, at);
    if (f.text.empty()) {
        const std::string where = filters.where();
        return {"SELECT count(*) FROM certificates AS c" + where,
                kCertificatePageHead + std::string("SELECT c.rowid FROM certificates AS c") +
                    where +
                    " ORDER BY c.not_before DESC, c.serial LIMIT ? OFFSET ?) "
                    "ORDER BY c.not_before DESC, c.serial",
                filters.params, false};
    }
    const std::string upper = upperAscii(f.text);
    const std::string pattern = "%" + escapeLike(f.text) + "%";
    Arms arms;
    if (utf8Length(f.text) >= 3) {
        const auto [low, high] = prefixRange(upper);
        arms.add(
            "SELECT f.rowid FROM certificates_cn AS f CROSS JOIN certificates AS c "
            "ON c.rowid = f.rowid WHERE certificates_cn MATCH ? AND "
            "c.common_name LIKE ? ESCAPE '\\'",
            {trigramQuery(f.text), pattern}, filters);
        arms.add(
            "SELECT q.id FROM certificates_cn_queue AS q CROSS JOIN certificates AS c "
            "ON c.rowid = q.id WHERE c.common_name LIKE ? ESCAPE '\\'",
            {pattern}, filters);
        arms.add(
            "SELECT c.rowid FROM certificates AS c WHERE c.serial >= ? AND c.serial < ? AND "
            "NOT (c.common_name LIKE ? ESCAPE '\\')",
            {low, high, pattern}, filters);
        arms.add(
            "SELECT c.rowid FROM certificates AS c "
            "WHERE c.request_id IN (SELECT id FROM requests WHERE mac = ?) AND "
            "NOT (c.common_name LIKE ? ESCAPE '\\') AND NOT (c.serial >= ? AND c.serial < ?)",
            {upper, pattern, low, high}, filters);
    } else {
        arms.add(
            "SELECT c.rowid FROM certificates AS c WHERE (c.common_name LIKE ? ESCAPE '\\' OR "
            "c.serial LIKE ? ESCAPE '\\' OR "
            "c.request_id IN (SELECT id FROM requests WHERE mac = ?))",
            {pattern, escapeLike(upper) + "%", upper}, filters);
    }
    return arms.searchSql(kCertificatePageHead, " ORDER BY c.rowid DESC");
}

}  // namespace sqlite

// For tests/unit/test_store_search.cc only (it declares them itself; they are not
// part of the Store interface): the exact SQL findRequests/findCertificates
// prepare for a filter, so the test can EXPLAIN QUERY PLAN it.
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);

std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count) {
    const sqlite::SearchSql sql = sqlite::requestSearchSql(filter);
    return count ? sql.count : sql.page;
}

std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count) {
    const sqlite::SearchSql sql = sqlite::certificateSearchSql(filter, filter.now);
    return count ? sql.count : sql.page;
}

}  // namespace scep
