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
    sendJson(res, {{"status", ok ? "ok" : "fail"}, {"checks", checks}}, ok ? 200 : 503);
}

void StatusResource::metrics(const Principal&, const http::Request&, http::Response& res) {
    const std::string text =
        metrics_.render(store_, std::time(nullptr), service_.crlPublisher().crlInfo().next_update);
    res.set_content(text, "text/plain; version=0.0.4");
}

void StatusResource::whoami(const Principal& who, const http::Request&, http::Response& res) {
    sendJson(
        res,
        {{"name", who.name}, {"role", roleName(who.role)}, {"via", principalKindName(who.via)}});
}

void StatusResource::ca(const Principal&, const http::Request&, http::Response& res) {
    CaMaterial& state = service_.material();
    const CrlInfo crl = service_.crlPublisher().crlInfo();
    const auto runtime = service_.runtime();
    const Config& config = runtime->config;
    json paths = json::array({"/scep", "/cgi-bin/pkiclient.exe"});
    for (const auto& path : config.ra.paths) {
        paths.push_back(path);
    }
    sendJson(res, {{"ca", certificateInfo(state.ca->certificate())},
                   {"ra", certificateInfo(*state.ra.cert)},
                   {"crl",
                    {{"this_update", crl.this_update},
                     {"next_update", crl.next_update},
                     {"revoked", crl.revoked}}},
                   {"scep_paths", paths},
                   {"scep_listen",
                    config.ra.listen_host + ":" + std::to_string(config.ra.listen_port)}});
}

}  // namespace scep
