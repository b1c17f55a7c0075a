// A fixed set of threads running handlers, fed by a bounded queue: slow work
// (signing, fsync) never runs on an I/O thread, and a burst beyond the queue
// is refused at once (503) instead of piling up.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace scep::http {

class WorkerPool {
public:
    WorkerPool(std::size_t threads, std::size_t max_queue);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // false when the queue is full or the pool is stopping.
    bool trySubmit(std::function<void()> task);
    // Runs what is queued, then joins the threads.
    void stop();

private:
    void run();

    const std::size_t max_queue_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace scep::http
