#include "ra/services.h"

namespace scep {

RaServices::RaServices(const Config& config, CaMaterial& material, Store& store, EventLog& log,
                       Clock clock)
    : RaServices(config, material, *material.ca, store, log, std::move(clock)) {}

RaServices::RaServices(const Config& config, CaMaterial& material, CertificateAuthority& issuing,
                       Store& store, EventLog& log, Clock clock)
    : material_(material),
      config_(std::make_shared<const RuntimeConfig>(config, issuing.certificate())),
      trail_(store, log, clock, failureLimits(config)),
      crl_(issuing, store, config_, clock),
      issuance_(issuing, store, trail_, crl_),
      responder_(config_, material, store, trail_, issuance_, crl_, log, clock),
      administration_(config_, store, trail_, issuance_, crl_, clock) {
    config_.watch([this](const Config& next) { trail_.setLimits(failureLimits(next)); });
}

}  // namespace scep
