#include "bench/scep/load_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <string>

namespace scep::bench {

namespace {

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

// Failures (any reply that is not a checked SUCCESS) and certificate
// serials issued twice, for all replies and for the timed ones.
struct Tally {
    std::size_t failed = 0;
    std::size_t failed_timed = 0;
    std::size_t duplicates = 0;
};

// Counts, and shows on stderr the first duplicate serials and failures.
Tally tally(const Options& opt, const Replies& replies) {
    Tally counts;
    std::map<std::string, std::size_t> first_use;
    const std::size_t total = opt.total();
    for (std::size_t i = 0; i < total; ++i) {
        if (!replies.failures[i].empty()) {
            ++counts.failed;
            counts.failed_timed += i >= opt.warmup;
        } else if (!first_use.emplace(replies.serials[i], i).second) {
            ++counts.duplicates;
            if (counts.duplicates <= 3) {
                std::cerr << "request " << i << ": certificate serial " << replies.serials[i]
                          << " was already issued to request " << first_use[replies.serials[i]]
                          << "\n";
            }
        }
    }
    std::size_t shown = 0;
    for (std::size_t i = 0; i < total && shown < 5; ++i) {
        if (!replies.failures[i].empty()) {
            std::cerr << "request " << i << (i < opt.warmup ? " (warm-up)" : "") << ": "
                      << replies.failures[i] << "\n";
            ++shown;
        }
    }
    return counts;
}

void printFigures(const Options& opt, const std::vector<Job>& jobs, const Window& window,
                  const Replies& replies, const Tally& counts) {
    std::vector<double> latencies;
    for (std::size_t i = opt.warmup; i < opt.total(); ++i) {
        latencies.push_back(jobs[i].latency_ms);
    }
    const double wall = window.wall_seconds;
    const CpuTimes& before = window.before;
    const CpuTimes& after = window.after;
    const std::size_t good = opt.requests - counts.failed_timed;  // timed SUCCESS replies
    const double rate = good / wall;
    const double p50 = percentile(latencies, 0.50);
    const double p99 = percentile(latencies, 0.99);
    const bool measured = opt.server_pid > 0;
    const double server_cpu = after.server.total() - before.server.total();
    const double server_user = after.server.user - before.server.user;
    const double server_sys = after.server.system - before.server.system;
    const double cpu_ms = measured && good ? 1000 * server_cpu / good : -1.0;
    const double client_cpu = after.client - before.client;
    const bool upstream_measured = opt.upstream_pid > 0;
    const double upstream_cpu = after.upstream.total() - before.upstream.total();
    const double upstream_ms = upstream_measured && good ? 1000 * upstream_cpu / good : -1.0;
    std::printf("%s timed: %zu requests, concurrency %zu, %.3f s wall\n", now().c_str(),
                opt.requests, opt.concurrency, wall);
    std::printf(
        "  enrollments/s %.1f (successful)   latency p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", rate,
        p50, p99, percentile(latencies, 1.0));
    if (measured) {
        std::printf(
            "  server CPU %.2f s (user %.2f + system %.2f; %.2f cores busy) = %.3f ms/enrollment\n",
            server_cpu, server_user, server_sys, server_cpu / wall, cpu_ms);
    }
    if (upstream_measured) {
        std::printf("  upstream CA CPU %.2f s = %.3f ms/enrollment\n", upstream_cpu, upstream_ms);
    }
    std::printf("  load generator CPU %.2f s in the window\n", client_cpu);
    std::printf(
        "  checked %zu replies (incl. %zu warm-up): %zu SUCCESS with certificate, %zu failed "
        "(%zu timed), %zu duplicate serials\n",
        opt.total(), opt.warmup, replies.ok, counts.failed, counts.failed_timed, counts.duplicates);
    std::printf(
        "RESULT n=%zu c=%zu wall_s=%.4f rate=%.2f p50_ms=%.2f p99_ms=%.2f server_cpu_s=%.3f "
        "server_user_s=%.3f server_sys_s=%.3f cpu_ms_per_enroll=%.4f client_cpu_s=%.3f "
        "ok=%zu failed=%zu failed_timed=%zu duplicate_serials=%zu upstream_cpu_s=%.3f "
        "upstream_cpu_ms_per_enroll=%.4f\n",
        opt.requests, opt.concurrency, wall, rate, p50, p99, measured ? server_cpu : -1.0,
        server_user, server_sys, cpu_ms, client_cpu, replies.ok, counts.failed, counts.failed_timed,
        counts.duplicates, upstream_measured ? upstream_cpu : -1.0, upstream_ms);
    std::fflush(stdout);
}

}  // namespace

void printRecipient(const X509& ra_cert) {
    std::cout << "recipient/reply signer: " << nameText(X509_get_subject_name(&ra_cert)) << "\n";
}

void printPreparation(const Options& opt, const Requests& requests) {
    std::cout << now() << (requests.keys_generated ? " generated " : " loaded ") << opt.pool
              << " RSA-2048 pool keys in " << requests.keys_seconds << " s, " << opt.total()
              << " CSRs + pkiMessages (" << requests.jobs.front().message.size()
              << " bytes each, mode " << (opt.micMode() ? "MIC" : "self-signed+challenge") << ", "
              << opt.cipher << "/" << opt.digest << ") in " << requests.messages_seconds << " s\n";
}

int report(const Options& opt, const std::vector<Job>& jobs, const Window& window,
           const Replies& replies) {
    const Tally counts = tally(opt, replies);
    printFigures(opt, jobs, window, replies, counts);
    const std::size_t good = opt.requests - counts.failed_timed;
    if (counts.failed + counts.duplicates == 0) {
        return 0;
    }
    if (opt.tolerate_failures && good > 0) {
        std::printf(
            "WARNING: %zu failed replies and %zu duplicate serials tolerated "
            "(--tolerate-failures); enrollments/s counts successful timed replies only\n",
            counts.failed, counts.duplicates);
        return 0;
    }
    return 1;
}

}  // namespace scep::bench
