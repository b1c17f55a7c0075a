#include <config.h>

#include "hooks/scep_hook.h"

#include <atomic>

#include <dhcp/dhcp4.h>
#include <stats/stats_mgr.h>

namespace scep::hook {

using isc::data::Element;
using isc::data::ElementPtr;
using isc::dhcp::Option;
using isc::dhcp::OptionPtr;
using isc::stats::StatsMgr;
using namespace isc::dhcp;

namespace {

ElementPtr stringList(const std::vector<std::string>& values) {
    ElementPtr list = Element::createList();
    for (const auto& value : values) {
        list->add(Element::create(value));
    }
    return list;
}

// Counters of profiles that exist start at zero so they are visible before
// the first phone; counters of profiles removed by a reload go away.
void syncStatistics(const Snapshot* previous, const Snapshot& next) {
    StatsMgr& stats = StatsMgr::instance();
    if (!stats.getObservation(kAmbiguousStat)) {
        stats.setValue(kAmbiguousStat, static_cast<int64_t>(0));
    }
    for (const auto& names : next.stat_names) {
        for (const std::string* name : {&names.decorated, &names.conflicts, &names.skipped}) {
            if (!stats.getObservation(*name)) {
                stats.setValue(*name, static_cast<int64_t>(0));
            }
        }
    }
    if (!previous) {
        return;
    }
    for (const auto& old : previous->stat_names) {
        bool kept = false;
        for (const auto& names : next.stat_names) {
            kept = kept || names.decorated == old.decorated;
        }
        if (!kept) {
            stats.del(old.decorated);
            stats.del(old.conflicts);
            stats.del(old.skipped);
        }
    }
}

}  // namespace

std::string statName(const std::string& profile, const char* counter) {
    return "scep." + profile + "." + counter;
}

void ScepHook::configure(const std::string& path) {
    DhcpConfig config = loadDhcpConfig(path);
    configure(std::move(config));
    path_ = path;
}

void ScepHook::configure(DhcpConfig config) {
    auto next = std::make_shared<Snapshot>();
    for (const auto& profile : config.profiles) {
        next->stat_names.push_back({statName(profile.name, "replies-decorated"),
                                    statName(profile.name, "conflicts"),
                                    statName(profile.name, "replies-skipped")});
        PreparedOptions prepared;
        prepared.option43.reset(
            new Option(Option::V4, DHO_VENDOR_ENCAPSULATED_OPTIONS, profile.option43));
        if (profile.domain) {
            prepared.option15.reset(
                new Option(Option::V4, DHO_DOMAIN_NAME,
                           OptionBuffer(profile.domain->begin(), profile.domain->end())));
        }
        next->options.push_back(std::move(prepared));
    }
    next->config = std::move(config);
    const SnapshotPtr previous = snapshot();
    syncStatistics(previous.get(), *next);
    std::atomic_store(&snapshot_, SnapshotPtr(std::move(next)));
}

void ScepHook::reload() {
    configure(path_);
}

SnapshotPtr ScepHook::snapshot() const {
    return std::atomic_load(&snapshot_);
}

Decision ScepHook::process(const Snapshot& snapshot, const isc::dhcp::Pkt4& query,
                           isc::dhcp::Pkt4& response) {
    Decision decision;
    const std::uint8_t type = response.getType();
    if (type != DHCPOFFER && type != DHCPACK) {
        return decision;
    }
    const auto vendor_class = query.options_.find(DHO_VENDOR_CLASS_IDENTIFIER);
    if (vendor_class == query.options_.end()) {
        return decision;
    }
    const auto& raw = vendor_class->second->getData();
    const ProfileMatch match = snapshot.config.match(
        std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
    if (match.ambiguous) {
        decision.action = Action::ambiguous;
        return decision;
    }
    const Profile* profile = match.profile;
    if (!profile) {
        return decision;
    }
    decision.profile = static_cast<std::size_t>(profile - snapshot.config.profiles.data());

    for (const std::uint16_t code : kConflictingOptions) {
        if (response.options_.count(code) != 0) {
            decision.conflicts.push_back(code);
        }
    }
    if (!decision.conflicts.empty()) {
        if (profile->conflicts == ConflictPolicy::skip) {
            decision.action = Action::skipped;
            return decision;
        }
        if (profile->conflicts == ConflictPolicy::strip) {
            for (const std::uint16_t code : decision.conflicts) {
                while (response.delOption(code)) {
                }
            }
        }
    }

    const PreparedOptions& prepared = snapshot.options[decision.profile];
    while (response.delOption(DHO_VENDOR_ENCAPSULATED_OPTIONS)) {
    }
    response.addOption(prepared.option43);
    if (prepared.option15) {
        while (response.delOption(DHO_DOMAIN_NAME)) {
        }
        response.addOption(prepared.option15);
    }
    decision.action = Action::decorated;
    return decision;
}

ElementPtr ScepHook::describe(const Snapshot& snapshot) {
    ElementPtr profiles = Element::createList();
    for (const auto& profile : snapshot.config.profiles) {
        ElementPtr entry = Element::createMap();
        entry->set("name", Element::create(profile.name));
        entry->set("vendor-class", stringList(profile.vendor_classes));
        entry->set("server", Element::create(profile.scep.server));
        entry->set("fingerprint", Element::create(toHex(profile.scep.fingerprint)));
        if (!profile.ca_cert.empty()) {
            entry->set("ca-cert", Element::create(profile.ca_cert));
        }
        if (profile.scep.challenge) {
            entry->set("challenge", Element::create(std::string("********")));
        }
        if (profile.scep.fips) {
            entry->set("fips", Element::create(*profile.scep.fips));
        }
        if (profile.scep.dot1x) {
            entry->set("dot1x", Element::create(*profile.scep.dot1x));
        }
        if (profile.scep.cert_select) {
            entry->set(
                "cert-select",
                Element::create(std::string(
                    *profile.scep.cert_select == CertSelect::custom ? "custom" : "manufacturing")));
        }
        if (profile.domain) {
            entry->set("domain", Element::create(*profile.domain));
        }
        entry->set("conflicts",
                   Element::create(std::string(conflictPolicyName(profile.conflicts))));
        entry->set("option-43", Element::create(maskedOption43Hex(profile.option43)));
        entry->set("option-43-length",
                   Element::create(static_cast<int64_t>(profile.option43.size())));
        profiles->add(entry);
    }
    ElementPtr out = Element::createMap();
    out->set("config-file", Element::create(snapshot.config.path));
    out->set("profiles", profiles);
    return out;
}

}  // namespace scep::hook
