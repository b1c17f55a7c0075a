// ScepHook::process() on real Kea packets: what the wire will carry.
#include <config.h>

#include <doctest/doctest.h>

#include <dhcp/dhcp4.h>
#include <dhcp/option_string.h>
#include <dhcp/pkt4.h>
#include <stats/stats_mgr.h>

#include "hooks/scep_hook.h"
#include "support.h"

using namespace isc::dhcp;
using scep::hook::Action;
using scep::hook::ScepHook;

namespace {

const std::string kConfig =
    "[[profile]]\nname = \"cisco-9800\"\nvendor-class = [\"DP-9841\", \"CP-8875\"]\n" +
    testsupport::kSeedProfileBody + R"(
[[profile]]
name = "strip"
vendor-class = ["*CP-7821*"]
server = "10.0.0.1"
fingerprint = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD"
conflicts = "strip"

[[profile]]
name = "skip"
vendor-class = ["CP-7841"]
server = "10.0.0.2"
fingerprint = "AABBCCDDEEFF00112233445566778899AABBCCDD"
conflicts = "skip"
)";

ScepHook configured() {
    ScepHook hook;
    hook.configure(scep::parseDhcpConfig(kConfig, "unit.toml"));
    return hook;
}

Pkt4Ptr query(uint8_t type, const std::string& vendor_class) {
    Pkt4Ptr pkt(new Pkt4(type, 1234));
    if (!vendor_class.empty()) {
        pkt->addOption(
            OptionPtr(new OptionString(Option::V4, DHO_VENDOR_CLASS_IDENTIFIER, vendor_class)));
    }
    return pkt;
}

Pkt4Ptr reply(uint8_t type) {
    return Pkt4Ptr(new Pkt4(type, 1234));
}

OptionPtr stringOption(uint16_t code, const std::string& text) {
    return OptionPtr(new Option(Option::V4, code, OptionBuffer(text.begin(), text.end())));
}

std::string text(const OptionPtr& option) {
    return std::string(option->getData().begin(), option->getData().end());
}

// The bytes the packet really puts on the wire for option `code`.
OptionBuffer onWire(Pkt4Ptr pkt, uint16_t code) {
    pkt->pack();
    Pkt4 parsed(static_cast<const uint8_t*>(pkt->getBuffer().getData()),
                pkt->getBuffer().getLength());
    parsed.unpack();
    OptionPtr option = parsed.getOption(code);
    REQUIRE(option);
    OptionBuffer out;
    isc::util::OutputBuffer buf(0);
    option->pack(buf);
    const auto* data = static_cast<const uint8_t*>(buf.getData());
    return OptionBuffer(data + 2, data + buf.getLength());  // strip code and length
}

}  // namespace

TEST_CASE("OFFER and ACK for a configured model carry the guide's option 43 and option 15") {
    const ScepHook hook = configured();
    for (uint8_t type : {DHCPOFFER, DHCPACK}) {
        auto q = query(type == DHCPOFFER ? DHCPDISCOVER : DHCPREQUEST, "CP-8875");
        auto r = reply(type);
        r->addOption(stringOption(DHO_VENDOR_ENCAPSULATED_OPTIONS, "from kea config"));
        const auto decision = ScepHook::process(*hook.snapshot(), *q, *r);
        CHECK(decision.action == Action::decorated);
        CHECK(decision.conflicts.empty());
        const OptionBuffer wire = onWire(r, DHO_VENDOR_ENCAPSULATED_OPTIONS);
        CHECK(scep::toHex(wire) ==
              "0A01010B12687474703A2F2F31302E37392E35372E39310C1412040870625C5B755D73F5925285F8F5FF"
              "5D55AF"
              "0D10443233334343463942393935324131350E01010F0101");
        CHECK(text(r->getOption(DHO_DOMAIN_NAME)) == "example.nl");
    }
}

TEST_CASE("ACK to DHCPINFORM is decorated too") {
    const ScepHook hook = configured();
    auto q = query(DHCPINFORM, "DP-9841");
    auto r = reply(DHCPACK);
    CHECK(ScepHook::process(*hook.snapshot(), *q, *r).action == Action::decorated);
    CHECK(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
}

TEST_CASE("other clients and other message types are left alone") {
    const ScepHook hook = configured();
    {
        auto q = query(DHCPDISCOVER, "MSFT 5.0");
        auto r = reply(DHCPOFFER);
        r->addOption(stringOption(DHO_DOMAIN_NAME, "corp.example"));
        CHECK(ScepHook::process(*hook.snapshot(), *q, *r).action == Action::untouched);
        CHECK_FALSE(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
        CHECK(text(r->getOption(DHO_DOMAIN_NAME)) == "corp.example");
    }
    {
        auto q = query(DHCPDISCOVER, "");
        auto r = reply(DHCPOFFER);
        CHECK(ScepHook::process(*hook.snapshot(), *q, *r).action == Action::untouched);
        CHECK_FALSE(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
    }
    {
        auto q = query(DHCPREQUEST, "CP-8875");
        auto r = reply(DHCPNAK);
        CHECK(ScepHook::process(*hook.snapshot(), *q, *r).action == Action::untouched);
        CHECK_FALSE(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
    }
}

TEST_CASE("a profile without domain keeps Kea's own option 15") {
    const ScepHook hook = configured();
    auto q = query(DHCPDISCOVER, "Cisco Systems, Inc. IP Phone CP-7821");
    auto r = reply(DHCPOFFER);
    r->addOption(stringOption(DHO_DOMAIN_NAME, "corp.example"));
    CHECK(ScepHook::process(*hook.snapshot(), *q, *r).action == Action::decorated);
    CHECK(text(r->getOption(DHO_DOMAIN_NAME)) == "corp.example");
    CHECK(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS)->getData().size() == 2 + 8 + 2 + 20);
}

TEST_CASE("conflicting provisioning options: warn, strip, skip") {
    const ScepHook hook = configured();
    SUBCASE("warn decorates and keeps option 66") {
        auto q = query(DHCPDISCOVER, "CP-8875");
        auto r = reply(DHCPOFFER);
        r->addOption(stringOption(66, "tftp.example"));
        const auto decision = ScepHook::process(*hook.snapshot(), *q, *r);
        CHECK(decision.action == Action::decorated);
        CHECK(decision.conflicts == std::vector<uint16_t>{66});
        CHECK(r->getOption(66));
        CHECK(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
    }
    SUBCASE("strip removes 66 and 150 and decorates") {
        auto q = query(DHCPDISCOVER, "xCP-7821");
        auto r = reply(DHCPOFFER);
        r->addOption(stringOption(66, "tftp.example"));
        r->addOption(stringOption(150, "\x0a\x00\x00\x01"));
        const auto decision = ScepHook::process(*hook.snapshot(), *q, *r);
        CHECK(decision.action == Action::decorated);
        CHECK(decision.conflicts == std::vector<uint16_t>{66, 150});
        CHECK_FALSE(r->getOption(66));
        CHECK_FALSE(r->getOption(150));
        CHECK(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
    }
    SUBCASE("skip leaves the reply as Kea built it") {
        auto q = query(DHCPDISCOVER, "CP-7841");
        auto r = reply(DHCPOFFER);
        r->addOption(stringOption(160, "https://prov.example"));
        const auto decision = ScepHook::process(*hook.snapshot(), *q, *r);
        CHECK(decision.action == Action::skipped);
        CHECK(decision.conflicts == std::vector<uint16_t>{160});
        CHECK(r->getOption(160));
        CHECK_FALSE(r->getOption(DHO_VENDOR_ENCAPSULATED_OPTIONS));
    }
}

TEST_CASE("a failed reconfiguration keeps the previous snapshot") {
    ScepHook hook = configured();
    const auto before = hook.snapshot();
    CHECK_THROWS_AS(hook.configure(scep::parseDhcpConfig("[[profile]]\nname=1\n", "bad.toml")),
                    scep::ConfigError);
    CHECK(hook.snapshot() == before);
}

TEST_CASE("statistics exist per profile from the start and follow reloads") {
    auto& stats = isc::stats::StatsMgr::instance();
    ScepHook hook = configured();
    CHECK(stats.getObservation("scep.cisco-9800.replies-decorated"));
    CHECK(stats.getObservation("scep.skip.replies-skipped"));
    CHECK(stats.getObservation("scep.ambiguous-vendor-class"));
    hook.configure(scep::parseDhcpConfig(
        "[[profile]]\nname=\"only\"\nvendor-class=[\"A\"]\nserver=\"10.0.0.1\"\n"
        "fingerprint=\"" +
            std::string(40, 'a') + "\"\n",
        "next.toml"));
    CHECK(stats.getObservation("scep.only.conflicts"));
    CHECK_FALSE(stats.getObservation("scep.cisco-9800.replies-decorated"));
}

TEST_CASE("describe() masks the challenge everywhere") {
    const ScepHook hook = configured();
    const std::string listing = ScepHook::describe(*hook.snapshot())->str();
    CHECK(listing.find("D233CCF9B9952A15") == std::string::npos);
    CHECK(listing.find("4432333343434639") == std::string::npos);
    CHECK(listing.find("\"challenge\": \"********\"") != std::string::npos);
    CHECK(listing.find("0D10********************************") != std::string::npos);
    CHECK(listing.find("\"cisco-9800\"") != std::string::npos);
}
