#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/vendor_class.h"

using namespace scep;

TEST_CASE("wildcard matching") {
    CHECK(wildcardMatch("CP-8875", "CP-8875"));
    CHECK_FALSE(wildcardMatch("CP-8875", "CP-88750"));
    CHECK_FALSE(wildcardMatch("CP-8875", "cp-8875"));
    CHECK(wildcardMatch("*CP-8875*", "Cisco Systems, Inc. IP Phone CP-8875"));
    CHECK(wildcardMatch("*CP-8875*", "CP-8875"));
    CHECK(wildcardMatch("Cisco*88*", "Cisco Systems CP-8875"));
    CHECK_FALSE(wildcardMatch("*CP-8875", "CP-8875 rev2"));
    CHECK(wildcardMatch("*", ""));
    CHECK(wildcardMatch("a*b*c", "aXXbYYbc"));
    CHECK_FALSE(wildcardMatch("a*b*c", "aXXbYYb"));
    // Pathological input stays cheap and correct.
    CHECK_FALSE(wildcardMatch("*a*a*a*a*a*b", std::string(4000, 'a')));
}

namespace {

// The witness must really be shared, and as short as `length`.
void checkCommon(std::string_view a, std::string_view b, std::size_t length) {
    CAPTURE(a);
    CAPTURE(b);
    const auto common = commonVendorClass(a, b);
    REQUIRE(common);
    CAPTURE(*common);
    CHECK(wildcardMatch(a, *common));
    CHECK(wildcardMatch(b, *common));
    CHECK(common->size() == length);
    CHECK(commonVendorClass(b, a)->size() == length);  // symmetric
}

void checkDisjoint(std::string_view a, std::string_view b) {
    CAPTURE(a);
    CAPTURE(b);
    CHECK_FALSE(commonVendorClass(a, b));
    CHECK_FALSE(commonVendorClass(b, a));
}

}  // namespace

TEST_CASE("overlapping infix wildcards are found with their shortest shared string") {
    // The case: the old literal-form heuristic accepted these two.
    checkCommon("*CP-*", "*8875*", 7);  // "CP-8875" or "8875CP-"
    CHECK(wildcardMatch("*CP-*", "Cisco Systems, Inc. IP Phone CP-8875"));
    CHECK(wildcardMatch("*8875*", "Cisco Systems, Inc. IP Phone CP-8875"));
    checkCommon("*8875*", "*CP-8875*", 7);
    CHECK(*commonVendorClass("*8875*", "*CP-8875*") == "CP-8875");
    // Two infix wildcards always overlap: their literals side by side.
    checkCommon("*CP-8875*", "*DP-9841*", 14);
}

TEST_CASE("exact entries are patterns too") {
    checkCommon("CP-8875", "CP-8875", 7);
    CHECK(*commonVendorClass("CP-8875", "CP-8875") == "CP-8875");
    checkDisjoint("CP-8875", "DP-9841");
    checkDisjoint("CP-8875", "CP-88750");
    checkDisjoint("CP-8875", "cp-8875");  // case-sensitive, like matching
    CHECK(*commonVendorClass("*CP-8875*", "Cisco IP Phone CP-8875") == "Cisco IP Phone CP-8875");
    CHECK(*commonVendorClass("Cisco*", "Cisco") == "Cisco");
    checkDisjoint("*CP-8875*", "Cisco IP Phone DP-9841");
}

TEST_CASE("per-model suffix and prefix patterns are disjoint") {
    checkDisjoint("*CP-8875", "*DP-9841");
    checkDisjoint("*CP-8875", "*CP-8875 rev2");
    checkDisjoint("A*", "B*");
    checkDisjoint("Cisco*CP-8875", "Cisco*DP-9841");
    checkDisjoint("A*B", "A*C");
    // A suffix inside the other is not disjoint.
    checkCommon("*CP-8875", "*-8875", 7);
}

TEST_CASE("a prefix pattern meets a suffix pattern") {
    checkCommon("Cisco*", "*CP-8875", 12);  // "CiscoCP-8875"
    checkCommon("CP-*", "*-8875", 7);       // sharing the '-': "CP-8875"
    CHECK(*commonVendorClass("CP-*", "*-8875") == "CP-8875");
    checkCommon("CP-8*", "*8875", 7);  // overlapping, not "CP-88875"
    CHECK(*commonVendorClass("CP-8*", "*8875") == "CP-8875");
}

TEST_CASE("'*' matches the empty run") {
    checkCommon("CP-8875*", "*CP-8875", 7);
    checkCommon("**", "*x", 1);
    checkCommon("*", "anything", 8);
    CHECK(*commonVendorClass("*", "*") == "");  // only two all-star patterns share ""
    CHECK(*commonVendorClass("**", "***") == "");
    checkCommon("a*b", "ab", 2);
    checkDisjoint("a*b", "a");
}

TEST_CASE("overlap search agrees with brute force on small patterns") {
    // Every pattern of up to 4 symbols over {a, b, *}, against every other:
    // a shortest shared string reads only literal bytes, so it is at most
    // 8 long, and enumerating all strings over {a, b} up to 8 is exhaustive.
    std::vector<std::string> patterns{""};
    for (std::size_t length = 1; length <= 4; ++length) {
        const std::size_t before = patterns.size();
        for (std::size_t k = 0; k < before; ++k) {
            if (patterns[k].size() == length - 1) {
                for (char c : {'a', 'b', '*'}) {
                    patterns.push_back(patterns[k] + c);
                }
            }
        }
    }
    std::vector<std::string> texts{""};
    for (std::size_t k = 0; k < texts.size(); ++k) {
        if (texts[k].size() < 8) {
            texts.push_back(texts[k] + 'a');
            texts.push_back(texts[k] + 'b');
        }
    }
    std::size_t overlapping = 0, disjoint = 0;
    for (const auto& a : patterns) {
        for (const auto& b : patterns) {
            std::optional<std::size_t> shortest;
            for (const auto& text : texts) {  // texts grow in length
                if (wildcardMatch(a, text) && wildcardMatch(b, text)) {
                    shortest = text.size();
                    break;
                }
            }
            const auto common = commonVendorClass(a, b);
            CAPTURE(a);
            CAPTURE(b);
            REQUIRE(common.has_value() == shortest.has_value());
            if (common) {
                ++overlapping;
                REQUIRE(common->size() == *shortest);
                REQUIRE(wildcardMatch(a, *common));
                REQUIRE(wildcardMatch(b, *common));
            } else {
                ++disjoint;
            }
        }
    }
    CHECK(overlapping > 1000);
    CHECK(disjoint > 1000);
}

TEST_CASE("overlap search stays fast on the longest patterns") {
    const std::string a = "*" + std::string(253, 'a') + "b";
    const std::string b = "*" + std::string(253, 'a') + "c";
    checkDisjoint(a, b);
    checkCommon(std::string(127, '*') + std::string(128, 'a'), "*" + std::string(254, 'a'), 254);
}

TEST_CASE("index finds exact entries first, then wildcards; trailing NULs are ignored") {
    VendorClassIndex index;
    index.add("CP-8875", 0);
    index.add("*DP-98*", 1);
    CHECK(index.find("CP-8875") == 0);
    CHECK(index.find("Cisco DP-9841") == 1);
    CHECK(index.find("CP-7821") == VendorClassIndex::npos);
    CHECK(index.find(trimVendorClass(std::string_view("CP-8875\0\0", 9))) == 0);
}

TEST_CASE("a vendor class matched by wildcards of two profiles is ambiguous, not guessed") {
    VendorClassIndex index;
    index.add("*CP-8875*", 0);
    index.add("*DP-9841*", 1);
    index.add("*CP-8875 rev*", 0);
    CHECK(index.find("Cisco CP-8875") == 0);
    CHECK(index.find("Cisco CP-8875 rev2") == 0);  // two patterns, one profile
    CHECK(index.find("CP-8875 DP-9841") == VendorClassIndex::ambiguous);
}
