#!/usr/bin/env python3
"""scep-ra against clients nobody here wrote: certmonger, and the replies and
capabilities every client must be able to read (issue 7, items 14-16).

certmonger runs for real: its own daemon on a private D-Bus (a dbus-daemon
of this test's own, never the system bus), with its request and CA stores in
the test's directory, driven with `getcert -s`.

Run alone with:  meson test -C build integration-clients -v
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ra_integration as base  # noqa: E402

SUCCESS, FAILURE, PENDING = base.SUCCESS, base.FAILURE, base.PENDING
CERTMONGER = "/usr/sbin/certmonger"
GETCERT = "/usr/bin/getcert"
DBUS_DAEMON = "/usr/bin/dbus-daemon"

base.REQUIREMENTS += [
    ("certmonger", lambda: os.access(CERTMONGER, os.X_OK) and os.access(GETCERT, os.X_OK),
     "apt-get install certmonger"),
    ("dbus-daemon", lambda: os.access(DBUS_DAEMON, os.X_OK), "apt-get install dbus-daemon"),
]

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class Certmonger:
    """A certmonger daemon on a private session bus, with private stores."""

    def __init__(self, case):
        self.case = case
        self.dir = case.path("certmonger")
        os.makedirs(self.dir)
        # A unix socket path must fit in 108 bytes; the test's own is longer.
        bus_dir = base.tempfile.mkdtemp(prefix="cm-bus-")
        case.addCleanup(shutil.rmtree, bus_dir, True)
        socket_path = os.path.join(bus_dir, "bus")
        config = os.path.join(self.dir, "bus.conf")
        with open(config, "w") as f:
            f.write(BUS_CONFIG % socket_path)
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=" + socket_path,
                        HOME=self.dir, XDG_CONFIG_HOME=os.path.join(self.dir, "config"))
        for name in ("requests", "cas", "local", "config"):
            path = os.path.join(self.dir, name)
            os.makedirs(path)
            self.env["CERTMONGER_%s_DIR" % ("LOCAL_CA" if name == "local" else name.upper())] = path
        self.log_path = os.path.join(self.dir, "certmonger.log")
        self.bus = base.popen([DBUS_DAEMON, "--config-file=" + config, "--nofork"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base.wait_for(lambda: os.path.exists(socket_path), 20, "the private D-Bus socket")
        with open(self.log_path, "wb") as log:
            self.daemon = base.popen([CERTMONGER, "-s", "-n", "-d", "2"], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        case.addCleanup(self._stop)
        base.wait_for(lambda: self.getcert("list-cas").returncode == 0, 30,
                      "certmonger answering on its private bus")

    def _stop(self):
        for proc in (self.daemon, self.bus):
            base._kill(proc)

    def getcert(self, *args):
        return base.run([GETCERT, args[0], "-s", *args[1:]], env=self.env, timeout=60)

    def add_ca(self, ra, name="scep-ra"):
        result = self.getcert("add-scep-ca", "-c", name, "-u", ra.url)
        self.case.assertEqual(result.returncode, 0, base._text(result.stderr))
        return name

    def request(self, ca, cn, challenge, request_id):
        key = self.case.path("cm-key.pem")
        cert = self.case.path("cm-cert.pem")
        result = self.getcert("request", "-c", ca, "-k", key, "-f", cert, "-N", "CN=" + cn,
                              "-L", challenge, "-I", request_id)
        self.case.assertEqual(result.returncode, 0, base._text(result.stderr))
        return key, cert

    def status(self, request_id):
        """Status and ca-error of a tracked request, as getcert lists them."""
        result = self.getcert("list", "-i", request_id)
        fields = {}
        for line in base._text(result.stdout).splitlines():
            name, _, value = line.strip().partition(": ")
            fields.setdefault(name, value)
        return fields.get("status", ""), fields.get("ca-error", "")

    def wait_status(self, request_id, wanted, timeout=60):
        """Waits for one of `wanted`; fails on any other settled status."""
        settled = {"MONITORING", "CA_REJECTED", "CA_UNREACHABLE", "CA_UNCONFIGURED",
                   "NEED_TO_SUBMIT", "CA_WORKING"} - set(wanted)
        deadline = time.monotonic() + timeout
        status, error = "", ""
        while time.monotonic() < deadline:
            status, error = self.status(request_id)
            if status in wanted:
                return status, error
            if status in settled and status != "CA_WORKING" and status != "NEED_TO_SUBMIT":
                break
            time.sleep(0.3)
        with open(self.log_path, "rb") as f:
            tail = base._text(f.read())[-3000:]
        raise AssertionError("certmonger request %s is %s (%s), wanted %s\n%s" % (
            request_id, status, error, "/".join(wanted), tail))


class E1Certmonger(base.RaTestCase):
    """Before the fix, every PENDING and FAILURE reply failed certmonger's
    signature check ("PKCS7 routines::no content") and the request sat in
    CA_UNREACHABLE for 7 days."""

    def test_auto_approval_issues_the_certificate(self):
        ra = self.start_ra()
        certmonger = Certmonger(self)
        ca = certmonger.add_ca(ra)
        key, cert = certmonger.request(ca, "cm-auto.example.nl", ra.challenge, "auto")
        certmonger.wait_status("auto", ["MONITORING"])
        self.assert_issued(ra, cert, "cm-auto.example.nl", key)

    def test_manual_approval_pending_then_poll_collects(self):
        ra = self.start_ra(auth={"approval-challenge": "manual"})
        certmonger = Certmonger(self)
        ca = certmonger.add_ca(ra)
        key, cert = certmonger.request(ca, "cm-manual.example.nl", ra.challenge, "manual")
        request_id = ra.pending_request()
        # PENDING read and understood: certmonger keeps waiting for the CA.
        status, error = certmonger.wait_status("manual", ["CA_WORKING"])
        self.assertEqual(error, "")
        approve = ra.cli("approve", str(request_id))
        self.assertEqual(approve.returncode, 0, base._text(approve.stderr))
        # certmonger's next poll (forced now rather than after its own delay)
        # is a CertPoll for the same transaction.
        audit_mark = ra.max_audit_id()
        self.assertEqual(certmonger.getcert("resubmit", "-i", "manual").returncode, 0)
        certmonger.wait_status("manual", ["MONITORING"])
        self.assert_issued(ra, cert, "cm-manual.example.nl", key)
        self.assertEqual(ra.count("certificates"), 1)
        polled = [e for e in ra.audit_since(audit_mark) if e["action"] == "CertPoll"]
        self.assertTrue(all(e["outcome"] == "success" for e in polled), polled)

    def test_rejection_is_reported_as_rejected(self):
        ra = self.start_ra(auth={"approval-challenge": "manual"})
        certmonger = Certmonger(self)
        ca = certmonger.add_ca(ra)
        certmonger.request(ca, "cm-reject.example.nl", ra.challenge, "reject")
        request_id = ra.pending_request()
        certmonger.wait_status("reject", ["CA_WORKING"])
        result = ra.cli("reject", str(request_id), "--reason", "not one of ours")
        self.assertEqual(result.returncode, 0, base._text(result.stderr))
        self.assertEqual(certmonger.getcert("resubmit", "-i", "reject").returncode, 0)
        certmonger.wait_status("reject", ["CA_REJECTED"])
        self.assertEqual(ra.count("certificates"), 0)

    def test_wrong_challenge_is_rejected_not_unreachable(self):
        ra = self.start_ra()
        certmonger = Certmonger(self)
        ca = certmonger.add_ca(ra)
        certmonger.request(ca, "cm-wrong.example.nl", "not-the-challenge", "wrong")
        certmonger.wait_status("wrong", ["CA_REJECTED"])
        self.assertEqual(ra.count("certificates"), 0)


class E2Algorithms(base.RaTestCase):
    def test_md5_request_gets_signed_failure_badalg(self):
        """Was HTTP 400: a client could not tell why."""
        ra = self.start_ra()
        audit_mark = ra.max_audit_id()
        reply, info = self.mic_exchange(ra, self.new_key(), digest="md5")
        self.assertEqual(reply["status"], FAILURE)
        self.assertEqual(reply["failInfo"], "badAlg")
        self.assertEqual(ra.count("certificates"), 0)
        refused = [e for e in ra.audit_since(audit_mark)
                   if e["transaction_id"] == info["transactionId"]]
        self.assertTrue(refused and "MD5" in refused[-1]["reason"], refused)

    def test_caps_advertise_exactly_the_accepted_digests(self):
        """SHA-224 was accepted but not listed (strongSwan 6 then refuses it)."""
        ra = self.start_ra()
        status, _, body = ra.get("operation=GetCACaps")
        self.assertEqual(status, 200)
        caps = set(body.decode().split())
        for name, digest in (("SHA-1", "sha1"), ("SHA-224", "sha224"), ("SHA-256", "sha256"),
                             ("SHA-384", "sha384"), ("SHA-512", "sha512"), ("MD5", "md5")):
            with self.subTest(digest=name):
                reply, _ = self.mic_exchange(ra, self.new_key(), digest=digest)
                refused = reply["status"] == FAILURE and reply.get("failInfo") == "badAlg"
                self.assertEqual(name in caps, not refused, (caps, reply))

    def test_strongswan_enrolls_with_sha224(self):
        ra = self.start_ra()
        key = self.new_key()
        result, out = self.pki_enroll(ra, key, base.MIC_CN, *self.mic(), digest="sha224")
        self.assert_pki_ok(result)
        self.assert_issued(ra, out, base.MIC_CN, key)


if __name__ == "__main__":
    sys.exit(base.main())
