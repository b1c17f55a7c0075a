#!/usr/bin/python3
"""Integration tests of scep-ra with real SCEP clients.

Every test starts its own `scep-ra serve` on 127.0.0.1 with its own port and
state directory under one session directory, and stops it at the end (also
when the test fails). The clients are the ones Debian ships -- micromdm
`scepclient` (package scep) and strongSwan `pki --scep` (strongswan-pki +
libstrongswan-extra-plugins for its curl fetcher) -- plus `scep_probe`
(tests/tools) for what those clients cannot send. The database is read with
Python's sqlite3; certificates are checked with the openssl CLI. The test
manufacturer PKI comes from tests/fixtures/test_pki.py (python3-cryptography).

A missing tool makes the whole suite fail with what to install; nothing is
skipped.

    /usr/bin/python3 tests/integration/test_ra_integration.py \\
        --scep-ra build/ra/scep-ra --probe build/tests/tools/scep_probe \\
        --source-dir . [unittest options, e.g. -k Hostile]

Set KEEP_TMP=1 to keep the session directory (RA logs, databases) for a
post-mortem; its path is printed at the end.
"""

import argparse
import atexit
import base64
import concurrent.futures
import contextlib
import datetime
import http.client
import json
import os
import queue
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# Filled in by main().
SCEP_RA = None
PROBE = None
SOURCE_DIR = None
SESSION_DIR = None
FIXTURE = None  # directory of the test manufacturer PKI

# Every child process this suite starts in the background; killed at exit
# whatever happens.
_CHILDREN = []
_CHILDREN_LOCK = threading.Lock()

MIC_CN = "CP-8875-SEP001A2B3C4D5E"
MIC_B_CN = "CP-8875-SEP001A2B3C4D60"
DP_CN = "CP-9841-SEP001A2B3C4D41"
EXPIRED_CN = "CP-8875-SEP001A2B3C4D70"
SUDI_CN = "CP-8875-SEP001A2B3C4D5F"
DESK_DOMAIN = "voice.example.nl"   # profile whose vendor class covers CP-8875
DP_DOMAIN = "dp.example.org"       # profile listing DP-9841
CA_NAME = "CN=kea-scep-ra Root CA"
VALIDITY_DAYS = 30
DAY = 86400

# strongSwan's pki: the curl plugin (libstrongswan-extra-plugins) fetches.
STRONGSWAN_CURL_PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-curl.so"

SUCCESS, FAILURE, PENDING = "SUCCESS", "FAILURE", "PENDING"


# ---------------------------------------------------------------- processes

def _register(proc):
    with _CHILDREN_LOCK:
        _CHILDREN.append(proc)
    return proc


def _kill(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only its tree
        except ProcessLookupError:
            pass
        except PermissionError:
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _kill_all_children():
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        _kill(proc)


def popen(args, **kwargs):
    """A background child in its own session, killed at the end for sure."""
    return _register(subprocess.Popen(args, start_new_session=True, **kwargs))


def run(args, timeout=120, check=False, **kwargs):
    """Runs a command to completion; the child is killed on timeout."""
    result = subprocess.run(args, capture_output=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s\n%s" % (
            " ".join(map(str, args)), result.returncode, _text(result.stdout), _text(result.stderr)))
    return result


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.1):
    """Polls until `predicate()` is truthy; returns its value. The timeout is
    a failsafe against hangs, not an assertion about speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


# ---------------------------------------------------------------- openssl

def openssl(*args, data=None, check=True):
    result = run(["openssl", *args], input=data, check=check, timeout=60)
    return _text(result.stdout)


def pem_to_der(pem_text):
    body = "".join(l for l in pem_text.strip().splitlines() if not l.startswith("-----"))
    return base64.b64decode(body)


def cert_info(path):
    """Subject, issuer (RFC 2253), serial, validity and extensions of a PEM cert."""
    out = openssl("x509", "-in", path, "-noout", "-subject", "-issuer", "-serial", "-startdate",
                  "-enddate", "-nameopt", "RFC2253")
    info = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        info[key.strip()] = value.strip()
    fmt = "%b %d %H:%M:%S %Y GMT"
    info["not_before"] = datetime.datetime.strptime(
        " ".join(info["notBefore"].split()), fmt).replace(tzinfo=datetime.timezone.utc)
    info["not_after"] = datetime.datetime.strptime(
        " ".join(info["notAfter"].split()), fmt).replace(tzinfo=datetime.timezone.utc)
    info["serial"] = info["serial"].upper().lstrip("0")
    info["text"] = openssl("x509", "-in", path, "-noout", "-text")
    info["ext"] = openssl("x509", "-in", path, "-noout", "-ext",
                          "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName", check=False)
    return info


def read_text(path):
    with open(path, "rb") as f:
        return _text(f.read())


def public_key_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey")


def public_key_of_key(path):
    return openssl("pkey", "-in", path, "-pubout")


# ---------------------------------------------------------------- the RA

def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # JSON strings and string arrays are valid TOML


class Ra:
    """One scep-ra serve process with its own config, state dir and port."""

    def __init__(self, case, name="ra", auth=None, ra=None, ca=None, profiles=None,
                 roots=None, challenge=True):
        self.case = case
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=SESSION_DIR)
        if not os.environ.get("KEEP_TMP"):
            case.addCleanup(shutil.rmtree, self.dir, True)
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "scep.toml")
        self.stdout_path = os.path.join(self.dir, "ra.stdout")
        self.stderr_path = os.path.join(self.dir, "ra.stderr")
        self.challenge = ("Ch4ll-" + secrets.token_hex(8)) if challenge else ""
        self.auth = {"manufacturer-roots": roots or os.path.join(FIXTURE, "manufacturer-roots.pem"),
                     "challenge": self.challenge}
        self.auth.update(auth or {})
        self.ra_settings = {"max-body": "64KiB"}
        self.ra_settings.update(ra or {})
        self.ca_settings = {"validity-days": VALIDITY_DAYS}
        self.ca_settings.update(ca or {})
        self.profiles = profiles
        self.secrets = [self.challenge] if self.challenge else []
        self.proc = None
        self.port = None
        self._pki_ca = None
        case.addCleanup(self._finish)
        self.start()

    # -- lifecycle

    def _write_config(self):
        server = "http://127.0.0.1:%d/scep" % self.port
        profiles = self.profiles if self.profiles is not None else [
            {"name": "desk", "vendor-class": ["Cisco Systems, Inc. IP Phone CP-8875"],
             "server": server, "fingerprint": "12040870625C5B755D73F5925285F8F5FF5D55AF",
             "domain": DESK_DOMAIN},
            {"name": "dp", "vendor-class": ["DP-9841"], "server": server,
             "fingerprint": "12040870625C5B755D73F5925285F8F5FF5D55AF", "domain": DP_DOMAIN},
        ]
        lines = []
        for profile in profiles:
            lines.append("[[profile]]")
            lines += ["%s = %s" % (k, toml_value(v)) for k, v in profile.items()]
            lines.append("")
        ra = {"listen": "127.0.0.1:%d" % self.port, "state-dir": self.state}
        ra.update(self.ra_settings)
        for table, values in (("ra", ra), ("ca", self.ca_settings), ("auth", self.auth)):
            lines.append("[%s]" % table)
            lines += ["%s = %s" % (k, toml_value(v)) for k, v in values.items()]
            lines.append("")
        if not hasattr(self, "admin_port"):
            # No admin listener on the fixed default port: two RAs (or two
            # test runs) would collide there. admin_harness.AdminRa writes its
            # own [admin] table with a free port.
            lines += ["[admin]", 'listen = ""', ""]
        with open(self.config, "w") as f:
            f.write("\n".join(lines))

    def start(self):
        """Starts (or restarts) the RA and waits until it answers GetCACaps."""
        keep_port = self.port is not None
        for _attempt in range(3):
            if not keep_port:
                self.port = free_port()
            self._write_config()
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                err_offset = err.tell()
                self.proc = popen([SCEP_RA, "serve", "--config", self.config], stdout=out,
                                  stderr=err, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self._answers_as_ours():
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            log = self.stderr()[err_offset:]
            _kill(self.proc)
            if "cannot listen" in log and not keep_port:
                continue  # someone took the port meanwhile
            raise AssertionError("scep-ra did not come up (rc %s):\n%s" % (self.proc.returncode, log))
        raise AssertionError("scep-ra could not find a free port")

    def _answers_as_ours(self):
        """GetCACaps answers and GetCACert serves this RA's own certificate
        (not another process that happens to hold the port)."""
        status, _, body = self.get("operation=GetCACaps", timeout=2)
        if status != 200 or b"POSTPKIOperation" not in body or not os.path.exists(self.ra_pem):
            return False
        status, _, body = self.get("operation=GetCACert", timeout=2)
        return status == 200 and pem_to_der(read_text(self.ra_pem)) in body

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill(self.proc)

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def _finish(self):
        alive = self.proc is not None and self.proc.poll() is None
        self.stop()
        # Invariant for every test: no challenge value in logs or audit.
        self.assert_no_secrets()
        if alive is False and self.proc is not None and self.proc.returncode not in (0, -9):
            raise AssertionError("scep-ra exited with %s during the test:\n%s" % (
                self.proc.returncode, self.stderr()[-3000:]))

    # -- HTTP

    @property
    def url(self):
        return "http://127.0.0.1:%d/scep" % self.port

    def request(self, method, target, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            conn.close()

    def get(self, query, path="/scep", timeout=30):
        return self.request("GET", path + "?" + query, timeout=timeout)

    def post(self, body, path="/scep", query="operation=PKIOperation", headers=None):
        return self.request("POST", path + "?" + query, body=body,
                            headers=headers or {"Content-Type": "application/octet-stream"})

    def alive(self):
        """Still running and answering GetCACaps."""
        if self.proc.poll() is not None:
            return False
        status, ctype, body = self.get("operation=GetCACaps")
        return status == 200 and b"POSTPKIOperation" in body

    # -- state

    @property
    def ca_pem(self):
        return os.path.join(self.state, "ca.pem")

    @property
    def ra_pem(self):
        return os.path.join(self.state, "ra.pem")

    @property
    def db_path(self):
        return os.path.join(self.state, "scep-ra.db")

    def db(self, sql, args=()):
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def count(self, table, where="1", args=()):
        return self.db("SELECT COUNT(*) FROM %s WHERE %s" % (table, where), args)[0][0]

    def max_audit_id(self):
        return self.db("SELECT COALESCE(MAX(id), 0) FROM audit")[0][0]

    def audit_since(self, audit_id):
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(
                "SELECT * FROM audit WHERE id > ? ORDER BY id", (audit_id,))]
        finally:
            conn.close()

    def certificate_serials(self):
        return {r[0].upper().lstrip("0") for r in self.db("SELECT serial FROM certificates")}

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return _text(f.read())

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return _text(f.read())

    def assert_no_secrets(self):
        if not self.secrets or not os.path.exists(self.stderr_path):
            return
        logs = self.stderr() + self.stdout()
        audit = ""
        if os.path.exists(self.db_path):
            audit = "\n".join(repr(r) for r in self.db("SELECT * FROM audit"))
        for secret in self.secrets:
            if secret in logs:
                raise AssertionError("challenge %r appears in the RA's log" % secret)
            if secret in audit:
                raise AssertionError("challenge %r appears in the audit table" % secret)

    # -- CLI

    def cli(self, *args):
        return run([SCEP_RA, *args, "--config", self.config], timeout=60)

    def pending_request(self, transaction_id=None, timeout=60):
        """ID of the (single) pending request, waiting for it to appear."""
        def find():
            sql = "SELECT id FROM requests WHERE status = 'pending'"
            args = ()
            if transaction_id:
                sql += " AND transaction_id = ?"
                args = (transaction_id,)
            rows = self.db(sql, args)
            return rows[0][0] if rows else None
        return wait_for(find, timeout, "a pending request")

    # -- strongSwan's view of the CA

    def pki_ca(self):
        """(ra.der, ca.der) fetched with `pki --scepca` (GetCACert)."""
        if self._pki_ca is None:
            ra_der = os.path.join(self.dir, "ra.der")
            ca_der = os.path.join(self.dir, "ca.der")
            result = run(["pki", "--scepca", "--url", self.url, "--caout", ca_der, "--raout", ra_der],
                         timeout=60)
            if result.returncode != 0 or not os.path.exists(ra_der) or not os.path.exists(ca_der):
                raise AssertionError("pki --scepca failed:\n" + _text(result.stderr))
            self._pki_ca = (ra_der, ca_der)
        return self._pki_ca


# ---------------------------------------------------------------- test base

class RaTestCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix=self.id().split(".")[-1][:40] + "-", dir=SESSION_DIR)
        if not os.environ.get("KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.work, True)
        self._files = 0

    def path(self, name):
        self._files += 1
        return os.path.join(self.work, "%03d-%s" % (self._files, name))

    def start_ra(self, **kwargs):
        return Ra(self, **kwargs)

    def fixture(self, name):
        return os.path.join(FIXTURE, name)

    def mic(self, name="mic-cp8875"):
        return self.fixture(name + ".pem"), self.fixture(name + ".key")

    def new_key(self):
        path = self.path("key.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        return path

    # -- strongSwan pki

    def pki_enroll(self, ra, key, cn, cert=None, certkey=None, cipher=None, digest=None, sans=(),
                   extra=(), timeout=120):
        """Runs `pki --scep`; returns (CompletedProcess, path of the PEM written)."""
        ra_der, ca_der = ra.pki_ca()
        args = ["pki", "--scep", "--url", ra.url, "--in", key, "--dn", "CN=" + cn,
                "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
                "--outform", "pem"]
        if cert:
            args += ["--cert", cert, "--key", certkey]
        if cipher:
            args += ["--cipher", cipher]
        if digest:
            args += ["--digest", digest]
        for san in sans:
            args += ["--san", san]
        args += list(extra)
        result = run(args, timeout=timeout)
        out = self.path("pki-cert.pem")
        with open(out, "wb") as f:
            f.write(result.stdout)
        return result, out

    def assert_pki_ok(self, result):
        self.assertEqual(result.returncode, 0, "pki --scep failed:\n" + _text(result.stderr))

    def assert_pki_failed(self, result, fail_info="badRequest"):
        stderr = _text(result.stderr)
        self.assertNotEqual(result.returncode, 0, "pki --scep unexpectedly succeeded:\n" + stderr)
        self.assertIn("reply status is not 'SUCCESS'", stderr)
        self.assertRegex(stderr, r"failInfo:\s+%s" % fail_info)
        self.assertNotIn(b"BEGIN CERTIFICATE", result.stdout)

    # -- micromdm scepclient

    def scepclient_args(self, ra, workdir, cn, challenge, extra=()):
        os.makedirs(workdir, exist_ok=True)
        return ["scepclient", "-server-url", ra.url,
                "-private-key", os.path.join(workdir, "key.pem"),
                "-certificate", os.path.join(workdir, "cert.pem"),
                "-challenge", challenge, "-cn", cn, *extra]

    # -- scep_probe

    def probe_build(self, ra, type="PKCSReq", signer=None, csr_key=None, cn=None, sans=(),
                    challenge=None, txid=None, nonce=None, cipher=None, digest=None,
                    issuer_serial_of=None, content_file=None, signer_out=None):
        """Builds a pkiMessage; returns (DER bytes, info dict)."""
        out = self.path("msg.der")
        args = [PROBE, "build", "--type", str(type), "--ra-cert", ra.ra_pem, "--out", out]
        if signer:
            args += ["--signer-cert", signer[0], "--signer-key", signer[1]]
        for flag, value in (("--csr-key", csr_key), ("--cn", cn), ("--challenge", challenge),
                            ("--transaction-id", txid), ("--sender-nonce", nonce),
                            ("--cipher", cipher), ("--digest", digest),
                            ("--issuer-serial-of", issuer_serial_of),
                            ("--content-file", content_file), ("--signer-out", signer_out)):
            if value is not None:
                args += [flag, value]
        for san in sans:
            args += ["--san", san]
        result = run(args, timeout=60, check=True)
        with open(out, "rb") as f:
            return f.read(), json.loads(result.stdout)

    def probe_read(self, ra, reply, key=None, cert=None):
        path = self.path("reply.der")
        with open(path, "wb") as f:
            f.write(reply)
        args = [PROBE, "read", "--ra-cert", ra.ra_pem, "--in", path]
        if key:
            args += ["--key", key, "--cert", cert]
        result = run(args, timeout=60)
        if result.returncode != 0:
            raise AssertionError("scep_probe read failed: " + _text(result.stderr))
        return json.loads(result.stdout)

    def exchange(self, ra, reply_key=None, reply_cert=None, **build):
        """Builds with scep_probe, POSTs, reads the CertRep (HTTP 200 asserted)."""
        message, info = self.probe_build(ra, **build)
        status, ctype, body = ra.post(message)
        self.assertEqual(status, 200, "HTTP %d: %r" % (status, body[:300]))
        self.assertEqual(ctype, "application/x-pki-message")
        reply = self.probe_read(ra, body, reply_key, reply_cert)
        self.assertEqual(reply["transactionId"], info["transactionId"])
        self.assertEqual(reply["recipientNonce"], info["senderNonce"])
        return reply, info

    def mic_exchange(self, ra, csr_key, cn=MIC_CN, mic="mic-cp8875", **build):
        signer = self.mic(mic)
        return self.exchange(ra, reply_key=signer[1], reply_cert=signer[0], signer=signer,
                             csr_key=csr_key, cn=cn, **build)

    def save_pem(self, pem):
        path = self.path("cert.pem")
        with open(path, "w") as f:
            f.write(pem)
        return path

    # -- assertions

    def assert_issued(self, ra, path, cn, key, sans=()):
        """The certificate the RA issued: subject CN only, our CA, validity,
        KU/EKU/BC, SANs, the requested key, chains to the CA, recorded."""
        info = cert_info(path)
        self.assertEqual(info["subject"], "CN=" + cn)
        self.assertEqual(info["issuer"], CA_NAME)
        self.assertEqual(cert_info(ra.ca_pem)["subject"], CA_NAME)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLessEqual(info["not_before"], now)
        self.assertGreater(info["not_after"], now)
        lifetime = (info["not_after"] - info["not_before"]).total_seconds()
        self.assertGreaterEqual(lifetime, VALIDITY_DAYS * DAY)
        self.assertLessEqual(lifetime, VALIDITY_DAYS * DAY + 3600)  # only clock-skew backdating
        ext = info["ext"]
        self.assertRegex(ext, r"X509v3 Basic Constraints: critical\s+CA:FALSE")
        self.assertRegex(ext, r"X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s")
        self.assertRegex(ext, r"X509v3 Extended Key Usage: ?\s+TLS Web Client Authentication\s*(\n|$)")
        if sans:
            match = re.search(r"X509v3 Subject Alternative Name: ?\s+(.*)", ext)
            self.assertIsNotNone(match, ext)
            self.assertEqual(sorted(s.strip() for s in match.group(1).split(",")), sorted(sans))
        else:
            self.assertNotIn("Subject Alternative Name", ext)
        self.assertEqual(public_key_of_cert(path), public_key_of_key(key))
        verify = run(["openssl", "verify", "-CAfile", ra.ca_pem, path], timeout=60)
        self.assertEqual(verify.returncode, 0, _text(verify.stdout) + _text(verify.stderr))
        rows = ra.db("SELECT der, common_name, revoked FROM certificates")
        der = pem_to_der(read_text(path))
        self.assertIn((der, cn, 0), [(bytes(r[0]), r[1], r[2]) for r in rows])
        return info

    @contextlib.contextmanager
    def refused(self, ra, action=None):
        """The block must not issue any certificate, must leave a failure in
        the audit table (yielded as ctx['audit']) and must not kill the RA."""
        certs = ra.count("certificates")
        requests_issued = ra.count("requests", "status = 'issued'")
        audit = ra.max_audit_id()
        ctx = {}
        yield ctx
        self.assertEqual(ra.count("certificates"), certs, "a certificate was issued")
        self.assertEqual(ra.count("requests", "status = 'issued'"), requests_issued)
        rows = ra.audit_since(audit)
        failures = [r for r in rows if r["outcome"] == "failure"]
        self.assertTrue(failures, "no failure was audited; audit rows: %r" % rows)
        if action:
            self.assertIn(action, [r["action"] for r in failures])
        ctx["audit"] = failures
        self.assertTrue(ra.alive(), "the RA no longer answers GetCACaps:\n" + ra.stderr()[-3000:])

    def assert_failure(self, reply, fail_info):
        self.assertEqual(reply["status"], FAILURE, reply)
        self.assertEqual(reply["failInfo"], fail_info, reply)
        self.assertEqual(reply["certificates"], [])


# ================================================================ A. happy paths

class A1MicromdmScepclient(RaTestCase):
    def test_challenge_enrollment_gets_cn_only_certificate(self):
        ra = self.start_ra(auth={"allow-des": True})
        work = os.path.join(self.work, "mm")
        result = run(self.scepclient_args(ra, work, "mm-phone-1", ra.challenge), timeout=120)
        output = _text(result.stdout) + _text(result.stderr)
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("pkiStatus=SUCCESS", output)
        cert = os.path.join(work, "cert.pem")
        # scepclient's CSR carries C=US, O=scep-client, OU=MDM; only the CN is kept.
        csr_subject = openssl("req", "-in", os.path.join(work, "csr.pem"), "-noout", "-subject",
                              "-nameopt", "RFC2253")
        self.assertIn("O=scep-client", csr_subject)
        self.assert_issued(ra, cert, "mm-phone-1", os.path.join(work, "key.pem"))
        rows = ra.db("SELECT method, status, message_type FROM requests")
        self.assertEqual(rows, [("challenge", "issued", "PKCSReq")])

    def test_challenge_manual_approval_pending_then_retry_succeeds(self):
        # The one test that waits for scepclient's fixed 30 s PENDING sleep.
        ra = self.start_ra(auth={"allow-des": True, "approval-challenge": "manual"})
        work = os.path.join(self.work, "mm")
        log = open(os.path.join(self.work, "scepclient.log"), "wb")
        self.addCleanup(log.close)
        proc = popen(self.scepclient_args(ra, work, "mm-pending", ra.challenge), stdout=log,
                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(_kill, proc)
        request_id = ra.pending_request()
        row = ra.db("SELECT method, common_name, reason FROM requests WHERE id = ?", (request_id,))
        self.assertEqual(row[0][:2], ("challenge", "mm-pending"))
        self.assertFalse(os.path.exists(os.path.join(work, "cert.pem")))
        self.assertEqual(ra.count("certificates"), 0)
        self.assertIsNone(proc.poll(), "scepclient gave up on PENDING")
        approved = ra.cli("approve", str(request_id))
        self.assertEqual(approved.returncode, 0, _text(approved.stderr))
        self.assertRegex(_text(approved.stdout), r"issued certificate [0-9A-F]+")
        self.assertEqual(proc.wait(timeout=150), 0, "%s\naudit: %r" % (
            read_text(log.name), ra.db("SELECT action, outcome, reason FROM audit")))
        output = read_text(log.name)
        self.assertIn("sleeping for 30 seconds", output)  # it really re-sent after PENDING
        self.assertIn("pkiStatus=SUCCESS", output)
        self.assert_issued(ra, os.path.join(work, "cert.pem"), "mm-pending",
                           os.path.join(work, "key.pem"))
        self.assertEqual(ra.db("SELECT status FROM requests WHERE id = ?", (request_id,)),
                         [("issued",)])
        actions = [r[0] for r in ra.db("SELECT action FROM audit WHERE request_id = ?", (request_id,))]
        self.assertIn("approve", actions)


class A2StrongswanPki(RaTestCase):
    def test_mic_enrollment_cipher_digest_matrix(self):
        ra = self.start_ra()
        mic_cert, mic_key = self.mic()
        cases = [
            ("aes", "sha256", MIC_CN, ()),
            ("aes", "sha1", MIC_CN + "." + DESK_DOMAIN, ("email:%s@%s" % (MIC_CN, DESK_DOMAIN),)),
            ("des3", "sha256", MIC_CN + "." + DESK_DOMAIN, ()),
            ("des3", "sha1", MIC_CN, ()),
        ]
        serials = set()
        for cipher, digest, cn, sans in cases:
            with self.subTest(cipher=cipher, digest=digest, cn=cn):
                key = self.new_key()
                result, out = self.pki_enroll(ra, key, cn, cert=mic_cert, certkey=mic_key,
                                              cipher=cipher, digest=digest, sans=sans)
                self.assert_pki_ok(result)
                info = self.assert_issued(ra, out, cn, key, sans=sans)
                serials.add(info["serial"])
        self.assertEqual(len(serials), len(cases))
        self.assertEqual(ra.count("certificates"), len(cases))
        self.assertEqual({r[0] for r in ra.db("SELECT method FROM requests")}, {"mic"})
        details = [json.loads(r[0]) for r in ra.db("SELECT details FROM requests")]
        self.assertTrue(all(d.get("mac") == "00:1A:2B:3C:4D:5E" for d in details), details)

    def test_dp9841_mic_with_its_profile_domain(self):
        ra = self.start_ra()
        dp_cert, dp_key = self.mic("mic-dp9841")
        key = self.new_key()
        cn = DP_CN + "." + DP_DOMAIN
        san = "email:%s@%s" % (DP_CN, DP_DOMAIN)
        result, out = self.pki_enroll(ra, key, cn, cert=dp_cert, certkey=dp_key, sans=[san])
        self.assert_pki_ok(result)
        self.assert_issued(ra, out, cn, key, sans=[san])
        # ... but not with the CP-8875 profile's domain.
        with self.refused(ra):
            result, _ = self.pki_enroll(ra, self.new_key(), DP_CN + "." + DESK_DOMAIN,
                                        cert=dp_cert, certkey=dp_key)
            self.assert_pki_failed(result)

    def test_renewal_with_issued_certificate_and_new_key(self):
        ra = self.start_ra()
        mic_cert, mic_key = self.mic()
        old_key = self.new_key()
        cn = MIC_CN + "." + DESK_DOMAIN
        result, old_cert = self.pki_enroll(ra, old_key, cn, cert=mic_cert, certkey=mic_key)
        self.assert_pki_ok(result)
        old = self.assert_issued(ra, old_cert, cn, old_key)
        new_key = self.new_key()
        result, new_cert = self.pki_enroll(ra, new_key, cn, cert=old_cert, certkey=old_key)
        self.assert_pki_ok(result)
        new = self.assert_issued(ra, new_cert, cn, new_key)
        self.assertNotEqual(old["serial"], new["serial"])
        rows = ra.db("SELECT method, message_type, details FROM requests ORDER BY id")
        self.assertEqual([r[:2] for r in rows], [("mic", "RenewalReq"), ("renewal", "RenewalReq")])
        self.assertEqual(json.loads(rows[1][2]).get("renews", "").lstrip("0"), old["serial"])

    def test_manual_approval_pki_polls_until_approved(self):
        ra = self.start_ra(auth={"approval-mic": "manual"})
        mic_cert, mic_key = self.mic()
        key = self.new_key()
        ra_der, ca_der = ra.pki_ca()
        out = self.path("cert.pem")
        err = self.path("pki.stderr")
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = popen(["pki", "--scep", "--url", ra.url, "--in", key, "--dn", "CN=" + MIC_CN,
                          "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
                          "--cert", mic_cert, "--key", mic_key, "--outform", "pem",
                          "--interval", "1", "--maxpolltime", "60"],
                         stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        self.addCleanup(_kill, proc)
        request_id = ra.pending_request()
        # It keeps polling (CertPoll) while pending; nothing issued yet.
        wait_for(lambda: "polling every 1 seconds" in read_text(err), 30,
                 "pki to report PENDING")
        self.assertIsNone(proc.poll())
        self.assertEqual(ra.count("certificates"), 0)
        listed = ra.cli("requests", "--status", "pending")
        self.assertEqual(listed.returncode, 0)
        self.assertIn(MIC_CN, _text(listed.stdout))
        approved = ra.cli("approve", str(request_id))
        self.assertEqual(approved.returncode, 0, _text(approved.stderr))
        self.assertEqual(proc.wait(timeout=90), 0, read_text(err))
        self.assert_issued(ra, out, MIC_CN, key)
        # Approving twice is refused.
        again = ra.cli("approve", str(request_id))
        self.assertNotEqual(again.returncode, 0)

    def test_manual_approval_rejected_pki_fails(self):
        ra = self.start_ra(auth={"approval-mic": "manual"})
        mic_cert, mic_key = self.mic()
        key = self.new_key()
        ra_der, ca_der = ra.pki_ca()
        err = self.path("pki.stderr")
        with open(err, "wb") as e:
            proc = popen(["pki", "--scep", "--url", ra.url, "--in", key, "--dn", "CN=" + MIC_CN,
                          "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
                          "--cert", mic_cert, "--key", mic_key, "--outform", "pem",
                          "--interval", "1", "--maxpolltime", "60"],
                         stdout=subprocess.DEVNULL, stderr=e, stdin=subprocess.DEVNULL)
        self.addCleanup(_kill, proc)
        request_id = ra.pending_request()
        rejected = ra.cli("reject", str(request_id), "--reason", "not one of ours")
        self.assertEqual(rejected.returncode, 0, _text(rejected.stderr))
        self.assertNotEqual(proc.wait(timeout=90), 0)
        stderr = read_text(err)
        self.assertIn("reply status is not 'SUCCESS'", stderr)
        self.assertRegex(stderr, r"failInfo:\s+badRequest")
        self.assertEqual(ra.count("certificates"), 0)
        self.assertEqual(ra.db("SELECT status, reason FROM requests WHERE id = ?", (request_id,)),
                         [("rejected", "not one of ours")])
        self.assertIn("not one of ours", _text(ra.cli("requests", "--status", "rejected").stdout))
        # Deciding twice is refused.
        self.assertNotEqual(ra.cli("approve", str(request_id)).returncode, 0)


class A3HttpTransport(RaTestCase):
    def _message_with_plus_and_slash(self, ra, key, index):
        for attempt in range(20):
            message, info = self.probe_build(ra, signer=self.mic(), csr_key=key, cn=MIC_CN,
                                             txid="GET-%d-%d" % (index, attempt))
            b64 = base64.b64encode(message).decode()
            if "+" in b64 and "/" in b64:
                return message, info, b64
        self.fail("could not build a message whose base64 has both '+' and '/'")

    def test_get_pkioperation_encodings_and_post(self):
        ra = self.start_ra()
        key = self.fixture("newkey-1.key")

        def standard(b64):
            return "operation=PKIOperation&message=" + b64                       # '+', '/' raw

        def urlsafe(b64):
            return "message=%s&operation=PKIOperation" % b64.replace("+", "-").replace("/", "_")

        def urlsafe_unpadded(b64):
            return "operation=PKIOperation&message=" + urlsafe(b64).split("&")[0][8:].rstrip("=")

        def spaces(b64):
            return "operation=PKIOperation&message=" + b64.replace("+", "%20")

        def line_breaks(b64):  # strongSwan's GET form: %0A every 64 characters, '+' as %2B
            lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
            return "operation=PKIOperation&message=" + "%0A".join(lines).replace("+", "%2B")

        def crlf(b64):
            lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
            return "operation=PKIOperation&message=" + urllib.parse.quote("\r\n".join(lines), safe="")

        def quoted(b64):
            return "operation=PKIOperation&message=" + urllib.parse.quote(b64, safe="")

        variants = [standard, urlsafe, urlsafe_unpadded, spaces, line_breaks, crlf, quoted]
        for index, variant in enumerate(variants):
            for path in ("/scep", "/cgi-bin/pkiclient.exe"):
                with self.subTest(variant=variant.__name__, path=path):
                    before = ra.count("certificates")
                    message, info, b64 = self._message_with_plus_and_slash(
                        ra, key, index * 2 + (path != "/scep"))
                    status, ctype, body = ra.get(variant(b64), path=path)
                    self.assertEqual(status, 200, body[:300])
                    self.assertEqual(ctype, "application/x-pki-message")
                    reply = self.probe_read(ra, body, *reversed(self.mic()))
                    self.assertEqual(reply["status"], SUCCESS, reply)
                    self.assertEqual(reply["transactionId"], info["transactionId"])
                    self.assertEqual(reply["recipientNonce"], info["senderNonce"])
                    self.assertEqual(len(reply["certificates"]), 1)
                    self.assertEqual(ra.count("certificates"), before + 1)
        for path, headers in (("/scep", {"Content-Type": "application/octet-stream"}),
                              ("/cgi-bin/pkiclient.exe", {})):  # pki sends no Content-Type
            with self.subTest(method="POST", path=path):
                message, info = self.probe_build(ra, signer=self.mic(), csr_key=key, cn=MIC_CN,
                                                 txid="POST" + path)
                status, ctype, body = ra.request("POST", path + "?operation=PKIOperation",
                                                 body=message, headers=headers)
                self.assertEqual(status, 200, body[:300])
                reply = self.probe_read(ra, body, *reversed(self.mic()))
                self.assertEqual(reply["status"], SUCCESS, reply)

    def test_get_base64_with_trailing_newline(self):
        # Base64 as OpenSSL's BIO / `openssl base64` writes it (64-character
        # lines and a final newline), URL-escaped the way strongSwan escapes
        # ('+' and line breaks escaped, '/' and '=' raw): "...AB==%0A". The
        # RA strips line breaks and re-pads, so this must work like the
        # variants above. (cpp-httplib splits a query pair at every raw '='.)
        ra = self.start_ra()
        key = self.fixture("newkey-1.key")
        for attempt in range(30):
            message, info = self.probe_build(ra, signer=self.mic(), csr_key=key, cn=MIC_CN,
                                             txid="NL-%d" % attempt)
            b64 = base64.b64encode(message).decode()
            if b64.endswith("="):
                break
        self.assertTrue(b64.endswith("="), "no padded message in 30 attempts")
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        encoded = ("%0A".join(lines) + "%0A").replace("+", "%2B")
        status, _, body = ra.get("operation=PKIOperation&message=" + encoded)
        self.assertEqual(status, 200, body[:300])
        reply = self.probe_read(ra, body, *reversed(self.mic()))
        self.assertEqual(reply["status"], SUCCESS, reply)
        self.assertEqual(reply["transactionId"], info["transactionId"])

    def _raw_http10(self, ra, target):
        with socket.create_connection(("127.0.0.1", ra.port), timeout=30) as s:
            s.sendall(("GET %s HTTP/1.0\r\n\r\n" % target).encode())  # no Host header
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break  # the server must close an HTTP/1.0 connection
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        return status, headers, body

    def test_http10_without_host_header(self):
        ra = self.start_ra()
        status, headers, body = self._raw_http10(ra, "/scep?operation=GetCACaps")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        caps = body.decode().split("\n")
        for cap in ("POSTPKIOperation", "SCEPStandard", "Renewal", "AES", "DES3", "SHA-1",
                    "SHA-256", "SHA-384", "SHA-512"):
            self.assertIn(cap, caps)
        status, headers, body = self._raw_http10(ra, "/cgi-bin/pkiclient.exe?operation=GetCACert")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-x509-ca-ra-cert")
        self.assertEqual(int(headers["content-length"]), len(body))
        printed = openssl("pkcs7", "-inform", "DER", "-print_certs", data=body)
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", printed, re.S)
        self.assertEqual(len(certs), 2, printed)
        self.assertEqual({pem_to_der(c) for c in certs},
                         {pem_to_der(read_text(ra.ra_pem)), pem_to_der(read_text(ra.ca_pem))})


class A4GetCertGetCrl(RaTestCase):
    def test_getcert_and_getcrl_via_probe(self):
        ra = self.start_ra()
        key = self.fixture("newkey-2.key")
        reply, _ = self.mic_exchange(ra, key)
        self.assertEqual(reply["status"], SUCCESS, reply)
        issued = self.save_pem(reply["certificates"][0])
        self.assert_issued(ra, issued, MIC_CN, key)
        # GetCert by issuer and serial, signed by any RSA requester.
        reply, _ = self.mic_exchange(ra, None, mic="mic-cp8875-b", type="GetCert",
                                     issuer_serial_of=issued, cn=None)
        self.assertEqual(reply["status"], SUCCESS, reply)
        self.assertEqual([pem_to_der(c) for c in reply["certificates"]],
                         [pem_to_der(read_text(issued))])
        # GetCert of a certificate this CA did not issue: badCertId.
        reply, _ = self.mic_exchange(ra, None, type="GetCert", cn=None,
                                     issuer_serial_of=self.fixture("mic-cp8875.pem"))
        self.assert_failure(reply, "badCertId")
        # GetCRL: a CRL signed by the CA.
        reply, _ = self.mic_exchange(ra, None, type="GetCRL", issuer_serial_of=issued, cn=None)
        self.assertEqual(reply["status"], SUCCESS, reply)
        self.assertEqual(reply["crls"], 1)
        self.assertEqual(reply["certificates"], [])
        crl = self.path("crl.pem")
        with open(crl, "w") as f:
            f.write(reply["crlPems"][0])
        verified = run(["openssl", "crl", "-in", crl, "-CAfile", ra.ca_pem, "-noout", "-issuer",
                        "-nameopt", "RFC2253"], timeout=60)
        self.assertEqual(verified.returncode, 0, _text(verified.stderr))
        self.assertIn("verify OK", _text(verified.stderr) + _text(verified.stdout))
        self.assertIn("issuer=" + CA_NAME, _text(verified.stdout))

    def test_crl_endpoint_lists_revoked_serial(self):
        ra = self.start_ra()
        key = self.new_key()
        result, issued = self.pki_enroll(ra, key, MIC_CN, *self.mic())
        self.assert_pki_ok(result)
        serial = cert_info(issued)["serial"]

        def crl_text():
            status, ctype, body = ra.request("GET", "/crl")
            self.assertEqual(status, 200)
            self.assertEqual(ctype, "application/pkix-crl")
            path = self.path("crl.der")
            with open(path, "wb") as f:
                f.write(body)
            verified = run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile", ra.ca_pem,
                            "-noout", "-text"], timeout=60)
            self.assertEqual(verified.returncode, 0, _text(verified.stderr))
            self.assertIn("verify OK", _text(verified.stderr))
            return _text(verified.stdout)

        self.assertNotIn(serial, crl_text().replace(":", "").upper())
        db_serial = ra.db("SELECT serial FROM certificates")[0][0]
        revoked = ra.cli("revoke", db_serial, "--reason", "keyCompromise")
        self.assertEqual(revoked.returncode, 0, _text(revoked.stderr))
        text = crl_text()
        self.assertRegex(text, r"Serial Number: 0*%s" % serial)
        self.assertIn("Key Compromise", text)
        self.assertEqual(ra.db("SELECT revoked, revocation_reason FROM certificates"), [(1, 1)])
        self.assertNotEqual(ra.cli("revoke", db_serial).returncode, 0)  # already revoked
        self.assertEqual(ra.count("audit", "action = 'revoke'"), 1)


# ================================================================ B. hostile input

class B1HostileHttp(RaTestCase):
    def test_garbage_post_is_400(self):
        ra = self.start_ra()
        with self.refused(ra):
            status, _, body = ra.post(b"this is not a CMS message\x00\xff" * 20)
            self.assertEqual(status, 400, body)

    def test_unsigned_cms_is_400(self):
        # A well-formed CMS object that is not a signed pkiMessage (an
        # EnvelopedData as a client would send it without signing).
        ra = self.start_ra()
        content = self.path("content.bin")
        with open(content, "wb") as f:
            f.write(b"hello")
        envelope = run(["openssl", "cms", "-encrypt", "-binary", "-outform", "DER", "-in", content,
                        "-aes128", ra.ra_pem], timeout=60, check=True).stdout
        with self.refused(ra):
            status, _, body = ra.post(envelope)
            self.assertEqual(status, 400, body)

    def test_empty_body_is_400(self):
        ra = self.start_ra()
        with self.refused(ra):
            status, _, body = ra.post(b"")
            self.assertEqual(status, 400, body)
        with self.refused(ra):
            status, _, body = ra.get("operation=PKIOperation")
            self.assertEqual(status, 400, body)
        with self.refused(ra):
            status, _, body = ra.get("operation=PKIOperation&message=")
            self.assertEqual(status, 400, body)

    def test_truncated_and_invalid_base64_get_is_400(self):
        ra = self.start_ra()
        message, _ = self.probe_build(ra, signer=self.mic(), csr_key=self.fixture("newkey-1.key"),
                                      cn=MIC_CN)
        b64 = base64.b64encode(message).decode()
        for name, value in (("truncated", b64[: len(b64) // 2]),
                            ("truncated-by-1", b64[:-5]),
                            ("not-base64", "!!!!****" * 10)):
            with self.subTest(name), self.refused(ra):
                status, _, body = ra.get("operation=PKIOperation&message=" +
                                         urllib.parse.quote(value, safe=""))
                self.assertEqual(status, 400, body)

    def test_oversize_body_is_413(self):
        ra = self.start_ra(ra={"max-body": "8KiB"})
        message, _ = self.probe_build(ra, signer=self.mic(), csr_key=self.fixture("newkey-1.key"),
                                      cn=MIC_CN)
        # A valid message padded past max-body is refused before parsing.
        with self.refused(ra) as ctx:
            try:
                status, _, body = ra.post(message + b"\0" * (9 * 1024))
            except (ConnectionResetError, BrokenPipeError) as e:  # may close while we send
                self.fail("the RA closed the connection instead of answering 413: %r" % e)
            self.assertEqual(status, 413, body)
        self.assertTrue(any("413" in r["reason"] for r in ctx["audit"]), ctx["audit"])
        # The same message within the limit is fine.
        status, _, body = ra.post(message)
        self.assertEqual(status, 200)
        self.assertEqual(self.probe_read(ra, body)["status"], SUCCESS)

    def test_chunked_body_is_refused_before_it_is_read(self):
        # Debian's cpp-httplib 0.11 does not apply max-body to chunked bodies
        # (CVE-2025-46728); the RA must refuse them before reading.
        ra = self.start_ra(ra={"max-body": "8KiB"})

        def peak_rss_kib():
            with open("/proc/%d/status" % ra.proc.pid) as f:
                return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])

        before = peak_rss_kib()
        with self.refused(ra) as ctx:
            sock = socket.create_connection(("127.0.0.1", ra.port), timeout=30)
            try:
                sock.sendall(b"POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (65536, b"A" * 65536)
                try:
                    for _ in range(1024):  # 64 MiB, far above max-body
                        sock.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the RA stopped reading, as it should
                answer = sock.recv(4096)
            finally:
                sock.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 411"), answer[:80])
        self.assertTrue(any("Transfer-Encoding" in r["reason"] for r in ctx["audit"]), ctx["audit"])
        self.assertLess(peak_rss_kib() - before, 16 * 1024, "the RA buffered the chunked body")

    def test_unknown_operation_is_400(self):
        ra = self.start_ra()
        with self.refused(ra, "http"):
            status, _, _ = ra.get("operation=GetNextCACert")
            self.assertEqual(status, 400)


class B2HostileSigners(RaTestCase):
    def test_untrusted_root_mic(self):
        ra = self.start_ra()
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN, *self.mic("untrusted-mic"))
            self.assert_pki_failed(result, "badRequest")
        self.assertTrue(any("manufacturer-roots" in r["reason"] for r in ctx["audit"]), ctx["audit"])
        with self.refused(ra):
            reply, _ = self.exchange(ra, signer=(self.fixture("mic-spoofed-issuer.pem"),
                                                 self.fixture("untrusted-mic.key")),
                                     csr_key=self.fixture("newkey-1.key"), cn=MIC_CN)
            self.assert_failure(reply, "badRequest")

    def test_selfsigned_mic_lookalike_without_challenge(self):
        ra = self.start_ra()
        fake = self.mic("fake-mic-selfsigned")
        with self.refused(ra):
            reply, _ = self.exchange(ra, signer=fake, csr_key=self.fixture("newkey-1.key"),
                                     cn=MIC_CN)
            self.assert_failure(reply, "badRequest")
        with self.refused(ra):  # pki signs with the same self-signed look-alike
            result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN, *fake)
            self.assert_pki_failed(result)
        # With challenge authentication disabled, even the right "challenge" is no key.
        ra2 = self.start_ra(challenge=False)
        with self.refused(ra2):
            reply, _ = self.exchange(ra2, signer=fake, csr_key=self.fixture("newkey-1.key"),
                                     cn=MIC_CN, challenge="anything")
            self.assert_failure(reply, "badRequest")

    def test_expired_mic_refused_unless_allowed(self):
        ra = self.start_ra()
        expired = self.mic("mic-expired")
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), EXPIRED_CN, *expired)
            self.assert_pki_failed(result)
        self.assertTrue(any("expired" in r["reason"] for r in ctx["audit"]), ctx["audit"])
        ra2 = self.start_ra(auth={"allow-expired-mic": True})
        key = self.new_key()
        result, out = self.pki_enroll(ra2, key, EXPIRED_CN, *expired)
        self.assert_pki_ok(result)
        self.assert_issued(ra2, out, EXPIRED_CN, key)

    def test_cn_of_another_device(self):
        ra = self.start_ra()
        for cn in (MIC_B_CN, MIC_B_CN + "." + DESK_DOMAIN, MIC_CN + ".evil.example.com",
                   MIC_CN.lower()):
            with self.subTest(cn=cn), self.refused(ra):
                result, _ = self.pki_enroll(ra, self.new_key(), cn, *self.mic())
                self.assert_pki_failed(result)

    def test_manufacturer_ca_certificates_are_not_devices(self):
        # The intermediate chains to the trusted root, and the root is a
        # trust anchor itself: both verify, but neither is a device.
        ra = self.start_ra()
        for name in ("mfr-ca", "mfr-root"):
            with self.subTest(signer=name), self.refused(ra) as ctx:
                reply, _ = self.exchange(ra, signer=self.mic(name),
                                         csr_key=self.fixture("newkey-1.key"),
                                         cn="Test Manufacturing CA SHA2")
                self.assert_failure(reply, "badRequest")
            self.assertTrue(any("CA certificate" in r["reason"] for r in ctx["audit"]), ctx["audit"])

    def test_weak_csr_key_refused(self):
        ra = self.start_ra()
        weak = self.path("weak.key")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", weak)
        with self.refused(ra) as ctx:
            reply, _ = self.mic_exchange(ra, weak)
            self.assert_failure(reply, "badRequest")
        self.assertTrue(any("2048" in r["reason"] for r in ctx["audit"]), ctx["audit"])

    def test_ec_sudi_signer_is_badalg(self):
        ra = self.start_ra()
        with self.refused(ra):
            reply, _ = self.exchange(ra, signer=self.mic("sudi-ec"),
                                     csr_key=self.fixture("newkey-1.key"), cn=SUDI_CN)
            self.assert_failure(reply, "badAlg")

    def test_san_not_allowed(self):
        ra = self.start_ra()
        for san in ("dns:evil.example.com", "email:someone@" + DESK_DOMAIN,
                    "email:%s@%s" % (MIC_B_CN, DESK_DOMAIN)):
            with self.subTest(san=san), self.refused(ra):
                result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN + "." + DESK_DOMAIN,
                                            *self.mic(), sans=[san])
                self.assert_pki_failed(result)
        with self.subTest("uri SAN via probe"), self.refused(ra):
            reply, _ = self.mic_exchange(ra, self.fixture("newkey-1.key"),
                                         sans=["uri:http://evil.example.com/"])
            self.assert_failure(reply, "badRequest")
        with self.subTest("challenge + email SAN"), self.refused(ra):
            key = self.fixture("newkey-3.key")
            signer_out = self.path("signer.pem")
            reply, _ = self.exchange(ra, csr_key=key, cn="chal-san", challenge=ra.challenge,
                                     sans=["email:x@" + DESK_DOMAIN], signer_out=signer_out)
            self.assert_failure(reply, "badRequest")


class B3HostileMessages(RaTestCase):
    def test_unsupported_message_types(self):
        ra = self.start_ra()
        for message_type in ("99", "3", "0"):
            with self.subTest(type=message_type), self.refused(ra):
                reply, _ = self.mic_exchange(ra, self.fixture("newkey-1.key"), type=message_type)
                self.assert_failure(reply, "badRequest")

    def test_garbage_inner_content(self):
        ra = self.start_ra()
        garbage = self.path("garbage.bin")
        with open(garbage, "wb") as f:
            f.write(b"\x30\x03\x02\x01" + b"not DER at all" * 4)
        for message_type in ("PKCSReq", "RenewalReq", "GetCert", "GetCRL"):
            with self.subTest(type=message_type), self.refused(ra):
                reply, _ = self.exchange(ra, type=message_type, signer=self.mic(),
                                         content_file=garbage)
                self.assert_failure(reply, "badRequest")

    def test_single_des_without_allow_des(self):
        ra = self.start_ra()
        with self.refused(ra):
            reply, _ = self.mic_exchange(ra, self.fixture("newkey-1.key"), cipher="des")
            self.assert_failure(reply, "badAlg")
        with self.refused(ra):  # micromdm always uses single DES
            work = os.path.join(self.work, "mm")
            result = run(self.scepclient_args(ra, work, "mm-des", ra.challenge), timeout=120)
            output = _text(result.stdout) + _text(result.stderr)
            self.assertNotEqual(result.returncode, 0, output)
            self.assertIn("badAlg", output)
            self.assertFalse(os.path.exists(os.path.join(work, "cert.pem")))

    def test_wrong_challenge(self):
        ra = self.start_ra(auth={"allow-des": True})
        wrong = "Wr0ng-" + secrets.token_hex(8)
        ra.secrets.append(wrong)
        with self.refused(ra):
            work = os.path.join(self.work, "mm")
            result = run(self.scepclient_args(ra, work, "mm-wrong", wrong), timeout=120)
            output = _text(result.stdout) + _text(result.stderr)
            self.assertNotEqual(result.returncode, 0, output)
            self.assertIn("failInfo: badRequest", output)
        with self.refused(ra):
            reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-1.key"), cn="probe-wrong",
                                     challenge=wrong)
            self.assert_failure(reply, "badRequest")
        with self.refused(ra):  # self-signed without any challengePassword
            reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-1.key"), cn="probe-none")
            self.assert_failure(reply, "badRequest")
        # The right one works, once per CN (a shared secret is no identity).
        signer_out = self.path("signer.pem")
        reply, _ = self.exchange(ra, reply_key=self.fixture("newkey-2.key"), reply_cert=signer_out,
                                 csr_key=self.fixture("newkey-2.key"), cn="probe-right",
                                 challenge=ra.challenge, signer_out=signer_out)
        self.assertEqual(reply["status"], SUCCESS, reply)
        with self.refused(ra):
            reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-3.key"), cn="probe-right",
                                     challenge=ra.challenge)
            self.assert_failure(reply, "badRequest")

    def test_challenge_never_logged_or_audited(self):
        ra = self.start_ra(auth={"allow-des": True})
        wrong = "Wr0ng-" + secrets.token_hex(8)
        ra.secrets.append(wrong)
        work = os.path.join(self.work, "mm-ok")
        self.assertEqual(run(self.scepclient_args(ra, work, "mm-ok", ra.challenge),
                             timeout=120).returncode, 0)
        run(self.scepclient_args(ra, os.path.join(self.work, "mm-bad"), "mm-bad", wrong),
            timeout=120)
        self.exchange(ra, csr_key=self.fixture("newkey-1.key"), cn="p-bad", challenge=wrong)
        # The audit and log did record these events...
        self.assertGreaterEqual(ra.count("audit"), 3)
        self.assertIn("mm-bad", ra.stderr())
        # ...without the secrets (checked explicitly here, and after every test).
        ra.assert_no_secrets()

    def test_revoked_renewal_certificate(self):
        ra = self.start_ra()
        old_key = self.new_key()
        result, old_cert = self.pki_enroll(ra, old_key, MIC_CN, *self.mic())
        self.assert_pki_ok(result)
        serial = ra.db("SELECT serial FROM certificates")[0][0]
        self.assertEqual(ra.cli("revoke", serial, "--reason", "keyCompromise").returncode, 0)
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN, cert=old_cert, certkey=old_key)
            self.assert_pki_failed(result)
        self.assertTrue(any("revoked" in r["reason"] for r in ctx["audit"]), ctx["audit"])

    def test_renewal_reusing_the_old_key(self):
        ra = self.start_ra()
        old_key = self.new_key()
        result, old_cert = self.pki_enroll(ra, old_key, MIC_CN, *self.mic())
        self.assert_pki_ok(result)
        with self.refused(ra):
            reply, _ = self.exchange(ra, type="RenewalReq", signer=(old_cert, old_key),
                                     csr_key=old_key, cn=MIC_CN, txid="RENEW-SAME-KEY")
            self.assert_failure(reply, "badRequest")
        with self.refused(ra):  # nor a different CN
            reply, _ = self.exchange(ra, type="RenewalReq", signer=(old_cert, old_key),
                                     csr_key=self.new_key(), cn=MIC_B_CN)
            self.assert_failure(reply, "badRequest")

    def test_replayed_transaction_id_with_new_key(self):
        ra = self.start_ra()
        reply, _ = self.mic_exchange(ra, self.fixture("newkey-1.key"), txid="REPLAY-1")
        self.assertEqual(reply["status"], SUCCESS, reply)
        with self.refused(ra):
            reply, _ = self.mic_exchange(ra, self.fixture("newkey-2.key"), txid="REPLAY-1")
            self.assert_failure(reply, "badRequest")
        self.assertEqual(ra.count("certificates"), 1)
        self.assertEqual(ra.count("requests"), 1)

    def test_same_transaction_same_key_is_idempotent(self):
        ra = self.start_ra()
        key = self.fixture("newkey-1.key")
        first, _ = self.mic_exchange(ra, key, txid="IDEMPOTENT-1")
        self.assertEqual(first["status"], SUCCESS, first)
        second, _ = self.mic_exchange(ra, key, txid="IDEMPOTENT-1")  # new senderNonce
        self.assertEqual(second["status"], SUCCESS, second)
        self.assertEqual(first["certificates"], second["certificates"])
        self.assertEqual(ra.count("certificates"), 1)
        # Byte-identical resend (micromdm after PENDING, or a lost reply).
        message, info = self.probe_build(ra, signer=self.mic(), csr_key=key, cn=MIC_CN,
                                         txid="IDEMPOTENT-2")
        replies = [self.probe_read(ra, ra.post(message)[2], *reversed(self.mic()))
                   for _ in range(3)]
        self.assertEqual({r["status"] for r in replies}, {SUCCESS})
        self.assertEqual(len({r["certificates"][0] for r in replies}), 1)
        self.assertEqual(ra.count("certificates"), 2)

    def test_same_transaction_resent_with_challenge_is_idempotent(self):
        # A lost reply (or micromdm's resend after PENDING) repeats the
        # PKCSReq byte for byte; the client must get its certificate again,
        # not a refusal because its CN now holds that very certificate.
        ra = self.start_ra()
        key = self.fixture("newkey-1.key")
        signer_out = self.path("signer.pem")
        message, info = self.probe_build(ra, csr_key=key, cn="idem-chal", challenge=ra.challenge,
                                         signer_out=signer_out)
        first = self.probe_read(ra, ra.post(message)[2], key, signer_out)
        self.assertEqual(first["status"], SUCCESS, first)
        audit = ra.max_audit_id()
        second = self.probe_read(ra, ra.post(message)[2], key, signer_out)
        self.assertEqual(second["status"], SUCCESS,
                         "resent PKCSReq refused: %r / audit %r" % (second, ra.audit_since(audit)))
        self.assertEqual(first["certificates"], second["certificates"])
        self.assertEqual(ra.count("certificates"), 1)

    def test_certpoll_cannot_collect_someone_elses_certificate(self):
        ra = self.start_ra(auth={"approval-mic": "manual"})
        reply, info = self.mic_exchange(ra, self.fixture("newkey-1.key"), txid="POLL-1")
        self.assertEqual(reply["status"], PENDING, reply)
        request_id = ra.pending_request("POLL-1")
        self.assertEqual(ra.cli("approve", str(request_id)).returncode, 0)
        with self.refused(ra):  # another device polls the same transactionID
            reply, _ = self.exchange(ra, type="CertPoll", signer=self.mic("mic-cp8875-b"),
                                     txid="POLL-1", cn=MIC_CN)
            self.assert_failure(reply, "badRequest")
        with self.refused(ra):
            reply, _ = self.exchange(ra, type="CertPoll", signer=self.mic(), txid="POLL-UNKNOWN",
                                     cn=MIC_CN)
            self.assert_failure(reply, "badCertId")
        # The requester itself collects it.
        reply, _ = self.mic_exchange(ra, None, type="CertPoll", txid="POLL-1")
        self.assertEqual(reply["status"], SUCCESS, reply)
        self.assertEqual(len(reply["certificates"]), 1)


# ================================================================ C. durability

class C1Durability(RaTestCase):
    MIC_MESSAGES = 90
    CHALLENGE_MESSAGES = 30
    WORKERS = 8

    def test_kill9_during_concurrent_enrollments(self):
        seed = int(os.environ.get("DURABILITY_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        note = " (DURABILITY_SEED=%d)" % seed
        ra = self.start_ra(auth={"approval-challenge": "manual"})
        keys = [self.fixture("newkey-%d.key" % i) for i in (1, 2, 3)]
        mic = self.mic()

        jobs = [dict(kind="mic", signer=mic, csr_key=keys[i % 3], cn=MIC_CN, txid="DUR-MIC-%03d" % i)
                for i in range(self.MIC_MESSAGES)]
        jobs += [dict(kind="chal", csr_key=keys[i % 3], cn="dur-chal-%03d" % i,
                      challenge=ra.challenge, txid="DUR-CH-%03d" % i)
                 for i in range(self.CHALLENGE_MESSAGES)]
        rng.shuffle(jobs)

        def build(job):
            params = {k: v for k, v in job.items() if k != "kind"}
            job["message"], job["info"] = self.probe_build(ra, **params)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(build, jobs))

        kill_after = rng.randint(5, self.MIC_MESSAGES // 3)
        work = queue.Queue()
        for job in jobs:
            work.put(job)
        successes = threading.Semaphore(0)
        lock = threading.Lock()
        answered = []

        def worker():
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    status, _, body = ra.post(job["message"])
                except (OSError, http.client.HTTPException):
                    continue  # the RA died under us
                with lock:
                    answered.append((job, status, body))
                if status == 200 and job["kind"] == "mic":
                    successes.release()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.WORKERS)]
        for t in threads:
            t.start()
        for _ in range(kill_after):
            if not successes.acquire(timeout=120):
                break
        ra.kill9()
        for t in threads:
            t.join(timeout=120)
        self.assertFalse(any(t.is_alive() for t in threads))
        with lock:
            received = list(answered)
        self.assertGreaterEqual(len(received), kill_after, note)
        self.assertLess(len(received), len(jobs), "the kill came after everything was done" + note)

        # What clients were told before the crash.
        told_issued = {}   # txid -> certificate DER
        told_pending = set()
        for job, status, body in received:
            self.assertEqual(status, 200, body[:200])
            if job["kind"] == "mic":
                reply = self.probe_read(ra, body, mic[1], mic[0])
                self.assertEqual(reply["status"], SUCCESS, reply)
                told_issued[job["info"]["transactionId"]] = pem_to_der(reply["certificates"][0])
            else:
                reply = self.probe_read(ra, body)
                self.assertEqual(reply["status"], PENDING, reply)
                told_pending.add(job["info"]["transactionId"])

        ra.start()  # same state dir and port
        self.assertEqual(ra.db("PRAGMA integrity_check"), [("ok",)], note)
        self.assertEqual(ra.db("PRAGMA foreign_key_check"), [], note)
        for txid, der in told_issued.items():
            rows = ra.db("SELECT c.der FROM requests r JOIN certificates c ON c.serial = r.cert_serial "
                         "WHERE r.transaction_id = ? AND r.status = 'issued'", (txid,))
            self.assertEqual([bytes(r[0]) for r in rows], [der], "certificate of %s lost%s" % (txid, note))
        self.assertEqual(ra.db(
            "SELECT r.id FROM requests r LEFT JOIN certificates c ON c.serial = r.cert_serial "
            "WHERE r.status = 'issued' AND c.serial IS NULL"), [], note)
        self.assertEqual(ra.db(
            "SELECT c.serial FROM certificates c LEFT JOIN requests r ON r.id = c.request_id "
            "WHERE r.id IS NULL OR r.cert_serial IS NOT c.serial"), [], note)
        self.assertEqual(ra.db(
            "SELECT r.id FROM requests r WHERE r.status = 'issued' AND NOT EXISTS "
            "(SELECT 1 FROM audit a WHERE a.request_id = r.id AND a.action = 'enroll' "
            "AND a.outcome = 'success')"), [], "issued without its audit row" + note)
        for txid in told_pending:
            self.assertEqual(ra.db("SELECT status FROM requests WHERE transaction_id = ?", (txid,)),
                             [("pending",)], note)

        sys.stderr.write("\n  durability%s: killed after %d SUCCESS replies; %d of %d answered; "
                         "%d certificates and %d pending requests survived\n  " % (
                             note, len(told_issued), len(received), len(jobs),
                             ra.count("certificates"), ra.count("requests", "status = 'pending'")))
        # Every client retries after the restart: same certificates, no duplicates.
        for job in jobs:
            status, _, body = ra.post(job["message"])
            self.assertEqual(status, 200)
            txid = job["info"]["transactionId"]
            if job["kind"] == "mic":
                reply = self.probe_read(ra, body, mic[1], mic[0])
                self.assertEqual(reply["status"], SUCCESS, reply)
                if txid in told_issued:
                    self.assertEqual(pem_to_der(reply["certificates"][0]), told_issued[txid], note)
            else:
                self.assertEqual(self.probe_read(ra, body)["status"], PENDING)
        self.assertEqual(ra.count("certificates"), self.MIC_MESSAGES, note)
        self.assertEqual(ra.count("requests", "status = 'issued'"), self.MIC_MESSAGES, note)
        self.assertEqual(ra.count("requests", "status = 'pending'"), self.CHALLENGE_MESSAGES, note)
        # A pending request that survived the crash can still be approved.
        pending_id = ra.pending_request(next(iter(told_pending)) if told_pending else None)
        self.assertEqual(ra.cli("approve", str(pending_id)).returncode, 0)
        self.assertEqual(ra.db("PRAGMA integrity_check"), [("ok",)])


# ================================================================ D. shipped bundle

class D1ShippedCiscoBundle(RaTestCase):
    def test_real_cisco_roots_load_and_refuse_test_mic(self):
        bundle = os.path.join(SOURCE_DIR, "conf", "manufacturer-roots.pem")
        self.assertTrue(os.path.exists(bundle), bundle)
        ra = self.start_ra(roots=bundle)
        checked = ra.cli("check-config")
        self.assertEqual(checked.returncode, 0, _text(checked.stderr))
        self.assertIn("5 root(s), 4 intermediate(s)", _text(checked.stdout))
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN, *self.mic())
            self.assert_pki_failed(result, "badRequest")
        self.assertTrue(any("manufacturer-roots" in r["reason"] for r in ctx["audit"]), ctx["audit"])


# ================================================================ main

REQUIREMENTS = [
    # (what, check, how to get it)
    ("scepclient", lambda: shutil.which("scepclient"), "apt-get install scep"),
    ("pki", lambda: shutil.which("pki"), "apt-get install strongswan-pki"),
    ("strongSwan curl plugin", lambda: os.path.exists(STRONGSWAN_CURL_PLUGIN),
     "apt-get install libstrongswan-extra-plugins"),
    ("openssl", lambda: shutil.which("openssl"), "apt-get install openssl"),
    ("/usr/bin/python3 with cryptography (fixture generator)",
     lambda: run(["/usr/bin/python3", "-c", "import cryptography"], timeout=60).returncode == 0,
     "apt-get install python3 python3-cryptography"),
]


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # unittest lets this through; cleanup runs


def main():
    global SCEP_RA, PROBE, SOURCE_DIR, SESSION_DIR, FIXTURE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scep-ra", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--source-dir", required=True)
    args, rest = parser.parse_known_args()
    SCEP_RA = os.path.abspath(args.scep_ra)
    PROBE = os.path.abspath(args.probe)
    SOURCE_DIR = os.path.abspath(args.source_dir)

    missing = ["%s (%s)" % (what, how) for what, check, how in REQUIREMENTS if not check()]
    missing += ["%s (build it: ninja -C build)" % p for p in (SCEP_RA, PROBE)
                if not os.access(p, os.X_OK)]
    if missing:
        print("integration-ra: FAILED, missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(_kill_all_children)
    SESSION_DIR = tempfile.mkdtemp(prefix="scep-ra-integration-")
    try:
        FIXTURE = os.path.join(SESSION_DIR, "pki")
        generated = run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "tests", "fixtures", "test_pki.py"),
                         FIXTURE], timeout=300)
        if generated.returncode != 0:
            print("integration-ra: FAILED, test_pki.py could not generate the fixture:\n" +
                  _text(generated.stderr), file=sys.stderr)
            return 1
        program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        result = program.result
        if result.testsRun == 0:
            print("integration-ra: no test ran", file=sys.stderr)
            return 1
        return 0 if result.wasSuccessful() and not result.skipped else 1
    finally:
        _kill_all_children()
        if os.environ.get("KEEP_TMP"):
            print("integration-ra: kept " + SESSION_DIR, file=sys.stderr)
        else:
            shutil.rmtree(SESSION_DIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
