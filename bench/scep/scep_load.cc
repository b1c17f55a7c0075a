// scep_load: SCEP enrollment load generator for bench/scep/enroll-bench.sh.
//
// Everything expensive on the client side happens OUTSIDE the timed window:
//   before: GetCACert, a pool of RSA-2048 CSR keys, one CSR per pool key,
//           (challenge mode) one self-signed signer per pool key, and every
//           pkiMessage fully built (signed + enveloped), each with its own
//           random transactionID and senderNonce;
//   timed:  C threads, each with its own keep-alive cpp-httplib connection,
//           POST ?operation=PKIOperation with the prebuilt bytes; only the
//           latency and the reply bytes are recorded;
//   after:  every reply is checked (signature by the RA/CA certificate,
//           SUCCESS, transactionID, recipientNonce, envelope decrypted with
//           openCertRep, certificate key == CSR key, serials distinct).
// A failed check makes the exit status non-zero.
//
// Modes of request signing:
//   --mic CERT,KEY   (repeatable) MIC-signed PKCSReq, CSR CN = MIC CN, no
//                    challengePassword (scep-ra's MIC authentication)
//   --challenge PW   self-signed signer per pool key + challengePassword in
//                    the CSR (micromdm scepserver; scep-ra also accepts it)
//
// With --server-pid, the server's utime+stime (/proc/PID/stat) is read just
// before the first and just after the last timed request.
//
// Output: human-readable lines, then one machine-readable line
//   RESULT key=value ...
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "common/fingerprint.h"
#include "ra/crypto.h"
#include "ra/ca/certificate.h"
#include "ra/scep/message.h"
#include "tests/lib/scep_client.h"
#include "common/url.h"

namespace {

using namespace scep;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string url = "http://127.0.0.1:8080/scep";
    std::size_t requests = 2000;
    std::size_t concurrency = 8;
    std::size_t warmup = 0;  // 0: 2 per connection
    std::size_t pool = 64;
    std::vector<std::pair<std::string, std::string>> mics;  // cert, key
    std::string challenge;
    std::string cipher = "aes128";
    std::string digest = "sha256";
    long server_pid = 0;
    std::string pool_keys;    // PEM file caching the pool's keys across runs
    bool tolerate_failures = false;  // reference servers with known bugs
    std::size_t threads = 0;  // for pre-generation and checks; 0: all cores
};

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "scep_load: " << problem << "\n"
              << "usage: scep_load --url http://HOST:PORT/PATH (--mic CERT,KEY ... | --challenge PW)\n"
              << "                 [-n N] [-c C] [--warmup W] [--pool K] [--cipher aes128|aes256|des3|des]\n"
              << "                 [--digest sha256|sha1] [--server-pid PID] [--pool-keys FILE] [--threads T]\n"
              << "                 [--tolerate-failures]\n";
    std::exit(2);
}

Options parseOptions(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(arg + " needs a value");
            }
            return argv[++i];
        };
        auto number = [&]() -> std::size_t {
            const std::string text = value();
            if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
                usage(arg + " needs a number");
            }
            return std::stoul(text);
        };
        if (arg == "--url") {
            o.url = value();
        } else if (arg == "-n" || arg == "--requests") {
            o.requests = number();
        } else if (arg == "-c" || arg == "--concurrency") {
            o.concurrency = number();
        } else if (arg == "--warmup") {
            o.warmup = number();
        } else if (arg == "--pool") {
            o.pool = number();
        } else if (arg == "--mic") {
            const std::string pair = value();
            const auto comma = pair.find(',');
            if (comma == std::string::npos) {
                usage("--mic wants CERT,KEY");
            }
            o.mics.emplace_back(pair.substr(0, comma), pair.substr(comma + 1));
        } else if (arg == "--challenge") {
            o.challenge = value();
        } else if (arg == "--cipher") {
            o.cipher = value();
        } else if (arg == "--digest") {
            o.digest = value();
        } else if (arg == "--server-pid") {
            o.server_pid = static_cast<long>(number());
        } else if (arg == "--tolerate-failures") {
            o.tolerate_failures = true;
        } else if (arg == "--pool-keys") {
            o.pool_keys = value();
        } else if (arg == "--threads") {
            o.threads = number();
        } else {
            usage("unknown argument " + arg);
        }
    }
    if (o.mics.empty() == o.challenge.empty()) {
        usage("exactly one of --mic (one or more) and --challenge is needed");
    }
    if (o.requests == 0 || o.concurrency == 0 || o.pool == 0) {
        usage("-n, -c and --pool must be positive");
    }
    if (o.warmup == 0) {
        o.warmup = 2 * o.concurrency;
    }
    if (o.threads == 0) {
        o.threads = std::max(1u, std::thread::hardware_concurrency());
    }
    return o;
}

int cipherNid(const std::string& name) {
    if (name == "aes128") return NID_aes_128_cbc;
    if (name == "aes256") return NID_aes_256_cbc;
    if (name == "des3") return NID_des_ede3_cbc;
    if (name == "des") return NID_des_cbc;
    usage("unknown cipher " + name);
}

int digestNid(const std::string& name) {
    if (name == "sha256") return NID_sha256;
    if (name == "sha1") return NID_sha1;
    if (name == "sha512") return NID_sha512;
    usage("unknown digest " + name);
}

std::string httpOnly(const std::string& scheme) {
    return scheme == "http" ? "" : "only http:// URLs are supported";
}

Url targetUrl(const std::string& text) {
    const UrlParse parsed = parseUrl(text, httpOnly);
    if (!parsed.url) {
        usage("--url: " + parsed.problem);
    }
    return *parsed.url;
}

// Runs body(i) for i in [0, count) on `threads` threads; rethrows the first
// exception.
void parallelFor(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& body) {
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

struct Signer {
    X509Ptr cert;
    EvpPkeyPtr key_owned;  // challenge mode: the pool key's own cert
    EVP_PKEY* key = nullptr;
};

struct PoolEntry {
    EvpPkeyPtr key;
    std::size_t signer = 0;  // index into signers
};

struct Job {
    std::size_t pool = 0;
    std::string common_name;
    std::string transaction_id;
    Bytes nonce;
    Bytes message;
    // filled by the run
    int http_status = 0;
    std::string http_error;
    std::string body;
    double latency_ms = 0;
};

struct ProcCpu {
    double user = 0;  // seconds
    double system = 0;
    double total() const { return user + system; }
};

struct CpuTimes {
    ProcCpu server;
    double client = 0;
};

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

double percentile(std::vector<double> sorted_values, double p) {
    if (sorted_values.empty()) {
        return 0;
    }
    std::sort(sorted_values.begin(), sorted_values.end());
    // nearest-rank
    std::size_t rank = static_cast<std::size_t>(std::ceil(p * sorted_values.size()));
    rank = std::max<std::size_t>(1, std::min(rank, sorted_values.size()));
    return sorted_values[rank - 1];
}

std::string now() {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char text[16];
    std::strftime(text, sizeof(text), "%H:%M:%S", std::localtime(&t));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parseOptions(argc, argv);
    const Url url = targetUrl(opt.url);
    const int cipher = cipherNid(opt.cipher);
    const int digest = digestNid(opt.digest);
    const bool mic_mode = !opt.mics.empty();

    try {
        // ---- GetCACert: the recipient of requests and signer of replies ----
        X509Ptr ra_cert;
        {
            httplib::Client client(url.host, url.port.value_or(80));
            client.set_connection_timeout(10);
            client.set_read_timeout(30);
            const auto res = client.Get((url.target() + "?operation=GetCACert").c_str());
            if (!res || res->status != 200) {
                std::cerr << "scep_load: GetCACert failed: "
                          << (res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error()))
                          << "\n";
                return 2;
            }
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
            if (!ra_cert) {
                std::cerr << "scep_load: GetCACert returned no certificate\n";
                return 2;
            }
            std::cout << "recipient/reply signer: " << nameText(X509_get_subject_name(ra_cert.get()))
                      << "\n";
        }

        // ---- pre-generation (not timed) ----
        const auto gen_start = Clock::now();
        std::vector<Signer> signers;
        for (const auto& [cert_path, key_path] : opt.mics) {
            Signer signer;
            auto bundle = loadCertificateBundle(cert_path);
            signer.cert = std::move(bundle.front());
            signer.key_owned = loadPrivateKeyFile(key_path);
            signer.key = signer.key_owned.get();
            signers.push_back(std::move(signer));
        }
        std::vector<PoolEntry> pool(opt.pool);
        if (!mic_mode) {
            signers.resize(opt.pool);
        }
        std::vector<EvpPkeyPtr> cached = readKeyCache(opt.pool_keys);
        const bool generate = cached.size() < opt.pool;
        if (generate) {
            cached.clear();
            cached.resize(opt.pool);
            parallelFor(opt.pool, opt.threads,
                        [&](std::size_t i) { cached[i] = generateKey("rsa:2048"); });
            if (!opt.pool_keys.empty()) {
                writeKeyCache(opt.pool_keys, cached);
            }
        }
        parallelFor(opt.pool, opt.threads, [&](std::size_t i) {
            PoolEntry& entry = pool[i];
            entry.key = std::move(cached[i]);
            if (mic_mode) {
                entry.signer = i % signers.size();
            } else {
                entry.signer = i;
                signers[i].cert = makeSelfSignedSigner(*entry.key);
                signers[i].key = entry.key.get();
            }
        });
        const auto keys_done = Clock::now();

        const std::size_t total = opt.warmup + opt.requests;
        std::vector<Job> jobs(total);
        parallelFor(total, opt.threads, [&](std::size_t i) {
            Job& job = jobs[i];
            job.pool = i % opt.pool;
            const PoolEntry& entry = pool[job.pool];
            const Signer& signer = signers[entry.signer];
            job.transaction_id = toHex(randomBytes(16));
            job.nonce = randomBytes(16);
            // MIC: the CSR must carry the MIC's CN. Challenge: a CN of its own
            // per request, so that a CA keyed by CN (scepserver's depot) never
            // takes its "same CN: revoke the old certificate" path.
            job.common_name =
                mic_mode ? nameEntry(X509_get_subject_name(signer.cert.get()), NID_commonName)
                         : "bench-" + job.transaction_id.substr(0, 12) + "-" + std::to_string(i);
            const Bytes csr = requestDer(
                *makeCsr(*entry.key, job.common_name, mic_mode ? std::string() : opt.challenge));
            RequestParams params;
            params.type = MessageType::PKCSReq;
            params.transaction_id = job.transaction_id;
            params.sender_nonce = job.nonce;
            params.digest_nid = digest;
            params.cipher_nid = cipher;
            job.message = buildPkiMessage(params, csr, *signer.cert, *signer.key, *ra_cert);
        });
        const auto gen_done = Clock::now();
        auto secs = [](Clock::time_point a, Clock::time_point b) {
            return std::chrono::duration<double>(b - a).count();
        };
        std::cout << now() << (generate ? " generated " : " loaded ") << opt.pool
                  << " RSA-2048 pool keys in "
                  << secs(gen_start, keys_done) << " s, " << total << " CSRs + pkiMessages ("
                  << jobs.front().message.size() << " bytes each, mode "
                  << (mic_mode ? "MIC" : "self-signed+challenge") << ", " << opt.cipher << "/"
                  << opt.digest << ") in " << secs(keys_done, gen_done) << " s\n";

        // ---- warm-up, then the timed window ----
        std::mutex phase_mutex;
        std::condition_variable phase_cv;
        std::size_t warmed = 0;
        bool go = false;
        std::atomic<std::size_t> next_warm{0};
        std::atomic<std::size_t> next_timed{opt.warmup};
        const std::string target = url.target() + "?operation=PKIOperation";

        auto send = [&](httplib::Client& client, Job& job) {
            const auto t0 = Clock::now();
            const auto res = client.Post(target.c_str(),
                                         reinterpret_cast<const char*>(job.message.data()),
                                         job.message.size(), "application/x-pki-message");
            const auto t1 = Clock::now();
            job.latency_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
            if (res) {
                job.http_status = res->status;
                job.body = std::move(res->body);
            } else {
                job.http_error = httplib::to_string(res.error());
            }
        };

        std::vector<std::thread> workers;
        for (std::size_t t = 0; t < opt.concurrency; ++t) {
            workers.emplace_back([&] {
                httplib::Client client(url.host, url.port.value_or(80));
                client.set_keep_alive(true);
                client.set_tcp_nodelay(true);  // header and body are separate writes
                client.set_connection_timeout(10);
                client.set_read_timeout(120);
                client.set_write_timeout(30);
                for (std::size_t i = next_warm++; i < opt.warmup; i = next_warm++) {
                    send(client, jobs[i]);
                }
                {
                    std::unique_lock<std::mutex> lock(phase_mutex);
                    ++warmed;
                    phase_cv.notify_all();
                    phase_cv.wait(lock, [&] { return go; });
                }
                for (std::size_t i = next_timed++; i < total; i = next_timed++) {
                    send(client, jobs[i]);
                }
            });
        }
        CpuTimes before, after;
        Clock::time_point start;
        {
            std::unique_lock<std::mutex> lock(phase_mutex);
            phase_cv.wait(lock, [&] { return warmed == opt.concurrency; });
            before.server = serverCpuSeconds(opt.server_pid);
            before.client = selfCpuSeconds();
            start = Clock::now();
            go = true;
            phase_cv.notify_all();
        }
        for (auto& worker : workers) {
            worker.join();
        }
        const auto end = Clock::now();
        after.server = serverCpuSeconds(opt.server_pid);
        after.client = selfCpuSeconds();
        const double wall = secs(start, end);

        // ---- checks (not timed) ----
        std::atomic<std::size_t> ok{0};
        std::vector<std::string> failures(total);
        std::vector<std::string> serials(total);
        parallelFor(total, opt.threads, [&](std::size_t i) {
            Job& job = jobs[i];
            try {
                if (job.http_status != 200) {
                    throw std::runtime_error(job.http_status ? "HTTP " + std::to_string(job.http_status) +
                                                                   ": " + job.body.substr(0, 200)
                                                             : "no HTTP reply: " + job.http_error);
                }
                const Bytes body(job.body.begin(), job.body.end());
                const CertRepView rep = parseCertRep(body, *ra_cert);
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
                const PoolEntry& entry = pool[job.pool];
                const Signer& signer = signers[entry.signer];
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
                serials[i] = serialHex(X509_get0_serialNumber(cert));
                ++ok;
            } catch (const std::exception& e) {
                failures[i] = e.what();
                ERR_clear_error();
            }
        });
        // Failures (any reply that is not a checked SUCCESS) and certificate
        // serials issued twice, for all replies and for the timed ones.
        std::size_t failed = 0, failed_timed = 0, duplicates = 0;
        std::map<std::string, std::size_t> first_use;
        for (std::size_t i = 0; i < total; ++i) {
            if (!failures[i].empty()) {
                ++failed;
                failed_timed += i >= opt.warmup;
            } else if (!first_use.emplace(serials[i], i).second) {
                ++duplicates;
                if (duplicates <= 3) {
                    std::cerr << "request " << i << ": certificate serial " << serials[i]
                              << " was already issued to request " << first_use[serials[i]] << "\n";
                }
            }
        }
        std::size_t shown = 0;
        for (std::size_t i = 0; i < total && shown < 5; ++i) {
            if (!failures[i].empty()) {
                std::cerr << "request " << i << (i < opt.warmup ? " (warm-up)" : "") << ": "
                          << failures[i] << "\n";
                ++shown;
            }
        }

        std::vector<double> latencies;
        for (std::size_t i = opt.warmup; i < total; ++i) {
            latencies.push_back(jobs[i].latency_ms);
        }
        const std::size_t good = opt.requests - failed_timed;  // timed SUCCESS replies
        const double rate = good / wall;
        const double p50 = percentile(latencies, 0.50);
        const double p99 = percentile(latencies, 0.99);
        const bool measured = opt.server_pid > 0;
        const double server_cpu = after.server.total() - before.server.total();
        const double server_user = after.server.user - before.server.user;
        const double server_sys = after.server.system - before.server.system;
        const double cpu_ms = measured && good ? 1000 * server_cpu / good : -1.0;
        const double client_cpu = after.client - before.client;
        std::printf("%s timed: %zu requests, concurrency %zu, %.3f s wall\n", now().c_str(),
                    opt.requests, opt.concurrency, wall);
        std::printf("  enrollments/s %.1f (successful)   latency p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
                    rate, p50, p99, percentile(latencies, 1.0));
        if (measured) {
            std::printf("  server CPU %.2f s (user %.2f + system %.2f; %.2f cores busy) = %.3f ms/enrollment\n",
                        server_cpu, server_user, server_sys, server_cpu / wall, cpu_ms);
        }
        std::printf("  load generator CPU %.2f s in the window\n", client_cpu);
        std::printf("  checked %zu replies (incl. %zu warm-up): %zu SUCCESS with certificate, %zu failed "
                    "(%zu timed), %zu duplicate serials\n",
                    total, opt.warmup, static_cast<std::size_t>(ok), failed, failed_timed, duplicates);
        std::printf("RESULT n=%zu c=%zu wall_s=%.4f rate=%.2f p50_ms=%.2f p99_ms=%.2f server_cpu_s=%.3f "
                    "server_user_s=%.3f server_sys_s=%.3f cpu_ms_per_enroll=%.4f client_cpu_s=%.3f "
                    "ok=%zu failed=%zu failed_timed=%zu duplicate_serials=%zu\n",
                    opt.requests, opt.concurrency, wall, rate, p50, p99, measured ? server_cpu : -1.0,
                    server_user, server_sys, cpu_ms, client_cpu, static_cast<std::size_t>(ok), failed,
                    failed_timed, duplicates);
        std::fflush(stdout);
        if (failed + duplicates == 0) {
            return 0;
        }
        if (opt.tolerate_failures && good > 0) {
            std::printf("WARNING: %zu failed replies and %zu duplicate serials tolerated "
                        "(--tolerate-failures); enrollments/s counts successful timed replies only\n",
                        failed, duplicates);
            return 0;
        }
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "scep_load: " << e.what() << "\n";
        return 2;
    }
}
