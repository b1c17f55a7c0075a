#include "ra/ops/metrics.h"

#include <initializer_list>
#include <sstream>

namespace scep {

namespace {

// One sample per label value, 0 for a value never counted: a scrape shows
// every series from the start.
void writeLabelledCounter(std::ostringstream& out, const char* name, const char* label,
                          std::initializer_list<const char*> values,
                          const std::map<std::string, std::uint64_t>& counts) {
    for (const char* value : values) {
        const auto it = counts.find(value);
        out << name << "{" << label << "=\"" << value << "\"} "
            << (it == counts.end() ? 0 : it->second) << "\n";
    }
}

}  // namespace

void Metrics::countScep(const std::string& operation, const std::string& message_type,
                        const std::string& outcome, const std::string& method) {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++scep_[{operation, message_type, outcome, method.empty() ? "none" : method}];
}

void Metrics::observeIssuance(double seconds) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        if (seconds <= kBuckets[i]) {
            ++bucket_counts_[i];
        }
    }
    ++issuance_count_;
    issuance_sum_ += seconds;
}

void Metrics::countWebhook(const std::string& outcome) {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++webhook_[outcome];
}

void Metrics::countIdentityClash(const std::string& kind) {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++clashes_[kind];
}

void Metrics::countConfigReload(const std::string& outcome) {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++reloads_[outcome];
}

std::string Metrics::render(Store& store, std::time_t now, std::int64_t crl_next_update) const {
    // Database reads first, outside the lock.
    const std::size_t pending = store.countRequests(RequestStatus::pending);
    const std::size_t expiring = store.countValidCertificates(now, now + 30 * 86400);
    const std::size_t valid = store.countValidCertificates(now, INT64_MAX);

    std::ostringstream out;
    const std::lock_guard<std::mutex> lock(mutex_);
    out << "# HELP scep_requests_total SCEP requests by operation, message type, outcome and "
           "authentication method.\n# TYPE scep_requests_total counter\n";
    for (const auto& [labels, count] : scep_) {
        const auto& [operation, message_type, outcome, method] = labels;
        out << "scep_requests_total{operation=\"" << operation << "\",message_type=\""
            << message_type << "\",outcome=\"" << outcome << "\",method=\"" << method << "\"} "
            << count << "\n";
    }
    out << "# HELP scep_issuance_duration_seconds Time from receiving an enrollment to sending "
           "its certificate (auto-approved).\n# TYPE scep_issuance_duration_seconds histogram\n";
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        out << "scep_issuance_duration_seconds_bucket{le=\"" << kBuckets[i] << "\"} "
            << bucket_counts_[i] << "\n";
    }
    out << "scep_issuance_duration_seconds_bucket{le=\"+Inf\"} " << issuance_count_ << "\n"
        << "scep_issuance_duration_seconds_sum " << issuance_sum_ << "\n"
        << "scep_issuance_duration_seconds_count " << issuance_count_ << "\n";
    out << "# HELP scep_pending_requests Requests waiting for an administrator.\n"
           "# TYPE scep_pending_requests gauge\nscep_pending_requests "
        << pending << "\n";
    out << "# HELP scep_certificates_expiring_30d Valid certificates expiring within 30 days.\n"
           "# TYPE scep_certificates_expiring_30d gauge\nscep_certificates_expiring_30d "
        << expiring << "\n";
    out << "# HELP scep_certificates_valid Certificates neither revoked nor expired.\n"
           "# TYPE scep_certificates_valid gauge\nscep_certificates_valid "
        << valid << "\n";
    out << "# HELP scep_crl_next_update_timestamp_seconds nextUpdate of the current CRL.\n"
           "# TYPE scep_crl_next_update_timestamp_seconds gauge\n"
           "scep_crl_next_update_timestamp_seconds "
        << crl_next_update << "\n";
    out << "# HELP scep_admin_auth_failures_total Refused admin API authentications.\n"
           "# TYPE scep_admin_auth_failures_total counter\nscep_admin_auth_failures_total "
        << auth_failures_.load() << "\n";
    out << "# HELP scep_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
           "# TYPE scep_webhook_deliveries_total counter\n";
    writeLabelledCounter(out, "scep_webhook_deliveries_total", "outcome",
                         {"delivered", "retried", "dropped"}, webhook_);
    out << "# HELP scep_identity_clashes_total Requests that clashed with a phone's identity: "
           "challenge requests for a MIC-shaped CN (refused), MIC enrollments of a name another "
           "method had obtained (flagged).\n# TYPE scep_identity_clashes_total counter\n";
    writeLabelledCounter(out, "scep_identity_clashes_total", "kind",
                         {"challenge-for-mic-name", "mic-over-other"}, clashes_);
    out << "# HELP scep_config_reloads_total Configuration reloads (SIGHUP) by outcome; a "
           "failure leaves the running configuration in force.\n"
           "# TYPE scep_config_reloads_total counter\n";
    writeLabelledCounter(out, "scep_config_reloads_total", "outcome", {"success", "failure"},
                         reloads_);
    return out.str();
}

}  // namespace scep
