// The configuration a request is answered with: the parsed file and what is
// built from it (the manufacturer roots). Immutable once built. Requests hold
// it by shared_ptr, so a reload (ra/reload.h) never changes the rules under a
// request being answered; the next request sees the new ones.
#pragma once

#include <utility>

#include "ra/config.h"
#include "ra/auth/authenticator.h"

namespace scep {

struct RuntimeConfig {
    // Loads the manufacturer-roots bundle; throws like ManufacturerRoots.
    RuntimeConfig(Config parsed, X509& ca_cert)
        : config(std::move(parsed)), authenticator(config, ca_cert) {}
    RuntimeConfig(const RuntimeConfig&) = delete;
    RuntimeConfig& operator=(const RuntimeConfig&) = delete;

    const Config config;
    const Authenticator authenticator;  // refers to `config`
};

}  // namespace scep
