#include "ra/ca/crl_publisher.h"

#include "ra/ca/bootstrap.h"
#include "ra/crypto.h"

namespace scep {

CrlPublisher::CrlPublisher(CertificateAuthority& ca, Store& store, const CurrentConfig& config,
                           Clock clock)
    : ca_(ca), store_(store), config_(config), clock_(std::move(clock)) {}

Bytes CrlPublisher::crl() {
    const std::time_t now = clock_();
    const auto revoked = store_.revokedCertificates();
    std::string fingerprint;
    for (const auto& record : revoked) {
        fingerprint += record.serial + ":" + std::to_string(record.revocation_reason) + ";";
    }
    const auto snapshot = config_.get();
    const Config& config = snapshot->config;
    const std::lock_guard<std::mutex> lock(mutex_);
    const std::time_t half_life = static_cast<std::time_t>(config.ca.crl_days) * 24 * 3600 / 2;
    if (der_.empty() || fingerprint != revocations_ || now - built_ >= half_life) {
        der_ = crlDer(*ca_.crl(revoked, now, config.ca));
        days_ = config.ca.crl_days;
        revocations_ = fingerprint;
        built_ = now;
        revoked_count_ = revoked.size();
        // Published beside the CA for web servers and distribution points.
        writeFileAtomically(stateFile(config, "crl.der"), std::string(der_.begin(), der_.end()),
                            0644);
    }
    return der_;
}

CrlInfo CrlPublisher::crlInfo() {
    crl();
    const std::lock_guard<std::mutex> lock(mutex_);
    return {built_, built_ + static_cast<std::time_t>(days_) * 24 * 3600, revoked_count_};
}

}  // namespace scep
