#include "bench/scep/load_client.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/fingerprint.h"
#include "ra/ca/certificate.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/message.h"

namespace scep::bench {

namespace {

// Runs body(i) for i in [0, count) on `threads` threads; rethrows the first
// exception.
void parallelFor(std::size_t count, std::size_t threads,
                 const std::function<void(std::size_t)>& body) {
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < std::min(threads, count); ++t) {
        workers.emplace_back([&] {
            for (std::size_t i = next++; i < count; i = next++) {
                try {
                    body(i);
                } catch (...) {
                    const std::lock_guard<std::mutex> lock(error_mutex);
                    if (!error) {
                        error = std::current_exception();
                    }
                }
            }
        });
    }
    for (auto& worker : workers) {
        worker.join();
    }
    if (error) {
        std::rethrow_exception(error);
    }
}

Bytes randomBytes(std::size_t n) {
    Bytes out(n);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
        throw CryptoError("RAND_bytes");
    }
    return out;
}

void addNameEntry(X509_NAME* name, const char* field, const std::string& value) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1) {
        throw CryptoError(std::string("name entry ") + field);
    }
}

X509ReqPtr makeCsr(EVP_PKEY& key, const std::string& common_name, const std::string& challenge) {
    X509ReqPtr csr(X509_REQ_new());
    X509_REQ_set_version(csr.get(), 0);  // v1, the only version PKCS#10 defines
    addNameEntry(X509_REQ_get_subject_name(csr.get()), "CN", common_name);
    if (X509_REQ_set_pubkey(csr.get(), &key) != 1) {
        throw CryptoError("CSR public key");
    }
    if (!challenge.empty() &&
        X509_REQ_add1_attr_by_NID(csr.get(), NID_pkcs9_challengePassword, MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(challenge.c_str()),
                                  -1) != 1) {
        throw CryptoError("challengePassword");
    }
    if (X509_REQ_sign(csr.get(), &key, EVP_sha256()) <= 0) {
        throw CryptoError("CSR signature");
    }
    return csr;
}

// Like micromdm scepclient's temporary signer: O=scep-client, CN=SCEP SIGNER.
X509Ptr makeSelfSignedSigner(EVP_PKEY& key) {
    X509NamePtr name(X509_NAME_new());
    addNameEntry(name.get(), "O", "scep-client");
    addNameEntry(name.get(), "CN", "SCEP SIGNER");
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = &key;
    spec.not_before = std::time(nullptr) - 300;
    spec.not_after = std::time(nullptr) + 24 * 3600;
    spec.key_usage = "critical,digitalSignature,keyEncipherment";
    return signCertificate(spec, nullptr, key);
}

ProcCpu serverCpuSeconds(long pid) {
    if (pid <= 0) {
        return {};
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) {
        throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
    }
    std::istringstream fields(text.substr(paren + 2));
    std::vector<std::string> tokens;
    for (std::string token; fields >> token;) {
        tokens.push_back(token);
    }
    // tokens[0] is field 3 (state); utime = field 14, stime = field 15.
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    return {std::stod(tokens.at(11)) / ticks, std::stod(tokens.at(12)) / ticks};
}

double selfCpuSeconds() {
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Keys cached in one PEM file (0600), so repeated runs skip RSA key generation.
std::vector<EvpPkeyPtr> readKeyCache(const std::string& path) {
    std::vector<EvpPkeyPtr> keys;
    FILE* file = path.empty() ? nullptr : std::fopen(path.c_str(), "r");
    if (!file) {
        return keys;
    }
    while (EVP_PKEY* key = PEM_read_PrivateKey(file, nullptr, nullptr, nullptr)) {
        keys.emplace_back(key);
    }
    ERR_clear_error();
    std::fclose(file);
    return keys;
}

void writeKeyCache(const std::string& path, const std::vector<EvpPkeyPtr>& keys) {
    std::string pem;
    for (const auto& key : keys) {
        BioPtr bio(BIO_new(BIO_s_mem()));
        if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                             nullptr) != 1) {
            throw CryptoError("cannot encode a pool key");
        }
        char* data = nullptr;
        const long length = BIO_get_mem_data(bio.get(), &data);
        pem.append(data, static_cast<std::size_t>(length));
    }
    writeFileAtomically(path, pem, 0600);
}

// From GetCACert's reply: the RA certificate (the non-CA one) of an RA+CA
// answer, else the first certificate; a single certificate as it is.
X509Ptr recipientFromReply(const httplib::Result& res) {
    X509Ptr ra_cert;
    const Bytes der(res->body.begin(), res->body.end());
    if (res->get_header_value("Content-Type") == "application/x-x509-ca-ra-cert") {
        DegenerateContent content = readDegenerateSignedData(der);
        for (auto& cert : content.certificates) {
            if (X509_check_ca(cert.get()) == 0) {  // the RA certificate
                ra_cert = std::move(cert);
                break;
            }
        }
        if (!ra_cert && !content.certificates.empty()) {
            ra_cert = std::move(content.certificates.front());
        }
    } else {
        ra_cert = certificateFromDer(der);
    }
    return ra_cert;
}

// The fixture's MIC certificates and keys, each signing a share of the pool.
std::vector<Signer> loadMicSigners(const Options& opt) {
    std::vector<Signer> signers;
    for (const auto& [cert_path, key_path] : opt.mics) {
        Signer signer;
        auto bundle = loadCertificateBundle(cert_path);
        signer.cert = std::move(bundle.front());
        signer.key_owned = loadPrivateKeyFile(key_path);
        signer.key = signer.key_owned.get();
        signers.push_back(std::move(signer));
    }
    return signers;
}

// The pool's keys from --pool-keys, or generated (and then cached there) when
// it holds too few.
std::vector<EvpPkeyPtr> poolKeys(const Options& opt, bool& generated) {
    std::vector<EvpPkeyPtr> cached = readKeyCache(opt.pool_keys);
    generated = cached.size() < opt.pool;
    if (generated) {
        cached.clear();
        cached.resize(opt.pool);
        parallelFor(opt.pool, opt.threads,
                    [&](std::size_t i) { cached[i] = generateKey("rsa:2048"); });
        if (!opt.pool_keys.empty()) {
            writeKeyCache(opt.pool_keys, cached);
        }
    }
    return cached;
}

// Pool entry i gets key i and its signer: a MIC in turn, or (challenge mode)
// a self-signed certificate of its own key.
void fillPool(const Options& opt, std::vector<EvpPkeyPtr>& keys, Requests& requests) {
    requests.pool.resize(opt.pool);
    if (!opt.micMode()) {
        requests.signers.resize(opt.pool);
    }
    parallelFor(opt.pool, opt.threads, [&](std::size_t i) {
        PoolEntry& entry = requests.pool[i];
        entry.key = std::move(keys[i]);
        if (opt.micMode()) {
            entry.signer = i % requests.signers.size();
        } else {
            entry.signer = i;
            requests.signers[i].cert = makeSelfSignedSigner(*entry.key);
            requests.signers[i].key = entry.key.get();
        }
    });
}

// Request i: a CSR from its pool key in a PKCSReq of its own transactionID
// and senderNonce, signed by the pool entry's signer, enveloped for ra_cert.
void buildJob(const Options& opt, const Requests& requests, X509& ra_cert, std::size_t i,
              Job& job) {
    const bool mic_mode = opt.micMode();
    job.pool = i % opt.pool;
    const PoolEntry& entry = requests.pool[job.pool];
    const Signer& signer = requests.signers[entry.signer];
    job.transaction_id = toHex(randomBytes(16));
    job.nonce = randomBytes(16);
    // MIC: the CSR must carry the MIC's CN. Challenge: a CN of its own
    // per request, so that a CA keyed by CN (scepserver's depot) never
    // takes its "same CN: revoke the old certificate" path.
    job.common_name = mic_mode
                          ? nameEntry(X509_get_subject_name(signer.cert.get()), NID_commonName)
                          : "bench-" + job.transaction_id.substr(0, 12) + "-" + std::to_string(i);
    const Bytes csr =
        requestDer(*makeCsr(*entry.key, job.common_name, mic_mode ? std::string() : opt.challenge));
    RequestParams params;
    params.type = MessageType::PKCSReq;
    params.transaction_id = job.transaction_id;
    params.sender_nonce = job.nonce;
    params.digest_nid = opt.digest_nid;
    params.cipher_nid = opt.cipher_nid;
    job.message = buildPkiMessage(params, csr, *signer.cert, *signer.key, ra_cert);
}

void send(httplib::Client& client, const std::string& target, Job& job) {
    const auto t0 = Clock::now();
    const auto res = client.Post(target.c_str(), reinterpret_cast<const char*>(job.message.data()),
                                 job.message.size(), "application/x-pki-message");
    const auto t1 = Clock::now();
    job.latency_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    if (res) {
        job.http_status = res->status;
        job.body = std::move(res->body);
    } else {
        job.http_error = httplib::to_string(res.error());
    }
}

// Holds every connection after its warm-up until the timed window opens.
struct Phases {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t warmed = 0;
    bool go = false;
    std::atomic<std::size_t> next_warm{0};
    std::atomic<std::size_t> next_timed{0};
};

// One keep-alive connection: warm-up jobs, wait for the window, timed jobs.
void runConnection(const Options& opt, std::vector<Job>& jobs, Phases& phases) {
    const std::string target = opt.target.target() + "?operation=PKIOperation";
    httplib::Client client(opt.target.host, opt.target.port.value_or(80));
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);  // header and body are separate writes
    client.set_connection_timeout(10);
    client.set_read_timeout(120);
    client.set_write_timeout(30);
    for (std::size_t i = phases.next_warm++; i < opt.warmup; i = phases.next_warm++) {
        send(client, target, jobs[i]);
    }
    {
        std::unique_lock<std::mutex> lock(phases.mutex);
        ++phases.warmed;
        phases.cv.notify_all();
        phases.cv.wait(lock, [&] { return phases.go; });
    }
    for (std::size_t i = phases.next_timed++; i < jobs.size(); i = phases.next_timed++) {
        send(client, target, jobs[i]);
    }
}

// Throws why job's reply is not a SUCCESS issuing the requested certificate;
// returns that certificate's serial.
std::string checkReply(const Job& job, const Requests& requests, X509& ra_cert) {
    if (job.http_status != 200) {
        throw std::runtime_error(job.http_status ? "HTTP " + std::to_string(job.http_status) +
                                                       ": " + job.body.substr(0, 200)
                                                 : "no HTTP reply: " + job.http_error);
    }
    const Bytes body(job.body.begin(), job.body.end());
    const CertRepView rep = parseCertRep(body, ra_cert);
    if (rep.status != PkiStatus::success) {
        throw std::runtime_error(
            std::string("pkiStatus ") + (rep.status == PkiStatus::pending ? "PENDING" : "FAILURE") +
            (rep.fail ? std::string(" failInfo ") + failInfoName(*rep.fail) : ""));
    }
    if (rep.transaction_id != job.transaction_id) {
        throw std::runtime_error("transactionID mismatch");
    }
    if (rep.recipient_nonce != job.nonce) {
        throw std::runtime_error("recipientNonce is not our senderNonce");
    }
    const PoolEntry& entry = requests.pool[job.pool];
    const Signer& signer = requests.signers[entry.signer];
    const DegenerateContent content = openCertRep(rep.envelope, *signer.key, *signer.cert);
    if (content.certificates.empty()) {
        throw std::runtime_error("SUCCESS without a certificate");
    }
    X509* cert = content.certificates.front().get();
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), entry.key.get()) != 1) {
        throw std::runtime_error("issued certificate does not carry the CSR's key");
    }
    if (nameEntry(X509_get_subject_name(cert), NID_commonName) != job.common_name) {
        throw std::runtime_error("issued certificate has CN '" +
                                 nameEntry(X509_get_subject_name(cert), NID_commonName) + "'");
    }
    return serialHex(X509_get0_serialNumber(cert));
}

}  // namespace

double secondsBetween(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

X509Ptr fetchRecipient(const Url& url) {
    httplib::Client client(url.host, url.port.value_or(80));
    client.set_connection_timeout(10);
    client.set_read_timeout(30);
    const auto res = client.Get((url.target() + "?operation=GetCACert").c_str());
    if (!res || res->status != 200) {
        throw std::runtime_error("GetCACert failed: " + (res ? "HTTP " + std::to_string(res->status)
                                                             : httplib::to_string(res.error())));
    }
    X509Ptr ra_cert = recipientFromReply(res);
    if (!ra_cert) {
        throw std::runtime_error("GetCACert returned no certificate");
    }
    return ra_cert;
}

Requests prepareRequests(const Options& opt, X509& ra_cert) {
    const auto gen_start = Clock::now();
    Requests requests;
    requests.signers = loadMicSigners(opt);
    std::vector<EvpPkeyPtr> keys = poolKeys(opt, requests.keys_generated);
    fillPool(opt, keys, requests);
    const auto keys_done = Clock::now();

    requests.jobs.resize(opt.total());
    parallelFor(opt.total(), opt.threads,
                [&](std::size_t i) { buildJob(opt, requests, ra_cert, i, requests.jobs[i]); });
    const auto gen_done = Clock::now();
    requests.keys_seconds = secondsBetween(gen_start, keys_done);
    requests.messages_seconds = secondsBetween(keys_done, gen_done);
    return requests;
}

Window runLoad(const Options& opt, std::vector<Job>& jobs) {
    Phases phases;
    phases.next_timed = opt.warmup;
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < opt.concurrency; ++t) {
        workers.emplace_back([&] { runConnection(opt, jobs, phases); });
    }
    Window window;
    Clock::time_point start;
    {
        std::unique_lock<std::mutex> lock(phases.mutex);
        phases.cv.wait(lock, [&] { return phases.warmed == opt.concurrency; });
        window.before.server = serverCpuSeconds(opt.server_pid);
        window.before.upstream = serverCpuSeconds(opt.upstream_pid);
        window.before.client = selfCpuSeconds();
        start = Clock::now();
        phases.go = true;
        phases.cv.notify_all();
    }
    for (auto& worker : workers) {
        worker.join();
    }
    const auto end = Clock::now();
    window.after.server = serverCpuSeconds(opt.server_pid);
    window.after.upstream = serverCpuSeconds(opt.upstream_pid);
    window.after.client = selfCpuSeconds();
    window.wall_seconds = secondsBetween(start, end);
    return window;
}

Replies checkReplies(const Options& opt, const Requests& requests, X509& ra_cert) {
    const std::size_t total = opt.total();
    std::atomic<std::size_t> ok{0};
    Replies replies;
    replies.failures.resize(total);
    replies.serials.resize(total);
    parallelFor(total, opt.threads, [&](std::size_t i) {
        try {
            replies.serials[i] = checkReply(requests.jobs[i], requests, ra_cert);
            ++ok;
        } catch (const std::exception& e) {
            replies.failures[i] = e.what();
            ERR_clear_error();
        }
    });
    replies.ok = ok;
    return replies;
}

}  // namespace scep::bench
