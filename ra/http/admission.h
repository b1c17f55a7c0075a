// Which connections a listener keeps: at most N per source address and M in
// total. At the total cap the connection that has waited longest for its
// request (idle, trickling or still in its TLS handshake) makes room, so a
// flood spread over many addresses cannot lock phones out; connections
// whose request is being answered are never evicted. Pure bookkeeping, used
// from the listener's one I/O thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

namespace scep::http {

// What the per-address cap counts: an IPv4 address, or an IPv6 /64 (one
// host or site usually holds a whole /64, so single addresses would let it
// open connections without end).
std::string admissionKey(const std::string& address);

class Admission {
public:
    using Id = std::uint64_t;
    enum class Verdict { admit, evict_then_admit, refuse_address, refuse_full };
    struct Decision {
        Verdict verdict = Verdict::admit;
        Id evict = 0;  // with evict_then_admit: remove() it, then add() the new one
    };

    Admission(std::size_t max_total, std::size_t max_per_address)
        : max_total_(max_total), max_per_address_(max_per_address) {}

    Decision decide(const std::string& address) const;
    // A new connection, waiting for its first request.
    void add(Id id, const std::string& address);
    // Waiting for (or reading) a request: evictable, oldest first; or busy.
    void setWaiting(Id id, bool waiting);
    void remove(Id id);

    std::size_t total() const { return connections_.size(); }
    std::size_t fromAddress(const std::string& address) const;
    std::list<Id> waiting() const { return waiting_; }

private:
    struct Entry {
        std::string address;
        bool waiting = false;
        std::list<Id>::iterator position;
    };
    std::size_t max_total_;
    std::size_t max_per_address_;
    std::unordered_map<Id, Entry> connections_;
    std::unordered_map<std::string, std::size_t> per_address_;
    std::list<Id> waiting_;  // oldest first
};

}  // namespace scep::http
