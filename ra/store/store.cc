#include "ra/store/store.h"

namespace scep {

const char* requestStatusName(RequestStatus status) {
    switch (status) {
    case RequestStatus::pending:
        return "pending";
    case RequestStatus::issued:
        return "issued";
    case RequestStatus::rejected:
        return "rejected";
    }
    return "unknown";
}

std::optional<RequestStatus> requestStatusFromName(const std::string& name) {
    if (name == "pending") {
        return RequestStatus::pending;
    }
    if (name == "issued") {
        return RequestStatus::issued;
    }
    if (name == "rejected") {
        return RequestStatus::rejected;
    }
    return std::nullopt;
}

CertificateState certificateState(const CertificateRecord& certificate, std::time_t now) {
    if (certificate.revoked) {
        return CertificateState::revoked;
    }
    return certificate.not_after < now ? CertificateState::expired : CertificateState::valid;
}

const char* certificateStateName(CertificateState state) {
    switch (state) {
    case CertificateState::valid:
        return "valid";
    case CertificateState::revoked:
        return "revoked";
    case CertificateState::expired:
        return "expired";
    }
    return "unknown";
}

const char* caStateName(CaState state) {
    switch (state) {
    case CaState::forwarding:
        return "forwarding";
    case CaState::pending:
        return "pending";
    case CaState::none:
        break;
    }
    return "";
}

std::optional<CaState> caStateFromName(const std::string& name) {
    for (const CaState state : {CaState::none, CaState::forwarding, CaState::pending}) {
        if (name == caStateName(state)) {
            return state;
        }
    }
    return std::nullopt;
}

}  // namespace scep
