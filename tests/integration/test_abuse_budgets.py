#!/usr/bin/env python3
"""What an unauthenticated client may cost scep-ra in audit bytes, challenge
guesses and disk (issue 7, items 3 and 4), against a real `scep-ra serve`:

* audit amplification: PKCSReqs signed by a certificate whose subject is 700
  OUs (55 KB) from three source addresses; every audit and log field stays
  bounded, each source gets its budget of rows and then one summary;
* challenge guessing: 100 wrong challenges from one address cost 5 real
  comparisons; the address is locked out (even for the right challenge), the
  CN too, and another address still enrolls;
* a full disk: state-dir on a small tmpfs (needs root to mount it) filled up;
  enrollments get HTTP 503 with Retry-After, /healthz fails naming the disk,
  nothing half-written remains, and enrollment works again once space is back.

Figures for the closing note are printed as `FIGURE name: value` on stderr.

Run alone with:  meson test -C build integration-abuse -v
"""

import errno
import http.client
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ra_integration as base  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
import admin_harness  # noqa: E402

MIB = 1024 * 1024
AUDIT_TEXT = ("LENGTH(actor) + LENGTH(action) + LENGTH(outcome) + LENGTH(method) + "
              "LENGTH(identity) + LENGTH(reason) + LENGTH(serial) + LENGTH(peer) + "
              "LENGTH(transaction_id)")


def figure(name, value):
    print("FIGURE %s: %s" % (name, value), file=sys.stderr, flush=True)


def post_from(ra, source, body):
    """POST a PKIOperation from `source` (any 127/8 address is loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", ra.port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("POST", "/scep?operation=PKIOperation", body=body,
                     headers={"Content-Type": "application/x-pki-message"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def hostile_signer(case):
    """A certificate whose subject is 700 OUs (about 55 KB) from an unknown issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    import datetime
    key_path = case.new_key()
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                         "Organizational unit %03d of a very long subject, padded to 75 bytes" % i)
                      for i in range(700)] +
                     [x509.NameAttribute(NameOID.COMMON_NAME, "hostile")])
    now = datetime.datetime.now(datetime.timezone.utc)
    # Not self-signed (that would be the challenge path): an unknown issuer,
    # so the RA names this subject in the identity and in the reason.
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unknown issuer")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path = case.path("hostile.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class TmpfsRa(admin_harness.AdminRa):
    """AdminRa whose state-dir is a tmpfs of `size` bytes, mounted here."""

    def __init__(self, scope, size, **kwargs):
        self.tmpfs_size = size
        self.mounted = False
        super().__init__(scope, **kwargs)

    def start(self):
        if not self.mounted:
            os.makedirs(self.state, mode=0o700)
            result = base.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % self.tmpfs_size,
                               "tmpfs", self.state])
            if result.returncode != 0:
                raise AssertionError("cannot mount a tmpfs for the full-disk test (run as root "
                                     "with mount permission): " + base._text(result.stderr))
            self.mounted = True
            self.case.addCleanup(base.run, ["umount", "-l", self.state])
        super().start()


class G1AuditAmplification(base.RaTestCase):
    def test_hostile_subjects_cost_bounded_audit_from_each_source(self):
        ra = self.start_ra(ra={"audit-failures-per-source": 10, "audit-failures-overall": 100,
                               "max-body": "256KiB"})
        signer = hostile_signer(self)
        message, _ = self.probe_build(ra, signer=signer, csr_key=self.new_key(),
                                      cn="hostile.example.nl")
        self.assertGreater(len(message), 50000)
        audit_mark = ra.max_audit_id()
        log_before = os.path.getsize(ra.stderr_path)
        sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        sent = 60
        for _ in range(sent):
            for source in sources:
                status, _, body = post_from(ra, source, message)
                self.assertEqual(status, 200, body[:200])
        rows = ra.audit_since(audit_mark)
        log_bytes = os.path.getsize(ra.stderr_path) - log_before
        for row in rows:
            for field in ("identity", "reason", "peer", "transaction_id"):
                self.assertLessEqual(len(row[field] or ""), 512, row)
        truncated = [r for r in rows if "truncated: " in (r["identity"] or "")]
        self.assertTrue(truncated, rows[:2])
        for source in sources:
            self.assertEqual(len([r for r in rows if r["peer"] == source]), 10)
        audit_bytes = ra.db("SELECT COALESCE(SUM(%s), 0) FROM audit WHERE id > ?" % AUDIT_TEXT,
                            (audit_mark,))[0][0]
        requests = sent * len(sources)
        figure("audit bytes per hostile request (700-OU signer, %d requests, 3 sources)"
               % requests, "%.0f" % (audit_bytes / requests))
        figure("log bytes per hostile request", "%.0f" % (log_bytes / requests))
        self.assertLess(audit_bytes, 40 * 1024)
        self.assertLess(log_bytes, 80 * 1024)
        # At the stop, each source's suppressed failures become one summary.
        ra.stop()
        summaries = [r for r in ra.audit_since(audit_mark) if r["action"] == "suppressed"]
        self.assertEqual(sorted(r["peer"] for r in summaries), sources)
        for summary in summaries:
            self.assertTrue(summary["reason"].startswith("%d more failures" % (sent - 10)),
                            summary)


class G2ChallengeGuessing(base.RaTestCase):
    def test_wrong_challenges_are_throttled_per_source_and_per_cn(self):
        ra = self.start_ra()
        signer_key = self.new_key()
        audit_mark = ra.max_audit_id()
        guesses = 100
        started = time.monotonic()
        for i in range(guesses):
            message, _ = self.probe_build(ra, csr_key=signer_key, cn="guess-%d.example.nl" % (i % 7),
                                          challenge="wrong-guess-%04d" % i)
            status, _, _ = post_from(ra, "127.0.0.5", message)
            self.assertEqual(status, 200)
        elapsed = time.monotonic() - started
        rows = ra.audit_since(audit_mark)
        compared = len([r for r in rows if "challengePassword does not match" in r["reason"]])
        throttled = len([r for r in rows if "too many failed challenge attempts" in r["reason"]])
        figure("challenge comparisons made for %d wrong guesses from one address" % guesses,
               compared)
        figure("seconds for %d wrong guesses (client side, incl. building them)" % guesses,
               "%.1f" % elapsed)
        self.assertEqual(compared, 5)
        self.assertGreater(throttled, 0)
        # Locked out, even with the right challenge...
        reply, _ = self.exchange_from(ra, "127.0.0.5", csr_key=signer_key, cn="right.example.nl",
                                      challenge=ra.challenge)
        self.assertEqual(reply["status"], base.FAILURE)
        # ...while another address enrolls.
        reply, _ = self.exchange_from(ra, "127.0.0.6", csr_key=signer_key,
                                      cn="right.example.nl", challenge=ra.challenge)
        self.assertEqual(reply["status"], base.SUCCESS)
        # Five wrong guesses for one CN from five addresses lock that CN.
        for i in range(5):
            self.exchange_from(ra, "127.0.1.%d" % (i + 1), csr_key=signer_key,
                               cn="victim.example.nl", challenge="nope-nope-%d" % i)
        reply, _ = self.exchange_from(ra, "127.0.2.1", csr_key=signer_key,
                                      cn="VICTIM.example.nl", challenge=ra.challenge)
        self.assertEqual(reply["status"], base.FAILURE)
        # Not simply the last row: when the run is slow (sanitizers, a busy
        # machine) the rate window of 127.0.0.5 can close here and its summary
        # is written after this refusal.
        refusals = [r for r in ra.audit_since(audit_mark) if r["peer"] == "127.0.2.1"]
        self.assertEqual(len(refusals), 1, refusals)
        self.assertIn("for 'victim.example.nl'", refusals[0]["reason"])

    def exchange_from(self, ra, source, **build):
        # A transaction of its own each: a transactionID the RA has answered
        # gets that answer again (idempotency), whatever it now says.
        message, info = self.probe_build(ra, txid=base.secrets.token_hex(16), **build)
        status, _, body = post_from(ra, source, message)
        self.assertEqual(status, 200)
        return self.probe_read(ra, body), info


class G3FullDisk(base.RaTestCase):
    def test_full_disk_answers_503_and_healthz_says_why(self):
        ra = TmpfsRa(self, 24 * MIB, ra={"min-free-space": "4MiB"})
        reply, _ = self.mic_exchange(ra, self.new_key())
        self.assertEqual(reply["status"], base.SUCCESS)
        self.assertEqual(ra.admin().call("GET", "/healthz").status, 200)
        certificates = ra.count("certificates")
        requests = ra.count("requests")

        filler = os.path.join(ra.state, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * MIB)
                    f.flush()
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC)
        # Room for SQLite, but less than min-free-space.
        with open(filler, "r+b") as f:
            f.truncate(os.path.getsize(filler) - 2 * MIB)

        message, info = self.probe_build(ra, signer=self.mic(), csr_key=self.new_key(),
                                         cn=base.MIC_CN)
        status, headers, body = post_from(ra, "127.0.0.1", message)
        self.assertEqual(status, 503, body)
        self.assertIn("Retry-After", headers)
        self.assertIn(b"disk", body)
        health = ra.admin().call("GET", "/healthz")
        self.assertEqual(health.status, 503)
        self.assertIn("MiB free", health.json["checks"]["disk"])
        # SCEP's read-only operations still answer.
        self.assertEqual(ra.get("operation=GetCACaps")[0], 200)
        self.assertEqual(ra.count("certificates"), certificates)
        self.assertEqual(ra.count("requests"), requests)
        self.assertEqual(ra.db("PRAGMA integrity_check"), [("ok",)])

        os.remove(filler)
        status, _, body = post_from(ra, "127.0.0.1", message)
        self.assertEqual(status, 200)
        self.assertEqual(self.probe_read(ra, body, *reversed(self.mic()))["status"], base.SUCCESS)
        self.assertEqual(ra.admin().call("GET", "/healthz").status, 200)
        del info


if __name__ == "__main__":
    sys.exit(base.main())
