#include "ra/store/sqlite/group_commit.h"

#include <sqlite3.h>

namespace scep {
namespace sqlite {

void GroupCommit::run(const std::string& operation, const std::function<void()>& body) {
    Write write{&operation, &body, nullptr};
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_.push_back(&write);
    while (!write.done) {
        if (running_) {
            finished_.wait(lock);
            continue;
        }
        // This caller runs everything queued so far, its own write included.
        running_ = true;
        std::vector<Write*> batch;
        batch.swap(queue_);
        lock.unlock();
        runBatch(batch);
        lock.lock();
        for (Write* w : batch) {
            w->done = true;
        }
        running_ = false;
        finished_.notify_all();
    }
    if (write.error) {
        std::rethrow_exception(write.error);
    }
}

void GroupCommit::runBatch(const std::vector<Write*>& batch) {
    std::lock_guard<std::mutex> connection(connection_);
    try {
        Transaction tx(db_, *batch.front()->operation);
        for (Write* w : batch) {
            db_.query("SAVEPOINT batch_write", *w->operation).run();
            try {
                (*w->body)();
                db_.query("RELEASE batch_write", *w->operation).run();
            } catch (...) {
                w->error = std::current_exception();
                // SQLite ends the whole transaction by itself on some errors
                // (SQLITE_FULL, IOERR): then the batch's other writes are
                // gone too, and ROLLBACK TO fails and throws to the catch below.
                if (sqlite3_get_autocommit(db_.get())) {
                    throw;
                }
                db_.query("ROLLBACK TO batch_write", *w->operation).run();
                db_.query("RELEASE batch_write", *w->operation).run();
            }
        }
        tx.commit();
    } catch (...) {
        // Nothing of the batch was committed: every write fails.
        for (Write* w : batch) {
            if (!w->error) {
                w->error = std::current_exception();
            }
        }
    }
}

}  // namespace sqlite
}  // namespace scep
