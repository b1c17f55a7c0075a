// scep_probe: a scriptable SCEP test client for the integration tests. It
// builds requests the real clients (micromdm scepclient, strongSwan pki)
// cannot produce -- GetCert, GetCRL, CertPoll, unknown message types, EC
// signers, single DES, chosen transactionIDs and nonces -- and reads CertRep
// replies. HTTP is left to the caller (the Python suite).
//
//   scep_probe build --type PKCSReq|RenewalReq|CertPoll|GetCert|GetCRL|<number>
//                    --ra-cert RA.pem|der
//                    [--signer-cert C --signer-key K]   (default: self-signed from --csr-key)
//                    [--signer-out FILE]                (writes the signer certificate, PEM)
//                    [--csr-key NEWKEY --cn CN] [--san dns:X] [--san email:Y] [--challenge S]
//                    [--transaction-id T] [--sender-nonce HEX]
//                    [--cipher aes128|aes192|aes256|des3|des] [--digest
//                    md5|sha1|sha224|sha256|sha384|sha512]
//                    [--issuer-serial-of CERT]          (GetCert/GetCRL content)
//                    [--content-file F]                 (raw inner content, overrides all)
//                    --out msg.der
//     prints {"transactionId": ..., "senderNonce": hex, "bytes": n}
//
//   scep_probe read --ra-cert RA --in reply.der [--key K --cert C]
//     prints {"status", "statusCode", "failInfo", "failInfoCode", "transactionId",
//             "senderNonce", "recipientNonce", "certificates": [pem...], "crls": n,
//             "crlPems": [pem...]}
//
// Exit status: 0 on success, 2 on usage or processing errors (message on stderr).
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/fingerprint.h"
#include "ra/crypto.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/message.h"

namespace {

using namespace scep;

const char* kUsage =
    "usage: scep_probe build --type T --ra-cert RA [--signer-cert C --signer-key K] [--signer-out "
    "F]\n"
    "                        [--csr-key K --cn CN] [--san dns:X|email:Y]... [--challenge S]\n"
    "                        [--transaction-id T] [--sender-nonce HEX]\n"
    "                        [--cipher aes128|aes192|aes256|des3|des]\n"
    "                        [--digest md5|sha1|sha224|sha256|sha384|sha512]\n"
    "                        [--issuer-serial-of CERT] [--content-file F] --out FILE\n"
    "       scep_probe read --ra-cert RA --in FILE [--key K --cert C]\n";

struct Arguments {
    std::string command;
    std::multimap<std::string, std::string> options;

    bool has(const std::string& name) const { return options.count(name) != 0; }
    std::string get(const std::string& name, const std::string& fallback = "") const {
        const auto it = options.find(name);
        return it == options.end() ? fallback : it->second;
    }
    std::string need(const std::string& name) const {
        if (!has(name)) {
            throw std::invalid_argument("--" + name + " is required");
        }
        return get(name);
    }
    std::vector<std::string> all(const std::string& name) const {
        std::vector<std::string> out;
        const auto range = options.equal_range(name);
        for (auto it = range.first; it != range.second; ++it) {
            out.push_back(it->second);
        }
        return out;
    }
};

Arguments parse(int argc, char** argv) {
    Arguments args;
    if (argc < 2) {
        throw std::invalid_argument("missing command");
    }
    args.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0 || i + 1 >= argc) {
            throw std::invalid_argument("unexpected argument '" + arg + "'");
        }
        args.options.emplace(arg.substr(2), argv[++i]);
    }
    return args;
}

Bytes readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read '" + path + "'");
    }
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeFile(const std::string& path, const Bytes& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    if (!out) {
        throw std::runtime_error("cannot write '" + path + "'");
    }
}

// PEM or DER.
X509Ptr loadCertificate(const std::string& path) {
    const Bytes data = readFile(path);
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (X509* pem = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        return X509Ptr(pem);
    }
    ERR_clear_error();
    return certificateFromDer(data);
}

int digestNid(const std::string& name) {
    static const std::map<std::string, int> digests = {
        {"md5", NID_md5},       {"sha1", NID_sha1},     {"sha224", NID_sha224},
        {"sha256", NID_sha256}, {"sha384", NID_sha384}, {"sha512", NID_sha512}};
    const auto it = digests.find(name);
    if (it == digests.end()) {
        throw std::invalid_argument("unknown --digest '" + name + "'");
    }
    return it->second;
}

int cipherNid(const std::string& name) {
    static const std::map<std::string, int> ciphers = {
        {"aes", NID_aes_128_cbc},    {"aes128", NID_aes_128_cbc}, {"aes192", NID_aes_192_cbc},
        {"aes256", NID_aes_256_cbc}, {"des3", NID_des_ede3_cbc},  {"des", NID_des_cbc},
        {"rc2", NID_rc2_cbc},        {"bf", NID_bf_cbc}};
    const auto it = ciphers.find(name);
    if (it == ciphers.end()) {
        throw std::invalid_argument("unknown --cipher '" + name + "'");
    }
    return it->second;
}

int messageType(const std::string& name) {
    static const std::map<std::string, MessageType> types = {
        {"PKCSReq", MessageType::PKCSReq},   {"RenewalReq", MessageType::RenewalReq},
        {"CertPoll", MessageType::CertPoll}, {"GetCertInitial", MessageType::CertPoll},
        {"GetCert", MessageType::GetCert},   {"GetCRL", MessageType::GetCRL},
        {"CertRep", MessageType::CertRep}};
    const auto it = types.find(name);
    if (it != types.end()) {
        return static_cast<int>(it->second);
    }
    if (name.empty() || name.size() > 6 ||
        name.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("unknown --type '" + name + "'");
    }
    return std::stoi(name);
}

X509NamePtr commonNameOnly(const std::string& cn) {
    X509NamePtr name(X509_NAME_new());
    if (!name || X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                            reinterpret_cast<const unsigned char*>(cn.data()),
                                            static_cast<int>(cn.size()), -1, 0) != 1) {
        throw CryptoError("cannot build name CN=" + cn);
    }
    return name;
}

// PKCS#10 with subject CN only, optional SANs and challengePassword.
Bytes buildCsr(EVP_PKEY& key, const std::string& cn, const std::vector<std::string>& sans,
               const std::string* challenge) {
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);  // v1, the only version PKCS#10 defines
    const X509NamePtr subject = commonNameOnly(cn);
    if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
        X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
        X509_REQ_set_pubkey(req.get(), &key) != 1) {
        throw CryptoError("cannot build CSR");
    }
    if (!sans.empty()) {
        GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
        for (const std::string& san : sans) {
            const auto colon = san.find(':');
            const std::string kind = colon == std::string::npos ? "" : san.substr(0, colon);
            const std::string value = colon == std::string::npos ? "" : san.substr(colon + 1);
            int type = 0;
            if (kind == "dns") {
                type = GEN_DNS;
            } else if (kind == "email") {
                type = GEN_EMAIL;
            } else if (kind == "uri") {
                type = GEN_URI;
            } else {
                throw std::invalid_argument("--san must be dns:X, email:Y or uri:Z");
            }
            ASN1_IA5STRING* text = ASN1_IA5STRING_new();
            GENERAL_NAME* name = GENERAL_NAME_new();
            ASN1_STRING_set(text, value.data(), static_cast<int>(value.size()));
            GENERAL_NAME_set0_value(name, type, text);
            sk_GENERAL_NAME_push(names.get(), name);
        }
        STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
        X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
        sk_X509_EXTENSION_push(extensions, ext);
        const int ok = X509_REQ_add_extensions(req.get(), extensions);
        sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
        if (ok != 1) {
            throw CryptoError("cannot add subjectAltName to CSR");
        }
    }
    if (challenge) {
        if (X509_REQ_add1_attr_by_NID(req.get(), NID_pkcs9_challengePassword, MBSTRING_ASC,
                                      reinterpret_cast<const unsigned char*>(challenge->data()),
                                      static_cast<int>(challenge->size())) != 1) {
            throw CryptoError("cannot add challengePassword");
        }
    }
    if (X509_REQ_sign(req.get(), &key, EVP_sha256()) <= 0) {
        throw CryptoError("cannot sign CSR");
    }
    return requestDer(*req);
}

// What pki and micromdm do: a throw-away self-signed signer for the request key.
X509Ptr selfSigned(EVP_PKEY& key, const std::string& cn) {
    X509Ptr cert(X509_new());
    const X509NamePtr name = commonNameOnly(cn.empty() ? "SCEP PROBE" : cn);
    unsigned char serial_bytes[8];
    RAND_bytes(serial_bytes, sizeof(serial_bytes));
    serial_bytes[0] &= 0x7f;
    serial_bytes[0] |= 0x01;
    BignumPtr bn(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
    if (!cert || X509_set_version(cert.get(), 2) != 1 ||
        !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) ||
        X509_set_subject_name(cert.get(), name.get()) != 1 ||
        X509_set_issuer_name(cert.get(), name.get()) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600) ||
        X509_set_pubkey(cert.get(), &key) != 1 || X509_sign(cert.get(), &key, EVP_sha256()) <= 0) {
        throw CryptoError("cannot build self-signed signer");
    }
    return cert;
}

// pki's transactionID: upper-case hex SHA-1 of the SubjectPublicKeyInfo DER.
std::string pkiStyleTransactionId(const EVP_PKEY& key) {
    unsigned char* der = nullptr;
    const int length = i2d_PUBKEY(&key, &der);
    if (length <= 0) {
        throw CryptoError("cannot encode public key");
    }
    unsigned char digest[20];
    unsigned int size = 0;
    EVP_Digest(der, static_cast<size_t>(length), digest, &size, EVP_sha1(), nullptr);
    OPENSSL_free(der);
    return toHex(Bytes(digest, digest + size));
}

int build(const Arguments& args) {
    const int type = messageType(args.need("type"));
    const X509Ptr ra_cert = loadCertificate(args.need("ra-cert"));
    const std::string out_path = args.need("out");
    const std::string cn = args.get("cn");

    EvpPkeyPtr csr_key;
    if (args.has("csr-key")) {
        csr_key = loadPrivateKeyFile(args.get("csr-key"));
    }
    X509Ptr signer;
    EvpPkeyPtr signer_key;
    if (args.has("signer-cert") != args.has("signer-key")) {
        throw std::invalid_argument("--signer-cert and --signer-key go together");
    }
    if (args.has("signer-cert")) {
        signer = loadCertificate(args.get("signer-cert"));
        signer_key = loadPrivateKeyFile(args.get("signer-key"));
    } else {
        if (!csr_key) {
            throw std::invalid_argument("without --signer-cert, --csr-key is required");
        }
        signer_key = loadPrivateKeyFile(args.get("csr-key"));
        signer = selfSigned(*signer_key, cn);
    }
    if (args.has("signer-out")) {
        const std::string pem = certificatePem(*signer);
        writeFile(args.get("signer-out"), Bytes(pem.begin(), pem.end()));
    }

    Bytes content;
    if (args.has("content-file")) {
        content = readFile(args.get("content-file"));
    } else if (args.has("issuer-serial-of")) {
        const X509Ptr cert = loadCertificate(args.get("issuer-serial-of"));
        content = issuerAndSerialDer(*X509_get_issuer_name(cert.get()),
                                     *X509_get0_serialNumber(cert.get()));
    } else if (type == static_cast<int>(MessageType::CertPoll)) {
        const X509NamePtr subject = commonNameOnly(cn.empty() ? "unknown" : cn);
        content = issuerAndSubjectDer(*X509_get_issuer_name(ra_cert.get()), *subject);
    } else if (csr_key) {
        if (cn.empty()) {
            throw std::invalid_argument("--cn is required with --csr-key");
        }
        const std::string challenge = args.get("challenge");
        content =
            buildCsr(*csr_key, cn, args.all("san"), args.has("challenge") ? &challenge : nullptr);
    } else {
        throw std::invalid_argument(
            "no content: give --csr-key, --issuer-serial-of or --content-file");
    }

    RequestParams params;
    params.type = static_cast<MessageType>(type);
    if (args.has("transaction-id")) {
        params.transaction_id = args.get("transaction-id");
    } else if (csr_key) {
        params.transaction_id = pkiStyleTransactionId(*csr_key);
    } else {
        Bytes random(16);
        RAND_bytes(random.data(), static_cast<int>(random.size()));
        params.transaction_id = toHex(random);
    }
    if (args.has("sender-nonce")) {
        params.sender_nonce = parseHex(args.get("sender-nonce"));
    } else {
        params.sender_nonce.resize(16);
        RAND_bytes(params.sender_nonce.data(), 16);
    }
    params.digest_nid = digestNid(args.get("digest", "sha256"));
    params.cipher_nid = cipherNid(args.get("cipher", "aes128"));

    const Bytes message = buildPkiMessage(params, content, *signer, *signer_key, *ra_cert);
    writeFile(out_path, message);
    nlohmann::json result = {{"transactionId", params.transaction_id},
                             {"senderNonce", toHex(params.sender_nonce)},
                             {"bytes", message.size()}};
    std::cout << result.dump() << "\n";
    return 0;
}

std::string crlPem(X509_CRL& crl) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509_CRL(bio.get(), &crl);
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

int read(const Arguments& args) {
    const X509Ptr ra_cert = loadCertificate(args.need("ra-cert"));
    const Bytes reply = readFile(args.need("in"));
    const CertRepView view = parseCertRep(reply, *ra_cert);
    nlohmann::json result;
    const int status = static_cast<int>(view.status);
    result["statusCode"] = status;
    result["status"] = view.status == PkiStatus::success   ? "SUCCESS"
                       : view.status == PkiStatus::pending ? "PENDING"
                                                           : "FAILURE";
    result["failInfo"] = view.fail ? nlohmann::json(failInfoName(*view.fail)) : nlohmann::json();
    result["failInfoCode"] =
        view.fail ? nlohmann::json(static_cast<int>(*view.fail)) : nlohmann::json();
    result["transactionId"] = view.transaction_id;
    result["senderNonce"] = toHex(view.sender_nonce);
    result["recipientNonce"] = toHex(view.recipient_nonce);
    result["certificates"] = nlohmann::json::array();
    result["crlPems"] = nlohmann::json::array();
    result["crls"] = 0;
    result["decrypted"] = false;
    if (view.status == PkiStatus::success && args.has("key")) {
        const EvpPkeyPtr key = loadPrivateKeyFile(args.get("key"));
        const X509Ptr cert = loadCertificate(args.need("cert"));
        const DegenerateContent content = openCertRep(view.envelope, *key, *cert);
        for (const auto& c : content.certificates) {
            result["certificates"].push_back(certificatePem(*c));
        }
        for (const auto& crl : content.crls) {
            result["crlPems"].push_back(crlPem(*crl));
        }
        result["crls"] = content.crls.size();
        result["decrypted"] = true;
    }
    std::cout << result.dump() << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Arguments args = parse(argc, argv);
        if (args.command == "build") {
            return build(args);
        }
        if (args.command == "read") {
            return read(args);
        }
        throw std::invalid_argument("unknown command '" + args.command + "'");
    } catch (const std::invalid_argument& e) {
        std::cerr << "scep_probe: " << e.what() << "\n" << kUsage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "scep_probe: " << e.what() << "\n";
        return 2;
    }
}
