// Vendor-class patterns: the overlap check config validation relies on
// (commonVendorClass) against the matcher the hook runs on option 60. A
// shared string must match both patterns and be no longer than any other
// string that does; without one, no string may match both. Hostile option
// 60 values through the index must resolve to a profile whose pattern
// really matches.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/vendor_class.h"
#include "fuzz/fuzz_support.h"

using namespace scep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    // Config entries may hold 255 bytes (unit-tested); the search's states
    // grow with the product of the lengths, and short patterns already
    // combine stars and literals every way.
    const std::string a = input.ConsumeRandomLengthString(48);
    const std::string b = input.ConsumeRandomLengthString(48);
    const std::string text = input.ConsumeRemainingBytesAsString();

    const auto common = commonVendorClass(a, b);
    const auto reverse = commonVendorClass(b, a);
    fuzz::require(
        common.has_value() == reverse.has_value() && (!common || common->size() == reverse->size()),
        "overlap is symmetric, with the same shortest length");
    const bool both = wildcardMatch(a, text) && wildcardMatch(b, text);
    if (common) {
        fuzz::require(wildcardMatch(a, *common) && wildcardMatch(b, *common),
                      "the shared string matches both patterns");
        fuzz::require(!both || common->size() <= text.size(), "the shared string is shortest");
    } else {
        fuzz::require(!both, "no string matches two disjoint patterns");
    }

    VendorClassIndex index;
    index.add(a, 0);
    index.add(b, 1);
    const std::string_view option60 = trimVendorClass(text);
    const std::size_t found = index.find(option60);
    if (found == 0 || found == 1) {
        const std::string& pattern = found == 0 ? a : b;
        fuzz::require(wildcardMatch(pattern, option60), "the index's profile matches");
    } else if (found == VendorClassIndex::ambiguous) {
        fuzz::require(
            common.has_value() && wildcardMatch(a, option60) && wildcardMatch(b, option60),
            "only a string both patterns match is ambiguous");
    } else {
        fuzz::require(!wildcardMatch(a, option60) && !wildcardMatch(b, option60),
                      "nothing found means no pattern matches");
    }
    return 0;
}
