#include "ra/ca/crl_publisher.h"

#include "ra/ca/bootstrap.h"
#include "ra/crypto.h"

namespace scep {

CrlPublisher::CrlPublisher(CertificateAuthority& ca, Store& store, const CurrentConfig& config,
                           Clock clock)
    : ca_(ca), store_(store), config_(config), clock_(std::move(clock)) {}

Bytes CrlPublisher::crl() {
    const std::time_t now = clock_();
    const auto revoked = store_.revocations();  // serial, reason and date suffice
    std::string fingerprint;
    for (const auto& record : revoked) {
        fingerprint += record.serial + ":" + std::to_string(record.revocation_reason) + ";";
    }
    const auto snapshot = config_.get();
    const Config& config = snapshot->config;
    const std::lock_guard<std::mutex> lock(mutex_);
    // Rebuilt half-way to its own nextUpdate: the local CA's follows
    // [ca] crl-days, an upstream CA's is whatever that CA says.
    if (der_.empty() || fingerprint != revocations_ ||
        now >= this_update_ + (next_update_ - this_update_) / 2) {
        const X509CrlPtr fresh = ca_.crl(revoked, now, config.ca);
        der_ = crlDer(*fresh);
        this_update_ = asn1TimeToUnix(X509_CRL_get0_lastUpdate(fresh.get()));
        const ASN1_TIME* next = X509_CRL_get0_nextUpdate(fresh.get());
        next_update_ = next ? asn1TimeToUnix(next) : this_update_;
        revocations_ = fingerprint;
        const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(fresh.get());
        revoked_count_ = entries ? static_cast<std::size_t>(sk_X509_REVOKED_num(entries)) : 0;
        // Published beside the CA for web servers and distribution points.
        writeFileAtomically(stateFile(config, "crl.der"), std::string(der_.begin(), der_.end()),
                            0644);
    }
    return der_;
}

CrlInfo CrlPublisher::crlInfo() {
    crl();
    const std::lock_guard<std::mutex> lock(mutex_);
    return {this_update_, next_update_, revoked_count_};
}

}  // namespace scep
