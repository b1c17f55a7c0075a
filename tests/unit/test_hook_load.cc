// The built libdhcp_scep.so loaded through Kea's HooksManager with its
// parameters, as Kea's own libloadtests do: the process it may run in, the
// configurations it accepts, the callouts it registers, and its pkt4_send
// callout run through a real CalloutHandle on real packets. No network.
#include <config.h>

#include <doctest/doctest.h>

#include <cc/command_interpreter.h>
#include <cc/data.h>
#include <dhcp/dhcp4.h>
#include <dhcp/option_string.h>
#include <dhcp/pkt4.h>
#include <hooks/callout_handle.h>
#include <hooks/hooks_manager.h>
#include <hooks/server_hooks.h>
#include <log/logger_support.h>
#include <log/message_dictionary.h>
#include <process/daemon.h>

#include "common/fingerprint.h"
#include "support.h"

#ifndef SCEP_HOOK_SO
#error "meson passes SCEP_HOOK_SO, the path of the built libdhcp_scep.so"
#endif

using namespace isc::dhcp;
using namespace isc::hooks;
using isc::data::Element;
using isc::data::ElementPtr;
using isc::process::Daemon;

namespace {

const std::string kConfig = "[[profile]]\nname = \"cisco-9800\"\nvendor-class = [\"CP-8875\"]\n" +
                            testsupport::kSeedProfileBody;

// The phone guide's worked example: option 43 as the wire carries it.
const std::string kSeedOption43 =
    "0A01010B12687474703A2F2F31302E37392E35372E39310C1412040870625C5B755D73F5925285F8F5FF5D55AF"
    "0D10443233334343463942393935324131350E01010F0101";

// Kea's logging and the hook point kea-dhcp4 itself registers, once per run.
void prepareKea() {
    if (!isc::log::isLoggingInitialized()) {
        isc::log::initLogger("unit-hook-load", isc::log::WARN);
    }
    if (ServerHooks::getServerHooks().findIndex("pkt4_send") < 0) {
        HooksManager::registerHook("pkt4_send");
    }
}

// Loads the built library as `process` would, with `parameters`; the
// fixture unloads it again so every test starts from nothing.
class LoadedHook {
public:
    LoadedHook() { prepareKea(); }
    ~LoadedHook() {
        HooksManager::prepareUnloadLibraries();
        HooksManager::unloadLibraries();
        Daemon::setProcName("");
    }

    bool load(const std::string& process, ElementPtr parameters) {
        Daemon::setProcName(process);
        HookLibsCollection libraries;
        libraries.emplace_back(SCEP_HOOK_SO, parameters);
        return HooksManager::loadLibraries(libraries);
    }

    bool load(const std::string& process, const std::string& toml_path) {
        ElementPtr parameters = Element::createMap();
        parameters->set("config", Element::create(toml_path));
        return load(process, parameters);
    }
};

OptionPtr vendorClass(const std::string& text) {
    return OptionPtr(new OptionString(Option::V4, DHO_VENDOR_CLASS_IDENTIFIER, text));
}

// Option `code` of `pkt` as the wire carries it, without code and length.
std::string wireHex(const Pkt4Ptr& pkt, uint16_t code) {
    pkt->pack();
    Pkt4 parsed(static_cast<const uint8_t*>(pkt->getBuffer().getData()),
                pkt->getBuffer().getLength());
    parsed.unpack();
    const OptionPtr option = parsed.getOption(code);
    if (!option) {
        return "(absent)";
    }
    isc::util::OutputBuffer buf(0);
    option->pack(buf);
    const auto* data = static_cast<const uint8_t*>(buf.getData());
    return scep::toHex(scep::Bytes(data + 2, data + buf.getLength()));
}

// Runs every pkt4_send callout on a DISCOVER carrying option 60 `vendor`
// and returns the OFFER they leave.
Pkt4Ptr offerFor(const std::string& vendor) {
    Pkt4Ptr query(new Pkt4(DHCPDISCOVER, 1234));
    query->addOption(vendorClass(vendor));
    Pkt4Ptr response(new Pkt4(DHCPOFFER, 1234));
    CalloutHandlePtr handle = HooksManager::createCalloutHandle();
    handle->setArgument("query4", query);
    handle->setArgument("response4", response);
    HooksManager::callCallouts(ServerHooks::getServerHooks().getIndex("pkt4_send"), *handle);
    return response;
}

// Sends `command` to the library's command handler; returns Kea's answer.
isc::data::ConstElementPtr command(const std::string& name) {
    CalloutHandlePtr handle = HooksManager::createCalloutHandle();
    handle->setArgument("command", isc::config::createCommand(name));
    HooksManager::callCommandHandlers(name, *handle);
    isc::data::ConstElementPtr answer;
    handle->getArgument("response", answer);
    return answer;
}

}  // namespace

TEST_CASE("the hook loads in kea-dhcp4 and registers its callouts and messages") {
    testsupport::TempDir dir;
    LoadedHook hook;
    REQUIRE(hook.load("kea-dhcp4", dir.write("scep.toml", kConfig)));
    CHECK(HooksManager::getLibraryNames() == std::vector<std::string>{SCEP_HOOK_SO});
    CHECK(HooksManager::calloutsPresent(ServerHooks::getServerHooks().getIndex("pkt4_send")));
    CHECK(HooksManager::commandHandlersPresent("scep-profiles-get"));
    CHECK(HooksManager::commandHandlersPresent("scep-reload"));
    // The generated table reached Kea's dictionary when the library opened.
    const auto dictionary = isc::log::MessageDictionary::globalDictionary();
    CHECK(dictionary->getText("SCEP_LOAD_OK") == "loaded %1 SCEP profile(s) from %2");
    CHECK(dictionary->getText("SCEP_UNLOADED") == "SCEP hook unloaded");

    const auto answer = command("scep-profiles-get");
    REQUIRE(answer);
    CHECK(answer->get("result")->intValue() == isc::config::CONTROL_RESULT_SUCCESS);
    const auto arguments = answer->get("arguments");
    REQUIRE(arguments);
    const auto profiles = arguments->get("profiles");
    REQUIRE(profiles);
    REQUIRE(profiles->size() == 1);
    CHECK(profiles->get(0)->get("name")->stringValue() == "cisco-9800");
}

TEST_CASE("pkt4_send through a real CalloutHandle puts option 43 in the reply") {
    testsupport::TempDir dir;
    LoadedHook hook;
    REQUIRE(hook.load("kea-dhcp4", dir.write("scep.toml", kConfig)));
    const Pkt4Ptr offer = offerFor("CP-8875");
    CHECK(wireHex(offer, DHO_VENDOR_ENCAPSULATED_OPTIONS) == kSeedOption43);
    CHECK(wireHex(offer, DHO_DOMAIN_NAME) == "6578616D706C652E6E6C");  // example.nl

    const Pkt4Ptr other = offerFor("SomeOtherVendor");
    CHECK(wireHex(other, DHO_VENDOR_ENCAPSULATED_OPTIONS) == "(absent)");
}

TEST_CASE("the hook refuses every process but kea-dhcp4") {
    testsupport::TempDir dir;
    const std::string path = dir.write("scep.toml", kConfig);
    for (const char* process : {"kea-dhcp6", "kea-ctrl-agent", "kea-dhcp-ddns", "bogus", ""}) {
        CAPTURE(process);
        LoadedHook hook;
        CHECK_FALSE(hook.load(process, path));
        CHECK(HooksManager::getLibraryNames().empty());
        CHECK_FALSE(HooksManager::commandHandlersPresent("scep-reload"));
    }
    LoadedHook hook;
    CHECK(hook.load("kea-dhcp4", path));
}

TEST_CASE("an invalid configuration is refused as a whole") {
    testsupport::TempDir dir;
    SUBCASE("a profile missing its fingerprint") {
        LoadedHook hook;
        const std::string bad =
            "[[profile]]\nname = \"p\"\nvendor-class = [\"CP-8875\"]\n"
            "server = \"http://10.0.0.1\"\n";
        CHECK_FALSE(hook.load("kea-dhcp4", dir.write("bad.toml", bad)));
        CHECK(HooksManager::getLibraryNames().empty());
    }
    SUBCASE("a file that does not exist") {
        LoadedHook hook;
        CHECK_FALSE(hook.load("kea-dhcp4", dir.file("missing.toml")));
    }
    SUBCASE("no config parameter") {
        LoadedHook hook;
        CHECK_FALSE(hook.load("kea-dhcp4", Element::createMap()));
    }
    SUBCASE("a config parameter that is not a string") {
        LoadedHook hook;
        ElementPtr parameters = Element::createMap();
        parameters->set("config", Element::create(42));
        CHECK_FALSE(hook.load("kea-dhcp4", parameters));
        CHECK_FALSE(
            HooksManager::calloutsPresent(ServerHooks::getServerHooks().getIndex("pkt4_send")));
    }
}
