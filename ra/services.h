// The RA's parts wired together, as `serve` and the tests run them: one
// configuration in force, one audit trail, the CRL publisher, the issuing
// step, the SCEP responder and Administration, sharing the CA material, the
// store and the event log.
#pragma once

#include <ctime>
#include <memory>
#include <string>

#include "ra/admin/administration.h"
#include "ra/ca/bootstrap.h"
#include "ra/ca/crl_publisher.h"
#include "ra/ca/issuance.h"
#include "ra/ca/upstream/upstream_ca.h"
#include "ra/config.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/event_log.h"
#include "ra/runtime_config.h"
#include "ra/scep/responder.h"
#include "ra/store/store.h"

namespace scep {

class RaServices {
public:
    // Builds the first RuntimeConfig from `config` (loading the manufacturer
    // roots); throws like RuntimeConfig. `material.ca` issues.
    RaServices(
        const Config& config, CaMaterial& material, Store& store, EventLog& log,
        Clock clock = [] { return std::time(nullptr); });
    // Issuing through `issuing` rather than the local CA (an upstream CA);
    // `material` still holds the RA's own identities.
    RaServices(
        const Config& config, CaMaterial& material, CertificateAuthority& issuing, Store& store,
        EventLog& log, Clock clock = [] { return std::time(nullptr); });

    ScepResponder& responder() { return responder_; }
    Administration& administration() { return administration_; }
    CrlPublisher& crlPublisher() { return crl_; }
    // The audit trail (and failure budget) the HTTP layers share.
    AuditTrail& auditTrail() { return trail_; }
    CaMaterial& material() { return material_; }
    // The CA that issues: the local CA, or the upstream one.
    CertificateAuthority& authority() { return issuance_.authority(); }
    // The upstream CA when [ca] backend = "scep"; null otherwise.
    UpstreamCa* upstream() { return dynamic_cast<UpstreamCa*>(&issuance_.authority()); }
    CertificateIssuance& issuance() { return issuance_; }
    CurrentConfig& currentConfig() { return config_; }

    // The configuration new requests are answered with. A request keeps the
    // snapshot it started with until it is answered.
    std::shared_ptr<const RuntimeConfig> runtime() const { return config_.get(); }
    // Swaps in a reloaded configuration for the requests that start from now
    // on, and applies its challenge-throttle and audit-budget limits (their
    // counts are kept). ra/reload.h decides what may change without a restart.
    void setRuntime(std::shared_ptr<const RuntimeConfig> next) { config_.set(std::move(next)); }

private:
    CaMaterial& material_;
    CurrentConfig config_;
    AuditTrail trail_;
    CrlPublisher crl_;
    CertificateIssuance issuance_;
    ScepResponder responder_;
    Administration administration_;
};

}  // namespace scep
