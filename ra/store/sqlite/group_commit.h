// Group commit: concurrent writers share one transaction and one fsync.
//
// With synchronous=FULL every COMMIT waits for the disk (fdatasync of the
// WAL). Enrollments that arrive while one COMMIT is syncing queue up; the
// first of them to get the turn runs all queued writes in one BEGIN
// IMMEDIATE ... COMMIT, each in a SAVEPOINT of its own, so one write's
// failure rolls back only that write. Every caller returns only after the
// COMMIT holding its rows is durable, so an acknowledged enrollment still
// survives a power cut; a failed COMMIT fails every write of the batch.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ra/store/sqlite/db.h"

namespace scep {
namespace sqlite {

class GroupCommit {
public:
    // `connection` guards `db`; it is held while a batch runs. `before_commit`
    // runs in every batch's transaction after its writes; if it throws, the
    // batch fails.
    GroupCommit(Database& db, std::mutex& connection, std::function<void()> before_commit)
        : db_(db), connection_(connection), before_commit_(std::move(before_commit)) {}

    // Runs `body` (statements only: no BEGIN/COMMIT of its own) in a write
    // transaction, possibly shared with other callers; returns once it is
    // committed. Rethrows the body's exception (its writes undone) or the
    // COMMIT's. Must not be called with `connection` held.
    void run(const std::string& operation, const std::function<void()>& body);

private:
    struct Write {
        const std::string* operation;
        const std::function<void()>* body;
        std::exception_ptr error;
        bool done = false;
    };

    void runBatch(const std::vector<Write*>& batch);

    Database& db_;
    std::mutex& connection_;
    const std::function<void()> before_commit_;
    std::mutex queue_mutex_;
    std::condition_variable finished_;
    std::vector<Write*> queue_;
    bool running_ = false;  // a caller is running a batch
};

}  // namespace sqlite
}  // namespace scep
