// The embedded CA: a key and self-signed root in state-dir (made by
// ra/ca/bootstrap.h), issuing and signing CRLs in-process.
#pragma once

#include <ctime>
#include <vector>

#include "common/openssl_ptr.h"
#include "ra/ca/authority.h"
#include "ra/config.h"

namespace scep {

class LocalCa : public CertificateAuthority {
public:
    LocalCa(X509Ptr cert, EvpPkeyPtr key);
    // Always issues now.
    CaAnswer issue(const IssueRequest& request, std::time_t now,
                   const CaSettings& settings) override;
    X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                   const CaSettings& settings) override;
    X509& certificate() override { return *cert_; }
    EVP_PKEY& key() { return *key_; }

private:
    X509Ptr cert_;
    EvpPkeyPtr key_;
};

}  // namespace scep
