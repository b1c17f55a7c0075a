// The operator's side of the admin API: tokens, listings and decisions,
// straight on the database (serve may run meanwhile).
#include <ctime>
#include <iomanip>
#include <iostream>
#include <stdexcept>

#include "ra/admin/administration.h"
#include "ra/admin/tokens.h"
#include "ra/ca/upstream/upstream_ca.h"
#include "ra/cli/commands.h"
#include "ra/ops/event_log.h"
#include "ra/services.h"

namespace scep::cli {

namespace {

void listRequests(Store& store, const Arguments& args) {
    std::optional<RequestStatus> status;
    if (!args.option("status").empty()) {
        status = requestStatusFromName(args.option("status"));
        if (!status) {
            throw std::invalid_argument("--status must be pending, issued or rejected");
        }
    }
    std::cout << std::left << std::setw(6) << "ID" << std::setw(9) << "STATUS" << std::setw(10)
              << "METHOD" << std::setw(40) << "COMMON NAME" << std::setw(22) << "CREATED"
              << std::setw(16) << "PEER"
              << "IDENTITY / REASON\n";
    for (const auto& r : store.listRequests(status)) {
        std::cout << std::left << std::setw(6) << r.id << std::setw(9)
                  << requestStatusName(r.status) << std::setw(10) << r.method << std::setw(40)
                  << r.common_name << std::setw(22) << utc(r.created_at) << std::setw(16) << r.peer
                  << r.identity << (r.reason.empty() ? "" : " / " + r.reason) << "\n";
    }
}

void listCertificates(Store& store) {
    const std::int64_t now = std::time(nullptr);
    std::cout << std::left << std::setw(34) << "SERIAL" << std::setw(9) << "STATUS" << std::setw(22)
              << "NOT AFTER"
              << "SUBJECT\n";
    for (const auto& c : store.listCertificates()) {
        const char* status = certificateStateName(certificateState(c, now));
        std::cout << std::left << std::setw(34) << c.serial << std::setw(9) << status
                  << std::setw(22) << utc(c.not_after) << c.subject << "\n";
    }
}

int tokens(Store& store, Administration& administration, const Arguments& args) {
    const std::string action = args.positional.empty() ? "" : args.positional[0];
    if (action == "list") {
        std::cout << std::left << std::setw(24) << "NAME" << std::setw(10) << "ROLE"
                  << std::setw(22) << "CREATED"
                  << "CREATED BY\n";
        for (const auto& token : store.listTokens()) {
            std::cout << std::left << std::setw(24) << token.name << std::setw(10) << token.role
                      << std::setw(22) << utc(token.created_at) << token.created_by << "\n";
        }
        return 0;
    }
    if (action == "create") {
        const std::string name = args.option("name");
        const auto role = roleFromName(args.option("role"));
        if (!isValidTokenName(name) || !role) {
            throw std::invalid_argument(
                "token create needs --name (1-64 of letters, digits, . _ @ -) and --role "
                "viewer|approver");
        }
        const NewToken token = administration.createToken(name, *role, operatorName());
        std::cout << token.text << "\n";
        std::cerr << "token '" << name << "' (" << roleName(*role)
                  << ") created; it is shown only now, store it safely\n";
        return 0;
    }
    if (action == "delete" && args.positional.size() == 2) {
        administration.deleteToken(args.positional[1], operatorName());
        std::cout << "deleted\n";
        return 0;
    }
    throw std::invalid_argument(
        "usage: scep-ra token create --name N --role viewer|approver | list | delete NAME");
}

}  // namespace

int administer(const Config& config, CaMaterial& material, Store& store, const Arguments& args) {
    EventLog log;
    // An approval here goes where serve would send it: with an upstream CA
    // (or its chain, kept in state-dir, while it cannot be reached), there.
    std::unique_ptr<UpstreamCa> upstream;
    if (config.ca.backend == CaBackend::scep) {
        upstream =
            std::make_unique<UpstreamCa>(config, material.ra, [] { return std::time(nullptr); });
        upstream->start();
    }
    RaServices services(config, material,
                        upstream ? static_cast<CertificateAuthority&>(*upstream)
                                 : static_cast<CertificateAuthority&>(*material.ca),
                        store, log);
    Administration& administration = services.administration();
    if (args.command == "token") {
        return tokens(store, administration, args);
    }
    if (args.command == "requests") {
        listRequests(store, args);
    } else if (args.command == "certs") {
        listCertificates(store);
    } else if (args.command == "approve") {
        const ApprovalResult result = administration.approve(requestId(args), operatorName());
        if (result.serial.empty()) {
            std::cout << "approved; sent to the upstream CA (reference " << result.reference
                      << "): the phone gets its certificate once that CA issues it\n";
        } else {
            std::cout << "issued certificate " << result.serial << "\n";
        }
    } else if (args.command == "reject") {
        administration.reject(requestId(args), args.option("reason"), operatorName());
        std::cout << "rejected\n";
    } else if (args.command == "revoke") {
        if (args.positional.size() != 1) {
            throw std::invalid_argument("revoke needs exactly one serial number");
        }
        const std::string note = administration.revoke(
            args.positional[0], reasonCode(args.option("reason", "unspecified")), operatorName());
        std::cout << "revoked " << args.positional[0] << "\n";
        if (!note.empty()) {
            std::cout << note << "\n";
        }
    } else {
        throw std::invalid_argument("unknown command '" + args.command + "'");
    }
    return 0;
}

}  // namespace scep::cli
