// The SQL of the admin API's searches: what findRequests and
// findCertificates (search.cc) prepare for a filter. Assembled from
// constant fragments; values only ever bound as parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ra/store/sqlite/db.h"
#include "ra/store/store.h"

namespace scep {
namespace sqlite {

// The SQL of one search: the count, and the page (its last two parameters
// LIMIT and OFFSET), both after `params`. A text search's count ends in
// LIMIT ? too (counts_ahead).
struct SearchSql {
    std::string count;
    std::string page;
    std::vector<Param> params;
    bool counts_ahead = false;
};

SearchSql requestSearchSql(const RequestFilter& filter);
// `at` is the filter's `now`, already defaulted.
SearchSql certificateSearchSql(const CertificateFilter& filter, std::int64_t at);

// LIMIT and OFFSET of a page: limit clamped to 1..500, offset to int64.
std::int64_t pageLimit(std::size_t limit);
std::int64_t pageOffset(std::size_t offset);

}  // namespace sqlite
}  // namespace scep
