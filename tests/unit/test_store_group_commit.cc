// Group commit (ra/store/sqlite/group_commit.h): writes that queue while a
// batch runs share the next transaction, and one failing write loses
// nothing of its neighbours.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ra/store/sqlite/group_commit.h"
#include "ra/store/store.h"
#include "support.h"

using namespace scep;
using namespace scep::sqlite;
using testsupport::TempDir;

namespace {

int countCommits(void* counter) {
    ++*static_cast<std::atomic<int>*>(counter);
    return 0;  // 0: let the COMMIT proceed
}

struct Table {
    explicit Table(const std::string& path) : db(path, "test") {
        db.exec("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)", "test");
        sqlite3_commit_hook(db.get(), countCommits, &commits);
    }
    void insert(int x) {
        static const std::string operation = "insert";
        db.query("INSERT INTO t (x) VALUES (?1)", operation).bindInt(1, x).run();
    }
    std::int64_t rows() {
        std::lock_guard<std::mutex> lock(connection);
        return db.pragmaInteger("SELECT count(*) FROM t", "test");
    }
    bool has(int x) {
        std::lock_guard<std::mutex> lock(connection);
        Query q = db.query("SELECT 1 FROM t WHERE x = ?1", "test");
        q.bindInt(1, x);
        return q.step();
    }

    std::atomic<int> commits{0};
    std::mutex connection;
    Database db;
    // Before each COMMIT: writes the batch's size (rows in t) as a row of
    // its own, or throws when asked to.
    bool refuse_commit = false;
    GroupCommit writes{db, connection, [this] {
                           if (refuse_commit) {
                               throw std::runtime_error("refused before COMMIT");
                           }
                           db.exec("INSERT INTO t (x) SELECT -1 - count(*) FROM t", "test");
                       }};
};

}  // namespace

TEST_CASE("group commit: writes queued behind a batch share one COMMIT; a failure stays its own") {
    TempDir dir;
    Table table(dir.file("batch.db"));
    const std::string operation = "write";

    // The first write holds its batch open until the others have queued.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<void> first_running;
    std::thread first([&] {
        table.writes.run(operation, [&] {
            table.insert(1);
            first_running.set_value();
            released.wait();
        });
    });
    first_running.get_future().wait();

    constexpr int kFollowers = 6;
    std::vector<std::string> outcome(kFollowers);
    std::vector<std::thread> followers;
    for (int i = 0; i < kFollowers; ++i) {
        followers.emplace_back([&, i] {
            try {
                table.writes.run(operation, [&] {
                    if (i == 2) {
                        table.insert(100);
                        table.insert(1);  // UNIQUE: throws, and 100 must go too
                    } else if (i == 4) {
                        table.insert(200);
                        throw std::runtime_error("refused by the caller");
                    } else {
                        table.insert(10 + i);
                    }
                });
                outcome[i] = "ok";
            } catch (const StoreError&) {
                outcome[i] = "store error";
            } catch (const std::runtime_error& e) {
                outcome[i] = e.what();
            }
        });
    }
    // Followers cannot finish while the first batch runs; give them time to queue.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    release.set_value();
    first.join();
    for (auto& t : followers) {
        t.join();
    }

    CHECK(outcome[2] == "store error");
    CHECK(outcome[4] == "refused by the caller");
    for (int i : {0, 1, 3, 5}) {
        CAPTURE(i);
        CHECK(outcome[i] == "ok");
        CHECK(table.has(10 + i));
    }
    CHECK_FALSE(table.has(100));
    CHECK_FALSE(table.has(200));
    // The five writes and, in each batch, a row from the before-commit step
    // that saw the writes of the batch (and of those before).
    const std::int64_t batches = table.rows() - 5;
    CHECK(batches == table.commits);
    CHECK(table.has(-1 - 1));                  // the first batch: write 1 alone
    CHECK(table.has(-1 - (5 + batches - 1)));  // the last one saw every row
    // Seven writes; one COMMIT per write would be seven.
    CHECK(table.commits < 7);
}

TEST_CASE("group commit: a write alone commits at once, and a failed COMMIT fails every write") {
    TempDir dir;
    Table table(dir.file("alone.db"));
    const std::string operation = "write";
    table.writes.run(operation, [&] { table.insert(1); });
    CHECK(table.commits == 1);
    CHECK(table.has(1));
    CHECK(table.has(-2));

    // A commit hook that returns non-zero turns the COMMIT into a ROLLBACK.
    sqlite3_commit_hook(
        table.db.get(), [](void*) { return 1; }, nullptr);
    CHECK_THROWS_AS(table.writes.run(operation, [&] { table.insert(2); }), StoreError);
    sqlite3_commit_hook(table.db.get(), countCommits, &table.commits);
    CHECK_FALSE(table.has(2));
    table.writes.run(operation, [&] { table.insert(3); });
    CHECK(table.has(3));
    CHECK(table.rows() == 4);  // 1, 3 and their batches' rows

    // A before-commit step that throws fails the batch: its write is undone.
    table.refuse_commit = true;
    CHECK_THROWS_WITH(table.writes.run(operation, [&] { table.insert(4); }),
                      "refused before COMMIT");
    table.refuse_commit = false;
    CHECK_FALSE(table.has(4));
    CHECK(table.rows() == 4);
}
