// The enterprise's CA as scep-ra's CertificateAuthority (backend = "scep"):
// requests go there by SCEP, signed with the RA's identity; its chain is
// pinned ([ca] ca-fingerprint) and kept in state-dir; its CRL is fetched
// with GetCRL and kept until its nextUpdate.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ra/ca/authority.h"
#include "ra/ca/bootstrap.h"
#include "ra/ca/upstream/scep_upstream.h"
#include "ra/config.h"
#include "ra/runtime_config.h"

namespace scep {

struct UpstreamHealth {
    bool reachable = false;          // the last exchange got a usable answer
    std::string last_error;          // why the last exchange did not; "" when it did
    std::time_t last_contact = 0;    // the last usable answer (0: none since start)
    std::time_t last_discovery = 0;  // the last GetCACaps/GetCACert that passed the pin
    bool pin_mismatch = false;       // the last discovery found a CA that fails the pin
};

// State-dir file of the upstream's chain as last discovered: its root
// first (what option 43 sub-option 12 pins: a profile's `ca-cert` may name
// this file), then the rest of what GetCACert returned.
constexpr const char* kUpstreamChainFile = "upstream-ca.pem";

class UpstreamCa : public CertificateAuthority {
public:
    // `identity` signs what is sent upstream and receives its replies.
    UpstreamCa(const Config& config, const RaIdentity& identity, Clock clock);

    // At start: asks the upstream (GetCACaps, GetCACert, the pin) and keeps
    // its chain in state-dir; when it cannot be reached, uses the chain an
    // earlier start kept. Throws UpstreamPinMismatch (the upstream, or the
    // kept chain, is not the pinned CA), and UpstreamUnavailable when it
    // cannot be reached and no chain was kept.
    void start();
    // Asks again (the poller, while it is unreachable, and now and then):
    // a new chain that passes the pin replaces the old one. False when it
    // could not be reached or failed the pin (health() says why); the old
    // chain stays in use.
    bool refresh();
    UpstreamHealth health() const;
    const std::string& url() const { return endpoint_.url; }
    // The upstream's root, which option 43 sub-option 12 pins.
    X509& root();

    CaAnswer issue(const IssueRequest& request, std::time_t now,
                   const CaSettings& settings) override;
    CaAnswer poll(const std::string& reference, const Bytes& csr) override;
    // The upstream's CRL, fetched when the kept one has passed its
    // nextUpdate; `revoked` (this RA's own marks) cannot change it: SCEP has
    // no revocation message. Throws UpstreamUnavailable when none can be had.
    X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                   const CaSettings& settings) override;
    X509& certificate() override;
    std::vector<X509*> chain() override;
    bool forwards() const override { return true; }

private:
    std::shared_ptr<const UpstreamCaInfo> info();
    void adopt(UpstreamCaInfo info, bool discovered);
    void saveChain(const UpstreamCaInfo& info) const;
    // One exchange with a CA that answered last time; `unreachable` at once
    // (no network) while it is known to be down or not yet discovered.
    // `counts_for_health`: whether its failure marks the CA unreachable.
    CaAnswer exchange(const std::function<UpstreamReply(const UpstreamCaInfo&)>& send,
                      bool counts_for_health = true);
    void contact(const std::string& error, bool pin_mismatch = false);

    const UpstreamSettings settings_;
    const std::string chain_file_;
    const RaIdentity& identity_;
    const Clock clock_;
    const UpstreamEndpoint endpoint_;
    const ScepUpstream client_;

    mutable std::mutex mutex_;
    std::shared_ptr<const UpstreamCaInfo> info_;
    bool discovered_ = false;  // info_ has GetCACaps' answers, not just the kept chain
    // Every chain ever in use stays alive: certificate() hands out references.
    std::vector<std::shared_ptr<const UpstreamCaInfo>> seen_;
    UpstreamHealth health_;
    X509Ptr last_issued_;  // names the CRL to ask for (GetCRL takes a certificate)
    X509CrlPtr crl_;
    static constexpr std::time_t kCrlRetry = 300;
    std::time_t crl_failed_at_ = 0;  // the last GetCRL that gave no CRL, while none is kept
    std::string crl_error_;
};

}  // namespace scep
