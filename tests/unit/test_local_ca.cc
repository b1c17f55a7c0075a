// The embedded CA and state-dir bootstrap: file modes, reuse, refusal to
// create from admin commands, bring-your-own material, CRLs.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <openssl/core_names.h>

#include "common/fingerprint.h"
#include "ra/ca/bootstrap.h"
#include "ra/ca/certificate.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"
#include "ra/store/store.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

Config configIn(const TempDir& dir, const std::string& extra = "") {
    return parseConfig("[ra]\nstate-dir = \"state\"\n" + extra, dir.file("scep.toml"));
}

}  // namespace

TEST_CASE(
    "first start creates CA and RA with 0600 keys in a 0700 state-dir; later starts reuse them") {
    TempDir dir;
    const Config config = configIn(dir);
    const std::time_t now = std::time(nullptr);
    const CaMaterial first = bootstrapState(config, now);
    CHECK(first.created.size() == 6);  // CA, RA and admin TLS: certificate and key each
    CHECK(modeOf(dir.file("state")) == 0700);
    CHECK(modeOf(dir.file("state/ca.key")) == 0600);
    CHECK(modeOf(dir.file("state/ra.key")) == 0600);
    CHECK(modeOf(dir.file("state/ca.pem")) == 0644);

    X509& ca = first.ca->certificate();
    CHECK(X509_check_ca(&ca) != 0);
    CHECK(isSelfSigned(ca));
    X509& ra = *first.ra.cert;
    CHECK(isRsa(*X509_get0_pubkey(&ra)));
    CHECK(X509_check_issued(&ca, &ra) == X509_V_OK);
    CHECK(X509_get_key_usage(&ra) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
    CHECK(X509_check_ca(&ra) == 0);

    const CaMaterial second = bootstrapState(config, now);
    CHECK(second.created.empty());
    CHECK(X509_cmp(&second.ca->certificate(), &ca) == 0);
    CHECK(X509_cmp(second.ra.cert.get(), &ra) == 0);
}

TEST_CASE("admin commands never create a CA") {
    TempDir dir;
    CHECK_THROWS_WITH(bootstrapState(configIn(dir), std::time(nullptr), Creation::none),
                      doctest::Contains("holds no CA yet"));
}

TEST_CASE("an RA certificate close to expiry is re-issued at start, for the same key") {
    TempDir dir;
    const Config config = configIn(dir);
    const std::time_t now = std::time(nullptr);
    const CaMaterial first = bootstrapState(config, now);
    const std::string key_before = readText(dir.file("state/ra.key"));
    const CaMaterial later = bootstrapState(config, now + 2 * 365 * 86400 - 10 * 86400);
    CHECK(X509_cmp(later.ra.cert.get(), first.ra.cert.get()) != 0);
    CHECK(X509_cmp(&later.ca->certificate(), &first.ca->certificate()) == 0);
    CHECK(EVP_PKEY_eq(later.ra.key.get(), first.ra.key.get()) == 1);
    CHECK(readText(dir.file("state/ra.key")) == key_before);
    CHECK(X509_check_private_key(later.ra.cert.get(), later.ra.key.get()) == 1);
}

TEST_CASE("a CA key without its certificate refuses start-up and is never replaced") {
    // The reported loss: ca.pem moved away, serve generated a new CA and
    // renamed its key over the existing ca.key.
    TempDir dir;
    const Config config = configIn(dir);
    bootstrapState(config, std::time(nullptr));
    const std::string key_before = readText(dir.file("state/ca.key"));
    REQUIRE(::rename(dir.file("state/ca.pem").c_str(), dir.file("ca.pem.moved").c_str()) == 0);
    for (const Creation creation : {Creation::first_start, Creation::init, Creation::none}) {
        CHECK_THROWS_WITH(bootstrapState(config, std::time(nullptr), creation),
                          doctest::Contains("ca.key' exists but"));
        CHECK(readText(dir.file("state/ca.key")) == key_before);
        CHECK_FALSE(fileExists(dir.file("state/ca.pem")));
    }
    // The other half missing is refused too, naming the key to restore.
    REQUIRE(::rename(dir.file("ca.pem.moved").c_str(), dir.file("state/ca.pem").c_str()) == 0);
    REQUIRE(::rename(dir.file("state/ca.key").c_str(), dir.file("ca.key.moved").c_str()) == 0);
    CHECK_THROWS_WITH(bootstrapState(config, std::time(nullptr)),
                      doctest::Contains("restore ca.key from a backup"));
}

TEST_CASE("a CA is created only in an empty state-dir, or by init where no earlier records are") {
    TempDir dir;
    const Config config = configIn(dir);
    ::mkdir(dir.file("state").c_str(), 0700);
    std::ofstream(dir.file("state/crl.der")) << "left over";
    CHECK_FALSE(isNewStateDir(config));
    CHECK_THROWS_WITH(bootstrapState(config, std::time(nullptr)),
                      doctest::Contains("refusing to create a new CA over existing state"));
    CHECK_FALSE(fileExists(dir.file("state/ca.key")));

    // An earlier CA's database blocks even init: a new CA could not revoke
    // what it lists.
    openSqliteStore(dir.file("state/scep-ra.db"));
    CHECK_THROWS_WITH(bootstrapState(config, std::time(nullptr), Creation::init),
                      doctest::Contains("holds the records of an earlier CA"));
    CHECK_FALSE(fileExists(dir.file("state/ca.key")));

    REQUIRE(std::remove(dir.file("state/scep-ra.db").c_str()) == 0);
    std::remove(dir.file("state/scep-ra.db-wal").c_str());
    std::remove(dir.file("state/scep-ra.db-shm").c_str());
    const CaMaterial state = bootstrapState(config, std::time(nullptr), Creation::init);
    CHECK(fileExists(dir.file("state/ca.key")));
    CHECK(X509_check_ca(&state.ca->certificate()) != 0);
}

TEST_CASE("the database must exist where the CA does") {
    TempDir dir;
    const Config config = configIn(dir);
    bootstrapState(config, std::time(nullptr));
    CHECK_THROWS_WITH(requireDatabase(config), doctest::Contains("is missing"));
    std::ofstream(dir.file("state/scep-ra.db")).flush();  // the 0-byte file of the report
    CHECK_THROWS_WITH(requireDatabase(config), doctest::Contains("is empty"));
    CHECK(databaseMissing(config));
    REQUIRE(std::remove(dir.file("state/scep-ra.db").c_str()) == 0);
    openSqliteStore(dir.file("state/scep-ra.db"));
    CHECK_NOTHROW(requireDatabase(config));
    CHECK_FALSE(databaseMissing(config));
}

TEST_CASE("the state-dir lock admits one holder at a time") {
    TempDir dir;
    const Config config = configIn(dir);
    makeStateDir(config.ra.state_dir);
    {
        const StateDirLock first(config);
        CHECK_THROWS_WITH(StateDirLock{config}, doctest::Contains("is in use"));
    }
    CHECK_NOTHROW(StateDirLock{config});
    CHECK(isNewStateDir(config));  // the lock file alone does not make it used
}

TEST_CASE("the CA key type follows [ca] key") {
    TempDir dir;
    const CaMaterial state =
        bootstrapState(configIn(dir, "[ca]\nkey = \"ec:p256\"\n"), std::time(nullptr));
    CHECK(EVP_PKEY_get_base_id(X509_get0_pubkey(&state.ca->certificate())) == EVP_PKEY_EC);
    CHECK(isRsa(*X509_get0_pubkey(state.ra.cert.get())));  // the RA stays RSA
}

TEST_CASE("bring-your-own CA and RA files are checked") {
    TempDir generated;
    const CaMaterial made = bootstrapState(configIn(generated), std::time(nullptr));
    TempDir dir;
    const std::string own = "[ca]\ncert = \"" + generated.file("state/ca.pem") +
                            "\"\nkey-file = \"" + generated.file("state/ca.key") + "\"\n";
    const CaMaterial state = bootstrapState(configIn(dir, own), std::time(nullptr));
    CHECK(X509_cmp(&state.ca->certificate(), &made.ca->certificate()) == 0);
    CHECK(state.created.size() == 4);  // only the RA and admin TLS material

    TempDir wrong;
    const std::string mismatched = "[ca]\ncert = \"" + generated.file("state/ca.pem") +
                                   "\"\nkey-file = \"" + generated.file("state/ra.key") + "\"\n";
    CHECK_THROWS_WITH(bootstrapState(configIn(wrong, mismatched), std::time(nullptr)),
                      doctest::Contains("does not match certificate"));
    const std::string not_ca = "[ca]\ncert = \"" + generated.file("state/ra.pem") +
                               "\"\nkey-file = \"" + generated.file("state/ra.key") + "\"\n";
    CHECK_THROWS_WITH(bootstrapState(configIn(wrong, not_ca), std::time(nullptr)),
                      doctest::Contains("is not a CA certificate"));
}

TEST_CASE("issued certificates never outlive the CA") {
    TempDir dir;
    const std::time_t now = std::time(nullptr);
    const Config config = configIn(dir, "[ca]\nvalidity-days = 3650\n");
    const CaMaterial state = bootstrapState(config, now);
    const auto key = generateKey("rsa:2048");
    const X509Ptr cert =
        state.ca->issue({key.get(), nullptr, "x", {}, {}, ""}, now + 15 * 365 * 86400, config.ca)
            .certificate;
    CHECK(asn1TimeToUnix(X509_get0_notAfter(cert.get())) ==
          asn1TimeToUnix(X509_get0_notAfter(&state.ca->certificate())));
}

TEST_CASE("CRLs list revoked serials with reason codes and are signed by the CA") {
    TempDir dir;
    const std::time_t now = std::time(nullptr);
    const Config config = configIn(dir, "[ca]\ncrl-days = 3\n");
    const CaMaterial state = bootstrapState(config, now);
    CertificateRecord revoked;
    revoked.serial = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
    revoked.revocation_reason = 1;
    revoked.revoked_at = now - 100;
    CertificateRecord unspecified = revoked;
    unspecified.serial = "11";
    unspecified.revocation_reason = 0;
    const X509CrlPtr crl = state.ca->crl({revoked, unspecified}, now, config.ca);
    CHECK(X509_CRL_verify(crl.get(), X509_get0_pubkey(&state.ca->certificate())) == 1);
    CHECK(asn1TimeToUnix(X509_CRL_get0_nextUpdate(crl.get())) == now + 3 * 86400);
    CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())) == 2);
    bool saw_reason = false;
    for (int i = 0; i < sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())); ++i) {
        X509_REVOKED* entry = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl.get()), i);
        OpenSslPtr<ASN1_ENUMERATED, ASN1_ENUMERATED_free> reason(static_cast<ASN1_ENUMERATED*>(
            X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr)));
        const std::string serial = serialHex(X509_REVOKED_get0_serialNumber(entry));
        if (serial == revoked.serial) {
            REQUIRE(reason);
            CHECK(ASN1_ENUMERATED_get(reason.get()) == 1);
            saw_reason = true;
        } else {
            CHECK(serial == "11");
            CHECK_FALSE(reason);  // unspecified is left out, per RFC 5280
        }
    }
    CHECK(saw_reason);
}

TEST_CASE("private key files refuse to be overwritten") {
    TempDir dir;
    const auto key = generateKey("ec:p256");
    writePrivateKeyFile(dir.file("k.pem"), *key);
    CHECK(modeOf(dir.file("k.pem")) == 0600);
    CHECK_THROWS(writePrivateKeyFile(dir.file("k.pem"), *key));
    CHECK(EVP_PKEY_eq(loadPrivateKeyFile(dir.file("k.pem")).get(), key.get()) == 1);
}

TEST_CASE("the CSR's public key is copied into the certificate exactly, RSA and EC alike") {
    TempDir dir;
    const std::time_t now = std::time(nullptr);
    const Config config = configIn(dir);
    const CaMaterial state = bootstrapState(config, now);
    for (const char* spec : {"rsa:2048", "ec:p256", "ec:p384"}) {
        CAPTURE(spec);
        const auto key = generateKey(spec);
        const auto csr = makeCsr(*key, {"device", {}, {}});
        const X509Ptr issued = state.ca
                                   ->issue({X509_REQ_get0_pubkey(csr.get()),
                                            X509_REQ_get_X509_PUBKEY(csr.get()),
                                            "device",
                                            {},
                                            {},
                                            ""},
                                           now, config.ca)
                                   .certificate;
        // As the client receives it.
        const X509Ptr cert = certificateFromDer(certificateDer(*issued));
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()) == 1);
        CHECK(X509_verify(cert.get(), X509_get0_pubkey(&state.ca->certificate())) == 1);
        CHECK(X509_get0_subject_key_id(cert.get()) != nullptr);
        CHECK(publicKeyId(*X509_get_X509_PUBKEY(cert.get())) == publicKeyId(*key));
    }
}

TEST_CASE(
    "the admin listener gets a TLS server certificate from the CA, for the names a browser uses") {
    TempDir dir;
    const std::time_t now = std::time(nullptr);
    const Config config = configIn(dir, "[admin]\nlisten = \"192.0.2.10:8443\"\n");
    const CaMaterial state = bootstrapState(config, now);
    X509& tls = *state.admin.cert;
    CHECK(modeOf(dir.file("state/admin.key")) == 0600);
    CHECK(X509_check_issued(&state.ca->certificate(), &tls) == X509_V_OK);
    CHECK((X509_get_extended_key_usage(&tls) & XKU_SSL_SERVER) != 0);
    CHECK(X509_check_host(&tls, "localhost", 0, 0, nullptr) == 1);
    CHECK(X509_check_ip_asc(&tls, "127.0.0.1", 0) == 1);
    CHECK(X509_check_ip_asc(&tls, "::1", 0) == 1);
    CHECK(X509_check_ip_asc(&tls, "192.0.2.10", 0) == 1);
    CHECK(X509_check_private_key(&tls, state.admin.key.get()) == 1);

    // A new listen address gets a certificate that names it, for the same key.
    const CaMaterial moved =
        bootstrapState(configIn(dir, "[admin]\nlisten = \"192.0.2.11:8443\"\n"), now);
    CHECK(X509_check_ip_asc(moved.admin.cert.get(), "192.0.2.11", 0) == 1);
    CHECK(EVP_PKEY_eq(moved.admin.key.get(), state.admin.key.get()) == 1);
    // Disabled: no TLS identity at all.
    TempDir off;
    const CaMaterial none = bootstrapState(configIn(off, "[admin]\nlisten = \"\"\n"), now);
    CHECK_FALSE(none.admin.cert);
    CHECK(none.created.size() == 4);
}

TEST_CASE("a bring-your-own CA whose EC key has explicit curve parameters is refused") {
    TempDir files;
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    REQUIRE(EVP_PKEY_set_utf8_string_param(key.get(), OSSL_PKEY_PARAM_EC_ENCODING,
                                           OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
    X509NamePtr name(X509_NAME_new());
    X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("Explicit CA"), -1, -1, 0);
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = key.get();
    spec.not_before = std::time(nullptr) - 60;
    spec.not_after = std::time(nullptr) + 86400 * 365;
    spec.ca = true;
    spec.key_usage = "critical,keyCertSign,cRLSign";
    const X509Ptr cert = signCertificate(spec, nullptr, *key);
    writePrivateKeyFile(files.file("ca.key"), *key);
    writeFileAtomically(files.file("ca.pem"), certificatePem(*cert), 0644);
    REQUIRE(hasExplicitEcParameters(
        *X509_get_X509_PUBKEY(loadCertificateFile(files.file("ca.pem")).get())));
    TempDir dir;
    const std::string own = "[ca]\ncert = \"" + files.file("ca.pem") + "\"\nkey-file = \"" +
                            files.file("ca.key") + "\"\n";
    CHECK_THROWS_WITH(bootstrapState(configIn(dir, own), std::time(nullptr)),
                      doctest::Contains("explicit curve parameters"));
}
