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

}  // namespace scep
