#include "ra/ca/upstream/upstream_ca.h"

#include <algorithm>

#include <openssl/x509v3.h>

#include "ra/crypto.h"

namespace scep {

namespace {

// The root first, then the issuing CA and the rest as GetCACert had them.
std::string chainPem(const UpstreamCaInfo& info) {
    std::string pem = certificatePem(*info.root);
    for (const X509Ptr& cert : info.chain) {
        if (cert.get() != info.root) {
            pem += certificatePem(*cert);
        }
    }
    return pem;
}

CaAnswer answerOf(UpstreamReply reply) {
    switch (reply.status) {
    case PkiStatus::success:
        if (!reply.certificate) {
            return CaAnswer::unreachable("SUCCESS without a certificate for the request's key");
        }
        return CaAnswer::issuedNow(std::move(reply.certificate));
    case PkiStatus::pending:
        return CaAnswer::pendingAtCa("");
    case PkiStatus::failure:
        break;
    }
    return CaAnswer::failedWith(std::string("FAILURE, failInfo ") + failInfoName(reply.fail),
                                static_cast<int>(reply.fail));
}

}  // namespace

UpstreamCa::UpstreamCa(const Config& config, const RaIdentity& identity, Clock clock)
    : settings_(config.ca.upstream),
      chain_file_(stateFile(config, kUpstreamChainFile)),
      identity_(identity),
      clock_(std::move(clock)),
      endpoint_{settings_.url, settings_.timeout},
      client_(endpoint_) {}

void UpstreamCa::start() {
    if (refresh()) {
        return;
    }
    const UpstreamHealth now = health();
    if (now.pin_mismatch) {
        throw UpstreamPinMismatch(now.last_error);
    }
    if (!fileExists(chain_file_)) {
        throw UpstreamUnavailable("the upstream CA at " + settings_.url + " cannot be reached (" +
                                  health().last_error + ") and no chain of it is kept in '" +
                                  chain_file_ + "' from an earlier start");
    }
    // Pinned again: the file is only as trustworthy as the state-dir.
    adopt(pinnedChain(loadCertificateBundle(chain_file_), settings_.pin_digest, settings_.pin),
          false);
}

bool UpstreamCa::refresh() {
    try {
        UpstreamCaInfo found = client_.discover(settings_.pin_digest, settings_.pin);
        saveChain(found);
        adopt(std::move(found), true);
        const std::lock_guard<std::mutex> lock(mutex_);
        health_.last_discovery = clock_();
        return true;
    } catch (const UpstreamPinMismatch& e) {
        contact(std::string("pin: ") + e.what(), true);
    } catch (const UpstreamUnavailable& e) {
        contact(e.what());
    }
    return false;
}

void UpstreamCa::saveChain(const UpstreamCaInfo& info) const {
    const std::string pem = chainPem(info);
    std::string kept;
    if (fileExists(chain_file_)) {
        for (const X509Ptr& cert : loadCertificateBundle(chain_file_)) {
            kept += certificatePem(*cert);
        }
    }
    if (kept != pem) {
        writeFileAtomically(chain_file_, pem, 0644);
    }
}

void UpstreamCa::adopt(UpstreamCaInfo info, bool discovered) {
    auto shared = std::make_shared<const UpstreamCaInfo>(std::move(info));
    const std::lock_guard<std::mutex> lock(mutex_);
    info_ = shared;
    discovered_ = discovered;
    seen_.push_back(std::move(shared));
    health_.reachable = discovered;
    if (discovered) {
        health_.last_error.clear();
        health_.last_contact = clock_();
    }
}

void UpstreamCa::contact(const std::string& error, bool pin_mismatch) {
    const std::lock_guard<std::mutex> lock(mutex_);
    health_.reachable = error.empty();
    health_.last_error = error;
    health_.pin_mismatch = pin_mismatch;
    if (error.empty()) {
        health_.last_contact = clock_();
    }
}

UpstreamHealth UpstreamCa::health() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return health_;
}

std::shared_ptr<const UpstreamCaInfo> UpstreamCa::info() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return info_;
}

CaAnswer UpstreamCa::exchange(const std::function<UpstreamReply(const UpstreamCaInfo&)>& send,
                              bool counts_for_health) {
    std::shared_ptr<const UpstreamCaInfo> ready;
    {
        // A CA known to be down is not asked from here: phones' requests
        // would each hold an HTTP worker for the timeout. The poller asks it
        // again (refresh) and takes the requests further once it answers.
        const std::lock_guard<std::mutex> lock(mutex_);
        if (!discovered_ || !health_.reachable) {
            return CaAnswer::unreachable(health_.last_error.empty() ? "not reached yet"
                                                                    : health_.last_error);
        }
        ready = info_;
    }
    try {
        UpstreamReply reply = send(*ready);
        if (counts_for_health) {
            contact("");
        }
        return answerOf(std::move(reply));
    } catch (const UpstreamUnavailable& e) {
        if (counts_for_health) {
            contact(e.what());
        }
        return CaAnswer::unreachable(e.what());
    }
}

CaAnswer UpstreamCa::issue(const IssueRequest& request, std::time_t, const CaSettings&) {
    CaAnswer answer = exchange([&](const UpstreamCaInfo& ca) {
        return client_.enroll(ca, *identity_.cert, *identity_.key, request.csr, request.reference);
    });
    if (answer.status == CaAnswer::Status::issued) {
        const std::lock_guard<std::mutex> lock(mutex_);
        last_issued_.reset(X509_dup(answer.certificate.get()));
    }
    return answer;
}

CaAnswer UpstreamCa::poll(const std::string& reference, const Bytes& csr) {
    CaAnswer answer = exchange([&](const UpstreamCaInfo& ca) {
        return client_.poll(ca, *identity_.cert, *identity_.key, csr, reference);
    });
    if (answer.status == CaAnswer::Status::issued) {
        const std::lock_guard<std::mutex> lock(mutex_);
        last_issued_.reset(X509_dup(answer.certificate.get()));
    }
    return answer;
}

X509CrlPtr UpstreamCa::crl(const std::vector<CertificateRecord>&, std::time_t now,
                           const CaSettings&) {
    X509Ptr probe;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (crl_ && asn1TimeToUnix(X509_CRL_get0_nextUpdate(crl_.get())) > now) {
            return X509CrlPtr(X509_CRL_dup(crl_.get()));
        }
        // A CA without GetCRL (micromdm's scepserver) is not asked on every
        // maintenance round: once per kCrlRetry after a failure.
        if (!crl_ && now - crl_failed_at_ < kCrlRetry) {
            throw UpstreamUnavailable("the upstream CA's CRL cannot be had: " + crl_error_);
        }
        probe.reset(X509_dup(last_issued_ ? last_issued_.get() : info_->ca));
    }
    const CaAnswer answer = exchange(
        [&](const UpstreamCaInfo& ca) {
            UpstreamReply reply = client_.crl(ca, *identity_.cert, *identity_.key, *probe);
            if (reply.status == PkiStatus::success && !X509_CRL_get0_nextUpdate(reply.crl.get())) {
                throw UpstreamUnavailable("GetCRL answered a CRL without nextUpdate");
            }
            if (reply.status == PkiStatus::success) {
                const std::lock_guard<std::mutex> lock(mutex_);
                crl_ = std::move(reply.crl);
            }
            return reply;
        },
        false);  // GetCRL is optional in SCEP: a CA without it still issues
    const std::lock_guard<std::mutex> lock(mutex_);
    if (crl_) {
        return X509CrlPtr(X509_CRL_dup(crl_.get()));  // the kept one, if no new one came
    }
    crl_failed_at_ = now;
    crl_error_ = answer.reason;
    throw UpstreamUnavailable("the upstream CA's CRL cannot be had: " + answer.reason);
}

X509& UpstreamCa::root() {
    return *info()->root;
}

X509& UpstreamCa::certificate() {
    return *info()->ca;
}

std::vector<X509*> UpstreamCa::chain() {
    const auto current = info();
    // CA certificates only: the upstream's own RA certificates would make
    // a phone choose whom to encrypt to among several.
    std::vector<X509*> out = {current->ca};
    for (const X509Ptr& cert : current->chain) {
        if (cert.get() != current->ca && X509_check_ca(cert.get()) != 0) {
            out.push_back(cert.get());
        }
    }
    return out;
}

}  // namespace scep
