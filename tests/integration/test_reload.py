#!/usr/bin/env python3
"""Configuration reload on SIGHUP (issue 8, item 4), against a real
`scep-ra serve`:

* enrollments in flight -- scep_probe messages from six threads, strongSwan
  `pki --scep` runs, and one request per reload whose body is only half sent
  when the SIGHUP arrives -- are all answered with a certificate that chains
  to the CA while the RA reloads five times; the process and its listener
  stay the same;
* a changed policy (MIC approval manual, a new challenge) applies to the
  requests after the reload, and the reload is logged, audited and counted
  in scep_config_reloads_total;
* an invalid file is refused with the very messages `check-config` prints
  (file, line, key, reason), and the old policy keeps working;
* a change to a key that needs a restart ([ra] listen, workers, state-dir)
  is refused naming each key, and the old listener keeps answering.

No challenge, old or new, may appear in the log or the audit table.

Run alone with:  meson test -C build integration-reload -v
"""

import concurrent.futures
import http.client
import json
import os
import queue
import re
import secrets
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ra_integration as base  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
import admin_harness  # noqa: E402

SUCCESS, FAILURE, PENDING = base.SUCCESS, base.FAILURE, base.PENDING


def log_events(ra):
    events = []
    for line in ra.stderr().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def reload_events(ra):
    return [e for e in log_events(ra) if e.get("msg", "").startswith("configuration reload")]


def reload_rows(ra):
    return ra.count("audit", "action = 'config-reload'")


def sighup(ra):
    """Sends SIGHUP and returns the log line of that reload once it is done
    (its audit row, written last, is there). One at a time: signals sent
    while one is pending would merge into one reload."""
    before = len(reload_events(ra))
    rows = reload_rows(ra)
    os.kill(ra.proc.pid, signal.SIGHUP)

    def done():
        if ra.proc.poll() is not None:
            raise AssertionError("scep-ra exited with %s after SIGHUP" % ra.proc.returncode)
        return reload_rows(ra) > rows
    base.wait_for(done, 60, "the reload's audit row")
    events = reload_events(ra)
    assert len(events) == before + 1, events[before:]
    return events[before]


def new_challenge(ra):
    """A fresh challenge, registered as a secret the logs must never show."""
    challenge = "Ch4ll-" + secrets.token_hex(8)
    ra.secrets.append(challenge)
    return challenge


class ReloadTestCase(base.RaTestCase):
    def start_admin_ra(self, **kwargs):
        ra = admin_harness.AdminRa(self, **kwargs)
        self.viewer = ra.create_token("reload-viewer", "viewer")
        return ra

    def reload_metric(self, ra, outcome):
        response = ra.admin().get("/metrics", token=self.viewer)
        self.assertEqual(response.status, 200, response.body[:300])
        samples = admin_harness.parse_prometheus(response.body.decode())
        return admin_harness.metric(samples, "scep_config_reloads_total", outcome=outcome)

    def reload_audit(self, ra):
        return ra.db("SELECT actor, outcome, identity, reason FROM audit "
                     "WHERE action = 'config-reload' ORDER BY id")

    # Each request in a transaction of its own: scep_probe would otherwise
    # derive the transactionID from the key, and a resend gets the first answer.
    def mic_status(self, ra, key="newkey-1.key"):
        reply, _ = self.mic_exchange(ra, self.fixture(key), txid=secrets.token_hex(16))
        return reply["status"]

    def challenge_reply(self, ra, cn, challenge, key="newkey-2.key"):
        signer_out = self.path("signer.pem")
        reply, _ = self.exchange(ra, reply_key=self.fixture(key), reply_cert=signer_out,
                                 csr_key=self.fixture(key), cn=cn, challenge=challenge,
                                 signer_out=signer_out, txid=secrets.token_hex(16))
        return reply

    def assert_mic_certificate(self, ra, pem):
        path = self.save_pem(pem)
        info = base.cert_info(path)
        self.assertEqual(info["subject"], "CN=" + base.MIC_CN)
        verify = base.run(["openssl", "verify", "-CAfile", ra.ca_pem, path], timeout=60)
        self.assertEqual(verify.returncode, 0, base._text(verify.stdout + verify.stderr))


class R1InFlight(ReloadTestCase):
    MESSAGES = 48
    WORKERS = 6
    RELOADS = 5

    def half_sent(self, ra, message):
        """A PKIOperation whose header and first half of the body are sent;
        finish() sends the rest and returns (status, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", ra.port, timeout=60)
        conn.putrequest("POST", "/scep?operation=PKIOperation")
        conn.putheader("Content-Type", "application/x-pki-message")
        conn.putheader("Content-Length", str(len(message)))
        half = len(message) // 2
        conn.endheaders(message_body=message[:half])

        def finish():
            try:
                conn.send(message[half:])
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()
        return finish

    def test_enrollments_in_flight_survive_sighups(self):
        ra = self.start_ra()
        mic = self.mic()
        keys = [self.fixture("newkey-%d.key" % i) for i in (1, 2, 3)]
        jobs = [dict(signer=mic, csr_key=keys[i % 3], cn=base.MIC_CN, txid="HUP-%03d" % i)
                for i in range(self.MESSAGES + self.RELOADS)]

        def build(job):
            job["message"], job["info"] = self.probe_build(ra, **job)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(build, jobs))
        slow_jobs, jobs = jobs[:self.RELOADS], jobs[self.RELOADS:]

        work = queue.Queue()
        for job in jobs:
            work.put(job)
        answered = []  # (job, status, body, sent, received)
        errors = []
        lock = threading.Lock()
        go = threading.Event()
        reloads_done = threading.Event()

        def worker(number):
            # Every message once, then resends (which must get the same
            # certificate) until the reloads are over: load throughout.
            go.wait()
            resend = number
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    if reloads_done.is_set():
                        return
                    job = jobs[resend % len(jobs)]
                    resend += self.WORKERS
                sent = time.monotonic()
                try:
                    status, _, body = ra.post(job["message"])
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append("%s: %r" % (job["txid"], e))
                    continue
                with lock:
                    answered.append((job, status, body, sent, time.monotonic()))

        pki_results = []

        def strongswan():
            # Real client runs for as long as the reloads go on, and at least
            # four: the fourth reuses the first key, so it is a resend.
            index = 0
            while not reloads_done.is_set() or index < 4:
                result, out = self.pki_enroll(ra, keys[index % 3], base.MIC_CN, cert=mic[0],
                                              certkey=mic[1])
                pki_results.append((result, out))
                index += 1

        threads = [threading.Thread(target=worker, args=(n,), daemon=True)
                   for n in range(self.WORKERS)]
        threads.append(threading.Thread(target=strongswan, daemon=True))
        for t in threads:
            t.start()
        go.set()
        pid = ra.proc.pid
        slow_answers = []
        hups = []
        for number in range(self.RELOADS):
            finish = self.half_sent(ra, slow_jobs[number]["message"])
            ra.auth["challenge"] = new_challenge(ra)  # a live change each time
            ra._write_config()
            hups.append(time.monotonic())
            event = sighup(ra)
            self.assertEqual(event["msg"], "configuration reloaded", event)
            self.assertEqual(event["changed"], ["[auth] challenge"], event)
            slow_answers.append((slow_jobs[number], *finish()))
        reloads_done.set()
        for t in threads:
            t.join(timeout=600)
        self.assertFalse(any(t.is_alive() for t in threads))

        self.assertEqual(errors, [], "requests were dropped")
        self.assertEqual({a[0]["txid"] for a in answered}, {job["txid"] for job in jobs})
        certificates = {}  # txid -> the certificate it got
        for job, status, body in [a[:3] for a in answered] + slow_answers:
            self.assertEqual(status, 200, body[:200])
            reply = self.probe_read(ra, body, mic[1], mic[0])
            self.assertEqual(reply["status"], SUCCESS, reply)
            self.assertEqual(reply["transactionId"], job["info"]["transactionId"])
            pem = reply["certificates"][0]
            if job["txid"] not in certificates:
                self.assert_mic_certificate(ra, pem)
            self.assertEqual(certificates.setdefault(job["txid"], pem), pem)
        self.assertGreaterEqual(len(pki_results), 4)
        # strongSwan derives the transactionID from the key: a later run with
        # the same key is a resend and must get the same certificate.
        pki_certificates = {}
        for (result, out), key in zip(pki_results, keys * len(pki_results)):
            self.assert_pki_ok(result)
            self.assert_issued(ra, out, base.MIC_CN, key)
            der = base.pem_to_der(base.read_text(out))
            self.assertEqual(pki_certificates.setdefault(key, der), der)

        # One process, one listener, throughout.
        self.assertEqual(ra.proc.pid, pid)
        self.assertIsNone(ra.proc.poll())
        self.assertEqual([e["msg"] for e in log_events(ra)].count("listening"), 1)
        issued = self.MESSAGES + self.RELOADS + len(pki_certificates)
        self.assertEqual(ra.count("requests", "status = 'issued'"), issued)
        self.assertEqual(ra.count("certificates"), issued)
        audit = self.reload_audit(ra)
        self.assertEqual(len(audit), self.RELOADS)
        for actor, outcome, identity, reason in audit:
            self.assertEqual((actor, outcome, identity, reason),
                             ("SIGHUP", "success", ra.config, "changed: [auth] challenge"))
        spanning = sum(1 for a in answered if any(a[3] <= hup <= a[4] for hup in hups))
        sys.stderr.write("\n  in flight: %d probe requests (%d of them under way when a SIGHUP "
                         "was sent), %d half-sent requests and %d strongSwan enrollments, all "
                         "answered across %d reloads\n  " % (
                             len(answered), spanning, len(slow_answers), len(pki_results),
                             self.RELOADS))


class R2Policy(ReloadTestCase):
    def test_changed_policy_applies_to_new_requests(self):
        ra = self.start_admin_ra()
        old = ra.challenge
        self.assertEqual(self.mic_status(ra), SUCCESS)
        self.assertEqual(self.challenge_reply(ra, "printer-1", old)["status"], SUCCESS)
        self.assertEqual(self.reload_metric(ra, "success"), 0)

        ra.auth["approval-mic"] = "manual"
        ra.auth["challenge"] = new = new_challenge(ra)
        ra._write_config()
        # The file alone changes nothing.
        self.assertEqual(self.mic_status(ra, "newkey-2.key"), SUCCESS)

        event = sighup(ra)
        self.assertEqual(event["msg"], "configuration reloaded", event)
        self.assertEqual(event["file"], ra.config)
        self.assertEqual(event["changed"], ["[auth] challenge", "[auth] approval-mic"])
        self.assertEqual(self.mic_status(ra, "newkey-3.key"), PENDING)
        self.assertEqual(ra.count("requests", "status = 'pending'"), 1)
        with self.refused(ra):
            reply = self.challenge_reply(ra, "printer-2", old)
            self.assert_failure(reply, "badRequest")
        self.assertEqual(self.challenge_reply(ra, "printer-3", new, "newkey-3.key")["status"],
                         SUCCESS)

        self.assertEqual(self.reload_audit(ra), [
            ("SIGHUP", "success", ra.config, "changed: [auth] challenge, [auth] approval-mic")])
        self.assertEqual(self.reload_metric(ra, "success"), 1)
        self.assertEqual(self.reload_metric(ra, "failure"), 0)


class R3Invalid(ReloadTestCase):
    def test_invalid_config_is_refused_and_the_old_policy_keeps_working(self):
        ra = self.start_admin_ra()
        old = ra.challenge
        good = base.read_text(ra.config)
        new = new_challenge(ra)
        bad = good.replace(old, new).replace(
            "[auth]", '[ath]\nx = 1\n\n[auth]\napproval = "sometimes"')
        self.assertNotEqual(bad, good)
        with open(ra.config, "w") as f:
            f.write(bad)
        # The messages start-up gives, word for word.
        check = ra.cli("check-config")
        self.assertEqual(check.returncode, 1)
        expected = base._text(check.stderr).splitlines()
        self.assertEqual(expected[0], "scep-ra: configuration refused:")
        expected = expected[1:]
        self.assertEqual(len(expected), 2, expected)

        event = sighup(ra)
        self.assertEqual(event["level"], "error")
        self.assertEqual(event["msg"],
                         "configuration reload refused; the running configuration stays in force")
        self.assertEqual(event["file"], ra.config)
        self.assertEqual(event["problems"], expected)
        self.assertTrue(any(p.startswith(ra.config + ":") and "[auth]: key 'approval' must be"
                            in p for p in event["problems"]), event)
        self.assertTrue(any("unknown table or key 'ath'" in p for p in event["problems"]), event)

        # The old policy holds: MIC auto-approved, the old challenge only.
        self.assertEqual(self.mic_status(ra), SUCCESS)
        self.assertEqual(self.challenge_reply(ra, "printer-1", old)["status"], SUCCESS)
        with self.refused(ra):
            self.assert_failure(self.challenge_reply(ra, "printer-2", new), "badRequest")
        audit = self.reload_audit(ra)
        self.assertEqual(len(audit), 1)
        self.assertEqual(audit[0][:3], ("SIGHUP", "failure", ra.config))
        self.assertIn("key 'approval'", audit[0][3])
        self.assertEqual(self.reload_metric(ra, "failure"), 1)

        # Fixed, it reloads.
        with open(ra.config, "w") as f:
            f.write(good.replace(old, new))
        event = sighup(ra)
        self.assertEqual(event["msg"], "configuration reloaded", event)
        self.assertEqual(event["changed"], ["[auth] challenge"])
        self.assertEqual(self.challenge_reply(ra, "printer-3", new, "newkey-3.key")["status"],
                         SUCCESS)
        self.assertEqual(self.reload_metric(ra, "success"), 1)


class R4RestartOnly(ReloadTestCase):
    def test_restart_only_change_is_refused_naming_each_key(self):
        ra = self.start_ra(ra={"workers": 4})
        good = base.read_text(ra.config)
        other_port = base.free_port()
        old_listen = "127.0.0.1:%d" % ra.port
        new_listen = "127.0.0.1:%d" % other_port
        bad = (good.replace('listen = "%s"' % old_listen, 'listen = "%s"' % new_listen)
                   .replace("workers = 4", "workers = 2")
                   .replace('state-dir = "%s"' % ra.state, 'state-dir = "%s-moved"' % ra.state)
                   .replace('[auth]', '[auth]\napproval-mic = "manual"'))
        with open(ra.config, "w") as f:
            f.write(bad)

        event = sighup(ra)
        self.assertEqual(event["msg"],
                         "configuration reload refused; the running configuration stays in force")
        problems = event["problems"]
        self.assertEqual(len(problems), 3, problems)
        def restart_problem(key, before, after):
            """config.cc's format: file:line: [table]: key '...' <rule>."""
            return "^%s:[0-9]+: %s$" % (re.escape(ra.config), re.escape(
                "[ra]: key '%s' changed from '%s' to '%s': needs a restart" % (key, before, after)))
        self.assertRegex(problems[0], restart_problem("listen", old_listen, new_listen))
        self.assertRegex(problems[1], restart_problem("state-dir", ra.state, ra.state + "-moved"))
        self.assertRegex(problems[2], restart_problem("workers", "4", "2"))
        self.assertEqual(self.reload_audit(ra)[0][1], "failure")

        # Nothing of it applies, the live key included; the old port answers.
        self.assertTrue(ra.alive())
        with self.assertRaises(OSError):
            http.client.HTTPConnection("127.0.0.1", other_port, timeout=5).connect()
        self.assertEqual(self.mic_status(ra), SUCCESS)
        self.assertFalse(os.path.exists(ra.state + "-moved"))

        with open(ra.config, "w") as f:
            f.write(good)
        event = sighup(ra)
        self.assertEqual(event["msg"], "configuration reloaded", event)
        self.assertEqual(event["changed"], [])
        self.assertEqual([r[1] for r in self.reload_audit(ra)], ["failure", "success"])


if __name__ == "__main__":
    sys.exit(base.main())
