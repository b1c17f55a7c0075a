#!/usr/bin/env python3
"""The CA and its records survive operator mistakes (issue 7, items 7-8):
a real `scep-ra serve` refuses to start over a half-moved CA or a lost
database, `scep-ra backup` copies a running RA, and `scep-ra restore` brings
the revocations back, checked with `openssl verify -crl_check`.

Run alone with:  meson test -C build integration-state -v
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ra_integration as base  # noqa: E402


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class F1StateSafety(base.RaTestCase):
    def serve_refused(self, ra, *expected):
        """`scep-ra serve` exits non-zero at once, saying all of `expected`."""
        result = base.run([base.SCEP_RA, "serve", "--config", ra.config], timeout=60)
        stderr = base._text(result.stderr)
        self.assertNotEqual(result.returncode, 0, "serve started:\n" + stderr)
        for text in expected:
            self.assertIn(text, stderr)
        return stderr

    def enroll_and_revoke(self, ra):
        """Two MIC certificates; the first revoked. Returns (revoked pem, valid pem)."""
        paths = []
        for _ in range(2):
            key = self.new_key()
            result, out = self.pki_enroll(ra, key, base.MIC_CN, *self.mic())
            self.assert_pki_ok(result)
            paths.append(out)
        der = base.pem_to_der(base.read_text(paths[0]))
        serial = [row[0] for row in ra.db("SELECT serial, der FROM certificates")
                  if bytes(row[1]) == der][0]
        revoke = ra.cli("revoke", serial, "--reason", "keyCompromise")
        self.assertEqual(revoke.returncode, 0, base._text(revoke.stderr))
        return paths[0], paths[1]

    def crl_rejects(self, ra, revoked_pem):
        """GET /crl from the running RA; openssl refuses the revoked certificate."""
        status, _, der = ra.request("GET", "/crl")
        self.assertEqual(status, 200)
        crl_pem = self.path("crl.pem")
        base.openssl("crl", "-inform", "DER", "-out", crl_pem, data=der)
        verify = base.run(["openssl", "verify", "-crl_check", "-CAfile", ra.ca_pem,
                           "-CRLfile", crl_pem, revoked_pem], timeout=60)
        out = base._text(verify.stdout) + base._text(verify.stderr)
        self.assertNotEqual(verify.returncode, 0, out)
        self.assertIn("certificate revoked", out)
        return crl_pem

    def test_moved_ca_certificate_refuses_start_and_keeps_the_key(self):
        ra = self.start_ra()
        result, _ = self.pki_enroll(ra, self.new_key(), base.MIC_CN, *self.mic())
        self.assert_pki_ok(result)
        ra.stop()
        key_before = read_bytes(os.path.join(ra.state, "ca.key"))
        os.rename(ra.ca_pem, os.path.join(ra.dir, "ca.pem.moved"))
        self.serve_refused(ra, "ca.key' exists but", "Put ca.pem back")
        self.assertEqual(read_bytes(os.path.join(ra.state, "ca.key")), key_before)
        self.assertFalse(os.path.exists(ra.ca_pem))
        # Both moved away: still refused, the database and RA files remain.
        os.rename(os.path.join(ra.state, "ca.key"), os.path.join(ra.dir, "ca.key.moved"))
        self.serve_refused(ra, "refusing to create a new CA over existing state", "scep-ra init")
        self.assertFalse(os.path.exists(os.path.join(ra.state, "ca.key")))
        # Put back, it starts as before with the same CA.
        os.rename(os.path.join(ra.dir, "ca.key.moved"), os.path.join(ra.state, "ca.key"))
        os.rename(os.path.join(ra.dir, "ca.pem.moved"), ra.ca_pem)
        ra.start()
        self.assertEqual(read_bytes(os.path.join(ra.state, "ca.key")), key_before)

    def test_lost_database_refuses_start_until_restored_from_backup(self):
        ra = self.start_ra()
        revoked, valid = self.enroll_and_revoke(ra)
        # Online: taken while serve runs and answers.
        backup = os.path.join(self.work, "backup-1")
        result = ra.cli("backup", backup)
        self.assertEqual(result.returncode, 0, base._text(result.stderr))
        check = base.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, timeout=60)
        self.assertEqual(check.returncode, 0, base._text(check.stdout))
        self.assertEqual(os.stat(os.path.join(backup, "ca.key")).st_mode & 0o777, 0o600)
        # Restore is refused while serve holds state-dir.
        busy = ra.cli("restore", backup)
        self.assertNotEqual(busy.returncode, 0)
        self.assertIn("is in use", base._text(busy.stderr))
        ra.stop()

        for name in os.listdir(ra.state):
            if name.startswith("scep-ra.db"):
                os.remove(os.path.join(ra.state, name))
        self.serve_refused(ra, "scep-ra.db' is missing", "scep-ra restore", "scep-ra init")
        with open(ra.db_path, "wb"):
            pass  # the 0-byte file of the report
        self.serve_refused(ra, "scep-ra.db' is empty")
        self.assertEqual(os.path.getsize(ra.db_path), 0, "serve wrote a fresh database")

        restored = ra.cli("restore", backup)
        self.assertEqual(restored.returncode, 0, base._text(restored.stderr))
        again = ra.cli("restore", backup)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("already holds a database", base._text(again.stderr))
        ra.start()
        crl_pem = self.crl_rejects(ra, revoked)
        verify = base.run(["openssl", "verify", "-crl_check", "-CAfile", ra.ca_pem,
                           "-CRLfile", crl_pem, valid], timeout=60)
        self.assertEqual(verify.returncode, 0, base._text(verify.stdout + verify.stderr))
        self.assertEqual(ra.count("certificates"), 2)
        self.assertEqual(ra.count("certificates", "revoked = 1"), 1)

    def test_init_starts_an_empty_database_on_purpose(self):
        ra = self.start_ra()
        self.enroll_and_revoke(ra)
        ra.stop()
        for name in os.listdir(ra.state):
            if name.startswith("scep-ra.db"):
                os.remove(os.path.join(ra.state, name))
        self.serve_refused(ra, "is missing")
        init = ra.cli("init")
        self.assertEqual(init.returncode, 0, base._text(init.stderr))
        self.assertIn("revoke again what must stay revoked", base._text(init.stderr))
        ra.start()
        self.assertEqual(ra.count("certificates"), 0)
        actions = [row[0] for row in ra.db("SELECT action FROM audit")]
        self.assertIn("init", actions)
        # A second init has nothing to do and changes nothing.
        ra.stop()
        second = ra.cli("init")
        self.assertEqual(second.returncode, 0, base._text(second.stderr))
        self.assertIn("nothing to do", base._text(second.stdout))


if __name__ == "__main__":
    sys.exit(base.main())
