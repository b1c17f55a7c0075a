#!/usr/bin/python3
"""Seeds a scep-ra state directory's database with realistic volume (a tool,
not a test): N requests (default 10,000) from Cisco-phone-like devices,
mixed statuses and methods, MIC details (model, MAC, PID, SN, manufacturer
issuer), certificates for the issued ones (some expired, some expiring
within 30 days, some revoked) and the audit events the RA would have
written. Rows go straight into SQLite in the schema ra/store/sqlite/schema.cc
creates (v2), with foreign keys on, in one transaction.

Certificates are cheap: one real certificate (signed by the state dir's CA
with the openssl CLI) is stored as the DER of every certificate row, each row
with its own unique serial, subject and dates; one real CSR is every
request's CSR, so approving a seeded pending request works.

The state dir must have been initialised by `scep-ra serve` once (ca.pem,
ca.key, scep-ra.db), and the RA should not be running while seeding.

    /usr/bin/python3 tests/admin/seed_store.py STATE_DIR [--requests 10000] [--seed 1]
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

DAY = 86400
MODELS = [  # (model in the CN, PID) -- the DP-9841 writes "CP-9841" in its CN
    ("CP-8811", "CP-8811"), ("CP-8841", "CP-8841"), ("CP-8845", "CP-8845"), ("CP-8851", "CP-8851"),
    ("CP-8861", "CP-8861"), ("CP-8865", "CP-8865"), ("CP-8875", "CP-8875"), ("CP-7821", "CP-7821"),
    ("CP-7841", "CP-7841"), ("CP-7861", "CP-7861"), ("CP-8832", "CP-8832"), ("CP-9841", "DP-9841"),
]
OUIS = ["001A2B", "00EBD5", "0C1167", "2C3124", "5006AB", "6C710D", "A4B239", "F87B20"]
MANUFACTURER_ISSUER = "CN=Cisco Manufacturing CA SHA2,O=Cisco"
DOMAINS = ["", "", ".voice.example.nl", ".dp.example.org"]
REJECT_REASONS = ["not one of ours", "unknown device in the lobby", "duplicate of an RMA'd phone",
                  "wrong site", "decommissioned"]


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def material(state_dir, work):
    """(CSR DER, certificate DER, certificate subject, issuer) made with the CA."""
    key = os.path.join(work, "seed.key")
    csr = os.path.join(work, "seed.csr")
    cert = os.path.join(work, "seed.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=CP-8875-SEP001A2B3C4D5E", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(state_dir, "ca.pem"), "-CAkey",
            os.path.join(state_dir, "ca.key"), "-days", "365", "-set_serial", "0x" + "5EED" * 4,
            "-out", cert)
    csr_der = subprocess.run(["openssl", "req", "-in", csr, "-outform", "DER"], check=True,
                             capture_output=True).stdout
    cert_der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                              capture_output=True).stdout
    issuer = subprocess.run(["openssl", "x509", "-in", os.path.join(state_dir, "ca.pem"), "-noout",
                             "-subject", "-nameopt", "RFC2253"], check=True,
                            capture_output=True).stdout.decode().strip().split("=", 1)[1]
    return csr_der, cert_der, issuer


def seed(state_dir, requests=10000, rng_seed=1, now=None, validity_days=365):
    """Inserts the rows; returns a summary dict (counts and sample values)."""
    rng = random.Random(rng_seed)
    now = int(now or time.time())
    db_path = os.path.join(state_dir, "scep-ra.db")
    if not os.path.exists(db_path):
        raise SystemExit("no %s: start `scep-ra serve` once with this state dir first" % db_path)
    with tempfile.TemporaryDirectory() as work:
        csr_der, cert_der, issuer = material(state_dir, work)
    public_key_id = hashlib.sha256(csr_der).digest()

    # Devices: mostly one request each, some with renewals and retries.
    devices = []
    used_macs = set()
    for i in range(int(requests * 0.75)):
        while True:
            mac = rng.choice(OUIS) + "%06X" % rng.randrange(1 << 24)
            if mac not in used_macs:
                used_macs.add(mac)
                break
        model, pid = rng.choice(MODELS)
        devices.append({"mac": mac, "model": model, "pid": pid,
                        "sn": "FCH%04d%s%s" % (rng.randrange(10000), rng.choice("ABCDEFGHJK"),
                                               "%02d" % rng.randrange(100)),
                        "cn": "%s-SEP%s%s" % (model, mac, rng.choice(DOMAINS))})

    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != 2:
        raise SystemExit("%s has schema version %d; this seeder writes version 2" % (db_path, version))
    start_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0]
    times = sorted(now - rng.randrange(400 * DAY) for _ in range(requests))
    request_rows, cert_rows, audit_rows = [], [], []
    serials = set()
    counts = {"pending": 0, "issued": 0, "rejected": 0, "revoked": 0, "expired": 0,
              "expiring_30d": 0, "mic": 0, "challenge": 0, "renewal": 0}
    sample = {}
    issued_by_cn = {}

    def new_serial():
        while True:
            serial = "%02X" % rng.randrange(1, 128) + "%030X" % rng.getrandbits(120)
            if serial not in serials:
                serials.add(serial)
                return serial

    for n, created in enumerate(times):
        request_id = start_id + n + 1
        age = now - created
        roll = rng.random()
        method = "mic" if roll < 0.80 else "challenge" if roll < 0.92 else "renewal"
        peer = "10.%d.%d.%d" % (rng.randrange(1, 40), rng.randrange(256), rng.randrange(1, 255))
        if method == "challenge":
            cn = "mm-phone-%05d" % rng.randrange(100000)
            identity = "challenge for CN " + cn
            details = {"sans": []}
            message_type = "PKCSReq"
            device = None
        else:
            device = rng.choice(devices)
            cn = device["cn"]
            if method == "renewal" and cn in issued_by_cn:
                identity = "CN=" + cn
                details = {"sans": [], "renews": issued_by_cn[cn]}
            else:
                method = "mic"
                identity = "CN=%s-SEP%s,OU=CTG,O=Cisco Systems Inc.,serialNumber=PID:%s SN:%s" % (
                    device["model"], device["mac"], device["pid"], device["sn"])
                details = {"model": device["model"],
                           "mac": ":".join(device["mac"][i:i + 2] for i in range(0, 12, 2)),
                           "pid": device["pid"], "sn": device["sn"],
                           "manufacturer_issuer": MANUFACTURER_ISSUER, "sans": []}
                if cn.endswith(".voice.example.nl") and rng.random() < 0.3:
                    short = cn.split(".", 1)[0]
                    details["sans"] = [{"type": "email", "value": short + "@voice.example.nl"}]
            message_type = "RenewalReq"
        counts[method] += 1
        # Recent requests are more often still pending.
        pending_p = 0.5 if age < 2 * DAY else 0.15 if age < 14 * DAY else 0.02
        roll = rng.random()
        status = "pending" if roll < pending_p else "rejected" if roll < pending_p + 0.06 else "issued"
        manual = status != "issued" or rng.random() < 0.3
        reason = ("approval-%s is manual" % method) if manual else ("approval-%s is auto" % method)
        updated = created if status == "pending" else min(now, created + (rng.randrange(60, 3 * DAY)
                                                                          if manual else 0))
        serial = None
        transaction_id = "%040X" % rng.getrandbits(160)
        audit_rows.append((created, "scep", "enroll", "pending" if manual else "success", method,
                           identity, reason, request_id, "" if manual else None, peer,
                           transaction_id))
        if status == "rejected":
            reason = rng.choice(REJECT_REASONS)
            audit_rows.append((updated, "alice", "reject", "success", method, identity, reason,
                               request_id, "", peer, transaction_id))
        if status == "issued":
            serial = new_serial()
            not_before = updated - 300
            not_after = not_before + validity_days * DAY
            revoked = 1 if rng.random() < 0.04 else 0
            revoked_at = min(now, not_before + rng.randrange(DAY, 200 * DAY)) if revoked else 0
            revocation_reason = rng.choice([0, 1, 1, 3, 4, 4, 5]) if revoked else 0
            cert_rows.append((serial, "CN=" + cn, issuer, cn, not_before, not_after, cert_der,
                              request_id, revoked, revocation_reason, revoked_at))
            issued_by_cn[cn] = serial
            if manual:
                audit_rows.append((updated, "alice", "approve", "success", method, identity, "",
                                   request_id, serial, peer, transaction_id))
            else:
                audit_rows[-1] = audit_rows[-1][:8] + (serial,) + audit_rows[-1][9:]
            if revoked:
                counts["revoked"] += 1
                audit_rows.append((revoked_at, "bob", "revoke", "success", "", "CN=" + cn,
                                   "CRLReason %d" % revocation_reason, request_id, serial, "", ""))
            elif not_after < now:
                counts["expired"] += 1
            elif not_after < now + 30 * DAY:
                counts["expiring_30d"] += 1
        counts[status] += 1
        request_rows.append((request_id, transaction_id, message_type, method, identity, cn, csr_der,
                             public_key_id, cert_der, status, reason, peer, serial,
                             json.dumps(details), created, updated))
        if device and "mac" not in sample and status == "issued" and method == "mic":
            sample.update(mac=details["mac"], cn=cn, serial=serial, model=device["model"])

    audit_rows = [tuple("" if v is None else v for v in row) for row in audit_rows]
    audit_rows.sort(key=lambda r: r[0])
    with conn:
        conn.executemany("INSERT INTO requests (id, transaction_id, message_type, method, identity, "
                         "common_name, csr, public_key_id, signer, status, reason, peer, cert_serial, "
                         "details, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         request_rows)
        conn.executemany("INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                         "not_after, der, request_id, revoked, revocation_reason, revoked_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?)", cert_rows)
        conn.executemany("INSERT INTO audit (at, actor, action, outcome, method, identity, reason, "
                         "request_id, serial, peer, transaction_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         audit_rows)
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    conn.close()
    if problems:
        raise SystemExit("foreign key problems after seeding: %r" % problems[:5])
    counts.update(requests=len(request_rows), certificates=len(cert_rows), audit=len(audit_rows))
    counts["sample"] = sample
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dir")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validity-days", type=int, default=365)
    args = parser.parse_args()
    started = time.monotonic()
    summary = seed(args.state_dir, args.requests, args.seed, validity_days=args.validity_days)
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
