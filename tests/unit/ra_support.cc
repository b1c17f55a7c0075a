#include "ra_support.h"

#include <cstdio>
#include <random>

#include <openssl/rand.h>

#include "ra/config.h"
#include "ra/crypto.h"

#ifndef TEST_SOURCE_DIR
#error "TEST_SOURCE_DIR must name the source tree"
#endif

namespace testsupport {

using namespace scep;

const std::string& fixturePki() {
    static TempDir dir;
    static const std::string path = [] {
        requireTool("/usr/bin/python3", "python3 python3-cryptography");
        const std::string out = dir.file("pki");
        run("/usr/bin/python3 '" TEST_SOURCE_DIR "/tests/fixtures/test_pki.py' '" + out + "'");
        return out;
    }();
    return path;
}

X509Ptr fixtureCert(const std::string& name) {
    return loadCertificateFile(fixturePki() + "/" + name + ".pem");
}

EvpPkeyPtr fixtureKey(const std::string& name) {
    return loadPrivateKeyFile(fixturePki() + "/" + name + ".key");
}

X509ReqPtr makeCsr(EVP_PKEY& key, const CsrSpec& spec) {
    X509ReqPtr csr(X509_REQ_new());
    X509_REQ_set_version(csr.get(), 0);  // v1; OpenSSL 3.5 verifies nothing else
    X509_NAME* name = X509_REQ_get_subject_name(csr.get());
    // A raw UTF8String, not MBSTRING: OpenSSL would refuse a CN over 64
    // characters, and hostile clients do not ask OpenSSL.
    X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_UTF8STRING,
                               reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                               -1, 0);
    X509_REQ_set_pubkey(csr.get(), &key);
    if (!spec.sans.empty()) {
        GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
        for (const auto& san : spec.sans) {
            ASN1_IA5STRING* text = ASN1_IA5STRING_new();
            ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size()));
            GENERAL_NAME* general = GENERAL_NAME_new();
            GENERAL_NAME_set0_value(
                general, san.type == SubjectAltName::Type::dns ? GEN_DNS : GEN_EMAIL, text);
            sk_GENERAL_NAME_push(names.get(), general);
        }
        STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
        X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
        sk_X509_EXTENSION_push(extensions, ext);
        X509_REQ_add_extensions(csr.get(), extensions);
        sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    }
    if (spec.challenge) {
        X509_REQ_add1_attr_by_NID(csr.get(), NID_pkcs9_challengePassword, MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(spec.challenge->c_str()),
                                  -1);
    }
    if (X509_REQ_sign(csr.get(), &key, EVP_sha256()) <= 0) {
        throw CryptoError("test CSR");
    }
    return csr;
}

X509Ptr makeSelfSigned(EVP_PKEY& key, const std::string& common_name) {
    X509NamePtr name(X509_NAME_new());
    X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = &key;
    spec.not_before = std::time(nullptr) - 60;
    spec.not_after = std::time(nullptr) + 3600;
    spec.key_usage = "critical,digitalSignature";
    return signCertificate(spec, nullptr, key);
}

std::string commonName(X509& cert) {
    return nameEntry(X509_get_subject_name(&cert), NID_commonName);
}

std::string randomTransactionId() {
    unsigned char bytes[20];
    RAND_bytes(bytes, sizeof(bytes));
    return toHex(Bytes(bytes, bytes + sizeof(bytes)));
}

TestRa::TestRa(const std::string& toml) : now(std::time(nullptr)) {
    // state-dir goes into the [ra] table the test wrote, or a new one.
    std::string text = toml;
    const std::string state_dir = "\nstate-dir = \"" + dir.file("state") + "\"\n";
    const auto ra_table = text.find("[ra]");
    if (ra_table == std::string::npos) {
        text += "\n[ra]" + state_dir;
    } else {
        text.insert(ra_table + 4, state_dir);
    }
    if (text.find("[auth]") == std::string::npos) {
        text += "[auth]\n";
    }
    // manufacturer-roots goes into whichever [auth] table exists, and unless
    // the test sets them, the fixture's phone CA into mic-issuers and its
    // phone models into mic-models (most tests have no [[profile]]).
    std::string with_roots = text;
    with_roots.insert(with_roots.find("[auth]") + 6,
                      "\nmanufacturer-roots = \"" + fixturePki() + "/manufacturer-roots.pem\"\n" +
                          (toml.find("mic-issuers") == std::string::npos
                               ? "mic-issuers = [\"Test Manufacturing CA SHA2\"]\n"
                               : "") +
                          (toml.find("mic-models") == std::string::npos
                               ? "mic-models = [\"CP-8875\", \"DP-9841\"]\n"
                               : ""));
    // Written too, so that a configuration reload can read it again.
    config = parseConfig(with_roots, dir.write("scep.toml", with_roots));
    state = bootstrapState(config, now);
    store = openSqliteStore(dir.file("state/scep-ra.db"));
    service = std::make_unique<RaServices>(config, state, *store, log, [this] { return now; });
}

TestRa::Reply TestRa::open(const Bytes& reply, EVP_PKEY& key, X509& signer) {
    Reply out{parseCertRep(reply, *state.ra.cert), nullptr};
    if (out.rep.status == PkiStatus::success) {
        auto content = openCertRep(out.rep.envelope, key, signer);
        if (!content.certificates.empty()) {
            out.cert = std::move(content.certificates.front());
        }
    }
    return out;
}

TestRa::Reply TestRa::send(X509& signer, EVP_PKEY& signer_key, MessageType type,
                           const Bytes& content, const std::string& transaction_id,
                           int cipher_nid) {
    RequestParams params;
    params.type = type;
    params.transaction_id = transaction_id.empty() ? randomTransactionId() : transaction_id;
    params.cipher_nid = cipher_nid;
    const Bytes message = buildPkiMessage(params, content, signer, signer_key, *state.ra.cert);
    return open(service->responder().pkiOperation(message, "192.0.2.7"), signer_key, signer);
}

TestRa::Reply TestRa::enroll(X509& signer, EVP_PKEY& signer_key, EVP_PKEY& csr_key,
                             const CsrSpec& spec, const std::string& transaction_id,
                             MessageType type, int cipher_nid) {
    const X509ReqPtr csr = makeCsr(csr_key, spec);
    return send(signer, signer_key, type, requestDer(*csr), transaction_id, cipher_nid);
}

}  // namespace testsupport
