#!/usr/bin/python3
"""One identity, one certificate: scep-ra's identity rules against real
clients, under concurrency (issue 7, items 9-13 and 17).

  - races: concurrent challenge PKCSReqs for one CN, concurrent approvals of
    pending requests for one CN, concurrent MIC enrollments for one identity;
  - renewal supersedes the certificate it replaces (optionally revoking it);
  - CNs compared canonically (case, trailing dot), spaces refused;
  - MIC-shaped CNs only for the MIC that proves them;
  - manufacturer trust limited to phone MICs (issuer, key usage, model);
  - EC keys with explicit curve parameters refused;
  - micromdm scepclient's second run (a renewal with the same key).

Reuses the integration harness (test_ra_integration.py) and, for the admin
API, tests/admin/admin_harness.py.

    /usr/bin/python3 tests/integration/test_identity_rules.py \\
        --scep-ra build/ra/scep-ra --probe build/tests/tools/scep_probe --source-dir .

The race figures (certificates per round) are printed on stderr.
"""

import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
import test_ra_integration as base  # noqa: E402
import admin_harness  # noqa: E402  (AdminRa: the RA with its HTTPS admin listener)

SUCCESS, FAILURE, PENDING = base.SUCCESS, base.FAILURE, base.PENDING
MIC_CN, MIC_B_CN, DESK_DOMAIN = base.MIC_CN, base.MIC_B_CN, base.DESK_DOMAIN


def report(line):
    print("identity-rules: " + line, file=sys.stderr, flush=True)


def post_all(ra, messages):
    """POSTs every message at once (one thread each, released together);
    returns the HTTP bodies in order. A connection reset before the answer
    is retried with the same message, as SCEP clients do (the RA answers a
    resent transactionID as it answered it first); how the HTTP layer copes
    with bursts is issue 7's items 1-2, not this suite's."""
    barrier = threading.Barrier(len(messages))

    def send(message):
        barrier.wait(timeout=60)
        for attempt in range(5):
            try:
                status, _, body = ra.post(message)
                break
            except (ConnectionError, http.client.HTTPException):
                if attempt == 4:
                    raise
        if status != 200:
            raise AssertionError("HTTP %d: %r" % (status, body[:300]))
        return body

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(messages)) as pool:
        return list(pool.map(send, messages))


# Audit every failure one by one: these tests count refusals in the table.
UNBUDGETED = {"audit-failures-per-source": 100000, "audit-failures-overall": 100000}

class IdentityCase(base.RaTestCase):
    def keys(self, count):
        """`count` distinct RSA keys (generated in parallel)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda _: self.new_key(), range(count)))

    def active(self, ra, cn):
        """Certificates of exactly this CN that are neither revoked nor expired."""
        return ra.db("SELECT serial FROM certificates WHERE common_name = ? AND revoked = 0 "
                     "AND not_after >= strftime('%s', 'now')", (cn,))

    def current(self, ra, cn):
        """Of those, the ones no other certificate supersedes."""
        return ra.db("SELECT serial FROM certificates WHERE common_name = ? AND revoked = 0 "
                     "AND superseded_by IS NULL", (cn,))


# ================================================================ races

class I1Races(IdentityCase):
    ROUNDS = 12
    CLIENTS = 16
    APPROVAL_ROUNDS = 4

    def test_concurrent_challenge_enrollments_issue_one_certificate_per_round(self):
        # Every refusal is counted from the audit table: budget for all of
        # them (180 from one address; integration-abuse tests the budget).
        ra = self.start_ra(ra=UNBUDGETED)
        keys = self.keys(self.CLIENTS)
        figures = []
        for round_ in range(self.ROUNDS):
            cn = "race-%02d.example.nl" % round_
            built = [self.probe_build(ra, csr_key=key, cn=cn, challenge=ra.challenge,
                                      txid="RACE-%02d-%02d" % (round_, i),
                                      signer_out=self.path("signer.pem"))
                     for i, key in enumerate(keys)]
            bodies = post_all(ra, [message for message, _ in built])
            statuses = [self.probe_read(ra, body)["status"] for body in bodies]
            figures.append((len(self.active(ra, cn)), statuses.count(SUCCESS)))
        report("%d concurrent challenge PKCSReqs for one CN, %d rounds: active certificates "
               "per round %s" % (self.CLIENTS, self.ROUNDS, [f[0] for f in figures]))
        self.assertEqual(figures, [(1, 1)] * self.ROUNDS,
                         "(active certificates, SUCCESS replies) per round")
        refusals = ra.db("SELECT count(*) FROM audit WHERE outcome = 'failure' AND "
                         "reason LIKE '%already holds active certificate%'")[0][0]
        self.assertEqual(refusals, (self.CLIENTS - 1) * self.ROUNDS)

    def _pending_for_one_cn(self, ra, cn, keys, tag):
        ids = []
        for i, key in enumerate(keys):
            reply, info = self.exchange(ra, csr_key=key, cn=cn, challenge=ra.challenge,
                                        txid="%s-%02d" % (tag, i))
            self.assertEqual(reply["status"], PENDING, reply)
            ids.append(ra.pending_request(info["transactionId"]))
        return ids

    def test_concurrent_cli_approvals_issue_one_certificate(self):
        ra = self.start_ra(auth={"approval-challenge": "manual"})
        keys = self.keys(12)
        figures, outcomes = [], []
        for round_ in range(self.APPROVAL_ROUNDS):
            cn = "approve-cli-%d.example.nl" % round_
            ids = self._pending_for_one_cn(ra, cn, keys, "CLI%d" % round_)
            procs = [base.popen([base.SCEP_RA, "approve", str(i), "--config", ra.config],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for i in ids]
            results = [(p.wait(timeout=120), base._text(p.stderr.read())) for p in procs]
            for p in procs:
                p.stdout.close()
                p.stderr.close()
            figures.append(len(self.active(ra, cn)))
            outcomes.append(([rc for rc, _ in results].count(0),
                             sum("already holds active certificate" in err
                                 for rc, err in results if rc != 0),
                             ra.count("requests", "common_name = ? AND status = 'pending'",
                                      (cn,))))
        report("12 concurrent CLI approvals of 12 pending requests for one CN, %d rounds: "
               "active certificates per round %s" % (self.APPROVAL_ROUNDS, figures))
        self.assertEqual(figures, [1] * self.APPROVAL_ROUNDS)
        # (approved, refused for the CN, still pending) per round
        self.assertEqual(outcomes, [(1, 11, 11)] * self.APPROVAL_ROUNDS)

    def test_concurrent_api_approvals_issue_one_certificate(self):
        ra = admin_harness.AdminRa(self, auth={"approval-challenge": "manual"})
        token = ra.create_token("racer", "approver")
        keys = self.keys(12)
        figures, outcomes = [], []
        for round_ in range(self.APPROVAL_ROUNDS):
            cn = "approve-api-%d.example.nl" % round_
            ids = self._pending_for_one_cn(ra, cn, keys, "API%d" % round_)
            # TLS handshakes first (kept-alive connections, fewer than the
            # listener's workers), so that the approvals themselves arrive
            # together: two per connection.
            context = ra.admin().context
            connections = [http.client.HTTPSConnection("localhost", ra.admin_port,
                                                       context=context, timeout=60)
                           for _ in range(len(ids) // 2)]
            for conn in connections:
                conn.connect()
            barrier = threading.Barrier(len(connections))

            def approve(job):
                conn, request_ids = job
                barrier.wait(timeout=60)
                answers = []
                for request_id in request_ids:
                    conn.request("POST", "/api/requests/%d/approve" % request_id, body=b"{}",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
                    response = conn.getresponse()
                    answers.append((response.status, json.loads(response.read().decode())))
                conn.close()
                return answers

            jobs = [(conn, ids[i::len(connections)]) for i, conn in enumerate(connections)]
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                answers = [a for per_connection in pool.map(approve, jobs) for a in per_connection]
            figures.append(len(self.active(ra, cn)))
            outcomes.append(([status for status, _ in answers].count(200),
                             sum(status == 409 and "already holds active certificate" in
                                 body.get("error", "") for status, body in answers)))
        report("12 concurrent admin API approvals of 12 pending requests for one CN, %d rounds: "
               "active certificates per round %s" % (self.APPROVAL_ROUNDS, figures))
        self.assertEqual(figures, [1] * self.APPROVAL_ROUNDS)
        # (200 approved, 409 refused for the CN) per round
        self.assertEqual(outcomes, [(1, 11)] * self.APPROVAL_ROUNDS)

    def test_concurrent_mic_enrollments_end_with_one_current_certificate(self):
        # A phone's MIC-signed re-enrollment is legitimate (it renews that
        # way); racing ones all succeed, and exactly one stays current.
        ra = self.start_ra()
        cn = MIC_CN + "." + DESK_DOMAIN
        ra_der, ca_der = ra.pki_ca()
        mic_cert, mic_key = self.mic()
        figures = []
        for round_ in range(3):
            # Fresh keys: pki derives its transactionID from the key, and a
            # known transactionID gets its earlier answer.
            keys = self.keys(8)
            outs = [self.path("pki-cert.pem") for _ in keys]
            procs = []
            for key, out in zip(keys, outs):
                with open(out, "wb") as f:
                    procs.append(base.popen(
                        ["pki", "--scep", "--url", ra.url, "--in", key, "--dn", "CN=" + cn,
                         "--cacert-enc", ra_der, "--cacert-sig", ra_der, "--cacert", ca_der,
                         "--cert", mic_cert, "--key", mic_key, "--outform", "pem"],
                        stdout=f, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
            for proc in procs:
                err = base._text(proc.communicate(timeout=120)[1])
                self.assertEqual(proc.returncode, 0, err)
            for key, out in zip(keys, outs):
                self.assertEqual(base.public_key_of_cert(out), base.public_key_of_key(key))
            current = self.current(ra, cn)
            figures.append(len(current))
            self.assertEqual(len(current), 1)
            # Every other certificate of the identity names its successor,
            # and following the chain ends at the current one.
            rows = dict(ra.db("SELECT serial, superseded_by FROM certificates "
                              "WHERE common_name = ?", (cn,)))
            self.assertEqual(len(rows), 8 * (round_ + 1))
            for serial in rows:
                seen = set()
                while rows[serial] is not None:
                    self.assertNotIn(serial, seen)
                    seen.add(serial)
                    serial = rows[serial]
                self.assertEqual(serial, current[0][0])
        # Superseded, not revoked: a phone that never fetched its new
        # certificate keeps working with the old one.
        self.assertEqual(ra.count("certificates", "revoked = 1"), 0)
        supersede_events = ra.count("audit", "action = 'supersede'")
        self.assertEqual(supersede_events, 8 * 3 - 1)
        report("8 concurrent MIC enrollments (strongSwan pki) for one identity, 3 rounds: "
               "current certificates per round %s" % figures)


# ================================================================ renewal supersedes

class I2Supersede(IdentityCase):
    def _enroll_and_renew(self, ra):
        mic_cert, mic_key = self.mic()
        cn = MIC_CN + "." + DESK_DOMAIN
        old_key = self.new_key()
        result, old_cert = self.pki_enroll(ra, old_key, cn, cert=mic_cert, certkey=mic_key)
        self.assert_pki_ok(result)
        new_key = self.new_key()
        result, new_cert = self.pki_enroll(ra, new_key, cn, cert=old_cert, certkey=old_key)
        self.assert_pki_ok(result)
        old = base.cert_info(old_cert)["serial"]
        new = base.cert_info(new_cert)["serial"]
        return cn, old, new, old_cert, old_key

    def serial_row(self, ra, serial, columns):
        rows = ra.db("SELECT %s FROM certificates WHERE ltrim(serial, '0') = ?" % columns,
                     (serial,))
        self.assertEqual(len(rows), 1, serial)
        return rows[0]

    def test_renewal_supersedes_and_by_default_does_not_revoke(self):
        ra = self.start_ra()
        cn, old, new, old_cert, old_key = self._enroll_and_renew(ra)
        superseded_by, revoked = self.serial_row(ra, old, "ltrim(superseded_by, '0'), revoked")
        self.assertEqual((superseded_by, revoked), (new, 0))
        self.assertEqual(len(self.current(ra, cn)), 1)
        crl = base.openssl("crl", "-inform", "DER", "-in", os.path.join(ra.state, "crl.der"),
                           "-noout", "-text") if os.path.exists(
                               os.path.join(ra.state, "crl.der")) else ""
        self.assertNotIn(old, crl.replace(":", "").upper())
        # The superseded certificate cannot renew a second time.
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), cn, cert=old_cert, certkey=old_key)
            self.assert_pki_failed(result)
        self.assertTrue(any("superseded" in r["reason"] for r in ctx["audit"]), ctx["audit"])

    def test_revoke_superseded_setting_revokes_with_reason_superseded(self):
        ra = self.start_ra(auth={"revoke-superseded": True})
        cn, old, new, _, _ = self._enroll_and_renew(ra)
        superseded_by, revoked, reason = self.serial_row(
            ra, old, "ltrim(superseded_by, '0'), revoked, revocation_reason")
        self.assertEqual((superseded_by, revoked, reason), (new, 1, 4))
        # The published CRL lists it with reason superseded.
        crl = base.openssl("crl", "-inform", "DER", "-in", os.path.join(ra.state, "crl.der"),
                           "-noout", "-text")
        self.assertIn(old, crl.replace(":", "").upper())
        self.assertIn("Superseded", crl)

    def test_supersede_shown_by_the_admin_api(self):
        ra = admin_harness.AdminRa(self)
        token = ra.create_token("viewer", "viewer")
        cn, old, new, _, _ = self._enroll_and_renew(ra)
        items = ra.admin().get("/api/certificates?q=" + MIC_CN, token=token).json["items"]
        by_serial = {c["serial"].lstrip("0"): c for c in items}
        self.assertEqual(by_serial[old]["superseded_by"].lstrip("0"), new)
        self.assertEqual(by_serial[new]["superseded_by"], "")


# ================================================================ canonical names

class I3NameVariants(IdentityCase):
    def test_variants_of_an_active_cn_are_refused(self):
        ra = self.start_ra()
        key = self.new_key()
        result, _ = self.pki_enroll(ra, key, "victim.example.nl",
                                    extra=["--password", ra.challenge])
        self.assert_pki_ok(result)
        for variant in ("VICTIM.example.nl", "Victim.Example.NL", "victim.example.nl.",
                        "victim.example.nl.."):
            with self.subTest(variant=variant), self.refused(ra) as ctx:
                reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-2.key"), cn=variant,
                                         challenge=ra.challenge)
                self.assert_failure(reply, "badRequest")
            self.assertTrue(any("already holds active certificate" in r["reason"]
                                for r in ctx["audit"]), ctx["audit"])
        for spaced in (" victim.example.nl", "victim.example.nl ", " other.example.nl"):
            with self.subTest(spaced=spaced), self.refused(ra) as ctx:
                reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-2.key"), cn=spaced,
                                         challenge=ra.challenge)
                self.assert_failure(reply, "badRequest")
            self.assertTrue(any("leading or trailing space" in r["reason"]
                                for r in ctx["audit"]), ctx["audit"])
        self.assertEqual(ra.count("certificates"), 1)


# ================================================================ MIC-shaped names

class I4MicShapedNames(IdentityCase):
    def test_challenge_request_for_a_mic_shaped_cn_is_refused_and_counted(self):
        ra = admin_harness.AdminRa(self)
        token = ra.create_token("viewer", "viewer")
        names = [MIC_B_CN + ".example.nl", MIC_B_CN.lower() + "." + DESK_DOMAIN, MIC_B_CN,
                 "CP-8875-SEP001a2b3c4d60.Example.NL."]
        for cn in names:
            with self.subTest(cn=cn), self.refused(ra) as ctx:
                reply, _ = self.exchange(ra, csr_key=self.fixture("newkey-1.key"), cn=cn,
                                         challenge=ra.challenge)
                self.assert_failure(reply, "badRequest")
            self.assertTrue(any("only to the phone whose MIC proves it" in r["reason"]
                                for r in ctx["audit"]), ctx["audit"])
        metrics = ra.admin().get("/metrics", token=token).body.decode()
        self.assertIn('scep_identity_clashes_total{kind="challenge-for-mic-name"} %d' % len(names),
                      metrics)
        # The real phone still enrolls with its MIC.
        result, _ = self.pki_enroll(ra, self.new_key(), MIC_B_CN + "." + DESK_DOMAIN,
                                    *self.mic("mic-cp8875-b"))
        self.assert_pki_ok(result)


# ================================================================ manufacturer trust

class I5ManufacturerTrust(IdentityCase):
    def test_hostile_manufacturer_certificates_are_refused(self):
        ra = self.start_ra()
        cases = {
            # fixture: (CN it asks for, what the refusal names)
            "mic-codesigning": (None, "extendedKeyUsage"),
            "mic-keyencipherment": (None, "digitalSignature"),
            "sudi-router": (None, "not one of mic-issuers"),
            "mic-wrong-issuer": (None, "not one of mic-issuers"),
            "sudi-router-phone-ca": (None, "not a phone MIC"),
        }
        for name, (cn, reason) in cases.items():
            cert, key = self.fixture(name + ".pem"), self.fixture("hostile-leaf.key")
            cn = cn or base.cert_info(cert)["subject"].split("CN=")[-1].split(",")[0]
            with self.subTest(fixture=name), self.refused(ra) as ctx:
                result, _ = self.pki_enroll(ra, self.new_key(), cn, cert=cert, certkey=key)
                self.assert_pki_failed(result)
            self.assertTrue(any(reason in r["reason"] for r in ctx["audit"]), ctx["audit"])

    def test_model_must_be_served_by_a_profile_or_listed(self):
        server = "http://127.0.0.1:1/scep"
        dp_only = [{"name": "dp", "vendor-class": ["DP-9841"], "server": server,
                    "fingerprint": "12040870625C5B755D73F5925285F8F5FF5D55AF"}]
        ra = self.start_ra(profiles=dp_only)
        with self.refused(ra) as ctx:
            result, _ = self.pki_enroll(ra, self.new_key(), MIC_CN, *self.mic())
            self.assert_pki_failed(result)
        self.assertTrue(any("CP-8875" in r["reason"] and "mic-models" in r["reason"]
                            for r in ctx["audit"]), ctx["audit"])
        # A new model is enabled by configuration.
        ra = self.start_ra(profiles=dp_only, auth={"mic-models": ["CP-8875"]})
        result, out = self.pki_enroll(ra, self.new_key(), MIC_CN, *self.mic())
        self.assert_pki_ok(result)


# ================================================================ EC explicit parameters

class I6EcExplicitParameters(IdentityCase):
    def _ec_key(self, explicit):
        path = self.path("ec.pem")
        args = ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path]
        if explicit:
            args[3:3] = ["-param_enc", "explicit"]
        base.openssl(*args)
        return path

    def _signer(self):
        key = self.new_key()
        cert = self.path("signer.pem")
        base.openssl("req", "-x509", "-new", "-key", key, "-subj", "/CN=signer", "-days", "1",
                     "-out", cert)
        return cert, key

    def test_explicit_curve_parameters_are_refused_named_curves_issue(self):
        ra = self.start_ra()
        explicit = self._ec_key(True)
        text = base.openssl("pkey", "-in", explicit, "-noout", "-text")
        self.assertIn("Field Type: prime-field", text)  # really explicit
        signer = self._signer()
        with self.refused(ra) as ctx:
            reply, _ = self.exchange(ra, reply_key=signer[1], reply_cert=signer[0],
                                     signer=signer, csr_key=explicit, cn="ec-explicit",
                                     challenge=ra.challenge)
            self.assert_failure(reply, "badRequest")
        self.assertTrue(any("named curve" in r["reason"] for r in ctx["audit"]), ctx["audit"])
        reply, _ = self.exchange(ra, reply_key=signer[1], reply_cert=signer[0], signer=signer,
                                 csr_key=self._ec_key(False), cn="ec-named",
                                 challenge=ra.challenge)
        self.assertEqual(reply["status"], SUCCESS, reply)


# ================================================================ micromdm scepclient again

class I7ScepclientSecondRun(IdentityCase):
    def test_second_run_is_refused_with_a_reason_and_audited(self):
        ra = self.start_ra(auth={"allow-des": True})
        work = os.path.join(self.work, "mm")
        first = base.run(self.scepclient_args(ra, work, "mm-twice", ra.challenge), timeout=120)
        self.assertEqual(first.returncode, 0, base._text(first.stderr))
        cert = os.path.join(work, "cert.pem")
        issued = base.read_text(cert)
        with self.refused(ra) as ctx:
            second = base.run(self.scepclient_args(ra, work, "mm-twice", ra.challenge),
                              timeout=120)
        output = base._text(second.stdout) + base._text(second.stderr)
        self.assertNotEqual(second.returncode, 0, output)
        self.assertNotIn("pkiStatus=SUCCESS", output)
        self.assertIn("RenewalReq (17) request failed, failInfo: badRequest", output)
        self.assertTrue(any(r["action"] == "RenewalReq" and
                            "renewal must use a new key" in r["reason"] for r in ctx["audit"]),
                        ctx["audit"])
        self.assertEqual(base.read_text(cert), issued)  # it keeps what it had
        self.assertEqual(ra.count("certificates"), 1)


if __name__ == "__main__":
    sys.exit(base.main())
