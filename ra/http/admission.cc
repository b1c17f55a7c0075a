#include "ra/http/admission.h"

#include <arpa/inet.h>

#include <cstring>

namespace scep::http {

std::string admissionKey(const std::string& address) {
    in6_addr v6{};
    if (address.find(':') == std::string::npos || inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
        return address;
    }
    std::memset(v6.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &v6, text, sizeof(text));
    return std::string(text) + "/64";
}

Admission::Decision Admission::decide(const std::string& address) const {
    if (fromAddress(address) >= max_per_address_) {
        return {Verdict::refuse_address, 0};
    }
    if (connections_.size() < max_total_) {
        return {Verdict::admit, 0};
    }
    if (waiting_.empty()) {
        return {Verdict::refuse_full, 0};
    }
    return {Verdict::evict_then_admit, waiting_.front()};
}

void Admission::add(Id id, const std::string& address) {
    Entry& entry = connections_[id];
    entry.address = address;
    ++per_address_[address];
    setWaiting(id, true);
}

void Admission::setWaiting(Id id, bool waiting) {
    const auto it = connections_.find(id);
    if (it == connections_.end() || it->second.waiting == waiting) {
        return;
    }
    Entry& entry = it->second;
    entry.waiting = waiting;
    if (waiting) {
        entry.position = waiting_.insert(waiting_.end(), id);
    } else {
        waiting_.erase(entry.position);
    }
}

void Admission::remove(Id id) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) {
        return;
    }
    setWaiting(id, false);
    const auto count = per_address_.find(it->second.address);
    if (count != per_address_.end() && --count->second == 0) {
        per_address_.erase(count);
    }
    connections_.erase(it);
}

std::size_t Admission::fromAddress(const std::string& address) const {
    const auto it = per_address_.find(address);
    return it == per_address_.end() ? 0 : it->second;
}

}  // namespace scep::http
