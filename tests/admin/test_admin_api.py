#!/usr/bin/python3
"""Admin API tests (ra/admin/API.md) against a real `scep-ra serve`.

Each test class starts its own RA (temp state dir, free SCEP and admin
ports) and drives it over HTTPS with the RA's own ca.pem as the only trust
anchor and hostname checking on. Requests come from real SCEP clients:
strongSwan `pki --scep` signing with the test MICs (polling in the background
while PENDING) and tests/tools/scep_probe for challenge requests. State is
cross-checked in the SQLite database, certificates and CRLs with the openssl
CLI. Every refused call must leave one audit row and change nothing.

A missing tool fails the suite with what to install; nothing is skipped.

    /usr/bin/python3 tests/admin/test_admin_api.py --scep-ra build/ra/scep-ra \\
        --probe build/tests/tools/scep_probe --source-dir . [unittest options, e.g. -k Webhook]

KEEP_TMP=1 keeps the session directory (RA logs, databases) for a post-mortem.
"""

import base64
import json
import os
import re
import secrets
import socket
import ssl
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_harness as h  # noqa: E402

DAY = 86400


def qs(**params):
    return "?" + urllib.parse.urlencode(params)


def ids(listing):
    return [item["id"] for item in listing["items"]]


def serials(listing):
    return {item["serial"] for item in listing["items"]}


# ================================================================ authentication, tokens, TLS, headers

class T1AuthTokensTls(h.AdminTestCase):
    PROTECTED = [
        ("GET", "/metrics", None), ("GET", "/api/whoami", None), ("GET", "/api/requests", None),
        ("GET", "/api/requests?status=pending&limit=5", None), ("GET", "/api/requests/1", None),
        ("POST", "/api/requests/1/approve", {}), ("POST", "/api/requests/1/reject", {"reason": "x"}),
        ("GET", "/api/certificates", None), ("GET", "/api/certificates?q=CP-8875", None),
        ("GET", "/api/certificates/0123ABCD", None), ("GET", "/api/certificates/0123ABCD/pem", None),
        ("POST", "/api/certificates/0123ABCD/revoke", {"reason": "keyCompromise"}),
        ("GET", "/api/audit", None), ("GET", "/api/ca", None), ("GET", "/api/tokens", None),
        ("POST", "/api/tokens", {"name": "intruder", "role": "approver"}),
        ("DELETE", "/api/tokens/ops-viewer", None),
    ]

    @classmethod
    def setUpClass(cls):
        ra = cls.start_class_ra()
        cls.approver = ra.create_token("ops-approver", "approver")
        cls.viewer = ra.create_token("ops-viewer", "viewer")

    def test_healthz_without_auth(self):
        for host in ("localhost", "127.0.0.1"):
            with self.subTest(host=host):
                response = self.ra.admin(host=host).get("/healthz")
                self.assertEqual(response.status, 200)
                self.assertEqual(response.json, {"status": "ok",
                                                 "checks": {"database": "ok", "disk": "ok",
                                                            "ca_key": "ok"}})

    def test_every_other_endpoint_needs_auth_and_refusals_are_audited(self):
        audit_start = self.ra.max_audit_id()
        for method, path, body in self.PROTECTED:
            with self.subTest(method=method, path=path):
                response, row = self.assert_refused(401, method, path, body=body, actor="anonymous")
                self.assertEqual(response.json, {"error": "authentication required or invalid"})
                self.assertIn("authentication required", row["reason"])
        # The same rows through the API, for an approver.
        listed = self.get_json("/api/audit?limit=500", self.approver)
        api_rows = [e for e in listed["items"] if e["id"] > audit_start and e["action"] == "api"]
        self.assertEqual(len(api_rows), len(self.PROTECTED))
        for event in api_rows:
            self.assertEqual(set(event), h.AUDIT_KEYS)
            self.assertEqual((event["actor"], event["outcome"]), ("anonymous", "failure"))
            self.assertIsNone(event["request_id"])
            self.assertRegex(event["reason"], r"^401 (GET|POST|DELETE) /(metrics|api/)")
        self.assertIn("401 GET /metrics: authentication required",
                      [e["reason"] for e in api_rows])
        # Nothing was created by the refused POST /api/tokens.
        self.assertEqual(self.ra.count("tokens", "name = 'intruder'"), 0)

    def test_posts_need_a_json_content_type(self):
        # Cross-site forms cannot send application/json without a preflight.
        form = b"name=csrf&role=approver"
        cases = [("no Content-Type", {"Content-Type": None}, b'{"name":"csrf","role":"approver"}'),
                 ("form", {"Content-Type": "application/x-www-form-urlencoded"}, form),
                 ("multipart", {"Content-Type": "multipart/form-data; boundary=x"},
                  b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ncsrf\r\n--x--\r\n"),
                 ("text/plain", {"Content-Type": "text/plain"}, b'{"name":"csrf","role":"approver"}')]
        for label, headers, raw in cases:
            with self.subTest(label):
                # Authentication comes first, so the refusal names who sent it...
                self.assert_refused(415, "POST", "/api/tokens", token=self.approver, raw=raw,
                                    headers=headers, actor="ops-approver")
                # ...and without a credential it is a plain 401.
                self.assert_refused(401, "POST", "/api/requests/1/approve", raw=raw,
                                    headers=headers, actor="anonymous")
        self.assertEqual(self.ra.count("tokens", "name = 'csrf'"), 0)
        created = self.ok("POST", "/api/tokens", self.approver, raw=b'{"name":"json-ok","role":"viewer"}',
                          status=201)
        self.ra.secrets.append(created["token"])
        self.assertEqual(self.ok("DELETE", "/api/tokens/json-ok", self.approver),
                         {"status": "deleted"})

    def test_console_assets_are_public_and_self_contained(self):
        expected_types = {"/": "text/html", "/assets/console.js": "text/javascript",
                          "/assets/console.css": "text/css"}
        bodies = {}
        for path, ctype in expected_types.items():
            with self.subTest(path=path):
                response = self.api.get(path)
                self.assertEqual(response.status, 200)
                self.assertTrue(response.headers["content-type"].startswith(ctype), response.headers)
                self.assert_security_headers(response)
                bodies[path] = response.body.decode("utf-8")
        favicon = self.api.get("/favicon.ico")
        self.assertIn(favicon.status, (200, 204))
        self.assert_security_headers(favicon)
        html = bodies["/"]
        # No inline script or style (the CSP forbids them), nothing external.
        for tag in re.findall(r"<script\b[^>]*>", html):
            self.assertRegex(tag, r'src="/assets/console\.js"')
        self.assertNotRegex(html, r"<style\b")
        self.assertNotRegex(html, r"\sstyle\s*=")
        self.assertNotRegex(html, r"\son[a-z]+\s*=", "inline event handler")
        for path, body in bodies.items():
            self.assertNotRegex(body, r"(?i)(src|href)\s*=\s*[\"']?(https?:)?//", path)
            self.assertNotRegex(body, r"(?i)url\(\s*[\"']?(https?:)?//", path)
            self.assertNotRegex(body, r"(?i)@import", path)
        self.assertNotIn("eval(", bodies["/assets/console.js"])
        self.assertNotIn("localStorage", bodies["/assets/console.js"].replace(
            "never in localStorage", ""))

    def assert_security_headers(self, response, api=False):
        csp = response.headers.get("content-security-policy", "")
        self.assertIn("default-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(response.headers.get("x-content-type-options"), "nosniff")
        self.assertIn("frame-ancestors 'none'", csp)
        if api:
            self.assertEqual(response.headers.get("cache-control"), "no-store", response.headers)

    def test_security_headers_on_api_responses(self):
        cases = [
            ("GET", "/healthz", None, 200),
            ("GET", "/api/whoami", self.viewer, 200),
            ("GET", "/metrics", self.viewer, 200),
            ("GET", "/api/requests", None, 401),
            ("GET", "/api/tokens", self.viewer, 403),
            ("GET", "/api/requests/424242", self.viewer, 404),
            ("GET", "/api/requests?limit=0", self.viewer, 400),
            ("GET", "/no/such/path", None, 404),
        ]
        for method, path, token, status in cases:
            with self.subTest(path=path):
                response = self.api.call(method, path, token=token)
                self.assertEqual(response.status, status, response.body[:300])
                self.assert_security_headers(response, api=True)
                if status >= 400:
                    self.assertIsInstance(response.json.get("error"), str)

    def test_tls_trusts_only_the_ra_ca_with_hostname_checks(self):
        for host in ("localhost", "127.0.0.1"):
            with self.subTest(host=host):
                me = self.get_json("/api/whoami", self.viewer, client=self.ra.admin(host=host))
                self.assertEqual(me, {"name": "ops-viewer", "role": "viewer", "via": "token"})
        # The system trust store does not know the RA's CA.
        system = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", self.ra.admin_port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                system.wrap_socket(raw, server_hostname="localhost")
        # The right CA but a name the certificate does not carry.
        trusting = ssl.create_default_context(cafile=self.ra.ca_pem)
        with socket.create_connection(("127.0.0.1", self.ra.admin_port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError) as ctx:
                trusting.wrap_socket(raw, server_hostname="scep-ra.invalid")
            self.assertIn("mismatch", str(ctx.exception).lower())
        # The certificate the listener presents: issued by the RA's CA, SANs as documented.
        with socket.create_connection(("127.0.0.1", self.ra.admin_port), timeout=10) as raw:
            with trusting.wrap_socket(raw, server_hostname="localhost") as tls:
                der = tls.getpeercert(binary_form=True)
                self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
        path = self.work.path("admin.der")
        with open(path, "wb") as f:
            f.write(der)
        sans = h.openssl("x509", "-inform", "DER", "-in", path, "-noout", "-ext", "subjectAltName")
        for san in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"):
            self.assertIn(san, sans)
        issuer = h.openssl("x509", "-inform", "DER", "-in", path, "-noout", "-issuer", "-nameopt",
                           "RFC2253")
        self.assertEqual(issuer.strip(), "issuer=" + h.CA_NAME)
        # Plain HTTP on the admin port gets no HTTP answer.
        with socket.create_connection(("127.0.0.1", self.ra.admin_port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            try:
                answer = raw.recv(4096)
            except (ConnectionResetError, socket.timeout):
                answer = b""
        self.assertFalse(answer.startswith(b"HTTP/"), answer[:100])

    def test_cli_tokens_are_shown_once_and_stored_hashed(self):
        ra = self.ra
        result = ra.cli("token", "create", "--name", "cli-made", "--role", "viewer")
        self.assertEqual(result.returncode, 0, h.text(result.stderr))
        token = h.text(result.stdout).strip()
        ra.secrets.append(token)
        self.assertRegex(token, h.TOKEN_RE)
        self.assertEqual(h.text(result.stdout), token + "\n")  # stdout is only the token
        self.assertIn("shown only now", h.text(result.stderr))
        self.assertNotIn(token, h.text(result.stderr))
        me = self.get_json("/api/whoami", token)
        self.assertEqual(me, {"name": "cli-made", "role": "viewer", "via": "token"})

        tokens = [self.approver, self.viewer, token]
        secrets_only = [t.split("_", 2)[2] for t in tokens]
        listed = ra.cli("token", "list")
        self.assertEqual(listed.returncode, 0)
        out = h.text(listed.stdout)
        for name, role in (("ops-approver", "approver"), ("ops-viewer", "viewer"),
                           ("cli-made", "viewer")):
            self.assertRegex(out, r"(?m)^%s\s+%s\s" % (re.escape(name), role))
        for secret in tokens + secrets_only:
            self.assertNotIn(secret, out)
        # A duplicate name is refused and changes nothing.
        before = ra.snapshot()
        again = ra.cli("token", "create", "--name", "cli-made", "--role", "approver")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("exists", h.text(again.stderr))
        self.assertEqual(h.text(again.stdout), "")
        self.assertEqual(ra.snapshot(), before)
        bad = ra.cli("token", "create", "--name", "x", "--role", "admin")
        self.assertNotEqual(bad.returncode, 0)
        self.assertEqual(ra.count("tokens", "name = 'x'"), 0)

        # The database keeps id and SHA-256(secret), never the token.
        rows = {r[0]: (r[1], bytes(r[2])) for r in ra.db("SELECT name, id, secret_hash FROM tokens")}
        for name, tok in (("ops-approver", self.approver), ("ops-viewer", self.viewer),
                          ("cli-made", token)):
            _, token_id, secret = tok.split("_", 2)
            self.assertEqual(rows[name], (token_id, h.sha256(secret.encode())))
        blobs = b""
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = ra.db_path + suffix
            if os.path.exists(path):
                with open(path, "rb") as f:
                    blobs += f.read()
        self.assertTrue(blobs)
        for secret in tokens + secrets_only:
            self.assertNotIn(secret.encode(), blobs, "token text in the database files")
        logs = ra.stderr() + ra.stdout()
        for secret in tokens + secrets_only:
            self.assertNotIn(secret, logs)
        # Creation was audited, by the CLI user.
        events = ra.db("SELECT actor, outcome, identity FROM audit WHERE action = 'token-create'")
        self.assertIn("cli-made", [e[2] for e in events])
        for actor, outcome, _ in events:
            self.assertTrue(actor.startswith("cli:"), actor)
            self.assertEqual(outcome, "success")

    def test_bad_and_deleted_tokens_are_401(self):
        ra = self.ra
        prefix, token_id, secret = self.approver.split("_", 2)
        flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        unknown_id = "%08x" % (int(token_id, 16) ^ 0x5A5A5A5A)
        variants = {
            "wrong secret": "Bearer %s_%s_%s" % (prefix, token_id, flipped),
            "unknown id": "Bearer %s_%s_%s" % (prefix, unknown_id, secret),
            "short": "Bearer " + self.approver[:-1],
            "long": "Bearer " + self.approver + "A",
            "upper-case id": "Bearer %s_%s_%s" % (prefix, token_id.upper(), secret)
            if token_id.upper() != token_id else "Bearer scepra_ZZZZZZZZ_" + secret,
            "no prefix": "Bearer " + token_id + "_" + secret,
            "garbage": "Bearer not-a-token",
            "empty bearer": "Bearer ",
            "lower-case scheme": "bearer " + self.approver,
            "basic": "Basic " + base64.b64encode(b"admin:" + self.approver.encode()).decode(),
            "bare token": self.approver,
        }
        failures = self.metric_value("scep_admin_auth_failures_total")
        for label, header in variants.items():
            if len(header.split(" ", 1)[-1]) >= 8:
                ra.secrets.append(header.split(" ", 1)[-1])
            with self.subTest(label):
                response, row = self.assert_refused(401, "GET", "/api/whoami",
                                                    headers={"Authorization": header},
                                                    actor="anonymous")
                self.assertEqual(response.json["error"], "authentication required or invalid")
                self.assertNotIn(secret, row["reason"])
                self.assertNotIn(flipped, row["reason"])
        self.assertEqual(self.metric_value("scep_admin_auth_failures_total"),
                         failures + len(variants))
        # A token in the query string is no credential.
        for param in ("token", "access_token", "bearer"):
            with self.subTest(query=param):
                self.assert_refused(401, "GET", "/api/whoami?%s=%s" % (param, self.approver),
                                    actor="anonymous")
        # A deleted token stops working at once.
        temp = ra.create_token("short-lived", "approver")
        self.assertEqual(self.get_json("/api/whoami", temp)["name"], "short-lived")
        deleted = ra.cli("token", "delete", "short-lived")
        self.assertEqual(deleted.returncode, 0, h.text(deleted.stderr))
        self.assert_refused(401, "GET", "/api/whoami", token=temp, actor="anonymous")
        self.assert_refused(401, "GET", "/api/tokens", token=temp, actor="anonymous")
        again = ra.cli("token", "delete", "short-lived")
        self.assertNotEqual(again.returncode, 0)

    def metric_value(self, name, **labels):
        body = self.api.get("/metrics", token=self.viewer).body.decode()
        return h.metric(h.parse_prometheus(body), name, **labels)

    def test_tokens_api_roles(self):
        ra = self.ra
        listed = self.get_json("/api/tokens", self.approver)
        self.assertEqual(set(listed), {"items"})
        names = [t["name"] for t in listed["items"]]
        self.assertEqual(names, sorted(names))
        self.assertIn("ops-approver", names)
        for item in listed["items"]:
            self.assertEqual(set(item), {"name", "role", "created_at", "created_by"})
        raw = self.api.get("/api/tokens", token=self.approver).body.decode()
        for tok in (self.approver, self.viewer):
            self.assertNotIn(tok.split("_", 2)[2], raw)

        # Viewers may not touch tokens at all.
        self.assert_refused(403, "GET", "/api/tokens", token=self.viewer, actor="ops-viewer")
        self.assert_refused(403, "POST", "/api/tokens", token=self.viewer, actor="ops-viewer",
                            body={"name": "sneaky", "role": "approver"})
        self.assert_refused(403, "DELETE", "/api/tokens/ops-approver", token=self.viewer,
                            actor="ops-viewer")

        # An approver creates one: shown once, works with its role.
        created = self.ok("POST", "/api/tokens", self.approver,
                          body={"name": "robot-1", "role": "viewer"}, status=201)
        self.assertEqual(set(created), {"name", "role", "token"})
        self.assertEqual((created["name"], created["role"]), ("robot-1", "viewer"))
        robot = created["token"]
        ra.secrets.append(robot)
        self.assertRegex(robot, h.TOKEN_RE)
        self.assertEqual(self.get_json("/api/whoami", robot),
                         {"name": "robot-1", "role": "viewer", "via": "token"})
        self.assert_refused(403, "POST", "/api/requests/1/approve", token=robot, actor="robot-1")
        item = [t for t in self.get_json("/api/tokens", self.approver)["items"]
                if t["name"] == "robot-1"][0]
        self.assertEqual((item["role"], item["created_by"]), ("viewer", "ops-approver"))
        self.assertLessEqual(abs(item["created_at"] - time.time()), 60)
        self.assertNotIn(robot.split("_", 2)[2], self.api.get("/api/tokens",
                                                              token=self.approver).body.decode())
        event = ra.db("SELECT actor, outcome, reason FROM audit WHERE action = 'token-create' "
                      "AND identity = 'robot-1'")
        self.assertEqual(event, [("ops-approver", "success", "role viewer")])
        cli_list = h.text(ra.cli("token", "list").stdout)
        self.assertIn("robot-1", cli_list)
        self.assertNotIn(robot, cli_list)

        # Refusals: duplicate, bad role, bad name, malformed bodies.
        self.assert_refused(409, "POST", "/api/tokens", token=self.approver, actor="ops-approver",
                            body={"name": "robot-1", "role": "approver"})
        for body in ({"name": "robot-2", "role": "admin"}, {"name": "robot-2"},
                     {"name": "bad name!", "role": "viewer"}, {"name": "", "role": "viewer"},
                     {"name": "x" * 65, "role": "viewer"}, {"role": "viewer"},
                     {"name": 5, "role": "viewer"}):
            with self.subTest(body=body):
                self.assert_refused(400, "POST", "/api/tokens", token=self.approver, body=body,
                                    actor="ops-approver")
        for raw_body in (b"{", b"[]", b"\"robot\"", b"{\"name\": \"robot-3\", \"role\": \"viewer\""):
            with self.subTest(raw=raw_body):
                self.assert_refused(400, "POST", "/api/tokens", token=self.approver, raw=raw_body,
                                    headers={"Content-Type": "application/json"},
                                    actor="ops-approver")

        # Deleting: by name, then the token is dead; twice is 404.
        deleted = self.ok("DELETE", "/api/tokens/robot-1", self.approver)
        self.assertEqual(deleted, {"status": "deleted"})
        self.assert_refused(401, "GET", "/api/whoami", token=robot, actor="anonymous")
        self.assert_refused(404, "DELETE", "/api/tokens/robot-1", token=self.approver,
                            actor="ops-approver")
        event = ra.db("SELECT actor, outcome FROM audit WHERE action = 'token-delete' "
                      "AND identity = 'robot-1'")
        self.assertEqual(event, [("ops-approver", "success")])
        # Nothing of robot-1 is left, and its token never reached the files.
        self.assertEqual(ra.count("tokens", "name = 'robot-1'"), 0)
        for suffix in ("", "-wal"):
            if os.path.exists(ra.db_path + suffix):
                with open(ra.db_path + suffix, "rb") as f:
                    self.assertNotIn(robot.split("_", 2)[2].encode(), f.read())


# ================================================================ requests

class T2Requests(h.AdminTestCase):
    """Four pending requests: three MICs through polling `pki --scep`
    (CP-8875, DP-9841, a second CP-8875), one by challenge (scep_probe), each
    created in a later second than the one before."""

    @classmethod
    def setUpClass(cls):
        ra = cls.start_class_ra(auth={"approval-mic": "manual", "approval-challenge": "manual"})
        cls.approver = ra.create_token("appr", "approver")
        cls.viewer = ra.create_token("view", "viewer")
        cls.pollers, cls.rid, cls.created = {}, {}, {}
        last = 0
        for name in ("mic-cp8875", "mic-dp9841", "mic-cp8875-b"):
            h.wait_for(lambda: int(time.time()) > last, 5, "the next second")
            cn = h.DEVICES[name]["cn"]
            poller = h.PkiPoller(cls.scope, ra, cls.cwork, h.mic(name), cn)
            cls.rid[name] = h.wait_for(lambda: (ra.db(
                "SELECT id FROM requests WHERE common_name = ? AND status = 'pending'", (cn,))
                or [[None]])[0][0], 60, "the pending request of " + name)
            poller.wait_polling()
            cls.pollers[name] = poller
            last = ra.db("SELECT created_at FROM requests WHERE id = ?", (cls.rid[name],))[0][0]
            cls.created[name] = last
        h.wait_for(lambda: int(time.time()) > last, 5, "the next second")
        reply, info = h.probe_pending(ra, cls.cwork, "chal-phone-1", ra.challenge)
        if reply["status"] != "PENDING":
            raise AssertionError("challenge request not PENDING: %r" % reply)
        cls.rid["challenge"] = ra.pending_request(info["transactionId"])
        cls.created["challenge"] = ra.db("SELECT created_at FROM requests WHERE id = ?",
                                         (cls.rid["challenge"],))[0][0]
        cls.txid_challenge = info["transactionId"]

    def listing(self, token=None, **params):
        return self.get_json("/api/requests" + qs(**params), token or self.viewer)

    def all_requests(self):
        return self.listing(limit=500)["items"]

    def test_01_list_filters_and_paging(self):
        r1, r2, r3, r4 = (self.rid[n] for n in ("mic-cp8875", "mic-dp9841", "mic-cp8875-b",
                                                "challenge"))
        c1, c2, c3, c4 = (self.created[n] for n in ("mic-cp8875", "mic-dp9841", "mic-cp8875-b",
                                                    "challenge"))
        self.assertLess(c1, c2)
        self.assertLess(c2, c3)
        self.assertLess(c3, c4)
        everything = self.listing()
        self.assertEqual(set(everything), {"total", "total_exact", "items"})
        self.assertEqual(everything["total"], 4)
        self.assertIs(everything["total_exact"], True)
        self.assertEqual(ids(everything), [r4, r3, r2, r1])  # newest first
        for item in everything["items"]:
            self.assertEqual(set(item), h.REQUEST_KEYS)
        records = self.all_requests()

        def oracle(q):  # what a substring of CN or identity (any case) selects
            return [r["id"] for r in records
                    if q.lower() in r["common_name"].lower() or q.lower() in r["identity"].lower()]

        cases = [
            (dict(status="pending"), [r4, r3, r2, r1]),
            (dict(status="issued"), []),
            (dict(status="rejected"), []),
            (dict(status=""), [r4, r3, r2, r1]),
            (dict(model="CP-8875"), [r3, r1]),
            # `model` is the MIC's PID ("DP-9841"), not the CN's "CP-9841".
            (dict(model="DP-9841"), [r2]),
            (dict(model="CP-9841"), []),
            (dict(model="cp-8875"), []),           # exact, case-sensitive
            (dict(model="CP-887"), []),            # exact, not a prefix
            (dict(mac="001A2B3C4D5E"), [r1]),
            (dict(mac="00:1a:2b:3c:4d:5e"), [r1]),
            (dict(mac="00-1A-2B-3C-4D-5E"), [r1]),
            (dict(mac="001a.2b3c.4d5e"), [r1]),
            (dict(mac="00:1A:2B:3C:4D:41"), [r2]),
            (dict(mac="00:1A:2B:3C:4D:99"), []),
            (dict(q="SEP001A2B3C4D"), [r3, r2, r1]),
            (dict(q="sep001a2b3c4d5e"), [r1]),
            (dict(q="FCH2133E8C0"), [r3]),         # in the identity (MIC serialNumber)
            (dict(q="chal-phone"), [r4]),
            (dict(q="%"), oracle("%")),            # literal, not a LIKE wildcard
            (dict(q="_"), oracle("_")),
            (dict(q="no such device"), []),
            (dict(since=c2), [r4, r3, r2]),
            (dict(until=c2), [r1]),                # until is exclusive
            (dict(since=c2, until=c3), [r2]),
            (dict(since=c4 + 1), []),
            (dict(until=c1), []),
            (dict(status="pending", model="CP-8875", mac="00:1A:2B:3C:4D:60"), [r3]),
            (dict(model="CP-8875", q="4D5E"), [r1]),
        ]
        self.assertEqual(oracle("%"), [])
        self.assertEqual(oracle("_"), [])
        for params, expected in cases:
            with self.subTest(params=params):
                got = self.listing(**params)
                self.assertEqual(got["total"], len(expected))
                self.assertIs(got["total_exact"], True)  # under 1,000 matches
                self.assertEqual(ids(got), expected)
        # Paging: total always counts everything that matches.
        pages = [(dict(limit=2), [r4, r3]), (dict(limit=2, offset=2), [r2, r1]),
                 (dict(limit=3, offset=3), [r1]), (dict(limit=2, offset=4), []),
                 (dict(limit=1, offset=1, model="CP-8875"), [r1]),
                 (dict(limit=500), [r4, r3, r2, r1])]
        for params, expected in pages:
            with self.subTest(params=params):
                got = self.listing(**params)
                self.assertEqual(got["total"], 2 if "model" in params else 4)
                self.assertEqual(ids(got), expected)
        # Bad parameters: 400, audited, nothing changes.
        for params in (dict(status="bogus"), dict(mac="xyz"), dict(mac="001A2B3C4D"),
                       dict(mac="001A2B3C4D5E6F"), dict(limit=0), dict(limit=501),
                       dict(limit=-1), dict(limit="ten"), dict(offset=-1), dict(since="yesterday"),
                       dict(until="1.5")):
            with self.subTest(bad=params):
                self.assert_refused(400, "GET", "/api/requests" + qs(**params), token=self.viewer,
                                    actor="view")

    def test_02_get_by_id(self):
        ra = self.ra
        mic_id = self.rid["mic-cp8875"]
        item = self.get_json("/api/requests/%d" % mic_id, self.viewer)
        self.assertEqual(set(item), h.REQUEST_KEYS)
        device = h.DEVICES["mic-cp8875"]
        db = ra.db("SELECT transaction_id, message_type, identity, created_at, updated_at "
                   "FROM requests WHERE id = ?", (mic_id,))[0]
        self.assertEqual(item["id"], mic_id)
        self.assertEqual(item["transaction_id"], db[0])
        self.assertEqual(item["status"], "pending")
        self.assertEqual(item["method"], "mic")
        self.assertEqual(item["message_type"], db[1])
        self.assertIn(item["message_type"], ("PKCSReq", "RenewalReq"))
        self.assertEqual(item["common_name"], device["cn"])
        self.assertEqual(item["identity"], db[2])
        self.assertIn("CN=" + device["cn"], item["identity"])
        self.assertIn("PID:CP-8875 SN:" + device["sn"], item["identity"])
        self.assertEqual((item["model"], item["mac"], item["pid"], item["sn"]),
                         (device["model"], device["mac"], "CP-8875", device["sn"]))
        self.assertEqual(item["manufacturer_issuer"], h.MFR_ISSUER)
        self.assertEqual(item["sans"], [])
        self.assertEqual(item["peer"], "127.0.0.1")
        self.assertEqual(item["reason"], "approval-mic is manual")
        self.assertEqual(item["serial"], "")
        self.assertEqual((item["created_at"], item["updated_at"]), (db[3], db[4]))
        dp = self.get_json("/api/requests/%d" % self.rid["mic-dp9841"], self.viewer)
        # The model is the product as the PID names it, although Cisco writes
        # "CP-9841-SEP…" in the CN even for DP models.
        self.assertEqual((dp["model"], dp["pid"], dp["mac"]), ("DP-9841", "DP-9841", "00:1A:2B:3C:4D:41"))
        self.assertTrue(dp["common_name"].startswith("CP-9841-SEP"))
        chal = self.get_json("/api/requests/%d" % self.rid["challenge"], self.viewer)
        self.assertEqual((chal["method"], chal["message_type"], chal["common_name"]),
                         ("challenge", "PKCSReq", "chal-phone-1"))
        self.assertEqual((chal["model"], chal["mac"], chal["pid"], chal["sn"],
                          chal["manufacturer_issuer"]), ("", "", "", "", ""))
        self.assertEqual(chal["transaction_id"], self.txid_challenge)
        self.assertEqual(chal["reason"], "approval-challenge is manual")
        # Unknown ids.
        for path in ("/api/requests/999999", "/api/requests/99999999999999999999"):
            with self.subTest(path=path):
                self.assert_refused(404, "GET", path, token=self.viewer, actor="view")

    def test_03_viewer_reads_everything_but_decides_nothing(self):
        for path in ("/metrics", "/api/whoami", "/api/requests", "/api/requests/%d" %
                     self.rid["mic-cp8875"], "/api/certificates", "/api/audit", "/api/ca"):
            with self.subTest(path=path):
                self.assertEqual(self.api.get(path, token=self.viewer).status, 200)
        r1, r2 = self.rid["mic-cp8875"], self.rid["mic-dp9841"]
        refused = [
            ("POST", "/api/requests/%d/approve" % r1, {}),
            ("POST", "/api/requests/%d/reject" % r2, {"reason": "viewer says no"}),
            ("POST", "/api/certificates/ABCDEF01/revoke", {"reason": "keyCompromise"}),
            ("GET", "/api/tokens", None),
            ("POST", "/api/tokens", {"name": "v2", "role": "approver"}),
            ("DELETE", "/api/tokens/appr", None),
        ]
        for method, path, body in refused:
            with self.subTest(method=method, path=path):
                _, row = self.assert_refused(403, method, path, token=self.viewer, body=body,
                                             actor="view")
                self.assertIn("role viewer", row["reason"])
        # The phones are still waiting.
        self.assertIsNone(self.pollers["mic-cp8875"].proc.poll())
        self.assertIsNone(self.pollers["mic-dp9841"].proc.poll())
        self.assertEqual(self.ra.count("certificates"), 0)

    def test_04_malformed_and_unknown_are_refused(self):
        r2 = self.rid["mic-dp9841"]
        reject = "/api/requests/%d/reject" % r2
        json_header = {"Content-Type": "application/json"}
        for label, kwargs in (("no body", {}), ("empty object", dict(body={})),
                              ("empty reason", dict(body={"reason": ""})),
                              ("number reason", dict(body={"reason": 5})),
                              ("null reason", dict(body={"reason": None})),
                              ("other key", dict(body={"why": "no"})),
                              ("reason of 501 characters", dict(body={"reason": "x" * 501})),
                              ("malformed", dict(raw=b"{\"reason\": ", headers=json_header)),
                              ("array", dict(raw=b"[\"reason\"]", headers=json_header)),
                              ("string", dict(raw=b"\"no\"", headers=json_header))):
            with self.subTest(label):
                self.assert_refused(400, "POST", reject, token=self.approver, actor="appr", **kwargs)
        self.assert_refused(404, "POST", "/api/requests/999999/approve", token=self.approver,
                            actor="appr")
        self.assert_refused(404, "POST", "/api/requests/999999/reject", token=self.approver,
                            body={"reason": "x"}, actor="appr")
        self.assertEqual(self.listing(status="pending")["total"], 4)

    def test_05_approve_and_the_polling_client_gets_its_certificate(self):
        ra = self.ra
        r1 = self.rid["mic-cp8875"]
        poller = self.pollers["mic-cp8875"]
        self.assertIsNone(poller.proc.poll())
        answer = self.ok("POST", "/api/requests/%d/approve" % r1, self.approver)
        self.assertEqual(set(answer), {"serial"})
        serial = answer["serial"]
        self.assertRegex(serial, r"^[0-9A-F]+$")
        self.assertEqual(poller.wait(timeout=120), 0, poller.stderr())
        cert = poller.out
        self.assertEqual(h.norm_serial(h.serial_of(cert)), h.norm_serial(serial))
        verify = h.run(["openssl", "verify", "-CAfile", ra.ca_pem, cert])
        self.assertEqual(verify.returncode, 0, h.text(verify.stdout) + h.text(verify.stderr))
        self.assertEqual(h.integ.cert_info(cert)["subject"], "CN=" + h.MIC_CN)
        item = self.get_json("/api/requests/%d" % r1, self.viewer)
        self.assertEqual((item["status"], item["serial"]), ("issued", serial))
        self.assertGreaterEqual(item["updated_at"], item["created_at"])
        got = self.get_json("/api/certificates/" + serial, self.viewer)
        self.assertEqual((got["request_id"], got["model"], got["mac"], got["status"]),
                         (r1, "CP-8875", "00:1A:2B:3C:4D:5E", "valid"))
        self.assertEqual(h.pem_to_der(got["pem"]), h.pem_to_der(h.read_text(cert)))
        events = ra.db("SELECT actor, outcome, serial FROM audit WHERE action = 'approve' "
                       "AND request_id = ?", (r1,))
        self.assertEqual(events, [("appr", "success", serial)])
        # Deciding again is a conflict, audited, changes nothing.
        self.assert_refused(409, "POST", "/api/requests/%d/approve" % r1, token=self.approver,
                            actor="appr", reason_contains="already issued")
        self.assert_refused(409, "POST", "/api/requests/%d/reject" % r1, token=self.approver,
                            body={"reason": "too late"}, actor="appr")

    def test_06_reject_with_reason_and_the_client_fails(self):
        ra = self.ra
        r2 = self.rid["mic-dp9841"]
        poller = self.pollers["mic-dp9841"]
        answer = self.ok("POST", "/api/requests/%d/reject" % r2, self.approver,
                         body={"reason": "not one of ours"})
        self.assertEqual(answer, {"status": "rejected"})
        self.assertNotEqual(poller.wait(timeout=120), 0)
        stderr = poller.stderr()
        self.assertIn("reply status is not 'SUCCESS'", stderr)
        self.assertRegex(stderr, r"failInfo:\s+badRequest")
        self.assertNotIn("BEGIN CERTIFICATE", poller.certificate_pem())
        item = self.get_json("/api/requests/%d" % r2, self.viewer)
        self.assertEqual((item["status"], item["reason"], item["serial"]),
                         ("rejected", "not one of ours", ""))
        self.assertEqual(ra.count("certificates"), 1)  # only the approved one
        events = ra.db("SELECT actor, outcome, reason FROM audit WHERE action = 'reject' "
                       "AND request_id = ?", (r2,))
        self.assertEqual(events, [("appr", "success", "not one of ours")])
        self.assert_refused(409, "POST", "/api/requests/%d/approve" % r2, token=self.approver,
                            actor="appr")
        self.assert_refused(409, "POST", "/api/requests/%d/reject" % r2, token=self.approver,
                            body={"reason": "again"}, actor="appr")

    def test_07_filters_after_decisions(self):
        r1, r2, r3, r4 = (self.rid[n] for n in ("mic-cp8875", "mic-dp9841", "mic-cp8875-b",
                                                "challenge"))
        for status, expected in (("pending", [r4, r3]), ("issued", [r1]), ("rejected", [r2])):
            with self.subTest(status=status):
                got = self.listing(status=status)
                self.assertEqual((got["total"], ids(got)), (len(expected), expected))
        self.assertEqual(ids(self.listing(status="issued", mac="001A2B3C4D5E")), [r1])
        self.assertEqual(self.listing(status="pending", mac="001A2B3C4D5E")["total"], 0)

    def test_08_approve_a_challenge_request(self):
        r4 = self.rid["challenge"]
        serial = self.ok("POST", "/api/requests/%d/approve" % r4, self.approver)["serial"]
        cert = self.get_json("/api/certificates/" + serial, self.viewer)
        self.assertEqual((cert["common_name"], cert["model"], cert["mac"], cert["request_id"]),
                         ("chal-phone-1", "", "", r4))
        pending = self.listing(status="pending")
        self.assertEqual(ids(pending), [self.rid["mic-cp8875-b"]])
        samples = h.parse_prometheus(self.api.get("/metrics", token=self.viewer).body.decode())
        self.assertEqual(h.metric(samples, "scep_pending_requests"), 1)


    def test_09_concurrent_approvals_issue_once(self):
        ra = self.ra
        r3 = self.rid["mic-cp8875-b"]
        poller = self.pollers["mic-cp8875-b"]
        count = ra.count("certificates")
        statuses, lock = [], threading.Lock()
        start = threading.Barrier(8)

        def approve():
            client = ra.admin()
            start.wait()
            response = client.post("/api/requests/%d/approve" % r3, token=self.approver)
            with lock:
                statuses.append(response.status)
        threads = [threading.Thread(target=approve) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(statuses), [200] + [409] * 7)
        self.assertEqual(ra.count("certificates"), count + 1)
        self.assertEqual(ra.count("audit", "action = 'approve' AND request_id = ?", (r3,)), 1)
        self.assertEqual(poller.wait(timeout=120), 0, poller.stderr())


# ================================================================ certificates, revocation, CRL

class T3Certificates(h.AdminTestCase):
    ENROLL = (("C1", "mic-cp8875", h.MIC_CN), ("C2", "mic-dp9841", h.DP_CN),
              ("C3", "mic-cp8875-b", h.MIC_B_CN + "." + h.DESK_DOMAIN),
              ("C4", "mic-cp8875", h.MIC_CN + "." + h.DESK_DOMAIN))

    @classmethod
    def setUpClass(cls):
        ra = cls.start_class_ra(ca={"validity-days": 10})
        cls.approver = ra.create_token("appr", "approver")
        cls.viewer = ra.create_token("view", "viewer")
        cls.certs = {}
        for label, signer, cn in cls.ENROLL:
            result, out, key = h.pki_enroll(ra, cls.cwork, h.mic(signer), cn)
            if result.returncode != 0:
                raise AssertionError("pki --scep failed:\n" + h.text(result.stderr))
            der = h.pem_to_der(h.read_text(out))
            serial = ra.db("SELECT serial FROM certificates WHERE der = ?", (der,))[0][0]
            request_id = ra.db("SELECT id FROM requests WHERE cert_serial = ?", (serial,))[0][0]
            cls.certs[label] = dict(path=out, key=key, serial=serial, cn=cn, der=der,
                                    request_id=request_id, device=h.DEVICES[signer])

    def listing(self, **params):
        return self.get_json("/api/certificates" + qs(**params), self.viewer)

    def labels(self, listing):
        by_serial = {c["serial"]: label for label, c in self.certs.items()}
        return {by_serial.get(item["serial"], item["serial"]) for item in listing["items"]}

    def test_01_search_and_status_filters(self):
        everything = self.listing()
        self.assertEqual(everything["total"], 4)
        self.assertEqual(set(everything), {"total", "total_exact", "items"})
        keys = [(-i["not_before"], i["serial"]) for i in everything["items"]]
        self.assertEqual(keys, sorted(keys), "not newest first")
        for item in everything["items"]:
            self.assertEqual(set(item), h.CERTIFICATE_KEYS)
        c1 = [i for i in everything["items"] if i["serial"] == self.certs["C1"]["serial"]][0]
        self.assertEqual((c1["subject"], c1["common_name"], c1["issuer"]),
                         ("CN=" + h.MIC_CN, h.MIC_CN, h.CA_NAME))
        self.assertEqual((c1["status"], c1["revoked_at"], c1["revocation_reason"],
                          c1["revocation_reason_name"]), ("valid", 0, 0, ""))
        self.assertEqual((c1["model"], c1["mac"], c1["request_id"]),
                         ("CP-8875", "00:1A:2B:3C:4D:5E", self.certs["C1"]["request_id"]))
        lifetime = c1["not_after"] - c1["not_before"]
        self.assertGreaterEqual(lifetime, 10 * DAY)
        self.assertLessEqual(lifetime, 10 * DAY + 3600)
        info = h.integ.cert_info(self.certs["C1"]["path"])
        self.assertEqual(c1["not_after"], int(info["not_after"].timestamp()))

        all_serials = [c["serial"] for c in self.certs.values()]
        c1_serial = self.certs["C1"]["serial"]
        prefix = next(c1_serial[:n] for n in range(6, len(c1_serial) + 1)
                      if sum(s.startswith(c1_serial[:n]) for s in all_serials) == 1)

        def by_text(q):
            return {label for label, c in self.certs.items()
                    if c["serial"].startswith(q.upper()) or q.lower() in c["cn"].lower()}

        cases = [
            (dict(q="9841"), {"C2"}),
            (dict(q="sep001a2b3c4d5e"), {"C1", "C4"}),         # CN substring, any case
            (dict(q="voice.example"), {"C3", "C4"}),
            (dict(q="00:1A:2B:3C:4D:60"), {"C3"}),              # MAC with separators
            (dict(q="00-1a-2b-3c-4d-41"), {"C2"}),
            (dict(q="00:1a:2b:3c:4d:5e"), {"C1", "C4"}),
            (dict(q="001a.2b3c.4d5e"), {"C1", "C4"}),
            (dict(q=prefix), by_text(prefix)),                   # serial prefix
            (dict(q=prefix.lower()), by_text(prefix)),
            (dict(q="no-such-phone"), set()),
            (dict(status="valid"), {"C1", "C2", "C3", "C4"}),
            (dict(status="all"), {"C1", "C2", "C3", "C4"}),
            (dict(status="revoked"), set()),
            (dict(status="expired"), set()),
            (dict(expiring_within_days=30), {"C1", "C2", "C3", "C4"}),
            (dict(expiring_within_days=5), set()),
            (dict(q="CP-8875", status="valid"), {"C1", "C3", "C4"}),
        ]
        self.assertIn("C1", by_text(prefix))
        for params, expected in cases:
            with self.subTest(params=params):
                got = self.listing(**params)
                self.assertEqual(got["total"], len(expected))
                self.assertIs(got["total_exact"], True)
                self.assertEqual(self.labels(got), expected)
        got = self.listing(limit=1)
        self.assertEqual((got["total"], len(got["items"])), (4, 1))
        got = self.listing(limit=2, offset=3)
        self.assertEqual((got["total"], len(got["items"])), (4, 1))
        for params in (dict(status="bogus"), dict(limit=0), dict(limit=501), dict(offset=-2),
                       dict(expiring_within_days="soon")):
            with self.subTest(bad=params):
                self.assert_refused(400, "GET", "/api/certificates" + qs(**params),
                                    token=self.viewer, actor="view")

    def test_02_get_one_and_download_pem(self):
        c1 = self.certs["C1"]
        got = self.get_json("/api/certificates/" + c1["serial"], self.viewer)
        self.assertEqual(set(got), h.CERTIFICATE_KEYS | {"pem"})
        self.assertEqual(h.pem_to_der(got["pem"]), c1["der"])
        self.assertEqual((got["model"], got["mac"], got["request_id"], got["status"]),
                         ("CP-8875", "00:1A:2B:3C:4D:5E", c1["request_id"], "valid"))
        response = self.api.get("/api/certificates/%s/pem" % c1["serial"], token=self.viewer)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["content-type"], "application/x-pem-file")
        self.assertEqual(response.headers["content-disposition"],
                         'attachment; filename="%s.pem"' % c1["serial"])
        self.assertTrue(response.body.startswith(b"-----BEGIN CERTIFICATE-----"))
        self.assertEqual(h.pem_to_der(response.body.decode()), c1["der"])
        for path in ("/api/certificates/ABCDEF0123456789", "/api/certificates/ABCDEF0123456789/pem"):
            with self.subTest(path=path):
                self.assert_refused(404, "GET", path, token=self.viewer, actor="view")

    def test_03_revoke(self):
        ra = self.ra
        c1, c2, c3, c4 = (self.certs[k] for k in ("C1", "C2", "C3", "C4"))
        path3 = "/api/certificates/%s/revoke" % c3["serial"]
        self.assert_refused(403, "POST", path3, token=self.viewer, body={"reason": "keyCompromise"},
                            actor="view")
        json_header = {"Content-Type": "application/json"}
        for reason in ("bogus", "KeyCompromise", "1", 7, 11, -1, 1.5, True, None, [], {}):
            with self.subTest(reason=reason):
                self.assert_refused(400, "POST", path3, token=self.approver, body={"reason": reason},
                                    actor="appr")
        for raw in (b"{\"reason\": ", b"[1]"):
            with self.subTest(raw=raw):
                self.assert_refused(400, "POST", path3, token=self.approver, raw=raw,
                                    headers=json_header, actor="appr")
        self.assertEqual(self.get_json("/api/certificates/" + c3["serial"], self.viewer)["status"],
                         "valid")

        started = int(time.time())
        for cert, body, code, name in ((c1, {"reason": "keyCompromise"}, 1, "keyCompromise"),
                                       (c2, {"reason": 4}, 4, "superseded"),
                                       (c4, None, 0, "unspecified")):
            with self.subTest(serial=cert["serial"]):
                answer = self.ok("POST", "/api/certificates/%s/revoke" % cert["serial"],
                                 self.approver, body=body)
                self.assertEqual(answer, {"status": "revoked"})
                got = self.get_json("/api/certificates/" + cert["serial"], self.viewer)
                self.assertEqual((got["status"], got["revocation_reason"],
                                  got["revocation_reason_name"]), ("revoked", code, name))
                self.assertGreaterEqual(got["revoked_at"], started - 1)
                self.assertLessEqual(got["revoked_at"], time.time() + 1)
                events = ra.db("SELECT actor, outcome, reason, request_id FROM audit "
                               "WHERE action = 'revoke' AND serial = ?", (cert["serial"],))
                self.assertEqual(events, [("appr", "success", "CRLReason %d" % code,
                                           cert["request_id"])])
        self.assert_refused(409, "POST", "/api/certificates/%s/revoke" % c1["serial"],
                            token=self.approver, body={"reason": "superseded"}, actor="appr",
                            reason_contains="already revoked")
        self.assertEqual(self.get_json("/api/certificates/" + c1["serial"],
                                       self.viewer)["revocation_reason"], 1)
        self.assert_refused(404, "POST", "/api/certificates/ABCDEF0123456789/revoke",
                            token=self.approver, body={"reason": "keyCompromise"}, actor="appr")
        self.assertEqual(self.labels(self.listing(status="revoked")), {"C1", "C2", "C4"})
        self.assertEqual(self.labels(self.listing(status="valid")), {"C3"})
        self.assertEqual(self.labels(self.listing(status="revoked", q="00:1A:2B:3C:4D:5E")),
                         {"C1", "C4"})
        samples = h.parse_prometheus(self.api.get("/metrics", token=self.viewer).body.decode())
        self.assertEqual(h.metric(samples, "scep_certificates_valid"), 1)
        self.assertEqual(h.metric(samples, "scep_certificates_expiring_30d"), 1)

    def test_04_crl_lists_the_revoked_serials(self):
        ra = self.ra
        status, ctype, body = ra.scep_get("/crl")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/pkix-crl")
        path = self.work.path("crl.der")
        with open(path, "wb") as f:
            f.write(body)
        verified = h.run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile", ra.ca_pem,
                          "-verify", "-noout"])
        self.assertEqual(verified.returncode, 0, h.text(verified.stderr))
        self.assertIn("verify OK", h.text(verified.stderr) + h.text(verified.stdout))
        other = h.run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile",
                       h.fixture("mfr-root.pem"), "-verify", "-noout"])
        self.assertNotIn("verify OK", h.text(other.stderr) + h.text(other.stdout))
        crl_text = h.openssl("crl", "-inform", "DER", "-in", path, "-noout", "-text")
        self.assertRegex(crl_text, r"Issuer: CN\s?=\s?kea-scep-ra Root CA")
        entries = {}
        for block in re.split(r"\n\s*Serial Number: ", crl_text)[1:]:
            serial = block.split()[0]
            reason = re.search(r"X509v3 CRL Reason Code:\s*\n\s*(.+)", block)
            entries[h.norm_serial(serial)] = reason.group(1).strip() if reason else None
        expected = {h.norm_serial(self.certs["C1"]["serial"]): "Key Compromise",
                    h.norm_serial(self.certs["C2"]["serial"]): "Superseded",
                    h.norm_serial(self.certs["C4"]["serial"]): None}
        self.assertEqual(set(entries), set(expected), crl_text)
        for serial, reason in expected.items():
            if reason:
                self.assertEqual(entries[serial], reason)
            else:
                self.assertIn(entries[serial], (None, "Unspecified"))
        self.assertNotIn(h.norm_serial(self.certs["C3"]["serial"]), entries)
        with open(ra.crl_path, "rb") as f:
            self.assertEqual(f.read(), body, "<state>/crl.der differs from GET /crl")
        ca = self.get_json("/api/ca", self.viewer)
        self.assertEqual(ca["crl"]["revoked"], 3)

    def test_05_renewal_with_a_revoked_certificate_is_refused(self):
        ra = self.ra
        c1, c3 = self.certs["C1"], self.certs["C3"]
        count = ra.count("certificates")
        audit = ra.max_audit_id()
        result, out, _ = h.pki_enroll(ra, self.work, (c1["path"], c1["key"]), h.MIC_CN)
        stderr = h.text(result.stderr)
        self.assertNotEqual(result.returncode, 0, stderr)
        self.assertIn("reply status is not 'SUCCESS'", stderr)
        self.assertRegex(stderr, r"failInfo:\s+badRequest")
        self.assertEqual(ra.count("certificates"), count)
        failures = [r for r in ra.audit_since(audit) if r["outcome"] == "failure"]
        self.assertTrue(any("revoked" in r["reason"] for r in failures), failures)
        # Control: the still-valid C3 renews fine.
        result, out, key = h.pki_enroll(ra, self.work, (c3["path"], c3["key"]), c3["cn"])
        self.assertEqual(result.returncode, 0, h.text(result.stderr))
        self.assertEqual(ra.count("certificates"), count + 1)
        renewed = self.listing(q=h.MIC_B_CN, status="valid")
        self.assertEqual(renewed["total"], 2)

    def test_07_one_certificate_is_looked_up_by_its_exact_serial(self):
        # A newer certificate whose CN contains another certificate's serial
        # (challenge CNs are the client's choice) must not change what
        # GET /api/certificates/{serial} says about that other certificate.
        c3 = self.certs["C3"]
        before = self.get_json("/api/certificates/" + c3["serial"], self.viewer)
        self.assertEqual((before["model"], before["mac"]), ("CP-8875", "00:1A:2B:3C:4D:60"))
        reply, _ = self.exchange_challenge(c3["serial"].lower())
        self.assertEqual(reply["status"], "SUCCESS", reply)
        after = self.get_json("/api/certificates/" + c3["serial"], self.viewer)
        self.assertEqual((after["model"], after["mac"], after["request_id"]),
                         ("CP-8875", "00:1A:2B:3C:4D:60", c3["request_id"]))

    def exchange_challenge(self, cn):
        ra = self.ra
        out = self.work.path("msg.der")
        key = h.fixture("newkey-3.key")
        signer = self.work.path("signer.pem")
        built = h.run([h.integ.PROBE, "build", "--type", "PKCSReq", "--ra-cert", ra.ra_pem, "--out",
                       out, "--csr-key", key, "--cn", cn, "--challenge", ra.challenge,
                       "--signer-out", signer], check=True)
        with open(out, "rb") as f:
            status, _, body = ra.post(f.read())
        self.assertEqual(status, 200)
        reply = self.work.path("reply.der")
        with open(reply, "wb") as f:
            f.write(body)
        read = h.run([h.integ.PROBE, "read", "--ra-cert", ra.ra_pem, "--in", reply, "--key", key,
                      "--cert", signer], check=True)
        return json.loads(read.stdout), json.loads(built.stdout)

    def test_06_revocation_reason_outside_int_range(self):
        # JSON integers that do not fit an int must not wrap around to a
        # valid CRLReason (4294967297 = 2^32 + 1 became keyCompromise).
        for reason in (4294967297, 4294967296 + 4, -4294967295, 2 ** 63, 2 ** 64 + 1):
            with self.subTest(reason=reason):
                result, out, _ = h.pki_enroll(self.ra, self.work, h.mic("mic-cp8875"), h.MIC_CN)
                self.assertEqual(result.returncode, 0, h.text(result.stderr))
                serial = self.ra.db("SELECT serial FROM certificates WHERE der = ?",
                                    (h.pem_to_der(h.read_text(out)),))[0][0]
                self.assert_refused(400, "POST", "/api/certificates/%s/revoke" % serial,
                                    token=self.approver, body={"reason": reason}, actor="appr")
                got = self.get_json("/api/certificates/" + serial, self.viewer)
                self.assertEqual((got["status"], got["revocation_reason"]), ("valid", 0))

    def test_08_revocation_reasons_are_one_table_served_to_viewers(self):
        # The console builds its revoke form from this list: RFC 5280's
        # CRLReason names and codes (7 is unassigned), in code order.
        expected = [{"name": "unspecified", "code": 0}, {"name": "keyCompromise", "code": 1},
                    {"name": "cACompromise", "code": 2}, {"name": "affiliationChanged", "code": 3},
                    {"name": "superseded", "code": 4}, {"name": "cessationOfOperation", "code": 5},
                    {"name": "certificateHold", "code": 6}, {"name": "removeFromCRL", "code": 8},
                    {"name": "privilegeWithdrawn", "code": 9}, {"name": "aACompromise", "code": 10}]
        for token in (self.viewer, self.approver):
            with self.subTest(token=token[:14]):
                self.assertEqual(self.get_json("/api/revocation-reasons", token), {"items": expected})
        self.assert_refused(401, "GET", "/api/revocation-reasons", actor="anonymous")
        self.assert_refused(404, "POST", "/api/revocation-reasons", token=self.approver, body={},
                            actor="appr")


# ================================================================ audit, CA, metrics

class T4AuditCaMetrics(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        ra = cls.start_class_ra(auth={"approval-challenge": "manual"}, ca={"validity-days": 10})
        cls.approver = ra.create_token("appr", "approver")
        cls.viewer = ra.create_token("view", "viewer")

    def scrape(self):
        response = self.api.get("/metrics", token=self.viewer)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["content-type"], "text/plain; version=0.0.4")
        return response.body.decode(), h.parse_prometheus(response.body.decode())

    def test_audit_paging(self):
        ra = self.ra
        for i in range(23):  # refused calls are audit events
            self.api.get("/api/whoami?n=%d" % i)
        all_ids = [r[0] for r in ra.db("SELECT id FROM audit ORDER BY id DESC")]
        self.assertGreaterEqual(len(all_ids), 23)
        seen, before, pages = [], None, 0
        while True:
            params = {"limit": 5}
            if before is not None:
                params["before"] = before
            page = self.get_json("/api/audit" + qs(**params), self.viewer)
            self.assertEqual(set(page), {"items", "next_before"})
            got = [e["id"] for e in page["items"]]
            self.assertLessEqual(len(got), 5)
            self.assertEqual(got, sorted(got, reverse=True))
            if before is not None:
                self.assertTrue(all(i < before for i in got))
            for event in page["items"]:
                self.assertEqual(set(event), h.AUDIT_KEYS)
            seen += got
            pages += 1
            if len(got) == 5:
                self.assertEqual(page["next_before"], got[-1])
            if page["next_before"] is None:
                break
            before = page["next_before"]
            self.assertLess(pages, 100)
        self.assertEqual(seen, all_ids)
        newest = self.get_json("/api/audit", self.viewer)
        self.assertEqual([e["id"] for e in newest["items"]], all_ids[:100])
        self.assertIsNone(newest["next_before"] if len(all_ids) < 100 else None)
        # Content of one event: refused anonymous whoami.
        event = newest["items"][0]
        self.assertEqual((event["actor"], event["action"], event["outcome"], event["request_id"],
                          event["peer"]), ("anonymous", "api", "failure", None, "127.0.0.1"))
        self.assertTrue(event["reason"].startswith("401 GET /api/whoami"), event)
        self.assertLessEqual(abs(event["at"] - time.time()), 60)
        middle = all_ids[len(all_ids) // 2]
        page = self.get_json("/api/audit" + qs(before=middle, limit=3), self.viewer)
        self.assertEqual([e["id"] for e in page["items"]], [i for i in all_ids if i < middle][:3])
        for params in (dict(limit=0), dict(limit=501), dict(limit="x"), dict(before=-1),
                       dict(before="newest")):
            with self.subTest(bad=params):
                self.assert_refused(400, "GET", "/api/audit" + qs(**params), token=self.viewer,
                                    actor="view")

    def test_ca_overview_and_fingerprints(self):
        ra = self.ra
        ca = self.get_json("/api/ca", self.viewer)
        self.assertEqual(set(ca), {"ca", "ra", "crl", "scep_paths", "scep_listen", "backend"})
        self.assertEqual(ca["backend"], "local")
        lengths = {"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128}
        for part, pem_path in (("ca", ra.ca_pem), ("ra", ra.ra_pem)):
            info = ca[part]
            self.assertEqual(set(info), {"subject", "issuer", "serial", "not_before", "not_after",
                                         "key", "fingerprints", "pem"})
            self.assertEqual(set(info["fingerprints"]), set(lengths))
            for digest, length in lengths.items():
                with self.subTest(part=part, digest=digest):
                    fingerprint = info["fingerprints"][digest]
                    self.assertRegex(fingerprint, r"^[0-9A-F]{%d}$" % length)
                    self.assertEqual(fingerprint, h.openssl_fingerprint(pem_path, digest))
            self.assertEqual(h.pem_to_der(info["pem"]), h.pem_to_der(h.read_text(pem_path)))
            cert = h.integ.cert_info(pem_path)
            self.assertEqual(h.norm_serial(info["serial"]), cert["serial"])
            self.assertEqual(info["subject"], cert["subject"])
            self.assertEqual(info["issuer"], cert["issuer"])
            self.assertEqual(info["not_before"], int(cert["not_before"].timestamp()))
            self.assertEqual(info["not_after"], int(cert["not_after"].timestamp()))
            self.assertEqual(info["key"], "RSA 2048")
        self.assertEqual((ca["ca"]["subject"], ca["ca"]["issuer"]), (h.CA_NAME, h.CA_NAME))
        self.assertEqual(ca["ra"]["issuer"], h.CA_NAME)
        for digest in ("sha1", "sha256"):
            cli = ra.cli("fingerprint", "--digest", digest)
            self.assertEqual(h.text(cli.stdout).strip(), ca["ca"]["fingerprints"][digest])
        self.assertEqual(ca["scep_listen"], "127.0.0.1:%d" % ra.port)
        self.assertIn("/scep", ca["scep_paths"])
        self.assertIn("/cgi-bin/pkiclient.exe", ca["scep_paths"])
        crl = ca["crl"]
        self.assertEqual(set(crl), {"this_update", "next_update", "revoked"})
        self.assertEqual(crl["next_update"] - crl["this_update"], 7 * DAY)
        self.assertLessEqual(abs(crl["this_update"] - time.time()), 7 * DAY)
        self.assertEqual(crl["revoked"], ra.count("certificates", "revoked = 1"))

    def test_metrics(self):
        ra = self.ra
        body, before = self.scrape()
        types = dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", body))
        self.assertEqual(types, {
            "scep_requests_total": "counter", "scep_issuance_duration_seconds": "histogram",
            "scep_pending_requests": "gauge", "scep_certificates_expiring_30d": "gauge",
            "scep_certificates_valid": "gauge", "scep_crl_next_update_timestamp_seconds": "gauge",
            "scep_admin_auth_failures_total": "counter", "scep_webhook_deliveries_total": "counter",
            "scep_identity_clashes_total": "counter", "scep_config_reloads_total": "counter"})
        # No SIGHUP yet (integration-reload counts reloads): both outcomes at 0.
        for outcome in ("success", "failure"):
            self.assertEqual(h.metric(h.parse_prometheus(body), "scep_config_reloads_total",
                                      outcome=outcome), 0)

        def count(samples, **labels):
            return h.metric(samples, "scep_requests_total", **labels) or 0

        mic_ok = dict(operation="PKIOperation", message_type="RenewalReq", outcome="success",
                      method="mic")
        chal_pending = dict(operation="PKIOperation", message_type="PKCSReq", outcome="pending",
                            method="challenge")
        # Two MIC enrollments issued at once, two challenge requests left
        # pending, one refused (untrusted MIC).
        for name in ("mic-cp8875", "mic-dp9841"):
            result, _, _ = h.pki_enroll(ra, self.work, h.mic(name), h.DEVICES[name]["cn"])
            self.assertEqual(result.returncode, 0, h.text(result.stderr))
        for i, key in enumerate(("newkey-1.key", "newkey-2.key")):
            reply, _ = h.probe_pending(ra, self.work, "metrics-chal-%d" % i, ra.challenge,
                                       key=h.fixture(key))
            self.assertEqual(reply["status"], "PENDING")
        result, _, _ = h.pki_enroll(ra, self.work, h.mic("untrusted-mic"), h.MIC_CN)
        self.assertNotEqual(result.returncode, 0)

        body, after = self.scrape()
        for name, labels, value in after:
            if name == "scep_requests_total":
                self.assertEqual(set(labels), {"operation", "message_type", "outcome", "method"})
        self.assertEqual(count(after, **mic_ok) - count(before, **mic_ok), 2, body)
        self.assertEqual(count(after, **chal_pending) - count(before, **chal_pending), 2, body)
        self.assertGreaterEqual(count(after, outcome="failure") - count(before, outcome="failure"),
                                1, body)
        pending = self.get_json("/api/requests?status=pending", self.viewer)["total"]
        self.assertEqual(pending, 2)
        self.assertEqual(h.metric(after, "scep_pending_requests"), pending)
        self.assertEqual(h.metric(after, "scep_pending_requests"),
                         ra.count("requests", "status = 'pending'"))
        # Histogram: cumulative buckets, +Inf = count, sum > 0.
        buckets = [(float(l["le"]), v) for n, l, v in after
                   if n == "scep_issuance_duration_seconds_bucket"]
        self.assertGreaterEqual(len(buckets), 2)
        self.assertEqual([b[0] for b in buckets], sorted(b[0] for b in buckets))
        self.assertEqual(buckets[-1][0], float("inf"))
        for (_, low), (_, high) in zip(buckets, buckets[1:]):
            self.assertLessEqual(low, high, buckets)
        total = h.metric(after, "scep_issuance_duration_seconds_count")
        self.assertEqual(buckets[-1][1], total)
        self.assertEqual(total, 2)
        self.assertGreater(h.metric(after, "scep_issuance_duration_seconds_sum"), 0)
        # Certificates valid for 10 days all count as expiring within 30.
        self.assertEqual(h.metric(after, "scep_certificates_valid"), 2)
        self.assertEqual(h.metric(after, "scep_certificates_expiring_30d"), 2)
        ca = self.get_json("/api/ca", self.viewer)
        self.assertEqual(h.metric(after, "scep_crl_next_update_timestamp_seconds"),
                         ca["crl"]["next_update"])
        for outcome in ("delivered", "retried", "dropped"):
            self.assertEqual(h.metric(after, "scep_webhook_deliveries_total", outcome=outcome), 0)
        # Revoking one takes it out of both gauges.
        serial = ra.db("SELECT serial FROM certificates LIMIT 1")[0][0]
        self.ok("POST", "/api/certificates/%s/revoke" % serial, self.approver,
                body={"reason": "superseded"})
        _, revoked = self.scrape()
        self.assertEqual(h.metric(revoked, "scep_certificates_valid"), 1)
        self.assertEqual(h.metric(revoked, "scep_certificates_expiring_30d"), 1)
        # Authentication failures: +1 per bad token, not for a 403.
        failures = h.metric(revoked, "scep_admin_auth_failures_total")
        bad = "scepra_0badc0de_" + "A" * 43
        self.assertEqual(self.api.get("/api/whoami", token=bad).status, 401)
        _, one = self.scrape()
        self.assertEqual(h.metric(one, "scep_admin_auth_failures_total"), failures + 1)
        self.assertEqual(self.api.get("/api/tokens", token=self.viewer).status, 403)
        _, forbidden = self.scrape()
        self.assertEqual(h.metric(forbidden, "scep_admin_auth_failures_total"), failures + 1)
        # /metrics itself needs a credential.
        self.assertEqual(self.api.get("/metrics").status, 401)
        _, last = self.scrape()
        self.assertEqual(h.metric(last, "scep_admin_auth_failures_total"), failures + 2)


# ================================================================ client certificates

class T5ClientCertificates(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        scope = h.ClassScope(cls)
        work = h.Work(scope, "client-pki")
        cls.pki = h.make_client_pki(os.path.join(work.dir, "pki"))
        ra = cls.start_class_ra(auth={"approval-challenge": "manual"},
                                admin={"client-ca": cls.pki["admin-ca"][0]},
                                client_cert_roles={"alice": "approver", "bob": "viewer"})
        cls.viewer = ra.create_token("view", "viewer")

    def client(self, who):
        cert, key = self.pki[who]
        return self.ra.admin(cert=cert, key=key)

    def test_alice_is_an_approver(self):
        alice = self.client("alice")
        me = self.get_json("/api/whoami", None, client=alice)
        self.assertEqual(me, {"name": "cert:alice", "role": "approver", "via": "client-certificate"})
        self.assertEqual(alice.get("/api/tokens").status, 200)
        # She decides a request; the audit names her certificate.
        reply, info = h.probe_pending(self.ra, self.work, "cert-approved", self.ra.challenge)
        self.assertEqual(reply["status"], "PENDING")
        request_id = self.ra.pending_request(info["transactionId"])
        serial = self.ok("POST", "/api/requests/%d/approve" % request_id, None, client=alice)["serial"]
        events = self.ra.db("SELECT actor, serial FROM audit WHERE action = 'approve' "
                            "AND request_id = ?", (request_id,))
        self.assertEqual(events, [("cert:alice", serial)])

    def test_bob_is_a_viewer(self):
        bob = self.client("bob")
        me = self.get_json("/api/whoami", None, client=bob)
        self.assertEqual(me, {"name": "cert:bob", "role": "viewer", "via": "client-certificate"})
        self.assertEqual(bob.get("/metrics").status, 200)
        self.assert_refused(403, "GET", "/api/tokens", client=bob, actor="cert:bob")
        self.assert_refused(403, "POST", "/api/tokens", client=bob, actor="cert:bob",
                            body={"name": "bobs", "role": "approver"})

    def test_refused_client_certificates(self):
        cases = (("alice-other-ca", "not trusted"), ("carol", "no role"),
                 ("alice-server-eku", "not trusted"), ("alice-expired", "not trusted"))
        for who, why in cases:
            with self.subTest(who=who):
                _, row = self.assert_refused(401, "GET", "/api/whoami", client=self.client(who),
                                             actor="anonymous", reason_contains=why)
                self.assert_refused(401, "GET", "/api/requests", client=self.client(who),
                                    actor="anonymous")

    def test_the_ras_own_ca_cannot_be_the_admin_ca(self):
        # Whoever knows the challenge (broadcast in option 43) gets a
        # certificate from the RA's CA with a CN of their choice, e.g. "alice".
        config = os.path.join(self.work.dir, "own-ca-as-admin-ca.toml")
        # A copy of the running RA's state: serve locks the state-dir it uses.
        state = os.path.join(self.work.dir, "own-ca-state")
        shutil.copytree(self.ra.state, state, ignore=shutil.ignore_patterns("scep-ra.lock"))
        with open(config, "w") as f:
            f.write('[ra]\nlisten = "127.0.0.1:%d"\nstate-dir = "%s"\n'
                    '[auth]\nmanufacturer-roots = "%s"\n'
                    '[admin]\nlisten = "127.0.0.1:%d"\nclient-ca = "%s"\n'
                    '[admin.client-cert-roles]\nalice = "approver"\n'
                    % (h.integ.free_port(), state,
                       os.path.join(h.integ.SOURCE_DIR, "conf", "manufacturer-roots.pem"),
                       h.integ.free_port(), self.ra.ca_pem))
        result = subprocess.run([h.integ.SCEP_RA, "serve", "--config", config],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("trusts this RA's own CA", result.stderr)

    def test_tokens_still_work_and_take_precedence(self):
        self.assertEqual(self.get_json("/api/whoami", self.viewer),
                         {"name": "view", "role": "viewer", "via": "token"})
        # A certificate plus a token: the token decides (and a bad one is refused).
        alice = self.client("alice")
        self.assertEqual(self.get_json("/api/whoami", self.viewer, client=alice)["via"], "token")
        self.assert_refused(401, "GET", "/api/whoami", client=alice, actor="anonymous",
                            headers={"Authorization": "Bearer nonsense"})
        # Nobody: 401.
        self.assert_refused(401, "GET", "/api/whoami", actor="anonymous")


# ================================================================ webhook

class T6Webhook(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        scope = h.ClassScope(cls)
        cls.receiver = h.WebhookReceiver(scope, statuses=[500, 500])
        ra = cls.start_class_ra(auth={"approval-mic": "manual"},
                                admin={"notify-url": cls.receiver.url("/hooks/scep-ra?src=test")})
        cls.approver = ra.create_token("appr", "approver")
        cls.viewer = ra.create_token("view", "viewer")

    def webhook(self, outcome):
        body = self.api.get("/metrics", token=self.viewer).body.decode()
        return h.metric(h.parse_prometheus(body), "scep_webhook_deliveries_total", outcome=outcome)

    def test_pending_request_is_delivered_after_retries(self):
        ra = self.ra
        poller = h.PkiPoller(self, ra, self.work, h.mic("mic-cp8875"), h.MIC_CN)
        request_id = ra.pending_request()
        h.wait_for(lambda: self.receiver.count() >= 3, 90, "three webhook attempts")
        h.wait_for(lambda: self.webhook("delivered") == 1, 30, "the delivery to be counted")
        hits = list(self.receiver.hits)
        self.assertEqual([hit["status"] for hit in hits], [500, 500, 200])
        self.assertEqual(len({hit["body"] for hit in hits}), 1, "retries must resend the same event")
        for hit in hits:
            self.assertEqual(hit["path"], "/hooks/scep-ra?src=test")
            self.assertTrue(hit["headers"].get("Content-Type", "").startswith("application/json"))
        event = json.loads(hits[0]["body"])
        self.assertEqual(set(event), {"event", "request"})
        self.assertEqual(event["event"], "request.pending")
        request = event["request"]
        self.assertEqual(set(request), h.REQUEST_KEYS)
        self.assertEqual(request, self.get_json("/api/requests/%d" % request_id, self.viewer))
        self.assertEqual((request["status"], request["common_name"], request["model"],
                          request["mac"]), ("pending", h.MIC_CN, "CP-8875", "00:1A:2B:3C:4D:5E"))
        self.assertGreaterEqual(self.webhook("retried"), 2)
        self.assertEqual(self.webhook("retried"), 2)
        self.assertEqual(self.webhook("dropped"), 0)
        # Polls of the same transaction are no new events...
        def polls():
            body = self.api.get("/metrics", token=self.viewer).body.decode()
            return h.metric(h.parse_prometheus(body), "scep_requests_total",
                            message_type="CertPoll", outcome="pending") or 0
        seen = polls()
        h.wait_for(lambda: polls() >= seen + 3, 60, "three more CertPolls")
        self.assertEqual(self.receiver.count(), 3)
        # ... nor is the approval.
        self.ok("POST", "/api/requests/%d/approve" % request_id, self.approver)
        self.assertEqual(poller.wait(timeout=120), 0, poller.stderr())
        time.sleep(1.5)  # a wrongly sent event would arrive within this
        self.assertEqual(self.receiver.count(), 3)
        self.assertEqual(self.webhook("delivered"), 1)


class T7WebhookReceiverHangs(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        scope = h.ClassScope(cls)
        cls.hang = h.HangingReceiver(scope)
        ra = cls.start_class_ra(auth={"approval-mic": "manual", "approval-challenge": "manual"},
                                admin={"notify-url": cls.hang.url()})
        # Class cleanups run last-in first-out: let go of the RA's
        # connections before the RA is stopped.
        cls.addClassCleanup(cls.hang.close)
        cls.viewer = ra.create_token("view", "viewer")

    def webhook(self, outcome):
        body = self.api.get("/metrics", token=self.viewer).body.decode()
        return h.metric(h.parse_prometheus(body), "scep_webhook_deliveries_total", outcome=outcome)

    def test_scep_is_answered_while_the_webhook_hangs(self):
        ra = self.ra
        # First pending request: its webhook POST reaches the receiver, which never answers.
        reply, _ = h.probe_pending(ra, self.work, "hang-1", ra.challenge, key=h.fixture("newkey-1.key"))
        self.assertEqual(reply["status"], "PENDING")
        h.wait_for(lambda: any(b"request.pending" in b for b in self.hang.received()), 30,
                   "the webhook POST to reach the hanging receiver")
        self.assertEqual((self.webhook("delivered"), self.webhook("dropped")), (0, 0))
        # While that delivery is outstanding, new requests are answered PENDING:
        # a second probe request and a real pki client.
        reply, _ = h.probe_pending(ra, self.work, "hang-2", ra.challenge, key=h.fixture("newkey-2.key"))
        self.assertEqual(reply["status"], "PENDING")
        poller = h.PkiPoller(self, ra, self.work, h.mic("mic-cp8875"), h.MIC_CN)
        poller.wait_polling()
        self.assertIn("PENDING", poller.stderr().upper())
        self.assertEqual((self.webhook("delivered"), self.webhook("dropped")), (0, 0),
                         "the webhook delivery should still be outstanding")
        self.assertEqual(self.get_json("/api/requests?status=pending", self.viewer)["total"], 3)
        self.assertEqual(self.api.get("/healthz").status, 200)


# ================================================================ robustness of the listener and process

def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


class T8Robustness(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        scope = h.ClassScope(cls)
        cls.receiver = h.WebhookReceiver(scope)
        cls.start_class_ra(admin={"notify-url": cls.receiver.url()})
        cls.viewer = cls.ra.create_token("view", "viewer")

    def test_1_unauthenticated_oversized_body_is_not_buffered(self):
        # Admin bodies are a few hundred bytes. An anonymous client must not be
        # able to make the listener hold a 64 MiB body in memory.
        ra = self.ra
        before = peak_rss_kib(ra.proc.pid)
        size = 64 << 20
        context = ssl.create_default_context(cafile=ra.ca_pem)
        answer = b""
        with socket.create_connection(("127.0.0.1", ra.admin_port), timeout=60) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"POST /api/tokens HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size)
                chunk = b" " * (1 << 20)
                try:
                    for _ in range(size // len(chunk)):
                        tls.sendall(chunk)
                except OSError:
                    pass  # refused early: fine
                try:
                    answer = tls.recv(4096)
                except OSError:
                    pass
        growth = peak_rss_kib(ra.proc.pid) - before
        self.assertFalse(answer.startswith(b"HTTP/1.1 2"), answer[:200])
        self.assertLess(growth, 16 * 1024, "peak RSS grew by %d KiB for one anonymous request "
                        "(answer %r)" % (growth, answer[:40]))
        self.assertEqual(self.api.get("/healthz").status, 200)

    def test_1b_chunked_body_is_refused_before_it_is_read(self):
        # Debian's cpp-httplib 0.11 applies the body limit only to bodies with
        # a Content-Length (CVE-2025-46728); chunked ones must be refused unread.
        ra = self.ra
        before = peak_rss_kib(ra.proc.pid)
        audit_start = ra.max_audit_id()
        context = ssl.create_default_context(cafile=ra.ca_pem)
        answer = b""
        with socket.create_connection(("127.0.0.1", ra.admin_port), timeout=60) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"POST /api/tokens HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
                try:
                    for _ in range(64):
                        tls.sendall(chunk)
                except OSError:
                    pass  # refused early, as it should be
                try:
                    answer = tls.recv(4096)
                except OSError:
                    pass
        growth = peak_rss_kib(ra.proc.pid) - before
        self.assertLess(growth, 16 * 1024, "the admin listener buffered a chunked body "
                        "(%d KiB, answer %r)" % (growth, answer[:40]))
        self.assertFalse(answer.startswith(b"HTTP/1.1 2"), answer[:200])
        reasons = [r["reason"] for r in ra.audit_since(audit_start)]
        self.assertTrue(any(r.startswith("411 POST /api/tokens") for r in reasons), reasons)
        self.assertEqual(self.api.get("/healthz").status, 200)

    def test_2_sigterm_stops_cleanly_with_a_webhook_configured(self):
        ra = self.ra
        try:
            ra.proc.terminate()
            rc = ra.proc.wait(timeout=30)
            self.assertEqual(rc, 0, "SIGTERM did not stop scep-ra cleanly (exit %s); log tail:\n%s"
                             % (rc, ra.stderr()[-600:]))
            self.assertIn('"msg":"stopped"', ra.stderr())
        finally:
            ra.start()  # later cleanups expect a running RA


if __name__ == "__main__":
    sys.exit(h.main("admin-api", sys.modules[__name__], doc=__doc__.splitlines()[0]))
