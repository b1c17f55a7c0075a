// ManufacturerRoots: a bundle of trust anchors and intermediates, and chain
// building against it (for the MIC/SUDI roots and for [auth] ra-signers).
#include <stdexcept>
#include <string>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "ra/auth/authenticator.h"
#include "ra/crypto.h"

namespace scep {

namespace {

int rejectExpiredLeafOnly(int ok, X509_STORE_CTX* ctx) {
    if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_HAS_EXPIRED &&
        X509_STORE_CTX_get_error_depth(ctx) == 0) {
        return 1;  // MICs expire in the field; the operator chose to accept that
    }
    return ok;
}

}  // namespace

ManufacturerRoots::ManufacturerRoots(const std::string& bundle_path, const char* key)
    : store_(X509_STORE_new()) {
    if (!store_) {
        throw CryptoError("X509_STORE_new");
    }
    // Every problem names the [auth] key the bundle came from.
    const std::string prefix = std::string("key '") + key + "': ";
    std::vector<X509Ptr> bundle;
    try {
        bundle = loadCertificateBundle(bundle_path);
    } catch (const std::exception& e) {
        throw std::runtime_error(prefix + e.what());
    }
    for (X509Ptr& cert : bundle) {
        if (isSelfSigned(*cert)) {
            if (X509_STORE_add_cert(store_.get(), cert.get()) != 1) {
                throw CryptoError(prefix + "cannot add a root of '" + bundle_path + "'");
            }
            ++anchors_;
        } else {
            intermediates_.push_back(std::move(cert));
        }
    }
    if (anchors_ == 0) {
        throw std::runtime_error(prefix + "'" + bundle_path +
                                 "' holds no self-signed root certificate");
    }
}

std::string ManufacturerRoots::verify(X509& leaf, const std::vector<X509Ptr>& extra,
                                      bool allow_expired_leaf, std::time_t now,
                                      std::vector<X509Ptr>* chain) const {
    X509StackPtr untrusted(sk_X509_new_null());
    for (const auto* list : {&intermediates_, &extra}) {
        for (const X509Ptr& cert : *list) {
            if (X509_up_ref(cert.get()) != 1 || !sk_X509_push(untrusted.get(), cert.get())) {
                throw CryptoError("cannot build certificate chain");
            }
        }
    }
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), &leaf, untrusted.get()) != 1) {
        throw CryptoError("X509_STORE_CTX_init");
    }
    X509_STORE_CTX_set_time(ctx.get(), 0, now);
    if (allow_expired_leaf) {
        X509_STORE_CTX_set_verify_cb(ctx.get(), rejectExpiredLeafOnly);
    }
    const int ok = X509_verify_cert(ctx.get());
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    if (ok != 1) {
        return X509_verify_cert_error_string(error);
    }
    if (chain) {
        const STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(ctx.get());
        for (int i = 0; i < sk_X509_num(verified); ++i) {
            X509* cert = sk_X509_value(verified, i);
            if (X509_up_ref(cert) != 1) {
                throw CryptoError("X509_up_ref");
            }
            chain->emplace_back(cert);
        }
    }
    return {};
}

}  // namespace scep
