#include "common/fingerprint.h"

#include <cctype>
#include <cstdio>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace scep {

namespace {

struct DigestInfo {
    Digest digest;
    const char* name;
    std::size_t length;
};

constexpr DigestInfo kDigests[] = {
    {Digest::sha1, "sha1", 20},
    {Digest::sha256, "sha256", 32},
    {Digest::sha384, "sha384", 48},
    {Digest::sha512, "sha512", 64},
};

const DigestInfo& info(Digest digest) {
    for (const auto& entry : kDigests) {
        if (entry.digest == digest) {
            return entry;
        }
    }
    throw std::logic_error("unknown digest");
}

const EVP_MD* evpDigest(Digest digest) {
    switch (digest) {
    case Digest::sha1:
        return EVP_sha1();
    case Digest::sha256:
        return EVP_sha256();
    case Digest::sha384:
        return EVP_sha384();
    case Digest::sha512:
        return EVP_sha512();
    }
    throw std::logic_error("unknown digest");
}

struct FileCloser {
    void operator()(FILE* file) const { std::fclose(file); }
};

}  // namespace

std::optional<Digest> digestFromName(std::string_view name) {
    for (const auto& entry : kDigests) {
        if (name == entry.name) {
            return entry.digest;
        }
    }
    return std::nullopt;
}

const char* digestName(Digest digest) {
    return info(digest).name;
}

std::size_t digestLength(Digest digest) {
    return info(digest).length;
}

std::optional<Digest> digestForLength(std::size_t length) {
    for (const auto& entry : kDigests) {
        if (entry.length == length) {
            return entry.digest;
        }
    }
    return std::nullopt;
}

X509Ptr loadCertificateFile(const std::string& path) {
    std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        throw std::runtime_error("cannot open certificate file '" + path + "'");
    }
    X509Ptr cert(PEM_read_X509(file.get(), nullptr, nullptr, nullptr));
    if (!cert) {
        std::rewind(file.get());
        cert.reset(d2i_X509_fp(file.get(), nullptr));
    }
    ERR_clear_error();
    if (!cert) {
        throw std::runtime_error("'" + path + "' holds no PEM or DER X.509 certificate");
    }
    return cert;
}

Bytes certificateFingerprint(const X509& cert, Digest digest) {
    Bytes out(EVP_MAX_MD_SIZE);
    unsigned int length = 0;
    if (X509_digest(&cert, evpDigest(digest), out.data(), &length) != 1) {
        ERR_clear_error();
        throw std::runtime_error("cannot hash certificate");
    }
    out.resize(length);
    return out;
}

Bytes parseHex(std::string_view text) {
    std::string digits;
    digits.reserve(text.size());
    for (char c : text) {
        if (c == ':' || std::isspace(static_cast<unsigned char>(c))) {
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            throw std::invalid_argument(std::string("'") + c + "' is not a hex digit");
        }
        digits.push_back(c);
    }
    if (digits.empty()) {
        throw std::invalid_argument("no hex digits");
    }
    if (digits.size() % 2 != 0) {
        throw std::invalid_argument("odd number of hex digits (" + std::to_string(digits.size()) +
                                    ")");
    }
    Bytes out(digits.size() / 2);
    std::size_t written = 0;
    if (OPENSSL_hexstr2buf_ex(out.data(), out.size(), &written, digits.c_str(), '\0') != 1) {
        ERR_clear_error();
        throw std::invalid_argument("not valid hex");
    }
    out.resize(written);
    return out;
}

std::string toHex(const Bytes& bytes, char separator) {
    if (bytes.empty()) {
        return {};
    }
    std::string out(bytes.size() * 3 + 1, '\0');
    std::size_t written = 0;
    if (OPENSSL_buf2hexstr_ex(out.data(), out.size(), &written, bytes.data(), bytes.size(),
                              separator) != 1) {
        throw std::runtime_error("hex encoding failed");
    }
    out.resize(written > 0 ? written - 1 : 0);  // drop the terminating NUL
    return out;
}

}  // namespace scep
