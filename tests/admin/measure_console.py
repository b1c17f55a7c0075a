#!/usr/bin/python3
"""Measures the web console's page weight and the admin API's latency against
a scep-ra that serves a seeded store (a tool, not a test).

Starts `scep-ra serve` once in a temporary state dir (which creates the CA
and the database), stops it, seeds the database with tests/admin/seed_store.py
(10,000 requests by default), starts it again and measures over HTTPS on
127.0.0.1:
  - page weight: bytes of /, /assets/console.js and /assets/console.css
    (identity and, if the server compresses, gzip);
  - latency: median / p95 / max over N calls per endpoint (default 50, after 3
    warm-up calls). Each call gets a fresh TLS connection whose handshake is
    timed apart; the latency is from sending the request to the last byte of
    the answer.

    /usr/bin/python3 tests/admin/measure_console.py --scep-ra build/ra/scep-ra --source-dir . \\
        [--requests 10000] [--calls 50] [--keep]
"""

import argparse
import gzip
import http.client
import json
import math
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_harness as h  # noqa: E402
import seed_store  # noqa: E402


class Scope:
    def __init__(self):
        self.cleanups = []

    def addCleanup(self, function, *args, **kwargs):
        self.cleanups.append((function, args, kwargs))

    def close(self):
        for function, args, kwargs in reversed(self.cleanups):
            try:
                function(*args, **kwargs)
            except Exception as e:  # a stop by signal is no reason to hide the figures
                print("cleanup: %s" % str(e).splitlines()[0][:200], file=sys.stderr)


def fetch(ra, path, token=None, headers=None):
    """(status, headers, body, handshake seconds, request seconds)."""
    context = ssl.create_default_context(cafile=ra.ca_pem)
    conn = http.client.HTTPSConnection("localhost", ra.admin_port, context=context, timeout=60)
    try:
        t0 = time.perf_counter()
        conn.connect()
        t1 = time.perf_counter()
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        conn.request("GET", path, headers=hdrs)
        response = conn.getresponse()
        body = response.read()
        t2 = time.perf_counter()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, t1 - t0, t2 - t1
    finally:
        conn.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def sanity(ra, summary):
    """The API works on seeded rows: gauges agree with the seeder, a seeded
    pending request can be approved, a seeded certificate read and revoked,
    and the CRL lists it."""
    viewer = ra.create_token("sanity-viewer", "viewer")
    approver = ra.create_token("sanity-approver", "approver")
    client = ra.admin()
    metrics = h.parse_prometheus(client.get("/metrics", token=viewer).body.decode())
    checks = [
        ("pending gauge", h.metric(metrics, "scep_pending_requests"), summary["pending"]),
        ("expiring_30d gauge", h.metric(metrics, "scep_certificates_expiring_30d"),
         summary["expiring_30d"]),
        ("valid gauge", h.metric(metrics, "scep_certificates_valid"),
         summary["issued"] - summary["revoked"] - summary["expired"]),
        ("requests total", client.get("/api/requests", token=viewer).json["total"], summary["requests"]),
    ]
    serial = summary["sample"]["serial"]
    pem = client.get("/api/certificates/%s/pem" % serial, token=viewer)
    checks.append(("PEM download", pem.status, 200))
    pending = [r for r in client.get("/api/requests?status=pending&limit=500", token=viewer).json["items"]
               if r["method"] == "mic"][0]
    approved = client.post("/api/requests/%d/approve" % pending["id"], token=approver)
    checks.append(("approve seeded pending", approved.status, 200))
    revoked = client.post("/api/certificates/%s/revoke" % serial, token=approver,
                          body={"reason": "keyCompromise"})
    checks.append(("revoke seeded certificate", revoked.status, 200))
    status, _, crl = ra.scep_get("/crl")
    path = os.path.join(ra.dir, "crl.der")
    with open(path, "wb") as f:
        f.write(crl)
    text = h.openssl("crl", "-inform", "DER", "-in", path, "-noout", "-text")
    checks.append(("CRL lists it", h.norm_serial(serial) in text.replace(" ", ""), True))
    checks.append(("CRL entries", text.count("Serial Number:"), summary["revoked"] + 1))
    print("\nSanity of the seeded store through the API")
    failed = False
    for what, got, expected in checks:
        ok = got == expected
        failed |= not ok
        print("  %-28s %-8s got %s, expected %s" % (what, "ok" if ok else "MISMATCH", got, expected))
    if failed:
        raise SystemExit("the API disagrees with the seeded store")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scep-ra", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the state dir")
    args = parser.parse_args()

    integ = h.integ
    integ.SCEP_RA = os.path.abspath(args.scep_ra)
    integ.SOURCE_DIR = os.path.abspath(args.source_dir)
    integ.SESSION_DIR = tempfile.mkdtemp(prefix="scep-ra-measure-")
    if args.keep:
        os.environ["KEEP_TMP"] = "1"
    scope = Scope()
    try:
        roots = os.path.join(integ.SOURCE_DIR, "conf", "manufacturer-roots.pem")
        ra = h.AdminRa(scope, name="measure", roots=roots, ca={"validity-days": 365})
        ra.stop()
        started = time.monotonic()
        summary = seed_store.seed(ra.state, args.requests, args.seed)
        seeded_in = time.monotonic() - started
        ra.start()
        token = ra.create_token("measure", "viewer")
        db_bytes = sum(os.path.getsize(ra.db_path + s) for s in ("", "-wal")
                       if os.path.exists(ra.db_path + s))
        sample = summary["sample"]
        print("seeded %d requests (%d pending, %d issued, %d rejected), %d certificates "
              "(%d revoked, %d expired, %d expiring within 30 days), %d audit events in %.1f s; "
              "database %.1f MB" % (
                  summary["requests"], summary["pending"], summary["issued"], summary["rejected"],
                  summary["certificates"], summary["revoked"], summary["expired"],
                  summary["expiring_30d"], summary["audit"], seeded_in, db_bytes / 1e6))

        print("\nConsole page weight (GET over HTTPS, body bytes)")
        print("%-22s %10s %12s %s" % ("path", "identity", "gzip", "content-type"))
        total = total_gz = 0
        for path in ("/", "/assets/console.js", "/assets/console.css"):
            status, headers, body, _, _ = fetch(ra, path)
            assert status == 200, (path, status)
            _, gz_headers, gz_body, _, _ = fetch(ra, path, headers={"Accept-Encoding": "gzip"})
            served_gzip = gz_headers.get("content-encoding") == "gzip"
            gz_size = len(gz_body) if served_gzip else len(gzip.compress(body, 9))
            total += len(body)
            total_gz += gz_size
            print("%-22s %10d %12s %s" % (path, len(body), "%d%s" % (gz_size, "" if served_gzip
                                                                      else " (not served)"),
                                          headers.get("content-type")))
        print("%-22s %10d %12d" % ("total", total, total_gz))

        mac = sample["mac"]
        endpoints = [
            ("/api/requests?status=pending", None),
            ("/api/requests?" + urllib.parse.urlencode({"mac": mac}), None),
            ("/api/requests?" + urllib.parse.urlencode({"mac": mac.replace(":", "")}), None),
            ("/api/requests?q=SEP" + mac.replace(":", "")[:6], None),
            ("/api/requests?limit=500", None),
            ("/api/certificates?" + urllib.parse.urlencode({"q": sample["cn"].split(".")[0]}), None),
            ("/api/certificates?q=CP-88", None),
            ("/api/certificates?" + urllib.parse.urlencode({"q": mac}), None),
            ("/api/certificates?q=" + sample["serial"][:8], None),
            ("/api/certificates?expiring_within_days=30", None),
            ("/api/audit", None),
            ("/api/ca", None),
            ("/metrics", None),
        ]
        print("\nAPI latency over %d calls each (ms; TLS handshake excluded), %d requests in the store"
              % (args.calls, summary["requests"]))
        print("%-52s %6s %7s %8s %8s %8s %8s" % ("GET", "status", "total", "bytes", "median",
                                                  "p95", "max"))
        handshakes = []
        for path, _ in endpoints:
            for _ in range(3):
                fetch(ra, path, token)
            times = []
            for _ in range(args.calls):
                status, headers, body, handshake, took = fetch(ra, path, token)
                if status != 200:
                    raise SystemExit("%s answered %d: %r" % (path, status, body[:200]))
                times.append(took * 1000)
                handshakes.append(handshake * 1000)
            total_items = ""
            if headers.get("content-type", "").startswith("application/json"):
                parsed = json.loads(body)
                total_items = parsed.get("total", len(parsed.get("items", [])) if "items" in parsed else "")
            print("%-52s %6d %7s %8d %8.1f %8.1f %8.1f" % (
                path[:52], status, total_items, len(body), statistics.median(times),
                percentile(times, 95), max(times)))
        print("%-52s %6s %7s %8s %8.1f %8.1f %8.1f" % ("(TLS handshake, all calls)", "", "", "",
                                                       statistics.median(handshakes),
                                                       percentile(handshakes, 95), max(handshakes)))
        sanity(ra, summary)
        if args.keep:
            print("\nkept " + integ.SESSION_DIR)
        return 0
    finally:
        scope.close()
        integ._kill_all_children()
        if not args.keep:
            shutil.rmtree(integ.SESSION_DIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
