// Reference hooks for bench/callgrind-option43.sh: NOT the product, only
// yardsticks that tell how much of the SCEP hook's cost is Kea's and how
// much is the hook's own.
//
//   REF_HOOK_MODE 0  empty pkt4_send callout: what Kea pays for calling any
//                    pkt4_send callout at all
//   REF_HOOK_MODE 1  the least a hook can do to send the same bytes: option
//                    43 and 15 built once in load() and the same OptionPtrs
//                    added to every OFFER/ACK whose query has option 60 (no
//                    profile match, no conflict check, no statistics)
//
// Parameters (mode 1): "option-43" (hex) and "domain".
#include <config.h>

#include <string>

#include <cc/data.h>
#include <dhcp/dhcp4.h>
#include <dhcp/option.h>
#include <dhcp/pkt4.h>
#include <hooks/hooks.h>

using namespace isc::hooks;
using namespace isc::dhcp;

namespace {
OptionPtr option43;
OptionPtr option15;
}  // namespace

extern "C" {

int version() {
    return KEA_HOOKS_VERSION;
}

int multi_threading_compatible() {
    return 1;
}

int load(LibraryHandle& handle) {
#if REF_HOOK_MODE == 1
    auto hex = handle.getParameter("option-43");
    auto domain = handle.getParameter("domain");
    if (!hex || !domain) {
        return 1;
    }
    OptionBuffer bytes;
    const std::string text = hex->stringValue();
    for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
        bytes.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
    }
    option43.reset(new Option(Option::V4, DHO_VENDOR_ENCAPSULATED_OPTIONS, bytes));
    const std::string name = domain->stringValue();
    option15.reset(new Option(Option::V4, DHO_DOMAIN_NAME, OptionBuffer(name.begin(), name.end())));
#else
    (void)handle;
#endif
    return 0;
}

int unload() {
    option43.reset();
    option15.reset();
    return 0;
}

int pkt4_send(CalloutHandle& handle) {
#if REF_HOOK_MODE == 1
    Pkt4Ptr query;
    Pkt4Ptr response;
    handle.getArgument("query4", query);
    handle.getArgument("response4", response);
    const uint8_t type = response->getType();
    if (type != DHCPOFFER && type != DHCPACK) {
        return 0;
    }
    // options_ is public: reading it does not clone the option the way
    // getOption() does while Kea runs callouts.
    if (query->options_.find(DHO_VENDOR_CLASS_IDENTIFIER) == query->options_.end()) {
        return 0;
    }
    while (response->delOption(DHO_VENDOR_ENCAPSULATED_OPTIONS)) {
    }
    response->addOption(option43);
    while (response->delOption(DHO_DOMAIN_NAME)) {
    }
    response->addOption(option15);
#else
    (void)handle;
#endif
    return 0;
}

}  // extern "C"
