// Test material for the RA: the fixture PKI (tests/fixtures/test_pki.py,
// generated once per test process), CSR and request builders, and an
// in-process RA (config + state + SQLite store + RaServices).
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ra/ca/bootstrap.h"
#include "ra/ca/certificate.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/message.h"
#include "ra/services.h"
#include "ra/store/store.h"
#include "support.h"

namespace testsupport {

// Directory of the generated fixture PKI (see tests/fixtures/README.md).
const std::string& fixturePki();
scep::X509Ptr fixtureCert(const std::string& name);    // e.g. "mic-cp8875"
scep::EvpPkeyPtr fixtureKey(const std::string& name);  // e.g. "newkey-1"

// The fixture phone: its MIC (CN kMicCn), the MIC's key, and the key it
// enrolls a new certificate for.
inline const std::string kMicCn = "CP-8875-SEP001A2B3C4D5E";
struct Phone {
    scep::X509Ptr mic = fixtureCert("mic-cp8875");
    scep::EvpPkeyPtr mic_key = fixtureKey("mic-cp8875");
    scep::EvpPkeyPtr new_key = fixtureKey("newkey-1");
};

struct CsrSpec {
    std::string common_name;
    std::vector<scep::SubjectAltName> sans;
    std::optional<std::string> challenge;
};
scep::X509ReqPtr makeCsr(EVP_PKEY& key, const CsrSpec& spec);
scep::X509Ptr makeSelfSigned(EVP_PKEY& key, const std::string& common_name);

// An RA with its own state-dir, configured by `toml` (its [ra] state-dir and
// [auth] manufacturer-roots are filled in), answering in-process.
class TestRa {
public:
    explicit TestRa(const std::string& toml = "");

    struct Reply {
        scep::CertRepView rep;
        scep::X509Ptr cert;  // the issued certificate on SUCCESS
    };
    // Sends a request of `type` signed by signer/signer_key whose content is
    // a CSR (PKCSReq/RenewalReq) built from csr_key and `spec`.
    Reply enroll(X509& signer, EVP_PKEY& signer_key, EVP_PKEY& csr_key, const CsrSpec& spec,
                 const std::string& transaction_id = "",
                 scep::MessageType type = scep::MessageType::PKCSReq, int cipher_nid = 0);
    // Any message with raw `content`.
    Reply send(X509& signer, EVP_PKEY& signer_key, scep::MessageType type,
               const scep::Bytes& content, const std::string& transaction_id, int cipher_nid = 0);
    Reply open(const scep::Bytes& reply, EVP_PKEY& key, X509& signer);

    std::size_t certificateCount() { return store->listCertificates().size(); }
    std::vector<scep::AuditEvent> audit() { return store->listAudit(1000, 0); }

    TempDir dir;
    scep::Config config;
    std::time_t now;
    scep::EventLog log;
    scep::CaMaterial state;
    std::unique_ptr<scep::Store> store;
    std::unique_ptr<scep::RaServices> service;
};

std::string commonName(X509& cert);
std::string randomTransactionId();

}  // namespace testsupport
