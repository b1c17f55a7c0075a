#!/usr/bin/python3
"""A factory-reset Cisco phone's whole journey to its custom certificate:

1. DHCP with its model in option 60; take option 43 (SCEP server, root CA
   fingerprint, challenge) and option 15 (domain) from the ACK.
2. Bring up the leased address.
3. GetCACert from the SCEP server and check the CA against the fingerprint
   from option 43, as the phone does; refuse to go on if it differs.
4. Enroll with a new key, signing with its MIC, with the Common Name built by
   the option-15 rule (<MIC CN>.<domain>), polling while PENDING.
5. Show the certificate it got.

SCEP is spoken by strongSwan's `pki` (a real third-party client); DHCP by
dhcp_phone.py. Needs root, Debian's python3-scapy and python3-cryptography,
strongswan-pki and libstrongswan-extra-plugins. Run with /usr/bin/python3.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dhcp_phone  # noqa: E402

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
except ImportError:
    sys.exit("scep_phone: install python3-cryptography and run with /usr/bin/python3")

DIGESTS = {20: hashlib.sha1, 32: hashlib.sha256, 48: hashlib.sha384, 64: hashlib.sha512}


class JourneyError(Exception):
    pass


def say(args, text):
    if not args.json:
        print(text, flush=True)


def run(cmd, what):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "tpm" not in line.lower()]
        raise JourneyError(f"{what} failed ({result.returncode}):\n  " + "\n  ".join(lines[-8:]))
    return result.stdout


def dhcp(args):
    phone_args = SimpleNamespace(iface=args.iface, mac=args.mac, vendor_class=args.vendor_class,
                                 inform=False, ciaddr=None, prl=dhcp_phone.DEFAULT_PRL,
                                 timeout=args.timeout, retries=3)
    offer, ack = dhcp_phone.Phone(phone_args).run()
    if not ack["option-43"]:
        raise JourneyError("the DHCPACK carries no option 43: nothing to enroll with")
    subs = {sub["code"]: sub for sub in ack["option-43"]["sub-options"]}
    if 11 not in subs or 12 not in subs:
        raise JourneyError("option 43 lacks the server (11) or the fingerprint (12)")
    return ack, subs


def scep_url(server):
    url = server if "://" in server else f"http://{server}"
    # Cisco devices use the pkiclient.exe path when the URL names none.
    return url if url.split("://", 1)[1].count("/") else url.rstrip("/") + "/cgi-bin/pkiclient.exe"


def mic_common_name(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def utc_time(cert, name):
    """cert.<name> as ISO 8601 UTC. python3-cryptography 42+ (Debian 13)
    deprecates the naive properties for <name>_utc, which 38 (Debian 12)
    does not have yet."""
    value = getattr(cert, name + "_utc", None) or getattr(cert, name)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def journey(args):
    os.makedirs(args.workdir, exist_ok=True)
    say(args, f"== DHCP: {args.vendor_class} ({args.mac}) on {args.iface}")
    ack, subs = dhcp(args)
    server, fingerprint = subs[11]["value"], subs[12]["value"]
    challenge = subs.get(13, {}).get("value")
    domain = ack["option-15"]
    say(args, f"   address {ack['yiaddr']}, option 43 ({ack['option-43']['length']} bytes): "
              f"server {server}, CA fingerprint {fingerprint} ({subs[12]['digest']}), "
              f"challenge {'set' if challenge else 'none (MIC/SUDI)'}; option 15 {domain or 'none'}")
    run(["ip", "addr", "replace", f"{ack['yiaddr']}/24", "dev", args.iface], "ip addr")

    url = scep_url(server)
    say(args, f"== GetCACert from {url}")
    ca, ra = os.path.join(args.workdir, "ca.der"), os.path.join(args.workdir, "ra.der")
    run(["pki", "--scepca", "--url", url, "--caout", ca, "--raout", ra], "pki --scepca")
    with open(ca, "rb") as f:
        ca_der = f.read()
    digest = DIGESTS.get(len(bytes.fromhex(fingerprint)))
    actual = digest(ca_der).hexdigest().upper() if digest else ""
    if actual != fingerprint.upper():
        raise JourneyError(f"CA fingerprint {actual} does not match option 43's {fingerprint}: "
                           "the phone refuses this CA")
    say(args, f"   CA matches the option-43 fingerprint ({subs[12]['digest']})")

    mic_cn = mic_common_name(args.mic)
    common_name = f"{mic_cn}.{domain}" if domain else mic_cn
    out = os.path.join(args.workdir, "cdc.pem")
    say(args, f"== Enrollment signed with the MIC {mic_cn}, CSR CN {common_name}")
    cmd = ["pki", "--scep", "--url", url, "--in", args.new_key, "--dn", f"CN={common_name}",
           "--cacert-enc", ra, "--cacert-sig", ra, "--cacert", ca,
           "--cert", args.mic, "--key", args.mic_key,
           "--interval", str(args.poll_interval), "--maxpolltime", str(args.max_poll),
           "--outform", "pem"]
    if challenge:
        cmd += ["--password", challenge]
    with open(out, "w") as f:
        f.write(run(cmd, "pki --scep"))
    with open(out, "rb") as f:
        cdc = x509.load_pem_x509_certificate(f.read())
    result = {
        "address": ack["yiaddr"], "server": server, "fingerprint": fingerprint, "domain": domain,
        "common_name": common_name, "subject": cdc.subject.rfc4514_string(),
        "issuer": cdc.issuer.rfc4514_string(), "serial": format(cdc.serial_number, "X").zfill(32),
        "not_before": utc_time(cdc, "not_valid_before"),
        "not_after": utc_time(cdc, "not_valid_after"), "certificate": out,
    }
    say(args, "== Custom device certificate installed")
    for key in ("subject", "issuer", "serial", "not_before", "not_after"):
        say(args, f"   {key.replace('_', ' '):<11} {result[key]}")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iface", required=True)
    p.add_argument("--mac", default="00:1a:2b:3c:4d:5e")
    p.add_argument("--vendor-class", default="CP-8875")
    p.add_argument("--mic", required=True, help="the phone's MIC (PEM)")
    p.add_argument("--mic-key", required=True)
    p.add_argument("--new-key", required=True, help="key for the custom certificate (PEM)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--timeout", type=float, default=10.0, help="DHCP seconds per exchange")
    p.add_argument("--poll-interval", type=int, default=2)
    p.add_argument("--max-poll", type=int, default=120)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    try:
        result = journey(args)
    except (JourneyError, dhcp_phone.PhoneError) as e:
        print(f"scep_phone: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
