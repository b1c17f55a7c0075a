// scep-ra backup/restore: a consistent copy taken while the store is in use,
// restored only where it overwrites nothing, with revocations intact.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "ra/ca/bootstrap.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

void removeDatabase(const TempDir& dir) {
    for (const char* part : {"", "-wal", "-shm"}) {
        std::remove(dir.file(std::string("state/scep-ra.db") + part).c_str());
    }
}

// An RA with one issued and one revoked certificate.
struct Populated {
    TestRa ra;
    std::string issued;
    std::string revoked;

    Populated() {
        const X509Ptr mic = fixtureCert("mic-cp8875");
        const EvpPkeyPtr mic_key = fixtureKey("mic-cp8875");
        const auto first = ra.enroll(*mic, *mic_key, *fixtureKey("newkey-1"), {kMicCn, {}, {}});
        const auto second = ra.enroll(*mic, *mic_key, *fixtureKey("newkey-2"), {kMicCn, {}, {}});
        REQUIRE(first.cert);
        REQUIRE(second.cert);
        revoked = serialHex(X509_get0_serialNumber(first.cert.get()));
        issued = serialHex(X509_get0_serialNumber(second.cert.get()));
        ra.service->administration().revoke(revoked, 1, "cli:test");
    }
};

}  // namespace

TEST_CASE("a backup taken while the store is open restores the records and revocations") {
    Populated live;
    TempDir backups;
    const std::string backup = backups.file("b1");
    const auto written = backupStateDir(live.ra.config, backup);
    CHECK(written.size() == 9);  // database, CA/RA/admin certificates and keys, CRL, SHA256SUMS
    CHECK(modeOf(backup) == 0700);
    CHECK(modeOf(backup + "/ca.key") == 0600);
    CHECK(modeOf(backup + "/scep-ra.db") == 0600);
    CHECK(readText(backup + "/SHA256SUMS").find("  scep-ra.db\n") != std::string::npos);
    CHECK_THROWS_WITH(backupStateDir(live.ra.config, backup), doctest::Contains("must not exist"));

    // The loss of the report: the database deleted.
    live.ra.store.reset();
    removeDatabase(live.ra.dir);
    CHECK_THROWS_WITH(requireDatabase(live.ra.config), doctest::Contains("is missing"));

    const auto restored = restoreStateDir(live.ra.config, backup);
    CHECK(restored.size() == 1);  // only the database was missing
    requireDatabase(live.ra.config);
    const auto store = openSqliteStore(live.ra.dir.file("state/scep-ra.db"));
    const auto revoked = store->findCertificate(live.revoked);
    REQUIRE(revoked);
    CHECK(revoked->revoked);
    CHECK(revoked->revocation_reason == 1);
    CHECK(store->findCertificate(live.issued));
}

TEST_CASE("restore never overwrites a database, a key or a certificate") {
    Populated live;
    TempDir backups;
    const std::string backup = backups.file("b");
    backupStateDir(live.ra.config, backup);

    SUBCASE("a database with records is left alone") {
        CHECK_THROWS_WITH(restoreStateDir(live.ra.config, backup),
                          doctest::Contains("already holds a database"));
    }
    SUBCASE("a different key is left alone, and nothing else is written either") {
        live.ra.store.reset();
        removeDatabase(live.ra.dir);
        const std::string ca_key = live.ra.dir.file("state/ca.key");
        REQUIRE(std::remove(ca_key.c_str()) == 0);
        writePrivateKeyFile(ca_key, *generateKey("ec:p256"));
        const std::string key_before = readText(ca_key);
        CHECK_THROWS_WITH(restoreStateDir(live.ra.config, backup),
                          doctest::Contains("differs from the backup"));
        CHECK(readText(ca_key) == key_before);
        CHECK(databaseMissing(live.ra.config));
    }
    SUBCASE("a 0-byte database and its stale WAL are moved aside, not deleted") {
        live.ra.store.reset();
        removeDatabase(live.ra.dir);
        std::ofstream(live.ra.dir.file("state/scep-ra.db")).flush();
        std::ofstream(live.ra.dir.file("state/scep-ra.db-wal")) << "stale";
        CHECK(restoreStateDir(live.ra.config, backup).size() == 1);
        requireDatabase(live.ra.config);
    }
    SUBCASE("missing keys come back with mode 0600") {
        live.ra.store.reset();
        removeDatabase(live.ra.dir);
        const std::string ra_key = live.ra.dir.file("state/ra.key");
        const std::string before = readText(ra_key);
        REQUIRE(std::remove(ra_key.c_str()) == 0);
        CHECK(restoreStateDir(live.ra.config, backup).size() == 2);
        CHECK(readText(ra_key) == before);
        CHECK(modeOf(ra_key) == 0600);
    }
}

TEST_CASE("a damaged backup is refused before anything is written") {
    Populated live;
    TempDir backups;
    const std::string backup = backups.file("b");
    backupStateDir(live.ra.config, backup);
    live.ra.store.reset();
    removeDatabase(live.ra.dir);
    std::ofstream(backup + "/crl.der", std::ios::app) << "x";
    CHECK_THROWS_WITH(restoreStateDir(live.ra.config, backup),
                      doctest::Contains("does not match its SHA256SUMS entry"));
    CHECK(databaseMissing(live.ra.config));
    CHECK_THROWS_WITH(restoreStateDir(live.ra.config, backups.path()),
                      doctest::Contains("is not a scep-ra backup"));
}
