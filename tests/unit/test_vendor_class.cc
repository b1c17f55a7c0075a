#include <doctest/doctest.h>

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

TEST_CASE("shared vendor classes are found from each pattern's literal form") {
    CHECK(sharedVendorClass("CP-8875", "CP-8875") == "CP-8875");
    CHECK(sharedVendorClass("CP-8875", "DP-9841").empty());
    CHECK(sharedVendorClass("*CP-8875*", "Cisco IP Phone CP-8875") == "Cisco IP Phone CP-8875");
    CHECK(sharedVendorClass("*8875*", "*CP-8875*") == "CP-8875");
    CHECK(sharedVendorClass("*", "anything") == "anything");
    CHECK(sharedVendorClass("*CP-8875*", "*DP-9841*").empty());
    CHECK(sharedVendorClass("A*", "B*").empty());
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
