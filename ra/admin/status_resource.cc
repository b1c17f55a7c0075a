#include "ra/admin/status_resource.h"

#include <unistd.h>

#include <ctime>

#include "common/fingerprint.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"

namespace scep {

namespace {

using nlohmann::json;

std::string keyDescription(const EVP_PKEY& key) {
    if (isRsa(key)) {
        return "RSA " + std::to_string(EVP_PKEY_get_bits(&key));
    }
    char group[64] = {};
    std::size_t length = 0;
    EVP_PKEY_get_group_name(&key, group, sizeof(group), &length);
    return "EC " + std::string(group, length);
}

json certificateInfo(X509& cert) {
    json fingerprints = json::object();
    for (Digest digest : {Digest::sha1, Digest::sha256, Digest::sha384, Digest::sha512}) {
        fingerprints[digestName(digest)] = toHex(certificateFingerprint(cert, digest));
    }
    const EVP_PKEY* key = X509_get0_pubkey(&cert);
    return {{"subject", nameText(X509_get_subject_name(&cert))},
            {"issuer", nameText(X509_get_issuer_name(&cert))},
            {"serial", serialHex(X509_get0_serialNumber(&cert))},
            {"not_before", asn1TimeToUnix(X509_get0_notBefore(&cert))},
            {"not_after", asn1TimeToUnix(X509_get0_notAfter(&cert))},
            {"key", key ? keyDescription(*key) : ""},
            {"fingerprints", fingerprints},
            {"pem", certificatePem(cert)}};
}

}  // namespace

void StatusResource::health(const http::Request&, http::Response& res) {
    json checks = json::object();
    bool ok = true;
    const auto runtime = service_.runtime();
    const Config& config = runtime->config;
    try {
        store_.ping();
        store_.checkWritable();
        checks["database"] = "ok";
    } catch (const std::exception& e) {
        checks["database"] = e.what();
        ok = false;
    }
    // A full disk fails every enrollment while reads still work.
    const std::uint64_t free = availableBytes(config.ra.state_dir);
    if (free < config.ra.min_free_space) {
        checks["disk"] = "only " + std::to_string(free / (1024 * 1024)) + " MiB free in " +
                         config.ra.state_dir + " (min-free-space is " +
                         std::to_string(config.ra.min_free_space / (1024 * 1024)) + " MiB)";
        ok = false;
    } else {
        checks["disk"] = "ok";
    }
    const std::string key_file =
        config.ca.key_file.empty() ? stateFile(config, "ca.key") : config.ca.key_file;
    if (::access(key_file.c_str(), R_OK) != 0) {
        checks["ca_key"] = "cannot read " + key_file;
        ok = false;
    } else {
        checks["ca_key"] = "ok";
    }
    // An unreachable upstream CA degrades the RA without failing it: phones
    // still get PENDING and are served once it is back, so a load balancer
    // must not take this RA out for it.
    bool degraded = false;
    if (UpstreamCa* upstream = service_.upstream()) {
        const UpstreamHealth health = upstream->health();
        degraded = !health.reachable;
        checks["upstream"] = health.reachable ? "ok" : "unreachable: " + health.last_error;
    }
    sendJson(res,
             {{"status", !ok        ? "fail"
                         : degraded ? "degraded"
                                    : "ok"},
              {"checks", checks}},
             ok ? 200 : 503);
}

void StatusResource::metrics(const Principal&, const http::Request&, http::Response& res) {
    std::time_t next_update = 0;  // unknown: an upstream CA's CRL not to be had now
    try {
        next_update = service_.crlPublisher().crlInfo().next_update;
    } catch (const std::exception&) {
    }
    const std::string text = metrics_.render(store_, std::time(nullptr), next_update);
    res.set_content(text, "text/plain; version=0.0.4");
}

void StatusResource::whoami(const Principal& who, const http::Request&, http::Response& res) {
    sendJson(
        res,
        {{"name", who.name}, {"role", roleName(who.role)}, {"via", principalKindName(who.via)}});
}

void StatusResource::ca(const Principal&, const http::Request&, http::Response& res) {
    CaMaterial& state = service_.material();
    const auto runtime = service_.runtime();
    const Config& config = runtime->config;
    json paths = json::array({"/scep", "/cgi-bin/pkiclient.exe"});
    for (const auto& path : config.ra.paths) {
        paths.push_back(path);
    }
    json body = {
        {"ca", certificateInfo(service_.authority().certificate())},
        {"ra", certificateInfo(*state.ra.cert)},
        {"backend", caBackendName(config.ca.backend)},
        {"scep_paths", paths},
        {"scep_listen", config.ra.listen_host + ":" + std::to_string(config.ra.listen_port)}};
    try {
        const CrlInfo crl = service_.crlPublisher().crlInfo();
        body["crl"] = {{"this_update", crl.this_update},
                       {"next_update", crl.next_update},
                       {"revoked", crl.revoked}};
    } catch (const std::exception& e) {
        body["crl"] = {{"error", e.what()}};  // an upstream CA's CRL not to be had now
    }
    if (UpstreamCa* upstream = service_.upstream()) {
        const UpstreamHealth health = upstream->health();
        body["upstream"] = {
            {"url", upstream->url()},
            {"ca_fingerprint", std::string(digestName(config.ca.upstream.pin_digest)) + ":" +
                                   toHex(config.ca.upstream.pin)},
            {"root", certificateInfo(upstream->root())},
            {"reachable", health.reachable},
            {"last_error", health.last_error},
            {"last_contact", health.last_contact},
            {"last_discovery", health.last_discovery},
            {"requests_at_ca", store_.requestsAtCa().size()},
            {"revocation",
             "revoking here marks the certificate revoked in this RA's records only; the "
             "upstream CA must revoke it too (SCEP has no revocation message)"}};
    }
    sendJson(res, body);
}

}  // namespace scep
