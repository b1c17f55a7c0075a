// Kea's entry points. Each one is thin: it adapts Kea's handles to ScepHook,
// catches everything (an exception must never reach Kea's packet loop) and
// logs.
#include <config.h>

#include <memory>
#include <sstream>

#include <cc/command_interpreter.h>
#include <dhcp/pkt4.h>
#include <exceptions/exceptions.h>
#include <hooks/hooks.h>
#include <process/daemon.h>
#include <stats/stats_mgr.h>

#include "common/text.h"
#include "hooks/scep_hook.h"
#include "hooks/scep_log.h"

using namespace isc::hooks;
using isc::config::createAnswer;
using isc::data::ConstElementPtr;
using isc::data::Element;
using isc::dhcp::DHO_VENDOR_CLASS_IDENTIFIER;
using isc::dhcp::Pkt4Ptr;
using scep::hook::Action;
using scep::hook::scep_logger;

namespace {

std::unique_ptr<scep::hook::ScepHook> impl;

std::string codeList(const std::vector<std::uint16_t>& codes) {
    std::string out;
    for (const auto code : codes) {
        out += (out.empty() ? "" : ",") + std::to_string(code);
    }
    return out;
}

// The profile's vendor-class entries, comma-separated, for its load message.
std::string vendorClassList(const scep::Profile& profile) {
    std::string classes;
    for (const auto& vendor_class : profile.vendor_classes) {
        classes += (classes.empty() ? "" : ",") + vendor_class;
    }
    return classes;
}

std::string vendorClassOf(isc::dhcp::Pkt4& query) {
    const auto option = query.getOption(DHO_VENDOR_CLASS_IDENTIFIER);
    if (!option) {
        return {};
    }
    const auto& raw = option->getData();
    return scep::printable(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

void logProfiles(const scep::hook::Snapshot& snapshot) {
    for (const auto& profile : snapshot.config.profiles) {
        LOG_INFO(scep_logger, scep::hook::SCEP_PROFILE_LOADED)
            .arg(profile.name)
            .arg(vendorClassList(profile))
            .arg(scep::maskedOption43Hex(profile.option43))
            .arg(profile.option43.size())
            .arg(profile.domain ? *profile.domain : std::string("(not sent)"))
            .arg(scep::conflictPolicyName(profile.conflicts));
    }
}

void record(const scep::hook::Snapshot& snapshot, const scep::hook::Decision& decision,
            isc::dhcp::Pkt4& query) {
    if (decision.action == Action::untouched) {
        return;
    }
    if (decision.action == Action::ambiguous) {
        isc::stats::StatsMgr::instance().addValue(scep::hook::kAmbiguousStat,
                                                  static_cast<int64_t>(1));
        LOG_WARN(scep_logger, scep::hook::SCEP_AMBIGUOUS)
            .arg(query.getLabel())
            .arg(vendorClassOf(query));
        return;
    }
    const scep::Profile& profile = snapshot.config.profiles[decision.profile];
    const auto& names = snapshot.stat_names[decision.profile];
    auto& stats = isc::stats::StatsMgr::instance();
    if (!decision.conflicts.empty()) {
        stats.addValue(names.conflicts, static_cast<int64_t>(1));
        const std::string codes = codeList(decision.conflicts);
        switch (profile.conflicts) {
        case scep::ConflictPolicy::warn:
            LOG_WARN(scep_logger, scep::hook::SCEP_CONFLICT_WARN)
                .arg(query.getLabel())
                .arg(profile.name)
                .arg(codes);
            break;
        case scep::ConflictPolicy::strip:
            LOG_INFO(scep_logger, scep::hook::SCEP_CONFLICT_STRIPPED)
                .arg(query.getLabel())
                .arg(codes)
                .arg(profile.name);
            break;
        case scep::ConflictPolicy::skip:
            LOG_WARN(scep_logger, scep::hook::SCEP_CONFLICT_SKIPPED)
                .arg(query.getLabel())
                .arg(codes)
                .arg(profile.name);
            break;
        }
    }
    if (decision.action == Action::skipped) {
        stats.addValue(names.skipped, static_cast<int64_t>(1));
        return;
    }
    stats.addValue(names.decorated, static_cast<int64_t>(1));
    LOG_DEBUG(scep_logger, scep::hook::DBG_SCEP_PACKETS, scep::hook::SCEP_DECORATED)
        .arg(query.getLabel())
        .arg(profile.option43.size())
        .arg(profile.domain ? " and option 15" : "")
        .arg(vendorClassOf(query))
        .arg(profile.name);
}

// As Kea's own hooks do: only the DHCPv4 server calls pkt4_send, so loading
// anywhere else (kea-dhcp6, kea-ctrl-agent, ...) is a configuration mistake.
void requireDhcp4Server() {
    const std::string process = isc::process::Daemon::getProcName();
    if (process != "kea-dhcp4") {
        isc_throw(isc::Unexpected, "Bad process name: " << process << ", expected kea-dhcp4");
    }
}

void answer(CalloutHandle& handle, ConstElementPtr response) {
    handle.setArgument("response", response);
}

}  // namespace

extern "C" {

int scep_profiles_get(CalloutHandle& handle);
int scep_reload(CalloutHandle& handle);

int version() {
    return KEA_HOOKS_VERSION;
}

int multi_threading_compatible() {
    return 1;  // callouts only read an immutable snapshot
}

int load(LibraryHandle& handle) {
    try {
        requireDhcp4Server();
        ConstElementPtr path = handle.getParameter("config");
        if (!path || path->getType() != Element::string || path->stringValue().empty()) {
            LOG_ERROR(scep_logger, scep::hook::SCEP_LOAD_FAILED)
                .arg("hook parameter 'config' must be the path of the SCEP TOML file");
            return 1;
        }
        auto hook = std::make_unique<scep::hook::ScepHook>();
        hook->configure(path->stringValue());
        const auto snapshot = hook->snapshot();
        impl = std::move(hook);
        handle.registerCommandCallout("scep-profiles-get", scep_profiles_get);
        handle.registerCommandCallout("scep-reload", scep_reload);
        LOG_INFO(scep_logger, scep::hook::SCEP_LOAD_OK)
            .arg(snapshot->config.profiles.size())
            .arg(snapshot->config.path);
        logProfiles(*snapshot);
    } catch (const std::exception& e) {
        LOG_ERROR(scep_logger, scep::hook::SCEP_LOAD_FAILED).arg(e.what());
        impl.reset();
        return 1;
    }
    return 0;
}

int unload() {
    impl.reset();
    LOG_INFO(scep_logger, scep::hook::SCEP_UNLOADED);
    return 0;
}

int pkt4_send(CalloutHandle& handle) {
    Pkt4Ptr query;
    try {
        if (!impl || handle.getStatus() == CalloutHandle::NEXT_STEP_DROP) {
            return 0;
        }
        Pkt4Ptr response;
        handle.getArgument("query4", query);
        handle.getArgument("response4", response);
        if (!query || !response) {
            return 0;
        }
        const auto snapshot = impl->snapshot();
        const auto decision = scep::hook::ScepHook::process(*snapshot, *query, *response);
        record(*snapshot, decision, *query);
    } catch (const std::exception& e) {
        LOG_ERROR(scep_logger, scep::hook::SCEP_PROCESS_ERROR)
            .arg(query ? query->getLabel() : std::string("(no query)"))
            .arg(e.what());
    }
    return 0;
}

int scep_profiles_get(CalloutHandle& handle) {
    try {
        if (!impl) {
            answer(handle,
                   createAnswer(isc::config::CONTROL_RESULT_ERROR, "SCEP hook not configured"));
            return 0;
        }
        const auto snapshot = impl->snapshot();
        const auto count = snapshot->config.profiles.size();
        answer(handle, createAnswer(isc::config::CONTROL_RESULT_SUCCESS,
                                    std::to_string(count) + " SCEP profile(s)",
                                    scep::hook::ScepHook::describe(*snapshot)));
    } catch (const std::exception& e) {
        LOG_ERROR(scep_logger, scep::hook::SCEP_COMMAND_ERROR)
            .arg("scep-profiles-get")
            .arg(e.what());
        answer(handle, createAnswer(isc::config::CONTROL_RESULT_ERROR, e.what()));
    }
    return 0;
}

int scep_reload(CalloutHandle& handle) {
    try {
        if (!impl) {
            answer(handle,
                   createAnswer(isc::config::CONTROL_RESULT_ERROR, "SCEP hook not configured"));
            return 0;
        }
        impl->reload();
        const auto snapshot = impl->snapshot();
        LOG_INFO(scep_logger, scep::hook::SCEP_RELOAD_OK)
            .arg(snapshot->config.profiles.size())
            .arg(snapshot->config.path);
        logProfiles(*snapshot);
        answer(handle, createAnswer(isc::config::CONTROL_RESULT_SUCCESS,
                                    "reloaded " + std::to_string(snapshot->config.profiles.size()) +
                                        " SCEP profile(s) from " + snapshot->config.path));
    } catch (const std::exception& e) {
        LOG_ERROR(scep_logger, scep::hook::SCEP_RELOAD_FAILED).arg(e.what());
        answer(handle,
               createAnswer(
                   isc::config::CONTROL_RESULT_ERROR,
                   std::string("configuration refused, previous one stays in force: ") + e.what()));
    }
    return 0;
}

}  // extern "C"
