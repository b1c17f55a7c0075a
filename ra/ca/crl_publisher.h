// The CRL: rebuilt when the revocations change or it is half-way to its
// nextUpdate, and published to state-dir (crl.der) for web servers and
// distribution points.
#pragma once

#include <cstddef>
#include <ctime>
#include <mutex>
#include <string>

#include "common/fingerprint.h"
#include "ra/ca/authority.h"
#include "ra/runtime_config.h"
#include "ra/store/store.h"

namespace scep {

struct CrlInfo {
    std::time_t this_update = 0;
    std::time_t next_update = 0;
    std::size_t revoked = 0;
};

class CrlPublisher {
public:
    CrlPublisher(CertificateAuthority& ca, Store& store, const CurrentConfig& config, Clock clock);

    // The current CRL (DER), rebuilt first when it is due.
    Bytes crl();
    CrlInfo crlInfo();

private:
    CertificateAuthority& ca_;
    Store& store_;
    const CurrentConfig& config_;
    Clock clock_;
    std::mutex mutex_;
    Bytes der_;
    std::string revocations_;      // what the cached CRL was built from
    std::time_t this_update_ = 0;  // of the cached CRL
    std::time_t next_update_ = 0;
    std::size_t revoked_count_ = 0;  // entries in the cached CRL
};

}  // namespace scep
