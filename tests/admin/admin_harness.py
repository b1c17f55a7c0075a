"""Shared code of the admin API and console suites (tests/admin).

Reuses the integration harness (tests/integration/test_ra_integration.py):
its `Ra` (one `scep-ra serve` per state dir and free port), process
bookkeeping, openssl and strongSwan helpers and the fixture PKI. Adds the
[admin] listener, an HTTPS client that trusts only the RA's own CA with
hostname checking on, pki clients that keep polling in the background, an
admin client-certificate PKI, webhook receivers and checks that a refused
call is audited and changes nothing.
"""

import argparse
import atexit
import collections
import datetime
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import test_ra_integration as integ  # noqa: E402  (the integration harness)

run = integ.run
popen = integ.popen
kill = integ._kill
text = integ._text
read_text = integ.read_text
wait_for = integ.wait_for
free_port = integ.free_port
openssl = integ.openssl
pem_to_der = integ.pem_to_der
toml_value = integ.toml_value

MIC_CN = integ.MIC_CN
MIC_B_CN = integ.MIC_B_CN
DP_CN = integ.DP_CN
DESK_DOMAIN = integ.DESK_DOMAIN
CA_NAME = integ.CA_NAME

TOKEN_RE = re.compile(r"^scepra_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")

# What every check of a test device uses, from tests/fixtures/test_pki.py.
DEVICES = {
    "mic-cp8875": dict(cn=MIC_CN, model="CP-8875", mac="00:1A:2B:3C:4D:5E", sn="FCH2133E8B9"),
    "mic-dp9841": dict(cn=DP_CN, model="DP-9841", mac="00:1A:2B:3C:4D:41", sn="FCH2135D9A1"),
    "mic-cp8875-b": dict(cn=MIC_B_CN, model="CP-8875", mac="00:1A:2B:3C:4D:60", sn="FCH2133E8C0"),
}
MFR_ISSUER = "CN=Test Manufacturing CA SHA2,O=Test Manufacturer"

REQUEST_KEYS = {"id", "transaction_id", "status", "method", "message_type", "common_name",
                "identity", "model", "mac", "pid", "sn", "manufacturer_issuer", "sans", "renews",
                "identity_clash", "peer", "reason", "serial", "created_at", "updated_at",
                "waiting_for", "ca"}
CERTIFICATE_KEYS = {"serial", "subject", "common_name", "issuer", "not_before", "not_after",
                    "status", "revoked_at", "revocation_reason", "revocation_reason_name",
                    "request_id", "superseded_by", "model", "mac"}
AUDIT_KEYS = {"id", "at", "actor", "action", "outcome", "method", "identity", "reason",
              "request_id", "serial", "peer", "transaction_id"}

ARTIFACTS = None  # tests/artifacts (screenshots), set by main()


# ---------------------------------------------------------------- scopes

class ClassScope:
    """Lets integ.Ra live for a whole test class: its cleanups become class
    cleanups (run after tearDownClass, also when setUpClass failed)."""

    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, function, *args, **kwargs):
        self.cls.addClassCleanup(function, *args, **kwargs)


class Work:
    """A scratch directory with numbered file names."""

    def __init__(self, scope, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix[:40] + "-", dir=integ.SESSION_DIR)
        if not os.environ.get("KEEP_TMP"):
            scope.addCleanup(shutil.rmtree, self.dir, True)
        self.count = 0

    def path(self, name):
        self.count += 1
        return os.path.join(self.dir, "%03d-%s" % (self.count, name))

    def new_key(self):
        path = self.path("key.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        return path


def fixture(name):
    return os.path.join(integ.FIXTURE, name)


def mic(name="mic-cp8875"):
    return fixture(name + ".pem"), fixture(name + ".key")


# ---------------------------------------------------------------- the RA with [admin]

class AdminRa(integ.Ra):
    """integ.Ra plus the [admin] table (HTTPS listener on a free port)."""

    def __init__(self, scope, admin=None, client_cert_roles=None, **kwargs):
        # The admin suites check that every refusal is audited: give them a
        # failure budget they never exhaust (integration-abuse tests it).
        kwargs["ra"] = dict({"audit-failures-per-source": 100000,
                             "audit-failures-overall": 100000}, **(kwargs.get("ra") or {}))
        self.admin_settings = dict(admin or {})
        self.client_cert_roles = dict(client_cert_roles or {})
        self.admin_port = None
        self._pick_admin_port = True
        super().__init__(scope, **kwargs)

    def _write_config(self):
        if self._pick_admin_port or self.admin_port is None:
            self.admin_port = free_port()
            while self.admin_port == self.port:
                self.admin_port = free_port()
        super()._write_config()
        lines = ["", "[admin]", "listen = %s" % toml_value("127.0.0.1:%d" % self.admin_port)]
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in self.admin_settings.items()]
        if self.client_cert_roles:
            lines += ["", "[admin.client-cert-roles]"]
            lines += ["%s = %s" % (json.dumps(cn), json.dumps(role))
                      for cn, role in self.client_cert_roles.items()]
        with open(self.config, "a") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self._pick_admin_port = self.port is None
        try:
            super().start()
        finally:
            self._pick_admin_port = False
        wait_for(self._admin_answers, 60, "the admin listener to answer /healthz")

    def _admin_answers(self):
        try:
            return self.admin().call("GET", "/healthz", timeout=5).status == 200
        except (OSError, http.client.HTTPException):
            return False

    def admin(self, host="localhost", cert=None, key=None):
        return AdminClient(self, host=host, cert=cert, key=key)

    # -- tokens through the CLI

    def create_token(self, name, role):
        result = self.cli("token", "create", "--name", name, "--role", role)
        if result.returncode != 0:
            raise AssertionError("token create %s failed (rc %d): %s" % (
                name, result.returncode, text(result.stderr)))
        token = text(result.stdout).strip()
        if not TOKEN_RE.match(token):
            raise AssertionError("token create printed %r, not a token" % token)
        self.secrets.append(token)  # never in the RA's log or audit (checked at the end)
        return token

    # -- state

    @property
    def crl_path(self):
        return os.path.join(self.state, "crl.der")

    def snapshot(self):
        """Everything a refused call must leave alone (not the audit trail,
        not what pollers touch)."""
        return {
            "requests": self.db("SELECT id, status, cert_serial, reason FROM requests ORDER BY id"),
            "certificates": self.db("SELECT serial, revoked, revocation_reason, revoked_at "
                                    "FROM certificates ORDER BY serial"),
            "tokens": self.db("SELECT id, name, role, secret_hash FROM tokens ORDER BY id"),
        }

    def audit_rows(self, since_id=0):
        return self.audit_since(since_id)

    def scep_get(self, path):
        return self.request("GET", path)


# ---------------------------------------------------------------- HTTPS client

Response = collections.namedtuple("Response", "status headers body json")


class AdminClient:
    """HTTPS to the admin listener, trusting only <state>/ca.pem, hostname
    checking on."""

    def __init__(self, ra, host="localhost", cert=None, key=None, cafile=None):
        self.ra = ra
        self.host = host
        self.context = ssl.create_default_context(cafile=cafile or ra.ca_pem)
        assert self.context.check_hostname and self.context.verify_mode == ssl.CERT_REQUIRED
        if cert:
            self.context.load_cert_chain(cert, key)

    def call(self, method, path, token=None, body=None, raw=None, headers=None, timeout=30):
        """POSTs carry Content-Type: application/json unless `headers` says
        otherwise (a None value leaves the header out)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if method == "POST" or body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        conn = http.client.HTTPSConnection(self.host, self.ra.admin_port, context=self.context,
                                           timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            payload = response.read()
            headers_out = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        parsed = None
        if payload and headers_out.get("content-type", "").startswith("application/json"):
            parsed = json.loads(payload.decode("utf-8"))
        return Response(response.status, headers_out, payload, parsed)

    def get(self, path, token=None, **kwargs):
        return self.call("GET", path, token=token, **kwargs)

    def post(self, path, token=None, body=None, **kwargs):
        return self.call("POST", path, token=token, body=body, **kwargs)


# ---------------------------------------------------------------- strongSwan pki

class PkiPoller:
    """`pki --scep` in the background, polling every second while PENDING."""

    def __init__(self, scope, ra, work, signer, cn, key=None, maxpolltime=600):
        ra_der, ca_der = ra.pki_ca()
        self.key = key or work.new_key()
        self.out = work.path("pki-cert.pem")
        self.err = work.path("pki.stderr")
        self.cn = cn
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = popen(["pki", "--scep", "--url", ra.url, "--in", self.key, "--dn", "CN=" + cn,
                               "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
                               "--cert", signer[0], "--key", signer[1], "--outform", "pem",
                               "--interval", "1", "--maxpolltime", str(maxpolltime)],
                              stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        scope.addCleanup(kill, self.proc)

    def stderr(self):
        return read_text(self.err)

    def wait_polling(self, timeout=60):
        wait_for(lambda: "polling every 1 seconds" in self.stderr() or self.proc.poll() is not None,
                 timeout, "pki to report PENDING")
        if self.proc.poll() is not None:
            raise AssertionError("pki ended instead of polling:\n" + self.stderr())

    def wait(self, timeout=120):
        return self.proc.wait(timeout=timeout)

    def certificate_pem(self):
        return read_text(self.out)


def pki_enroll(ra, work, signer, cn, key=None, sans=(), timeout=120):
    """Runs `pki --scep` to completion; returns (CompletedProcess, cert path, key path)."""
    ra_der, ca_der = ra.pki_ca()
    key = key or work.new_key()
    args = ["pki", "--scep", "--url", ra.url, "--in", key, "--dn", "CN=" + cn,
            "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
            "--cert", signer[0], "--key", signer[1], "--outform", "pem"]
    for san in sans:
        args += ["--san", san]
    result = run(args, timeout=timeout)
    out = work.path("pki-cert.pem")
    with open(out, "wb") as f:
        f.write(result.stdout)
    return result, out, key


def probe_pending(ra, work, cn, challenge, key=None):
    """A challenge PKCSReq through tests/tools/scep_probe; returns the reply
    (as scep_probe reads it) and the message info."""
    key = key or fixture("newkey-1.key")
    out = work.path("msg.der")
    signer_out = work.path("signer.pem")
    built = run([integ.PROBE, "build", "--type", "PKCSReq", "--ra-cert", ra.ra_pem, "--out", out,
                 "--csr-key", key, "--cn", cn, "--challenge", challenge, "--signer-out", signer_out],
                timeout=60, check=True)
    info = json.loads(built.stdout)
    with open(out, "rb") as f:
        status, ctype, body = ra.post(f.read())
    if status != 200:
        raise AssertionError("SCEP POST answered HTTP %d: %r" % (status, body[:300]))
    reply_path = work.path("reply.der")
    with open(reply_path, "wb") as f:
        f.write(body)
    read = run([integ.PROBE, "read", "--ra-cert", ra.ra_pem, "--in", reply_path, "--key", key,
                "--cert", signer_out], timeout=60, check=True)
    return json.loads(read.stdout), info


def serial_of(pem_path):
    return integ.cert_info(pem_path)["serial"]


def norm_serial(serial):
    return serial.upper().lstrip("0")


# ---------------------------------------------------------------- admin client-certificate PKI

def make_client_pki(directory):
    """Admin CA + client certificates (python3-cryptography). Returns paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scep-ra admin test"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(fname, data):
        path = os.path.join(directory, fname)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        return path

    def ca(cn):
        k = key()
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                             False), critical=True)
                .sign(k, hashes.SHA256()))
        return cert, k

    def leaf(cn, issuer, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), days=(-1, 30)):
        k = key()
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer[0].subject)
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now + datetime.timedelta(days=days[0]))
                .not_valid_after(now + datetime.timedelta(days=days[1]))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
                .sign(issuer[1], hashes.SHA256()))
        return cert, k

    def save(stem, pair):
        cert, k = pair
        pem = cert.public_bytes(serialization.Encoding.PEM)
        kpem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
        return write(stem + ".pem", pem), write(stem + ".key", kpem)

    admin_ca = ca("scep-ra Test Admin CA")
    other_ca = ca("Some Other CA")
    paths = {
        "admin-ca": save("admin-ca", admin_ca),
        "other-ca": save("other-ca", other_ca),
        "alice": save("alice", leaf("alice", admin_ca)),
        "bob": save("bob", leaf("bob", admin_ca)),
        "carol": save("carol", leaf("carol", admin_ca)),                       # trusted, no role
        "alice-other-ca": save("alice-other-ca", leaf("alice", other_ca)),     # right CN, wrong CA
        "alice-server-eku": save("alice-server-eku",
                                 leaf("alice", admin_ca, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))),
        "alice-expired": save("alice-expired", leaf("alice", admin_ca, days=(-30, -1))),
    }
    return paths


# ---------------------------------------------------------------- webhook receivers

class WebhookReceiver:
    """HTTP receiver answering the scripted statuses in turn (then 200)."""

    def __init__(self, scope, statuses=()):
        self.statuses = list(statuses)
        self.hits = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.hits.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body, "status": status,
                                          "at": time.monotonic()})
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        scope.addCleanup(self.close)

    def url(self, path="/hooks/scep-ra"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def count(self):
        with self.lock:
            return len(self.hits)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HangingReceiver:
    """Accepts connections, reads what is sent, never answers."""

    def __init__(self, scope):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = []  # [socket, bytearray received, closed-by-peer flag]
        self.lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()
        scope.addCleanup(self.close)

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            entry = [conn, bytearray(), False]
            with self.lock:
                self.connections.append(entry)
            threading.Thread(target=self._read, args=(entry,), daemon=True).start()

    def _read(self, entry):
        conn = entry[0]
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                entry[1].extend(chunk)
        with self.lock:
            entry[2] = True

    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def received(self):
        with self.lock:
            return [bytes(e[1]) for e in self.connections]

    def open_connections(self):
        with self.lock:
            return sum(1 for e in self.connections if not e[2])

    def close(self):
        self.closing = True
        with self.lock:
            entries = list(self.connections)
        for conn, _, _ in entries:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.sock.close()


# ---------------------------------------------------------------- Prometheus text

METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?)\})? '
    r'(-?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN))(?: -?[0-9]+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(body):
    """[(name, {labels}, float)]; raises on any line that is not a comment,
    blank, or `name{labels} value`."""
    samples = []
    for number, line in enumerate(body.split("\n"), 1):
        if not line or line.startswith("#"):
            if line.startswith("# ") and not re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line):
                raise AssertionError("line %d is a malformed comment: %r" % (number, line))
            continue
        match = METRIC_LINE.match(line)
        if not match:
            raise AssertionError("line %d is not `name{labels} value`: %r" % (number, line))
        labels = dict(LABEL.findall(match.group(2) or ""))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def metric(samples, name, **labels):
    values = [v for n, l, v in samples if n == name and all(l.get(k) == v2 for k, v2 in labels.items())]
    return sum(values) if values else None


# ---------------------------------------------------------------- base test case

class AdminTestCase(unittest.TestCase):
    """One RA per class (cls.ra), created in setUpClass by start_class_ra."""
    maxDiff = None
    ra = None

    @classmethod
    def start_class_ra(cls, **kwargs):
        scope = ClassScope(cls)
        cls.scope = scope
        cls.cwork = Work(scope, cls.__name__)
        cls.ra = AdminRa(scope, name=cls.__name__[:20], **kwargs)
        cls.api = cls.ra.admin()
        return cls.ra

    def setUp(self):
        self.work = Work(self, self.id().split(".")[-1])

    # -- API helpers

    def ok(self, method, path, token, body=None, raw=None, status=200, client=None):
        response = (client or self.api).call(method, path, token=token, body=body, raw=raw)
        self.assertEqual(response.status, status, "%s %s: %r" % (method, path, response.body[:500]))
        return response.json

    def get_json(self, path, token, client=None):
        return self.ok("GET", path, token, client=client)

    def assert_error_shape(self, response, status):
        self.assertEqual(response.status, status, response.body[:500])
        self.assertTrue(response.headers.get("content-type", "").startswith("application/json"),
                        response.headers)
        self.assertIsInstance(response.json, dict)
        self.assertIsInstance(response.json.get("error"), str)
        self.assertTrue(response.json["error"])
        if status == 401:
            self.assertTrue(response.headers.get("www-authenticate", "").startswith("Bearer"),
                            response.headers)
        self.assertEqual(response.headers.get("cache-control"), "no-store")

    def assert_refused(self, status, method, path, token=None, body=None, raw=None, actor=None,
                       client=None, reason_contains=None, headers=None):
        """The call is answered `status` with a JSON error, leaves exactly one
        `api` failure audit row (actor, "<status> <METHOD> <path>: why") and
        changes nothing else."""
        ra = self.ra
        before = ra.snapshot()
        crl_before = _file_bytes(ra.crl_path)
        audit_id = ra.max_audit_id()
        response = (client or self.api).call(method, path, token=token, body=body, raw=raw,
                                             headers=headers)
        self.assert_error_shape(response, status)
        rows = [r for r in ra.audit_since(audit_id) if r["action"] == "api"]
        bare_path = path.split("?")[0]
        prefix = "%d %s %s" % (status, method, bare_path)
        matching = [r for r in rows if r["reason"].startswith(prefix)]
        self.assertEqual(len(matching), 1, "expected one audit row %r, got %r" % (prefix, rows))
        row = matching[0]
        self.assertEqual(row["outcome"], "failure", row)
        if actor is not None:
            self.assertEqual(row["actor"], actor, row)
        self.assertEqual(row["peer"], "127.0.0.1", row)
        if reason_contains:
            self.assertIn(reason_contains, row["reason"])
        self.assertEqual(ra.snapshot(), before, "a refused %s %s changed state" % (method, path))
        self.assertEqual(_file_bytes(ra.crl_path), crl_before, "a refused call changed the CRL")
        return response, row


def _file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def openssl_fingerprint(pem_path, digest):
    out = openssl("x509", "-in", pem_path, "-noout", "-fingerprint", "-" + digest)
    return out.strip().split("=", 1)[1].replace(":", "").upper()


def sha256(data):
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------- main

BASE_REQUIREMENTS = [
    ("pki", lambda: shutil.which("pki"), "apt-get install strongswan-pki"),
    ("strongSwan curl plugin", lambda: os.path.exists(integ.STRONGSWAN_CURL_PLUGIN),
     "apt-get install libstrongswan-extra-plugins"),
    ("openssl", lambda: shutil.which("openssl"), "apt-get install openssl"),
    ("python3-cryptography", lambda: _importable("cryptography"),
     "apt-get install python3-cryptography"),
]


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def main(suite, module, requirements=(), doc=""):
    """Parses --scep-ra/--probe/--source-dir, checks the tools (a missing one
    fails the suite with an install hint), generates the fixture PKI and runs
    the unittest classes of `module`."""
    global ARTIFACTS
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--scep-ra", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--artifacts", help="where screenshots go (default SOURCE/tests/artifacts)")
    args, rest = parser.parse_known_args()
    integ.SCEP_RA = os.path.abspath(args.scep_ra)
    integ.PROBE = os.path.abspath(args.probe)
    integ.SOURCE_DIR = os.path.abspath(args.source_dir)
    ARTIFACTS = os.path.abspath(args.artifacts or os.path.join(integ.SOURCE_DIR, "tests", "artifacts"))

    missing = ["%s (%s)" % (what, how) for what, check, how in list(BASE_REQUIREMENTS) +
               list(requirements) if not check()]
    missing += ["%s (build it: ninja -C build)" % p for p in (integ.SCEP_RA, integ.PROBE)
                if not os.access(p, os.X_OK)]
    if missing:
        print("%s: FAILED, missing:\n  %s" % (suite, "\n  ".join(missing)), file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(integ._kill_all_children)
    integ.SESSION_DIR = tempfile.mkdtemp(prefix="scep-ra-%s-" % suite)
    started = time.monotonic()
    try:
        integ.FIXTURE = os.path.join(integ.SESSION_DIR, "pki")
        generated = run(["/usr/bin/python3", os.path.join(integ.SOURCE_DIR, "tests", "fixtures",
                                                          "test_pki.py"), integ.FIXTURE], timeout=300)
        if generated.returncode != 0:
            print("%s: FAILED, test_pki.py could not generate the fixture:\n%s" % (
                suite, text(generated.stderr)), file=sys.stderr)
            return 1
        program = unittest.main(module=module, argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        result = program.result
        if result.testsRun == 0:
            print("%s: no test ran" % suite, file=sys.stderr)
            return 1
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        print("%s: %.0f s" % (suite, time.monotonic() - started), file=sys.stderr)
        print("%s: %d passed, %d failed" % (
            suite, result.testsRun - failed - len(result.skipped), failed), file=sys.stderr)
        return 0 if result.wasSuccessful() and not result.skipped else 1
    finally:
        integ._kill_all_children()
        if os.environ.get("KEEP_TMP"):
            print("%s: kept %s" % (suite, integ.SESSION_DIR), file=sys.stderr)
        else:
            shutil.rmtree(integ.SESSION_DIR, ignore_errors=True)
