#!/usr/bin/python3
"""Writes the fuzzers' seed corpora from the project's own fixtures, so no
binary corpus is committed. Usage:
    fuzz/make_seeds.py --probe BUILD/tests/tools/scep_probe OUTDIR

OUTDIR/<target>/ receives a few inputs per target:
  pki_message        real pkiMessages from scep_probe (MIC, challenge, renewal,
                     CertPoll, GetCert, GetCRL, unknown type; several digests
                     and ciphers), encrypted to fuzz/ra-cert.pem
  scep_envelope      their pkcsPKIEnvelopes (openssl cms)
  scep_content       CSRs, IssuerAndSerialNumbers and MIC certificates, each
                     behind the target's mode byte
  pki_attributes     DER SCEP attributes of a PKCSReq, a GetCRL and others
  option43           the phone guide's 69-byte example and variants
  vendor_class       the issue's overlapping patterns and real option 60 values
  toml_config        conf/scep.toml, README's example and RA configurations
  message_parameter  base64 of the pkiMessages, as GET message= values
  http_request       raw HTTP requests of both listeners (SCEP GET and POST,
                     admin API), with the target's trailing control bytes
  admin_input        admin API queries and bodies
Needs the openssl CLI and Debian's python3-cryptography (for the test PKI)."""
import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
RA_CERT = os.path.join(HERE, "ra-cert.pem")
RA_KEY = os.path.join(HERE, "ra-key.pem")

# The phone guide's worked example (seed 001), as in tests/e2e.
GUIDE_OPTION43 = bytes.fromhex(
    "0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5"
    "925285f8f5ff5d55af0d10443233334343463942393935324131350e01010f0101")


def run(*cmd):
    # scep_probe is built with the sanitizers in the fuzzing build; it is a
    # tool here, not under test, so its exit-time leak report is off.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    result = subprocess.run(cmd, capture_output=True, env=env)
    if result.returncode != 0:
        sys.exit(f"make_seeds: {' '.join(cmd)} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


class Corpus:
    def __init__(self, root):
        self.root = root

    def add(self, target, name, data):
        directory = os.path.join(self.root, target)
        os.makedirs(directory, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def pki_messages(probe, pki, work):
    """(name, DER) of real requests, all encrypted to the fuzzing RA."""
    mic, mic_key = os.path.join(pki, "mic-cp8875.pem"), os.path.join(pki, "mic-cp8875.key")
    newkey = os.path.join(pki, "newkey-1.key")
    cn = "CP-8875-SEP001A2B3C4D5E.example.nl"
    cases = {
        "pkcsreq-mic": ["--type", "PKCSReq", "--signer-cert", mic, "--signer-key", mic_key,
                        "--csr-key", newkey, "--cn", cn, "--san", "dns:" + cn,
                        "--san", "email:CP-8875-SEP001A2B3C4D5E@example.nl"],
        "pkcsreq-challenge-sha1-des3": ["--type", "PKCSReq", "--csr-key", newkey,
                                        "--cn", "phone.example.nl", "--challenge", "D233CCF9B9952A15",
                                        "--digest", "sha1", "--cipher", "des3"],
        "renewal-sha512-aes256": ["--type", "RenewalReq", "--signer-cert", mic,
                                  "--signer-key", mic_key, "--csr-key", newkey, "--cn", cn,
                                  "--digest", "sha512", "--cipher", "aes256"],
        "certpoll": ["--type", "CertPoll", "--signer-cert", mic, "--signer-key", mic_key,
                     "--csr-key", newkey, "--cn", cn, "--transaction-id", "poll-1"],
        "getcert-sha384-aes192": ["--type", "GetCert", "--signer-cert", mic, "--signer-key", mic_key,
                                  "--issuer-serial-of", mic, "--digest", "sha384",
                                  "--cipher", "aes192"],
        "getcrl": ["--type", "GetCRL", "--signer-cert", mic, "--signer-key", mic_key,
                   "--issuer-serial-of", mic],
        "unknown-type": ["--type", "99", "--signer-cert", mic, "--signer-key", mic_key,
                         "--issuer-serial-of", mic],
        "pkcsreq-des": ["--type", "PKCSReq", "--csr-key", newkey, "--cn", "des.example.nl",
                        "--challenge", "secret-secret", "--cipher", "des"],
    }
    out = []
    for name, args in cases.items():
        path = os.path.join(work, name + ".der")
        run(probe, "build", "--ra-cert", RA_CERT, *args, "--out", path)
        with open(path, "rb") as f:
            out.append((name, f.read()))
    return out


def envelope_of(message_path, work, name):
    envelope = os.path.join(work, name + ".env")
    run("openssl", "cms", "-verify", "-noverify", "-binary", "-inform", "DER",
        "-in", message_path, "-out", envelope)
    with open(envelope, "rb") as f:
        return f.read()


def decrypted(envelope_path, work, name):
    content = os.path.join(work, name + ".content")
    run("openssl", "cms", "-decrypt", "-provider", "default", "-provider", "legacy",
        "-binary", "-inform", "DER", "-in", envelope_path,
        "-inkey", RA_KEY, "-recip", RA_CERT, "-out", content)
    with open(content, "rb") as f:
        return f.read()


def fdp_string(value):
    """FuzzedDataProvider::ConsumeRandomLengthString's encoding: a backslash
    is doubled, and a backslash followed by another byte ends the string."""
    return value.replace(b"\\", b"\\\\") + b"\\x"


def der(tag, content):
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + content


def scep_attribute(arc, tag, value):
    """A DER Attribute: SEQUENCE { 2.16.840.1.113733.1.9.<arc>, SET { value } }."""
    oid = der(0x06, bytes.fromhex("6086480186f8450109") + bytes([arc]))
    return der(0x30, oid + der(0x31, der(tag, value)))


PRINTABLE, OCTETS = 0x13, 0x04

def toml_seeds():
    with open(os.path.join(SOURCE, "conf", "scep.toml")) as f:
        yield "conf-scep.toml", f.read()
    with open(os.path.join(SOURCE, "README.md")) as f:
        readme = f.read()
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", readme, re.S)):
        yield f"readme-{i}.toml", block
    profile = ('[[profile]]\nname = "{name}"\nvendor-class = {classes}\n'
               'server = "http://10.79.57.91"\nfingerprint = "' + "AB" * 20 + '"\n')
    yield "ra-full.toml", (
        profile.format(name="cisco-9800", classes='["DP-9841", "*CP-8875"]')
        + 'challenge = "D233CCF9B9952A15"\nfips = true\ndot1x = false\n'
          'cert-select = "custom"\ndomain = "example.nl"\nconflicts = "strip"\n'
          'fingerprint-digest = "sha1"\n\n'
          '[ra]\nlisten = "[::]:8080"\nstate-dir = "state"\nmax-body = "64KiB"\n'
          'paths = ["/scep/pkiclient.exe"]\n\n'
          '[ca]\nbackend = "local"\nvalidity-days = 365\nkey = "ec:p256"\nname = "Root"\n'
          'organization = "Example"\norganizational-unit = "Phones"\ncountry = "NL"\n'
          'crl-days = 7\n\n'
          '[auth]\nmanufacturer-roots = "roots.pem"\nallow-expired-mic = true\n'
          'challenge = "challenge-1234"\napproval = "manual"\napproval-mic = "auto"\n'
          'approval-challenge = "manual"\napproval-renewal = "auto"\nallow-des = false\n\n'
          '[admin]\nlisten = "127.0.0.1:8443"\nclient-ca = "clients.pem"\n'
          'notify-url = "https://hooks.example.nl/scep"\n\n'
          '[admin.client-cert-roles]\n"alice" = "approver"\n"bob" = "viewer"\n')
    yield "ca-cert.toml", ('[[profile]]\nname = "p"\nvendor-class = ["CP-8875"]\n'
                           'server = "10.0.0.1"\nca-cert = "state/ca.pem"\n'
                           'fingerprint-digest = "sha512"\n')
    yield "overlap.toml", (profile.format(name="cp", classes='["*CP-*"]')
                           + profile.format(name="m8875", classes='["*8875*"]'))
    yield "broken.toml", profile.format(name="x y", classes="[1]") + 'fips = "yes"\n[ath]\n'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True, help="the built tests/tools/scep_probe")
    parser.add_argument("outdir")
    args = parser.parse_args()
    corpus = Corpus(args.outdir)
    work = tempfile.mkdtemp(prefix="kea-scep-seeds-")
    try:
        pki = os.path.join(work, "pki")
        run("/usr/bin/python3", os.path.join(SOURCE, "tests", "fixtures", "test_pki.py"), pki)

        pki_messages_done = pki_messages(args.probe, pki, work)
        for name, der in pki_messages_done:
            corpus.add("pki_message", name, der)
            corpus.add("message_parameter", name, base64.b64encode(der))
            corpus.add("message_parameter", name + "-urlsafe",
                       base64.urlsafe_b64encode(der).rstrip(b"="))
            message = os.path.join(work, name + ".der")
            envelope = envelope_of(message, work, name)
            corpus.add("scep_envelope", name, envelope)
            content = decrypted(os.path.join(work, name + ".env"), work, name)
            corpus.add("scep_content", name + "-raw", b"\x00" + content)
            if name.startswith(("getcert", "getcrl")):
                corpus.add("scep_content", name + "-issuer-serial", b"\x01" + content)
            elif name.startswith(("pkcsreq", "renewal")):
                corpus.add("scep_content", name + "-csr-resigned", b"\x02" + content)
        for cert in ("mic-cp8875", "mic-dp9841", "sudi-ec", "mfr-ca"):
            der = run("openssl", "x509", "-outform", "DER", "-in", os.path.join(pki, cert + ".pem"))
            corpus.add("scep_content", cert + "-cert", b"\x03" + der)

        nonce = bytes(range(16))
        tid = b"3F2504E04F8911D39A0C0305E82C3301"
        for name, message_type in (("pkcsreq", b"19"), ("getcrl", b"22"), ("unknown", b"99")):
            corpus.add("pki_attributes", name,
                       scep_attribute(2, PRINTABLE, message_type)
                       + scep_attribute(7, PRINTABLE, tid) + scep_attribute(5, OCTETS, nonce))
        corpus.add("pki_attributes", "repeated-and-wrong-types",
                   scep_attribute(2, PRINTABLE, b"19") + scep_attribute(2, PRINTABLE, b"17")
                   + scep_attribute(7, OCTETS, tid) + scep_attribute(5, PRINTABLE, nonce))

        corpus.add("option43", "guide-69-bytes", GUIDE_OPTION43)
        corpus.add("option43", "truncated", GUIDE_OPTION43[:40])
        corpus.add("option43", "server-only", b"\x0b\x0810.0.0.1\x0c\x14" + bytes(20))

        for name, (a, b, text) in {
            "issue": ("*CP-*", "*8875*", "Cisco Systems, Inc. IP Phone CP-8875"),
            "suffixes": ("*CP-8875", "*DP-9841", "Cisco Systems, Inc. IP Phone DP-9841"),
            "exact": ("CP-8875", "CP-8875", "CP-8875\0\0"),
            "prefix-suffix": ("Cisco*", "*CP-8875", "Cisco CP-8875"),
        }.items():
            corpus.add("vendor_class", name,
                       fdp_string(a.encode()) + fdp_string(b.encode()) + text.encode())

        for name, text in toml_seeds():
            corpus.add("toml_config", name, text)

        # Trailing bytes, read from the end: default limits, 64-byte pieces.
        control = b"\x3f\x00\x00"
        for name, der in pki_messages_done:
            get = ("GET /cgi-bin/pkiclient.exe?operation=PKIOperation&message="
                   + base64.urlsafe_b64encode(der).decode().rstrip("=") + " HTTP/1.0\r\n\r\n")
            corpus.add("http_request", name + "-get", get.encode() + control)
            post = (b"POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: ra\r\n"
                    b"Content-Type: application/x-pki-message\r\nContent-Length: "
                    + str(len(der)).encode() + b"\r\n\r\n" + der)
            corpus.add("http_request", name + "-post", post + control)
        for name, raw in {
            "getcacaps": b"GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
            "getcacert": b"GET /scep?operation=GetCACert&message=CA HTTP/1.1\r\n\r\n",
            "chunked": b"POST /scep?operation=PKIOperation HTTP/1.1\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "continue": b"POST /api/requests/7/reject HTTP/1.1\r\nExpect: 100-continue\r\n"
                        b"Authorization: Bearer abc\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 22\r\n\r\n{\"reason\": \"not ours\"}",
            "admin-get": b"GET /api/requests?status=pending&mac=00%3A1a%3A2b%3A3c%3A4d%3A5e&q=a+b"
                         b" HTTP/1.1\r\nAuthorization: Bearer x\r\nCookie: a=b\r\n\r\n",
        }.items():
            corpus.add("http_request", name, raw + control)

        for name, text in {
            "requests": "status=pending&model=CP-8875&mac=00-1a-2b-3c-4d-5e&q=SEP001A&since=1"
                        "&until=1800000000&limit=50&offset=0\n",
            "certificates": "q=00:1A:2B:3C:4D:5E&status=valid&expiring_within_days=30&limit=500\n"
                            '{"reason": "keyCompromise"}',
            "revoke-number": "42\n{\"reason\": 4}",
            "reject": "before=17&limit=100\n{\"reason\": \"not our phone\"}",
            "token": "status=issued\n{\"name\": \"alice\", \"role\": \"approver\"}",
            "details": "\n{\"model\": \"CP-8875\", \"mac\": \"00:1A:2B:3C:4D:5E\", "
                       "\"pid\": \"CP-8875\", \"issuer\": \"CN=Test\"}",
        }.items():
            corpus.add("admin_input", name, text)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
