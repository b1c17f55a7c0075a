// Configuration reload (SIGHUP) without signals: the file is read and checked
// as at start-up, restart-only keys refuse the whole reload, live keys reach
// new requests while a request being answered keeps its snapshot, and every
// attempt is audited without secrets.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <set>

#include "ra/crypto.h"
#include "ra/reload.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

const std::string kOldChallenge = "old-challenge-0001";
const std::string kNewChallenge = "new-challenge-0002";

const std::string kRunning = R"(
[ra]
listen = "127.0.0.1:18080"
[auth]
approval = "auto"
challenge = "old-challenge-0001"
challenge-attempts = 3
)";

// The 1-based line of the file holding `text`.
std::size_t lineOf(const std::string& path, const std::string& text) {
    std::ifstream in(path);
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        if (line.find(text) != std::string::npos) {
            return number;
        }
    }
    return 0;
}

// Edits the running RA's file on disk, as an operator would before SIGHUP.
void edit(TestRa& ra, const std::string& from, const std::string& to) {
    std::string text = readText(ra.config.path);
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    std::ofstream(ra.config.path, std::ios::binary | std::ios::trunc) << text;
}

PkiStatus micEnrollment(TestRa& ra) {
    const X509Ptr mic = fixtureCert("mic-cp8875");
    const EvpPkeyPtr mic_key = fixtureKey("mic-cp8875");
    return ra.enroll(*mic, *mic_key, *fixtureKey("newkey-1"), {kMicCn, {}, {}}).rep.status;
}

TestRa::Reply challengeEnrollment(TestRa& ra, const std::string& cn, const std::string& challenge,
                                  const std::string& peer = "192.0.2.1") {
    static const EvpPkeyPtr key = fixtureKey("newkey-3");
    static const X509Ptr signer = makeSelfSigned(*key, "SCEP SIGNER");
    RequestParams params;
    params.transaction_id = randomTransactionId();
    const Bytes csr = requestDer(*makeCsr(*fixtureKey("newkey-2"), {cn, {}, challenge}));
    const Bytes message = buildPkiMessage(params, csr, *signer, *key, *ra.state.ra.cert);
    return ra.open(ra.service->responder().pkiOperation(message, peer), *key, *signer);
}

std::vector<AuditEvent> reloadEvents(TestRa& ra) {
    std::vector<AuditEvent> out;
    for (const AuditEvent& event : ra.audit()) {
        if (event.action == "config-reload") {
            out.push_back(event);
        }
    }
    return out;
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return line.find(text) != std::string::npos;
    });
}

}  // namespace

TEST_CASE("a reload applies policy changes to new requests and audits what changed") {
    TestRa ra(kRunning);
    std::vector<std::string> outcomes;
    ConfigReloader reloader(*ra.service, ra.log,
                            [&](const std::string& outcome) { outcomes.push_back(outcome); });
    REQUIRE(micEnrollment(ra) == PkiStatus::success);
    REQUIRE(challengeEnrollment(ra, "printer-1", kOldChallenge).rep.status == PkiStatus::success);

    edit(ra, "approval = \"auto\"", "approval-mic = \"manual\"");
    edit(ra, kOldChallenge, kNewChallenge);
    // Nothing changes before the reload, whatever the file says.
    CHECK(micEnrollment(ra) == PkiStatus::success);

    REQUIRE(reloader.reload("SIGHUP"));
    CHECK(micEnrollment(ra) == PkiStatus::pending);
    CHECK(challengeEnrollment(ra, "printer-2", kOldChallenge).rep.status == PkiStatus::failure);
    CHECK(challengeEnrollment(ra, "printer-3", kNewChallenge).rep.status == PkiStatus::success);
    CHECK(ra.service->runtime()->config.auth.challenge == kNewChallenge);

    const auto events = reloadEvents(ra);
    REQUIRE(events.size() == 1);
    CHECK(events[0].actor == "SIGHUP");
    CHECK(events[0].outcome == "success");
    CHECK(events[0].identity == ra.config.path);
    CHECK(events[0].reason == "changed: [auth] challenge, [auth] approval-mic");
    CHECK(outcomes == std::vector<std::string>{"success"});

    // Reloading an unchanged file is a success too, and says so.
    REQUIRE(reloader.reload("SIGHUP"));
    CHECK(reloadEvents(ra).front().reason == "no key changed");
}

TEST_CASE("a request being answered keeps the configuration it started with") {
    TestRa ra(kRunning);
    edit(ra, "approval = \"auto\"", "approval = \"manual\"");
    // The service reads its clock once a request has taken its snapshot:
    // the reload lands in the middle of the first request.
    ConfigReloader* reloader = nullptr;
    bool reloaded = false;
    ra.service = std::make_unique<RaServices>(ra.config, ra.state, *ra.store, ra.log, [&] {
        if (reloader && !reloaded) {
            reloaded = reloader->reload("SIGHUP");
        }
        return ra.now;
    });
    ConfigReloader the_reloader(*ra.service, ra.log);
    reloader = &the_reloader;

    CHECK(micEnrollment(ra) == PkiStatus::success);  // started under approval "auto"
    REQUIRE(reloaded);
    CHECK(micEnrollment(ra) == PkiStatus::pending);
    CHECK(ra.store->listRequests(RequestStatus::pending).size() == 1);
}

TEST_CASE("an invalid file is refused with start-up's messages; the old configuration stays") {
    TestRa ra(kRunning);
    std::vector<std::string> outcomes;
    ConfigReloader reloader(*ra.service, ra.log,
                            [&](const std::string& outcome) { outcomes.push_back(outcome); });
    edit(ra, "approval = \"auto\"", "approval = \"sometimes\"\nchallenge-lockout = \"forever\"");
    edit(ra, kOldChallenge, kNewChallenge);

    // The same problems, word for word, as `serve` would print at start-up.
    std::vector<std::string> startup;
    try {
        loadConfig(ra.config.path);
    } catch (const ConfigError& e) {
        startup = e.problems();
    }
    REQUIRE(startup.size() == 2);
    const ReloadPlan plan = planReload(*ra.service->runtime(), ra.state.ca->certificate());
    CHECK_FALSE(plan.runtime);
    CHECK(plan.problems == startup);
    CHECK(mentions(plan.problems, ra.config.path + ":"));
    CHECK(mentions(plan.problems, "[auth]: key 'approval' must be \"auto\" or \"manual\""));
    CHECK(mentions(plan.problems, "[auth]: key 'challenge-lockout'"));

    CHECK_FALSE(reloader.reload("SIGHUP"));
    CHECK(outcomes == std::vector<std::string>{"failure"});
    CHECK(ra.service->runtime()->config.auth.challenge == kOldChallenge);
    CHECK(micEnrollment(ra) == PkiStatus::success);
    CHECK(challengeEnrollment(ra, "printer-1", kOldChallenge).rep.status == PkiStatus::success);

    const auto events = reloadEvents(ra);
    REQUIRE(events.size() == 1);
    CHECK(events[0].outcome == "failure");
    CHECK(events[0].reason.find("the running configuration stays in force") != std::string::npos);
    CHECK(events[0].reason.find("key 'approval'") != std::string::npos);
    for (const AuditEvent& event : ra.audit()) {
        CHECK(event.reason.find(kOldChallenge) == std::string::npos);
        CHECK(event.reason.find(kNewChallenge) == std::string::npos);
    }
}

TEST_CASE("restart-only keys refuse the whole reload, each named with file, line and values") {
    TestRa ra(kRunning + "[admin]\nlisten = \"127.0.0.1:18443\"\n");
    ConfigReloader reloader(*ra.service, ra.log);
    edit(ra, "listen = \"127.0.0.1:18080\"", "listen = \"127.0.0.1:18081\"\nworkers = 9");
    edit(ra, "listen = \"127.0.0.1:18443\"", "listen = \"\"");
    edit(ra, "approval = \"auto\"", "approval = \"manual\"\nallow-des = true");  // live + restart

    const ReloadPlan plan = planReload(*ra.service->runtime(), ra.state.ca->certificate());
    CHECK_FALSE(plan.runtime);
    CHECK(plan.changed.empty());
    REQUIRE(plan.problems.size() == 4);
    const std::string& file = ra.config.path;
    CHECK(mentions(plan.problems, file + ":" + std::to_string(lineOf(file, "127.0.0.1:18081")) +
                                      ": [ra]: key 'listen' changed from '127.0.0.1:18080' to "
                                      "'127.0.0.1:18081': needs a restart"));
    CHECK(mentions(plan.problems, "[ra]: key 'workers' changed from '4' to '9': needs a restart"));
    CHECK(mentions(plan.problems,
                   "[admin]: key 'listen' changed from '127.0.0.1:18443' to '': needs a restart"));
    CHECK(mentions(plan.problems,
                   "[auth]: key 'allow-des' changed from 'false' to 'true': needs a restart"));

    CHECK_FALSE(reloader.reload("SIGHUP"));
    CHECK(micEnrollment(ra) == PkiStatus::success);  // approval stays "auto"
    CHECK(reloadEvents(ra).front().reason.find("key 'workers'") != std::string::npos);
}

TEST_CASE("manufacturer-roots is read again on every reload; a bundle that fails refuses it") {
    TestRa ra(kRunning);
    ConfigReloader reloader(*ra.service, ra.log);
    const std::string copy =
        ra.dir.write("roots.pem", readText(fixturePki() + "/manufacturer-roots.pem"));
    edit(ra, fixturePki() + "/manufacturer-roots.pem", copy);
    REQUIRE(reloader.reload("SIGHUP"));
    CHECK(reloadEvents(ra).front().reason == "changed: [auth] manufacturer-roots");
    CHECK(micEnrollment(ra) == PkiStatus::success);

    // Same path, new content: this RA's own CA as the only root, so the
    // phone's MIC no longer chains.
    ra.dir.write("roots.pem", readText(ra.dir.file("state/ca.pem")));
    REQUIRE(reloader.reload("SIGHUP"));
    CHECK(reloadEvents(ra).front().reason == "no key changed");
    CHECK(micEnrollment(ra) == PkiStatus::failure);

    ra.dir.write("roots.pem", "not a certificate\n");
    const ReloadPlan empty = planReload(*ra.service->runtime(), ra.state.ca->certificate());
    CHECK_FALSE(empty.runtime);
    REQUIRE(empty.problems.size() == 1);
    CHECK(empty.problems[0] == ra.config.path + ": [auth]: key 'manufacturer-roots': '" + copy +
                                   "' holds no PEM certificate");

    edit(ra, copy, ra.dir.file("missing.pem"));
    const ReloadPlan missing = planReload(*ra.service->runtime(), ra.state.ca->certificate());
    CHECK_FALSE(missing.runtime);
    CHECK(mentions(missing.problems,
                   "[auth]: key 'manufacturer-roots': cannot open certificate "
                   "file '" +
                       ra.dir.file("missing.pem") + "'"));
    CHECK_FALSE(reloader.reload("SIGHUP"));
    CHECK(ra.service->runtime()->config.auth.manufacturer_roots == copy);
}

TEST_CASE("[ca] settings and the challenge throttle's limits reload live") {
    TestRa ra(kRunning);
    ConfigReloader reloader(*ra.service, ra.log);
    // Two wrong guesses of the three allowed before the reload...
    for (int i = 0; i < 2; ++i) {
        CHECK(challengeEnrollment(ra, "guess", "wrong-guess-000" + std::to_string(i)).rep.status ==
              PkiStatus::failure);
    }
    edit(ra, "challenge-attempts = 3", "challenge-attempts = 2");
    edit(ra, "[auth]", "[ca]\nvalidity-days = 10\norganization = \"Reloaded\"\n[auth]");
    REQUIRE(reloader.reload("SIGHUP"));
    CHECK(reloadEvents(ra).front().reason ==
          "changed: [ca] validity-days, [ca] organization, [auth] challenge-attempts");
    // ...count against the two allowed after it: the right challenge is
    // refused unchecked from that address.
    CHECK(challengeEnrollment(ra, "printer", kOldChallenge).rep.status == PkiStatus::failure);
    const std::string refusal = ra.audit().front().reason;
    CHECK(refusal.find("too many failed challenge attempts") != std::string::npos);
    const auto issued = challengeEnrollment(ra, "printer", kOldChallenge, "198.51.100.9");
    REQUIRE(issued.cert);
    CHECK(asn1TimeToUnix(X509_get0_notAfter(issued.cert.get())) == ra.now + 10 * 86400);
    CHECK(nameText(X509_get_subject_name(issued.cert.get())).find("O=Reloaded") !=
          std::string::npos);
}

TEST_CASE("every key is either live or restart-only, and the comparison reads each one") {
    TempDir dir;
    const std::string every = R"(
[[profile]]
name = "p"
vendor-class = ["CP-8875"]
server = "http://192.0.2.1"
fingerprint = "12040870625C5B755D73F5925285F8F5FF5D55AF"
[ra]
listen = "127.0.0.1:1"
state-dir = "/tmp/other"
max-body = "128KiB"
paths = ["/x"]
cert = "ra.pem"
key-file = "ra.key"
max-connections = 10
max-connections-per-address = 5
max-header-size = "300KiB"
max-header-fields = 10
idle-timeout = "1s"
header-timeout = "2s"
body-timeout = "3s"
write-timeout = "4s"
workers = 1
max-queue = 2
min-free-space = "2MiB"
audit-failures-per-source = 1
audit-failures-overall = 2
[ca]
validity-days = 1
key = "ec:p256"
name = "Other"
cert = "ca.pem"
key-file = "ca.key"
organization = "O"
organizational-unit = "OU"
country = "NL"
crl-days = 1
[auth]
manufacturer-roots = "other.pem"
allow-expired-mic = true
challenge = "another-challenge"
approval-mic = "manual"
approval-challenge = "manual"
approval-renewal = "manual"
allow-des = true
revoke-superseded = true
mic-issuers = ["X"]
mic-models = ["Y"]
challenge-attempts = 1
challenge-lockout = "1m"
ra-signers = "ras.pem"
approval-ra = "auto"
[admin]
listen = "127.0.0.1:2"
cert = "admin.pem"
key-file = "admin.key"
client-ca = "clients.pem"
notify-url = "http://192.0.2.2/hook"
max-connections = 10
max-connections-per-address = 5
max-header-size = "4KiB"
max-header-fields = 10
idle-timeout = "1s"
header-timeout = "2s"
body-timeout = "3s"
write-timeout = "4s"
tls-handshake-timeout = "5s"
workers = 1
max-queue = 2
[admin.client-cert-roles]
"alice" = "viewer"
)";
    // The upstream backend's keys cannot sit beside the local CA's: they are
    // changed between two upstream configurations.
    const std::string upstream =
        "[ca]\nbackend = \"scep\"\nurl = \"http://192.0.2.3/scep\"\n"
        "ca-fingerprint = \"sha1:" +
        std::string(40, '1') + "\"\n";
    const std::string upstream_every =
        "[ca]\nbackend = \"scep\"\nurl = \"http://192.0.2.4/scep\"\n"
        "ca-fingerprint = \"sha1:" +
        std::string(40, '2') +
        "\"\nidentity-cert = \"i.pem\"\nidentity-key = "
        "\"i.key\"\npoll-interval = \"2s\"\n"
        "poll-timeout = \"2m\"\ntimeout = \"2s\"\n";
    const Config defaults = parseConfig("", dir.file("scep.toml"));
    const Config changed = parseConfig(every, dir.file("scep.toml"));
    const Config upstream_defaults = parseConfig(upstream, dir.file("scep.toml"));
    std::vector<KeyChange> changes = compareConfigs(defaults, changed);
    for (auto&& more :
         {compareConfigs(upstream_defaults, parseConfig(upstream_every, dir.file("scep.toml"))),
          compareConfigs(defaults, upstream_defaults)}) {
        changes.insert(changes.end(), more.begin(), more.end());
    }
    std::set<std::string> named;
    for (const KeyChange& change : changes) {
        named.insert(change.name());
        const auto list = change.live ? liveKeys() : restartKeys();
        CHECK(std::find(list.begin(), list.end(), change.name()) != list.end());
        if (change.live) {
            CHECK(change.running.empty());  // never carried: it may be the challenge
            CHECK(change.wanted.empty());
        }
    }
    std::set<std::string> all;
    for (const auto& keys : {liveKeys(), restartKeys()}) {
        all.insert(keys.begin(), keys.end());
    }
    CHECK(named == all);
    const std::vector<std::string> documented = {"[[profile]]",
                                                 "[ra] min-free-space",
                                                 "[ra] audit-failures-per-source",
                                                 "[ra] audit-failures-overall",
                                                 "[ca] validity-days",
                                                 "[ca] organization",
                                                 "[ca] organizational-unit",
                                                 "[ca] country",
                                                 "[ca] crl-days",
                                                 "[auth] manufacturer-roots",
                                                 "[auth] allow-expired-mic",
                                                 "[auth] challenge",
                                                 "[auth] approval-mic",
                                                 "[auth] approval-challenge",
                                                 "[auth] approval-renewal",
                                                 "[auth] approval-ra",
                                                 "[auth] ra-signers",
                                                 "[auth] revoke-superseded",
                                                 "[auth] mic-issuers",
                                                 "[auth] mic-models",
                                                 "[auth] challenge-attempts",
                                                 "[auth] challenge-lockout",
                                                 "[admin.client-cert-roles]"};
    CHECK(liveKeys() == documented);  // README, "Reloading the configuration"
}
