#include "ra/store/sqlite/group_commit.h"

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
            w->error = runInSavepoint(db_, "batch_write", *w->operation, *w->body);
        }
        before_commit_();
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
