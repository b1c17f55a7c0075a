// Shared by the libFuzzer targets: the fixed RA identity the seed messages
// are encrypted to, the inner-content parsers the RA runs after decryption,
// and a check that aborts (a crash to libFuzzer) when a property fails.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"

namespace scep::fuzz {

// fuzz/ra-cert.pem and fuzz/ra-key.pem, embedded at build time: a public
// 1024-bit test key. Its size keeps the private-key operation per input
// cheap; the parsers under test do not depend on it.
X509& raCertificate();
EVP_PKEY& raKey();

Bytes toBytes(const std::uint8_t* data, std::size_t size);

// What the RA does with a decrypted pkcsPKIEnvelope, with the exceptions its
// callers catch (responder.cc, authenticator.cc); anything else escapes and
// is a finding.
void parseInnerContent(const Bytes& content);

// OpenSSL's error queue grows with every failed parse unless emptied.
void clearErrors();

// A broken property: print it and abort, which libFuzzer reports as a crash.
[[noreturn]] void fail(const char* property);

inline void require(bool holds, const char* property) {
    if (!holds) {
        fail(property);
    }
}

}  // namespace scep::fuzz
