#!/usr/bin/python3
"""Web console test in a real browser: Debian's chromium + chromium-driver,
driven by python3-selenium, against a real `scep-ra serve`.

Chromium trusts the RA's CA properly: the test makes a fresh HOME whose NSS
database (~/.pki/nssdb, certutil from libnss3-tools) holds <state>/ca.pem as
a trusted CA, and the browser runs with that HOME and a fresh
--user-data-dir. There is no --ignore-certificate-errors: a certificate
problem fails the test.

Flow: strongSwan `pki --scep` (test MIC, polling) creates a pending request;
an approver signs in with a token, sees the row (model, MAC, peer), approves,
the client receives its certificate; the approver finds the certificate and
revokes it (keyCompromise); /crl lists it and the CA page counts it. Then a
bad token, a viewer, a rejection through the dialog and a reload, and a
search with more matches than the API counts ("of 1000+"). Throughout:
no browser console errors or CSP reports, and the token never in a URL
(current URL, every request in the performance log, the browser history).
Screenshots of each step go to tests/artifacts/admin-browser/ (git-ignored).

    /usr/bin/python3 tests/admin/test_console_browser.py --scep-ra build/ra/scep-ra \\
        --probe build/tests/tools/scep_probe --source-dir .
"""

import json
import os
import re
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_harness as h  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60  # failsafe for every browser wait, not a speed requirement

REQUIREMENTS = [
    ("python3-selenium", lambda: h._importable("selenium"), "apt-get install python3-selenium"),
    ("chromium", lambda: os.access(CHROMIUM, os.X_OK), "apt-get install chromium"),
    ("chromedriver", lambda: os.access(CHROMEDRIVER, os.X_OK), "apt-get install chromium-driver"),
    ("certutil (to make Chromium trust the RA's CA)", lambda: shutil.which("certutil"),
     "apt-get install libnss3-tools"),
]


class ConsoleInBrowser(h.AdminTestCase):
    @classmethod
    def setUpClass(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        ra = cls.start_class_ra(auth={"approval-mic": "manual"})
        cls.approver = ra.create_token("console-approver", "approver")
        cls.viewer = ra.create_token("console-viewer", "viewer")
        cls.base = "https://localhost:%d" % ra.admin_port
        cls.shots = os.path.join(h.ARTIFACTS, "admin-browser")
        os.makedirs(cls.shots, exist_ok=True)
        for old in os.listdir(cls.shots):
            if old.endswith(".png"):
                os.remove(os.path.join(cls.shots, old))

        # A HOME whose NSS database trusts the RA's CA, and a fresh profile.
        cls.home = os.path.join(cls.cwork.dir, "home")
        nssdb = os.path.join(cls.home, ".pki", "nssdb")
        os.makedirs(nssdb)
        h.run(["certutil", "-N", "-d", "sql:" + nssdb, "--empty-password"], check=True)
        h.run(["certutil", "-A", "-d", "sql:" + nssdb, "-n", "scep-ra test CA", "-t", "C,,",
               "-i", ra.ca_pem], check=True)
        listed = h.text(h.run(["certutil", "-L", "-d", "sql:" + nssdb], check=True).stdout)
        if "scep-ra test CA" not in listed:
            raise AssertionError("the CA is not in the NSS database:\n" + listed)
        cls.profile = os.path.join(cls.cwork.dir, "profile")
        env = {"HOME": cls.home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "XDG_CONFIG_HOME": os.path.join(cls.home, ".config"),
               "XDG_CACHE_HOME": os.path.join(cls.home, ".cache"), "LANG": "C.UTF-8"}
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-dev-shm-usage", "--user-data-dir=" + cls.profile,
                    "--window-size=1400,1000", "--no-first-run", "--lang=en-US"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        service = Service(executable_path=CHROMEDRIVER, env=env,
                          log_path=os.path.join(cls.cwork.dir, "chromedriver.log"))
        cls.driver = webdriver.Chrome(service=service, options=options)
        cls.addClassCleanup(cls.quit_driver)
        cls.driver.set_page_load_timeout(WAIT)
        cls.console_log, cls.perf_log, cls.urls_seen = [], [], []

    @classmethod
    def quit_driver(cls):
        if getattr(cls, "driver", None) is not None:
            try:
                cls.driver.quit()
            finally:
                cls.driver = None

    # -- helpers

    def wait(self, condition, what, timeout=WAIT):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda d: condition(d))
        except TimeoutException:
            self.shot("timeout-" + re.sub(r"[^a-z0-9]+", "-", what.lower())[:40])
            raise AssertionError("browser: timed out waiting for " + what)

    def css(self, selector):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def click(self, selector, what):
        """Clicks what the selector finds, finding it again when the page re-rendered it."""
        from selenium.common.exceptions import StaleElementReferenceException

        def attempt(d):
            try:
                self.css(selector).click()
                return True
            except StaleElementReferenceException:
                return False
        self.wait(attempt, what)

    def all_css(self, selector):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, element_id):
        return self.driver.execute_script(
            "var e = document.getElementById(arguments[0]);"
            "return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;", element_id)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(self.shots, name + ".png"))

    def collect(self):
        """Drains the browser's console and performance logs, and notes the URL."""
        self.urls_seen.append(self.driver.current_url)
        self.console_log += self.driver.get_log("browser")
        for entry in self.driver.get_log("performance"):
            self.perf_log.append(json.loads(entry["message"])["message"])

    def assert_no_console_problems(self, allowed=()):
        problems = [e for e in self.console_log if e["level"] in ("SEVERE", "WARNING")
                    and not any(re.search(p, e["message"]) for p in allowed)]
        self.assertEqual(problems, [], "browser console problems")
        csp = [e for e in self.console_log if "Content Security Policy" in e["message"]
               or "Refused to" in e["message"]]
        self.assertEqual(csp, [], "CSP violations")

    def sign_in(self, token, expect_role):
        field = self.css("#token")
        field.clear()
        field.send_keys(token)
        self.css("#login-button").click()
        self.wait(lambda d: self.visible("app") and
                  self.css("#whoami").get_attribute("data-role") == expect_role,
                  "the console to sign in as " + expect_role)
        self.assertFalse(self.visible("login"))

    def sign_out(self):
        self.css("#logout").click()
        self.wait(lambda d: self.visible("login"), "the login form after signing out")
        self.assertIsNone(self.driver.execute_script(
            "return sessionStorage.getItem('scep-ra.token')"))

    def request_row(self, request_id, status):
        rows = self.all_css('#req-body tr[data-request-id="%d"][data-status="%s"]' % (request_id, status))
        return rows[0] if rows else None

    def go(self, page):
        self.css("#nav-" + page).click()
        self.wait(lambda d: self.visible("page-" + page) and
                  self.css("#nav-" + page).get_attribute("aria-current") == "page",
                  "the %s page" % page)

    # -- the flow

    def test_1_approve_then_revoke(self):
        ra, driver = self.ra, self.driver
        poller = h.PkiPoller(self, ra, self.work, h.mic("mic-cp8875"), h.MIC_CN)
        request_id = ra.pending_request()
        poller.wait_polling()

        driver.get(self.base + "/")
        self.wait(lambda d: self.visible("login"), "the login form")
        self.assertEqual(driver.execute_script("return location.protocol"), "https:")
        self.assertEqual(driver.execute_script("return window.isSecureContext"), True)
        self.shot("01-login")
        self.collect()

        self.sign_in(self.approver, "approver")
        self.assertEqual(self.css("#whoami-name").text, "console-approver")
        self.assertEqual(self.css("#whoami").get_attribute("data-via"), "token")
        self.assertEqual(driver.execute_script("return sessionStorage.getItem('scep-ra.token')"),
                         self.approver)
        self.assertEqual(driver.execute_script("return localStorage.length"), 0)
        self.assertEqual(driver.execute_script("return document.cookie"), "")
        self.assertEqual(self.css("#token").get_attribute("value"), "")
        self.collect()

        row = self.wait(lambda d: self.request_row(request_id, "pending"), "the pending request row")
        text = row.text
        for expected in ("CP-8875", "00:1A:2B:3C:4D:5E", "127.0.0.1", h.MIC_CN, "MIC"):
            self.assertIn(expected, text)
        self.wait(lambda d: self.css("#pending-count").text.strip().startswith("1"),
                  "the pending count badge")
        self.shot("02-pending-request")
        self.collect()

        self.click('#req-body tr[data-request-id="%d"] .approve' % request_id, "the approve button")
        self.wait(lambda d: self.css("#flash").get_attribute("data-kind") == "success",
                  "the approval message")
        serial = ra.db("SELECT cert_serial FROM requests WHERE id = ?", (request_id,))[0][0]
        self.assertTrue(serial)
        self.assertIn(serial, self.css("#flash").text)
        self.assertEqual(poller.wait(timeout=120), 0, poller.stderr())
        self.assertIn("BEGIN CERTIFICATE", poller.certificate_pem())
        self.assertEqual(h.norm_serial(h.serial_of(poller.out)), h.norm_serial(serial))
        self.wait(lambda d: self.request_row(request_id, "pending") is None,
                  "the approved request to leave the pending list")
        self.shot("03-approved")
        self.collect()

        self.go("certificates")
        search = self.css("#cert-search")
        search.clear()
        search.send_keys("00:1a:2b:3c:4d:5e")
        self.css("#cert-search-button").click()
        cert_row = '#cert-body tr[data-serial="%s"]' % serial
        self.wait(lambda d: self.all_css(cert_row + '[data-status="valid"]'), "the certificate row")
        self.assertIn(h.MIC_CN, self.css(cert_row).text)
        self.shot("04-certificate-found")
        self.collect()

        self.click(cert_row + " .revoke", "the revoke button")
        self.wait(lambda d: self.css("#revoke-dialog").get_attribute("open") is not None,
                  "the revoke dialog")
        self.assertEqual(self.css("#revoke-serial").text, serial)
        from selenium.webdriver.support.ui import Select
        Select(self.css("#revoke-reason")).select_by_value("keyCompromise")
        self.shot("05-revoke-dialog")
        self.css("#revoke-confirm").click()
        self.wait(lambda d: self.css("#revoke-dialog").get_attribute("open") is None
                  and self.css("#flash").get_attribute("data-kind") == "success",
                  "the revocation to be confirmed")
        self.wait(lambda d: self.all_css(cert_row + '[data-status="revoked"]'),
                  "the row to show the certificate revoked")
        self.assertIn("keyCompromise", self.css(cert_row).text)
        self.shot("06-revoked")
        self.collect()

        status, ctype, body = ra.scep_get("/crl")
        self.assertEqual((status, ctype), (200, "application/pkix-crl"))
        crl = self.work.path("crl.der")
        with open(crl, "wb") as f:
            f.write(body)
        verified = h.run(["openssl", "crl", "-inform", "DER", "-in", crl, "-CAfile", ra.ca_pem,
                          "-verify", "-noout", "-text"])
        self.assertEqual(verified.returncode, 0, h.text(verified.stderr))
        self.assertIn("verify OK", h.text(verified.stderr) + h.text(verified.stdout))
        crl_text = h.text(verified.stdout)
        self.assertRegex(crl_text, r"Serial Number: 0*%s\s+Revocation Date: [^\n]+\n\s+CRL entry "
                         r"extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise" %
                         h.norm_serial(serial))

        self.go("ca")
        self.wait(lambda d: self.all_css("#crl-revoked") and
                  self.css("#crl-revoked").text.strip() == "1 certificate", "the CRL count on the CA page")
        self.assertEqual(self.css("#fp-ca-sha256").text.strip(),
                         h.openssl_fingerprint(ra.ca_pem, "sha256"))
        self.assertEqual(self.css("#fp-ca-sha1").text.strip(),
                         h.openssl_fingerprint(ra.ca_pem, "sha1"))
        self.shot("07-ca-page")
        self.collect()

        self.go("audit")
        self.wait(lambda d: len(self.all_css("#audit-body tr[data-event-id]")) > 0, "audit rows")
        audit_text = self.css("#audit-body").text
        for expected in ("revoke", "approve", "console-approver"):
            self.assertIn(expected, audit_text)
        self.shot("08-audit")
        self.collect()
        self.assertTrue(driver.current_url.startswith(self.base + "/#/"), driver.current_url)
        self.assert_no_console_problems()

    def test_2_bad_token_viewer_reject_and_reload(self):
        ra = self.ra
        if not self.visible("app"):
            self.driver.get(self.base + "/")
            self.wait(lambda d: self.visible("login") or self.visible("app"), "the console")
        if self.visible("app"):
            self.sign_out()
        self.collect()
        start = len(self.console_log)

        bad = "scepra_deadbeef_" + "A" * 43
        ra.secrets.append(bad)
        self.css("#token").send_keys(bad)
        self.css("#login-button").click()
        self.wait(lambda d: self.visible("login-error"), "the login error")
        self.assertIn("not accepted", self.css("#login-error").text)
        self.assertFalse(self.visible("app"))
        self.shot("09-bad-token")
        self.collect()
        # The only console entry a bad sign-in may cause: the browser's note of
        # the 401 (which also shows that console messages are captured at all).
        self.assertTrue(self.console_log[start:], "no console entry captured for a 401")
        for entry in self.console_log[start:]:
            self.assertRegex(entry["message"], r"/api/whoami .*401", entry)

        poller = h.PkiPoller(self, ra, self.work, h.mic("mic-cp8875-b"), h.MIC_B_CN)
        request_id = ra.pending_request()
        self.sign_in(self.viewer, "viewer")
        self.assertTrue(self.visible("viewer-note"))
        self.go("pending")  # the console returns to the page of the last session
        row = self.wait(lambda d: self.request_row(request_id, "pending"), "the pending row (viewer)")
        approve = row.find_element("css selector", ".approve")
        self.assertFalse(approve.is_enabled())
        self.assertFalse(row.find_element("css selector", ".reject").is_enabled())
        self.shot("10-viewer")
        self.collect()
        # A reload keeps the session of this tab (sessionStorage).
        self.driver.refresh()
        self.wait(lambda d: self.visible("app") and
                  self.css("#whoami").get_attribute("data-role") == "viewer", "the session after reload")
        self.sign_out()

        self.sign_in(self.approver, "approver")
        self.go("pending")
        row = self.wait(lambda d: self.request_row(request_id, "pending"), "the pending row (approver)")
        self.click('#req-body tr[data-request-id="%d"] .reject' % request_id, "the reject button")
        self.wait(lambda d: self.css("#reject-dialog").get_attribute("open") is not None,
                  "the reject dialog")
        self.css("#reject-confirm").click()  # no reason yet: refused in the dialog
        self.wait(lambda d: self.visible("reject-error"), "the missing-reason error")
        self.css("#reject-reason").send_keys("unknown phone in the lobby")
        self.shot("11-reject-dialog")
        self.css("#reject-confirm").click()
        self.wait(lambda d: self.css("#reject-dialog").get_attribute("open") is None
                  and self.css("#flash").get_attribute("data-kind") == "success", "the rejection")
        self.assertNotEqual(poller.wait(timeout=120), 0)
        self.assertRegex(poller.stderr(), r"failInfo:\s+badRequest")
        self.assertEqual(ra.db("SELECT status, reason FROM requests WHERE id = ?", (request_id,)),
                         [("rejected", "unknown phone in the lobby")])
        self.assertEqual(ra.db("SELECT actor FROM audit WHERE action = 'reject' AND request_id = ?",
                               (request_id,)), [("console-approver",)])
        self.shot("12-rejected")
        self.collect()
        end = len(self.console_log)
        problems = [e for e in self.console_log[start:end] if e["level"] in ("SEVERE", "WARNING")
                    and not re.search(r"/api/whoami .*401", e["message"])]
        self.assertEqual(problems, [])

    def test_2b_a_text_search_with_many_matches_pages_on(self):
        # 1,100 certificates whose CN holds one text, written as another
        # writer would: the API counts 1,000 past the page, the console says
        # so ("of 1000+") and pages on, most recently recorded first.
        now = int(time.time())
        conn = sqlite3.connect(self.ra.db_path, timeout=30)
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                    "not_after, der) VALUES (?, ?, 'CN=CA', ?, ?, ?, x'30')",
                    [("B%07X" % i, "CN=bulk-phone-%04d" % i, "bulk-phone-%04d" % i, now - i,
                      now + 365 * 86400) for i in range(1100)])
        finally:
            conn.close()
        if not self.visible("app"):
            self.driver.get(self.base + "/")
            self.wait(lambda d: self.visible("login") or self.visible("app"), "the console")
        if not self.visible("app"):
            self.sign_in(self.viewer, "viewer")
        self.go("certificates")
        search = self.css("#cert-search")
        search.clear()
        search.send_keys("bulk-phone")
        self.css("#cert-search-button").click()

        def first_cn():
            rows = self.all_css("#cert-body tr[data-serial]")
            return rows[0].get_attribute("data-serial") if rows else None
        self.wait(lambda d: self.css("#cert-range").text == "1–50 of 1000+"
                  and first_cn() == "B000044B", "the first page of 1000+")
        self.assertTrue(self.css("#cert-next").is_enabled())
        self.assertFalse(self.css("#cert-prev").is_enabled())
        self.shot("13-of-1000-plus")
        self.click("#cert-next", "the next page")
        self.wait(lambda d: self.css("#cert-range").text == "51–100 of 1050+"
                  and first_cn() == "B0000419", "the second page")
        self.collect()

    def test_3_token_never_in_a_url(self):
        self.collect()
        with open(os.path.join(self.shots, "console-log.json"), "w") as f:
            json.dump(self.console_log, f, indent=1)
        tokens = [self.approver, self.viewer]
        secrets_only = [t.split("_", 2)[2] for t in tokens]
        for url in self.urls_seen:
            for secret in secrets_only:
                self.assertNotIn(secret, url)
        urls, authorized = [], 0
        for event in self.perf_log:
            params = event.get("params", {})
            request = params.get("request") or {}
            response = params.get("response") or {}
            urls += [u for u in (request.get("url"), params.get("documentURL"), response.get("url"),
                                 (params.get("redirectResponse") or {}).get("url")) if u]
            headers = dict(request.get("headers") or {})
            headers.update(params.get("headers") or {})
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if auth.startswith("Bearer scepra_"):
                authorized += 1
        self.assertGreater(len(urls), 10, "the performance log recorded too little")
        self.assertGreater(authorized, 0, "no Bearer header seen: the log would not show a leak")
        api_urls = [u for u in urls if "/api/" in u]
        self.assertTrue(api_urls)
        for url in urls:
            if url.startswith("chrome://") or url.startswith("chrome-untrusted://"):
                continue  # the browser's own pages (new-tab page at start-up)
            for secret in secrets_only:
                self.assertNotIn(secret, url)
            self.assertNotRegex(url, r"scepra_[0-9a-f]{8}_")
            self.assertTrue(url.startswith(self.base) or url.startswith("data:")
                            or url.startswith("blob:" + self.base) or url == "about:blank",
                            "a request left the RA's origin: " + url)
        # The browser history, once Chromium has written it out.
        self.quit_driver()
        history = os.path.join(self.profile, "Default", "History")
        self.assertTrue(os.path.exists(history), "no History database in the profile")
        conn = sqlite3.connect("file:%s?mode=ro" % history, uri=True)
        try:
            visited = [r[0] for r in conn.execute("SELECT url FROM urls")]
        finally:
            conn.close()
        self.assertTrue(any(u.startswith(self.base) for u in visited), visited)
        for url in visited:
            for secret in secrets_only:
                self.assertNotIn(secret, url)
        # Whatever else the profile wrote (caches, session files) holds no token either.
        for root, _, files in os.walk(self.profile):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                for secret in secrets_only:
                    self.assertNotIn(secret.encode(), data, "token secret in " + path)


if __name__ == "__main__":
    sys.exit(h.main("admin-browser", sys.modules[__name__], REQUIREMENTS, doc=__doc__.splitlines()[0]))
