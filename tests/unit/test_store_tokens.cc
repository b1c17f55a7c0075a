// Admin API tokens in the store, and the health check's ping.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <string>
#include <vector>

#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

TEST_CASE("store v2: tokens — add, find, list, delete, each with its audit event") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    const Bytes hash(32, 0xab);
    auto token = [&](const std::string& id, const std::string& name, const std::string& role) {
        TokenRecord t;
        t.id = id;
        t.name = name;
        t.role = role;
        t.secret_hash = hash;
        t.secret_hash[0] = static_cast<std::uint8_t>(name.size());
        t.created_by = "cli:root";
        return t;
    };
    auto auditEvent = [](const std::string& action, const std::string& name) {
        AuditEvent e = event(action);
        e.actor = "cli:root";
        e.identity = name;
        return e;
    };

    TokenRecord bob = token("0000ffff", "bob", "viewer");
    bob.created_at = 1234;
    store->addToken(bob, auditEvent("token-create", "bob"));
    TokenRecord alice = token("0a1b2c3d", "alice", "approver");
    store->addToken(alice, auditEvent("token-create", "alice"));
    CHECK(auditCount(*store) == 2);
    const auto created = store->listAudit(1, 0);
    REQUIRE(created.size() == 1);
    CHECK(created[0].action == "token-create");
    CHECK(created[0].identity == "alice");
    CHECK(created[0].at > 0);

    const auto found = store->findToken("0a1b2c3d");
    REQUIRE(found);
    CHECK(found->id == "0a1b2c3d");
    CHECK(found->name == "alice");
    CHECK(found->role == "approver");
    CHECK(found->secret_hash == alice.secret_hash);
    CHECK(found->created_at > 0);  // stamped
    CHECK(found->created_by == "cli:root");
    CHECK(store->findToken("0000ffff")->created_at == 1234);  // kept
    CHECK_FALSE(store->findToken("alice"));                   // by id, not name
    CHECK_FALSE(store->findToken("0A1B2C3D"));
    CHECK_FALSE(store->findToken(""));

    auto names = [&] {
        std::vector<std::string> out;
        for (const auto& t : store->listTokens()) {
            out.push_back(t.name);
        }
        return out;
    };
    CHECK(names() == std::vector<std::string>{"alice", "bob"});

    SUBCASE("a clashing name or id is DuplicateToken and writes nothing") {
        CHECK_THROWS_AS(store->addToken(token("12345678", "alice", "viewer"),
                                        auditEvent("token-create", "alice")),
                        DuplicateToken);
        CHECK_THROWS_AS(store->addToken(token("0a1b2c3d", "carol", "viewer"),
                                        auditEvent("token-create", "carol")),
                        DuplicateToken);
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(store->findToken("0a1b2c3d")->name == "alice");
        CHECK_FALSE(store->findToken("12345678"));
        CHECK(auditCount(*store) == 2);
    }
    SUBCASE("invalid tokens are a StoreError, not a duplicate, and write nothing") {
        auto kind = [&](const TokenRecord& t) -> std::string {
            try {
                store->addToken(t, auditEvent("token-create", t.name));
            } catch (const DuplicateToken&) {
                return "duplicate";
            } catch (const StoreError&) {
                return "error";
            }
            return "added";
        };
        CHECK(kind(token("11111111", "carol", "admin")) == "error");
        CHECK(kind(token("11111111", "", "viewer")) == "error");
        CHECK(kind(token("", "carol", "viewer")) == "error");
        TokenRecord short_hash = token("11111111", "carol", "viewer");
        short_hash.secret_hash = Bytes{1, 2, 3};
        CHECK(kind(short_hash) == "error");
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(auditCount(*store) == 2);
        CHECK(kind(token("11111111", "carol", "viewer")) == "added");
    }
    SUBCASE("delete by name") {
        CHECK(store->deleteToken("alice", auditEvent("token-delete", "alice")));
        CHECK_FALSE(store->findToken("0a1b2c3d"));
        CHECK(names() == std::vector<std::string>{"bob"});
        CHECK(auditCount(*store) == 3);
        CHECK(store->listAudit(1, 0)[0].action == "token-delete");
        // Unknown (or already deleted): false, no audit row.
        CHECK_FALSE(store->deleteToken("alice", auditEvent("token-delete", "alice")));
        CHECK_FALSE(store->deleteToken("0000ffff", auditEvent("token-delete", "x")));  // an id
        CHECK(auditCount(*store) == 3);
        // The name and id are free again.
        store->addToken(token("0a1b2c3d", "alice", "viewer"), auditEvent("token-create", "alice"));
        CHECK(store->findToken("0a1b2c3d")->role == "viewer");
    }
    SUBCASE("token and audit row are one transaction") {
        // Make the audit insert fail for one action, from outside the store.
        RawDb raw(path);
        REQUIRE(raw.exec("CREATE TRIGGER test_explode BEFORE INSERT ON audit "
                         "WHEN NEW.action = 'explode' BEGIN SELECT RAISE(ABORT, 'boom'); END") ==
                "");
        CHECK_THROWS_AS(
            store->addToken(token("22222222", "dave", "viewer"), auditEvent("explode", "dave")),
            StoreError);
        CHECK_FALSE(store->findToken("22222222"));  // the token insert was rolled back
        CHECK_THROWS_AS(store->deleteToken("bob", auditEvent("explode", "bob")), StoreError);
        CHECK(store->findToken("0000ffff"));  // the delete was rolled back
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(auditCount(*store) == 2);
    }
    SUBCASE("tokens survive reopening and are visible to a second store") {
        store.reset();
        auto reopened = openSqliteStore(path);
        REQUIRE(reopened->listTokens().size() == 2);
        CHECK(reopened->listTokens()[0].secret_hash == alice.secret_hash);
        RawDb raw(path);
        std::string expected_hex = "03";  // first byte: the name's length, then 0xab
        for (int i = 1; i < 32; ++i) {
            expected_hex += "AB";
        }
        CHECK(raw.scalar("SELECT hex(secret_hash) FROM tokens WHERE name = 'bob'") == expected_hex);
        // Only the hash is stored: the table has no other blob or secret column.
        CHECK(raw.column("SELECT name FROM pragma_table_info('tokens') ORDER BY cid") ==
              std::vector<std::string>{"id", "name", "role", "secret_hash", "created_at",
                                       "created_by"});
    }
}

TEST_CASE("store v2: ping") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    CHECK_NOTHROW(store->ping());
    RawDb raw(path);
    // Another process moved the schema on (a newer release migrated it):
    // this store must not keep reporting healthy.
    REQUIRE(raw.exec("PRAGMA user_version = 6") == "");
    std::string message;
    try {
        store->ping();
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK(message.find("ping") != std::string::npos);
    CHECK(message.find("6") != std::string::npos);
    REQUIRE(raw.exec("PRAGMA user_version = 5") == "");
    CHECK_NOTHROW(store->ping());
}
