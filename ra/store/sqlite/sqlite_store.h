// The SQLite store (see store.h for the interface and sqlite_store.cc for
// its durability and concurrency). Its members are defined in two files:
// sqlite_store.cc opens the database and writes; search.cc reads, from the
// single-row look-ups to the admin API's filtered searches.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ra/store/sqlite/db.h"
#include "ra/store/sqlite/group_commit.h"
#include "ra/store/store.h"

namespace scep {
namespace sqlite {

struct SearchSql;  // search_sql.h

class SqliteStore final : public Store {
public:
    explicit SqliteStore(const std::string& path);
    // Indexes the rows still queued for the full-text indexes, if it can.
    ~SqliteStore() override;
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    void addPendingRequest(RequestRecord& record, const AuditEvent& event) override;
    std::vector<std::string> addIssuedRequest(RequestRecord& record, const CertificateRecord& cert,
                                              const AuditEvent& event,
                                              const IssueRules& rules) override;
    bool issuePending(std::int64_t request_id, const CertificateRecord& cert,
                      const AuditEvent& event, const IssueRules& rules,
                      std::vector<std::string>* superseded) override;
    bool rejectPending(std::int64_t request_id, const std::string& reason, const AuditEvent& event,
                       std::optional<int> ca_fail_info) override;
    bool forwardPending(std::int64_t request_id, const CaProgress& ca,
                        const AuditEvent& event) override;
    bool acknowledgedByCa(std::int64_t request_id, const AuditEvent& event) override;
    bool noteCaError(std::int64_t request_id, const std::string& error,
                     const AuditEvent* event) override;
    std::vector<RequestRecord> requestsAtCa() override;

    std::optional<RequestRecord> findRequest(std::int64_t id) override;
    std::optional<RequestRecord> findRequestByTransaction(
        const std::string& transaction_id) override;
    std::vector<RequestRecord> listRequests(std::optional<RequestStatus> status) override;

    std::optional<CertificateRecord> findCertificate(const std::string& serial) override;
    std::vector<CertificateRecord> listCertificates() override;
    std::vector<CertificateRecord> activeCertificatesFor(const std::string& common_name,
                                                         std::int64_t now,
                                                         Superseded superseded) override;
    bool revoke(const std::string& serial, int reason, std::int64_t at,
                const AuditEvent& event) override;
    std::vector<CertificateRecord> revokedCertificates() override;
    std::vector<CertificateRecord> revocations() override;

    void audit(const AuditEvent& event) override;
    std::vector<AuditEvent> listAudit(std::size_t limit, std::int64_t before_id) override;

    Page<RequestRecord> findRequests(const RequestFilter& filter) override;
    Page<CertificateView> findCertificates(const CertificateFilter& filter) override;
    std::size_t countRequests(RequestStatus status) override;
    std::size_t countValidCertificates(std::int64_t from, std::int64_t to) override;

    void addToken(const TokenRecord& token, const AuditEvent& event) override;
    std::optional<TokenRecord> findToken(const std::string& id) override;
    std::vector<TokenRecord> listTokens() override;
    bool deleteToken(const std::string& name, const AuditEvent& event) override;

    void ping() override;
    void checkWritable() override;

private:
    template <typename T, typename ReadRow>
    Page<T> searchPage(const std::string& operation, const SearchSql& sql, std::size_t limit,
                       std::size_t offset, ReadRow readRow);

    // Callers hold mutex_.
    std::int64_t insertRequest(const RequestRecord& r, const std::string& operation);
    void insertCertificate(const CertificateRecord& c, std::int64_t request_id,
                           const std::string& operation);
    void insertAudit(AuditEvent event, const std::string& operation);
    // Inside an issuing transaction, before `cert` is inserted: checks
    // `rules` and supersedes the identity's current certificate.
    std::vector<std::string> applyIssueRules(const IssueRules& rules, const CertificateRecord& cert,
                                             std::int64_t request_id,
                                             const std::string& transaction_id,
                                             const AuditEvent& event, const std::string& operation);
    // One UPDATE of a request row by id, RETURNING its transaction_id, then
    // `event` linked to it, in one transaction; false (nothing written) when
    // the UPDATE matched no row. `bind` binds ?2 onwards.
    bool updateRequest(const char* sql, std::int64_t request_id,
                       const std::function<void(Query&)>& bind, const AuditEvent* event,
                       const std::string& operation);
    void checkIssueRules(const IssueRules& rules, const CertificateRecord& cert, std::int64_t at,
                         const std::string& operation);
    // Certificates not revoked with not_after >= at (search.cc).
    std::int64_t validFrom(std::int64_t at, const std::string& operation);
    // In each batch's transaction: indexes the full-text queues once they
    // hold kSearchQueueBatch rows.
    void indexQueuedRows();
    // All queued rows, in a transaction of its own. Callers hold mutex_.
    void drainQueuedRows(const std::string& operation);

    const std::string path_;
    std::mutex mutex_;
    Database db_;
    // addPendingRequest, addIssuedRequest and audit: the writes of every
    // enrollment, batched (group_commit.h); the rest hold mutex_ themselves.
    GroupCommit writes_{db_, mutex_, [this] { indexQueuedRows(); }};
};

}  // namespace sqlite
}  // namespace scep
