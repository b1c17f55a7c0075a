#!/usr/bin/python3
"""HTTP hardening of both listeners (issue 7 items 1, 2, 5 and 6).

Hostile clients against a real `scep-ra serve`, SCEP listener (plain HTTP)
and admin listener (HTTPS) both on free ports:

* header floods: endless header lines on several connections (SCEP and admin,
  no token) are answered 431 and closed, and the RA's peak memory (VmHWM from
  /proc) stays bounded; too many header lines get 431;
* slowloris: 500 idle or trickling connections, from one source address or
  spread over many (all of 127/8 is loopback), do not delay a GetCACaps or an
  admin /healthz from another address; the per-address cap refuses the excess;
  the oldest waiting connection is evicted at the total cap; trickled headers
  are cut off at the header deadline;
* error bodies: malformed PKIOperation messages get a short reason, never
  OpenSSL's internals, while the audit trail and the log keep the detail;
* admin TLS: TLS 1.2 offers only AEAD suites with forward secrecy.

Figures the issue asks for (peak memory, latencies, refusals) are printed as
`FIGURE name: value` lines on stderr.

    /usr/bin/python3 tests/integration/test_http_hardening.py \\
        --scep-ra build/ra/scep-ra --probe build/tests/tools/scep_probe --source-dir . [-k Slow]
"""

import base64
import http.client
import os
import resource
import select
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ra_integration as base  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
import admin_harness  # noqa: E402  (AdminRa: base.Ra plus the [admin] listener)

MIB = 1024 * 1024
# Long deadlines for the slowloris tests: what keeps the RA answering must be
# its worker model and its caps, not idle connections being cut early.
PATIENT = {"header-timeout": "10m", "idle-timeout": "10m", "body-timeout": "10m"}
ADMIN_PATIENT = dict(PATIENT, **{"tls-handshake-timeout": "10m"})


def figure(name, value):
    print("FIGURE %s: %s" % (name, value), file=sys.stderr, flush=True)


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def connect_from(source, port, timeout=10):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_peer(sock):
    """True when the peer has closed (EOF or reset); consumes what it sent."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        sock.setblocking(False)
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        try:
            sock.setblocking(True)
        except OSError:
            pass


def wait_closed(sock, timeout):
    """Seconds until the peer closes `sock` (None if it did not within
    `timeout`) and the bytes it sent before closing."""
    started = time.monotonic()
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < timeout:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - started, data
        if not chunk:
            return time.monotonic() - started, data
        data += chunk
    return None, data


def status_of(answer):
    """The status code of a raw HTTP answer, or None."""
    if not answer.startswith(b"HTTP/1."):
        return None
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def nonblocking_recv(sock):
    """What the peer has sent so far (b"" when nothing: a TLS socket is
    readable after TLS 1.3 session tickets), None when it closed."""
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
        return data if data else None
    except (ssl.SSLWantReadError, BlockingIOError):
        return b""
    except OSError:
        return None
    finally:
        sock.setblocking(True)


def flood_headers(sock, limit, line=b"X-H: " + b"A" * 1000 + b"\r\n"):
    """Sends a request line and then header lines until the server answers,
    closes, or `limit` bytes went out. Returns (answer, bytes sent)."""
    sent = 0
    answer = b""
    request = b"GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n"
    block = line * (64 * 1024 // len(line))
    try:
        sock.sendall(request)
        while sent < limit and not answer:
            sock.sendall(block)
            sent += len(block)
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answer = nonblocking_recv(sock)
                if answer is None:
                    break  # closed
    except OSError:
        pass  # the server stopped reading and closed: what it should do
    answer = answer or b""
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
    except OSError:
        pass
    return answer, sent


class HardenedRa(admin_harness.AdminRa):
    """AdminRa whose readiness check trusts whatever certificate the admin
    listener has (one test brings its own self-signed one)."""

    def _admin_answers(self):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.admin_port, context=context, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()


class HardeningCase(base.RaTestCase):
    def start_hardened(self, ra=None, admin=None, **kwargs):
        settings = {"max-body": "64KiB"}
        settings.update(ra or {})
        return HardenedRa(self, ra=settings, admin=admin, **kwargs)

    def tls_context(self, ra):
        return ssl.create_default_context(cafile=ra.ca_pem)

    def get_caps(self, ra, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", ra.port, timeout=timeout)
        try:
            conn.request("GET", "/scep?operation=GetCACaps")
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def healthz(self, ra, timeout=5):
        conn = http.client.HTTPSConnection("127.0.0.1", ra.admin_port,
                                           context=self.tls_context(ra), timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def latencies(self, call, rounds=15, pause=0.2):
        """Seconds each of `rounds` calls took; a call that fails or times out
        counts as infinitely slow."""
        took = []
        for _ in range(rounds):
            started = time.monotonic()
            try:
                status, _ = call()
                took.append(time.monotonic() - started if status == 200 else float("inf"))
            except (OSError, http.client.HTTPException):
                took.append(float("inf"))
            time.sleep(pause)
        return took


# ================================================================ item 1: unbounded headers

class H1HeaderFlood(HardeningCase):
    FLOOD_PER_CONNECTION = 96 * MIB
    CONNECTIONS = 3

    def flood(self, ra, connect, what):
        before = proc_status(ra.proc.pid, "VmHWM")
        results = [None] * self.CONNECTIONS

        def one(i):
            sock = connect()
            try:
                results[i] = flood_headers(sock, self.FLOOD_PER_CONNECTION)
            finally:
                sock.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(self.CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        peak = proc_status(ra.proc.pid, "VmHWM")
        figure("%s header flood: peak RSS growth" % what, "%d KiB (VmHWM %d -> %d KiB), "
               "sent %s MiB" % (peak - before, before, peak,
                                 [round(r[1] / MIB, 1) for r in results if r]))
        for answer, sent in results:
            self.assertIn(status_of(answer), (431, 400),
                          "no 431/400 after %d header bytes: %r" % (sent, answer[:200]))
        self.assertLess(peak - before, 64 * 1024,
                        "peak RSS grew by %d KiB under the header flood" % (peak - before))
        self.assertTrue(ra.alive())
        return results

    def test_scep_header_flood_is_refused_and_memory_stays_bounded(self):
        ra = self.start_hardened()
        audit = ra.max_audit_id()
        results = self.flood(ra, lambda: connect_from("127.0.0.1", ra.port, timeout=60), "SCEP")
        for answer, _ in results:
            self.assertIn(b"connection: close", answer.lower())
        # Refusals are audited, with bounded text.
        rows = [r for r in ra.audit_since(audit) if r["outcome"] == "failure"]
        self.assertTrue(any("431" in r["reason"] for r in rows), rows)
        self.assertTrue(all(len(r["reason"] or "") < 600 for r in rows), rows)
        self.assertEqual(self.healthz(ra)[0], 200)

    def test_admin_header_flood_without_token_is_refused(self):
        ra = self.start_hardened()
        context = self.tls_context(ra)

        def connect():
            raw = connect_from("127.0.0.1", ra.admin_port, timeout=60)
            return context.wrap_socket(raw, server_hostname="localhost")

        results = self.flood(ra, connect, "admin")
        for answer, _ in results:
            self.assertIn(b"application/json", answer.lower())
        self.assertEqual(self.healthz(ra)[0], 200)

    def test_too_many_header_lines_is_431(self):
        ra = self.start_hardened()
        for count, expected in ((60, 200), (150, 431), (2000, 431)):
            with self.subTest(lines=count):
                with connect_from("127.0.0.1", ra.port) as sock:
                    lines = b"".join(b"X-N-%d: 1\r\n" % i for i in range(count))
                    try:
                        sock.sendall(b"GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n" +
                                     lines + b"\r\n")
                    except OSError:
                        pass
                    if expected == 200:
                        answer = sock.recv(4096)
                    else:
                        _, answer = wait_closed(sock, 10)
                self.assertEqual(status_of(answer), expected, answer[:200])

    def test_a_get_message_as_large_as_max_body_still_fits(self):
        # Cisco IOS sends PKIOperation with GET: the header limit is sized
        # from max-body so that such a message, base64 and URL-encoded, fits.
        ra = self.start_hardened(ra={"max-body": "8KiB"})
        message, _ = self.probe_build(ra, signer=self.mic(), csr_key=self.fixture("newkey-1.key"),
                                      cn=base.MIC_CN)
        self.assertLess(len(message), 8 * 1024)
        quoted = urllib.parse.quote(base64.b64encode(message).decode(), safe="")
        status, _, body = ra.get("operation=PKIOperation&message=" + quoted)
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(self.probe_read(ra, body)["status"], base.SUCCESS)
        # Padded with junk parameters to far beyond that, it is refused.
        status, _, _ = ra.get("operation=GetCACaps&junk=" + "A" * (64 * 1024))
        self.assertEqual(status, 431)


# ================================================================ item 2: slowloris

class H2Slowloris(HardeningCase):
    def setUp(self):
        super().setUp()
        raise_fd_limit(4096)

    def open_many(self, port, sources, per_source):
        socks = []
        for source in sources:
            for _ in range(per_source):
                socks.append(connect_from(source, port))
        self.addCleanup(lambda: [s.close() for s in socks])
        return socks

    def trickle(self, socks, first, line, interval=1.0):
        """Sends `first`, then `line` every `interval` on every socket, until
        the test ends."""
        stop = threading.Event()

        def run():
            for s in socks:
                try:
                    s.sendall(first)
                except OSError:
                    pass
            while not stop.wait(interval):
                for s in socks:
                    try:
                        s.sendall(line)
                    except OSError:
                        pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        self.addCleanup(stop.set)

    def assert_answered_quickly(self, ra, what):
        for name, call in (("GetCACaps", lambda: self.get_caps(ra, timeout=3)),
                           ("/healthz", lambda: self.healthz(ra, timeout=3))):
            took = self.latencies(call)
            finite = [t for t in took if t != float("inf")]
            figure("%s: %s latency" % (what, name), "max %.3f s, median %.3f s over %d calls%s" % (
                max(took), statistics.median(took), len(took),
                "" if len(finite) == len(took) else " (%d failed)" % (len(took) - len(finite))))
            self.assertLess(max(took), 1.0, "%s with %s: %r" % (name, what, took))

    def test_500_idle_and_trickling_connections_from_many_addresses(self):
        ra = self.start_hardened(ra=PATIENT, admin=ADMIN_PATIENT)
        # 25 addresses x 20 connections on each listener: under the
        # per-address cap, so every one of them is held open.
        sources = ["127.0.0.%d" % i for i in range(10, 35)]
        rss_before = proc_status(ra.proc.pid, "VmRSS")
        scep = self.open_many(ra.port, sources, 20)
        admin = self.open_many(ra.admin_port, sources, 20)
        self.trickle(scep[::2], b"GET /scep?operation=GetCACaps HTTP/1.1\r\n", b"X-T: 1\r\n")
        self.trickle(admin[::2], b"\x16", b"\x03")  # a TLS record header, a byte at a time
        time.sleep(1.5)
        held = sum(not closed_by_peer(s) for s in scep + admin)
        figure("slowloris, many addresses: connections held open", "%d of %d" % (
            held, len(scep) + len(admin)))
        self.assertEqual(held, len(scep) + len(admin))
        # Idle and trickling connections cost a little memory each, never a thread.
        growth = proc_status(ra.proc.pid, "VmRSS") - rss_before
        threads = proc_status(ra.proc.pid, "Threads")
        figure("slowloris, many addresses: RSS growth and threads",
               "%d KiB for %d connections, %d threads" % (growth, held, threads))
        self.assertLess(growth, 64 * 1024)
        self.assertLess(threads, 32)
        self.assert_answered_quickly(ra, "500+500 idle/trickling connections from 25 addresses")

    def test_500_connections_from_one_address_hit_the_per_address_cap(self):
        ra = self.start_hardened(ra=PATIENT, admin=ADMIN_PATIENT)
        scep = self.open_many(ra.port, ["127.0.0.7"], 500)
        admin = self.open_many(ra.admin_port, ["127.0.0.7"], 500)
        self.trickle(scep[:16], b"GET /scep?operation=GetCACaps HTTP/1.1\r\n", b"X-T: 1\r\n")
        time.sleep(1.5)
        for name, socks in (("SCEP", scep), ("admin", admin)):
            refused = sum(closed_by_peer(s) for s in socks)
            figure("slowloris, one address: %s connections refused" % name,
                   "%d of %d (cap 32 per address)" % (refused, len(socks)))
            self.assertEqual(len(socks) - refused, 32, name)
        self.assert_answered_quickly(ra, "500+500 connections from one address")
        # The address itself is not banned: once its connections go, it is served.
        for s in scep + admin:
            s.close()
        base.wait_for(lambda: self.answers_from(ra, "127.0.0.7"), 10, "127.0.0.7 to be served")

    def answers_from(self, ra, source):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ra.port, timeout=2,
                                              source_address=(source, 0))
            conn.request("GET", "/scep?operation=GetCACaps")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def test_the_oldest_waiting_connection_is_evicted_at_the_total_cap(self):
        limits = dict(PATIENT, **{"max-connections": 40, "max-connections-per-address": 40})
        ra = self.start_hardened(ra=limits)
        waiting = self.open_many(ra.port, ["127.0.0.8"], 40)
        time.sleep(0.5)
        self.assertFalse(any(closed_by_peer(s) for s in waiting))
        status, _ = self.get_caps(ra)  # from 127.0.0.1: the 41st connection
        self.assertEqual(status, 200)
        time.sleep(0.5)
        closed = [i for i, s in enumerate(waiting) if closed_by_peer(s)]
        self.assertEqual(closed, [0], "not the oldest waiting connection was evicted")

    def test_trickled_headers_are_cut_off_at_the_header_deadline(self):
        ra = self.start_hardened(ra={"header-timeout": "3s", "idle-timeout": "2s"})
        trickler = connect_from("127.0.0.1", ra.port)
        silent = connect_from("127.0.0.1", ra.port)
        self.addCleanup(trickler.close)
        self.addCleanup(silent.close)
        started = time.monotonic()
        trickler.sendall(b"GET /scep?operation=GetCACaps HTTP/1.1\r\n")
        answer = b""
        closed_after = None
        while time.monotonic() - started < 15:
            try:
                trickler.sendall(b"X-T: 1\r\n")
            except OSError:
                closed_after = time.monotonic() - started
                break
            took, data = wait_closed(trickler, 0.5)
            answer += data
            if took is not None:
                closed_after = time.monotonic() - started
                break
        figure("trickled header cut off after", "%s s (header-timeout 3s)" % (
            None if closed_after is None else round(closed_after, 2)))
        self.assertIsNotNone(closed_after, "a trickling client kept its connection for 15 s")
        self.assertGreater(closed_after, 2.5)
        self.assertLess(closed_after, 8)
        self.assertIn(status_of(answer), (408, None), answer[:200])
        took, data = wait_closed(silent, 15)
        self.assertIsNotNone(took, "a silent connection was kept for 15 s")
        self.assertEqual(data, b"")
        # A kept-alive connection that goes quiet is closed after idle-timeout.
        conn = http.client.HTTPConnection("127.0.0.1", ra.port, timeout=10)
        conn.request("GET", "/scep?operation=GetCACaps")
        self.assertEqual(conn.getresponse().read().count(b"POSTPKIOperation"), 1)
        took, _ = wait_closed(conn.sock, 15)
        conn.close()
        self.assertIsNotNone(took, "an idle kept-alive connection was kept for 15 s")
        self.assertLess(took, 8)

    def test_silent_and_trickled_tls_handshakes_are_cut_off(self):
        ra = self.start_hardened(admin={"tls-handshake-timeout": "2s"})
        silent = connect_from("127.0.0.1", ra.admin_port)
        trickler = connect_from("127.0.0.1", ra.admin_port)
        self.addCleanup(silent.close)
        self.addCleanup(trickler.close)
        started = time.monotonic()
        closed_after = None
        for byte in b"\x16\x03\x01\x02\x00" + b"\x01" * 40:  # a ClientHello, slowly
            try:
                trickler.sendall(bytes([byte]))
            except OSError:
                break
            if wait_closed(trickler, 0.5)[0] is not None:
                break
        closed_after = time.monotonic() - started
        figure("trickled TLS handshake cut off after", "%.2f s (tls-handshake-timeout 2s)" %
               closed_after)
        self.assertGreater(closed_after, 1.5)
        self.assertLess(closed_after, 8)
        took, _ = wait_closed(silent, 15)
        self.assertIsNotNone(took, "a silent TLS connection was kept for 15 s")
        self.assertEqual(self.healthz(ra)[0], 200)


# ================================================================ item 5: error bodies

class H3ErrorBodies(HardeningCase):
    OPENSSL_TEXT = ("routines", "asn1", "ASN1", "error:", "OpenSSL", "CMS_", "d2i")

    def assert_short_reason(self, ra, send):
        audit = ra.max_audit_id()
        log_offset = len(ra.stderr())
        status, _, body = send()
        self.assertEqual(status, 400, body)
        self.assertLess(len(body), 120, body)
        for text in self.OPENSSL_TEXT:
            self.assertNotIn(text.encode(), body)
        detail = [r["reason"] for r in ra.audit_since(audit) if r["outcome"] == "failure"]
        self.assertTrue(detail, "nothing audited")
        self.assertTrue(any(len(r) > len(body.strip()) for r in detail), (detail, body))
        self.assertTrue(any(r in ra.stderr()[log_offset:] or
                            base.json.dumps(r)[1:-1] in ra.stderr()[log_offset:] for r in detail),
                        "the log misses the detail: %r" % detail)
        return body, detail

    def test_garbage_and_truncated_messages_get_a_short_reason(self):
        ra = self.start_hardened()
        message, _ = self.probe_build(ra, signer=self.mic(), csr_key=self.fixture("newkey-1.key"),
                                      cn=base.MIC_CN)
        cases = {
            "garbage": lambda: ra.post(b"this is not a CMS message\x00\xff" * 20),
            "truncated": lambda: ra.post(message[: len(message) // 2]),
            "too long length": lambda: ra.post(b"\x30\x84\x7f\xff\xff\xff" + message[6:]),
            "GET garbage": lambda: ra.get("operation=PKIOperation&message=" +
                                          base64.b64encode(b"\x30\x03\x02\x01").decode()),
        }
        details = []
        for name, send in cases.items():
            with self.subTest(name):
                body, detail = self.assert_short_reason(ra, send)
                details += detail
                figure("error body for %s" % name, repr(body))
        # The detail OpenSSL gave is in the audit trail (and the log).
        self.assertTrue(any("asn1" in d.lower() or "routines" in d for d in details), details)


# ================================================================ item 6: admin TLS suites

class H4AdminTlsSuites(HardeningCase):
    def s_client(self, ra, *args):
        result = subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % ra.admin_port,
             "-servername", "localhost", *args],
            input=b"", capture_output=True, timeout=30)
        return result.returncode, base._text(result.stdout) + base._text(result.stderr)

    def check_suites(self, ra, accepted, refused):
        for suite in refused:
            with self.subTest(refused=suite):
                rc, out = self.s_client(ra, "-tls1_2", "-cipher", suite)
                self.assertNotEqual(rc, 0, "TLS 1.2 with %s was accepted:\n%s" % (
                    suite, out[-800:]))
                self.assertNotIn("Cipher is " + suite, out)
        for suite in accepted:
            with self.subTest(accepted=suite):
                rc, out = self.s_client(ra, "-tls1_2", "-cipher", suite)
                self.assertEqual(rc, 0, out[-800:])
                self.assertIn("Cipher is " + suite, out)
        rc, out = self.s_client(ra, "-tls1_3")
        self.assertEqual(rc, 0, out[-800:])
        self.assertIn("TLSv1.3", out)
        rc, out = self.s_client(ra, "-tls1_1")
        self.assertNotEqual(rc, 0, "TLS 1.1 was accepted")

    def test_generated_ec_certificate(self):
        ra = self.start_hardened()
        self.check_suites(
            ra,
            accepted=["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"],
            refused=["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
                     "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"])

    def test_own_rsa_certificate(self):
        key, cert = self.path("admin-rsa.key"), self.path("admin-rsa.pem")
        base.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                  "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True)
        ra = self.start_hardened(admin={"cert": cert, "key-file": key})
        self.check_suites(
            ra,
            accepted=["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                      "ECDHE-RSA-CHACHA20-POLY1305"],
            refused=["AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
                     "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256",
                     "DES-CBC3-SHA"])


if __name__ == "__main__":
    sys.exit(base.main())
