#!/usr/bin/python3
"""End-to-end tests of libdhcp_scep.so: a real kea-dhcp4 with the built hook
answers a simulated phone (tests/phone/dhcp_phone.py) over a veth pair
between two network namespaces, and is driven over its control socket.

Run as root with Debian's python3 (it has python3-scapy):
    /usr/bin/python3 tests/e2e/test_e2e.py --hook build/hooks/libdhcp_scep.so
or through meson: meson test -C build --suite e2e
"""
import argparse
import atexit
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PHONE = os.path.join(HERE, "..", "phone", "dhcp_phone.py")
PYTHON = "/usr/bin/python3"  # Debian's, which has python3-scapy
SOURCE_DIR = os.path.normpath(os.path.join(HERE, "..", ".."))  # set by main()
HOOK = None
HOOK_LIBRARY = None
KEA_SOCKET_DIR = "/run/kea"  # what Kea's config names: the hook installed in Kea's hook directory
CHECKER = None
SCEP_RA = None
SCEP_PHONE = os.path.join(HERE, "..", "phone", "scep_phone.py")

# The worked example of Cisco's CDC guide (seed 001) and conf/scep.toml.
SEED_HEX = ("0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5"
            "925285f8f5ff5d55af0d10443233334343463942393935324131350e01010f0101")
CHALLENGE = "D233CCF9B9952A15"
SEED_PROFILE = f"""\
server = "http://10.79.57.91"
fingerprint = "12040870625C5B755D73F5925285F8F5FF5D55AF"
challenge = "{CHALLENGE}"
fips = true
dot1x = true
cert-select = "custom"
domain = "example.nl"
"""
SUBNET = "192.0.2"
# Long enough for any healthy exchange; they only guard against hangs.
HANG_GUARD = 60

PREFIX = f"scepe2e-{os.getpid()}-"
_counter = itertools.count(1)
# Everything this run created, for the last-resort cleanup.
_namespaces = []
_processes = []
_run_dir = None


def workdir():
    """A fresh directory under this run's temporary directory."""
    global _run_dir
    if _run_dir is None:
        _run_dir = tempfile.mkdtemp(prefix=PREFIX)
    return tempfile.mkdtemp(dir=_run_dir)


def profile(name, vendor_classes, body=SEED_PROFILE):
    """One [[profile]] table of the hook's TOML."""
    return (f'[[profile]]\nname = "{name}"\nvendor-class = {json.dumps(vendor_classes)}\n'
            f"{body}\n")


def tlv(code, value):
    return bytes([code, len(value)]) + value


def mac():
    """A fresh client MAC per phone, so runs never share a lease."""
    n = next(_counter)
    return f"00:1a:2b:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"


def run(*cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr}")
    return result


def missing_prerequisites():
    problems = []
    if os.geteuid() != 0:
        problems.append("the e2e tests must run as root (network namespaces, raw sockets)")
    if not shutil.which("kea-dhcp4"):
        problems.append("kea-dhcp4 not found: install the Debian package kea-dhcp4-server")
    if not shutil.which("ip"):
        problems.append("ip not found: install the Debian package iproute2")
    if not os.access(PYTHON, os.X_OK):
        problems.append(f"{PYTHON} not found: install the Debian package python3")
    elif subprocess.run([PYTHON, "-c", "import scapy.all"], capture_output=True).returncode:
        problems.append(f"{PYTHON} cannot import scapy: install the Debian package python3-scapy")
    for tool, package in (("pki", "strongswan-pki libstrongswan-extra-plugins"),):
        if not shutil.which(tool):
            problems.append(f"{tool} not found: install the Debian packages {package}")
    if subprocess.run([PYTHON, "-c", "import cryptography"], capture_output=True).returncode:
        problems.append(f"{PYTHON} cannot import cryptography: install python3-cryptography")
    for built in (HOOK, CHECKER, SCEP_RA):
        if not os.path.isfile(built):
            problems.append(f"{built} not found: build it with ninja -C build")
    return problems


def setUpModule():
    global HOOK_LIBRARY
    problems = missing_prerequisites()
    if problems:
        raise RuntimeError("cannot run the e2e tests:\n  " + "\n  ".join(problems))
    installed = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "install-hook.sh"), HOOK],
                               capture_output=True, text=True)
    if installed.returncode:
        raise RuntimeError("cannot install the hook into Kea's hook directory:\n" + installed.stderr)
    HOOK_LIBRARY = installed.stdout.strip()


def cleanup_everything():
    for proc in _processes:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for ns in _namespaces:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    _processes.clear()
    _namespaces.clear()
    if _run_dir:
        shutil.rmtree(_run_dir, ignore_errors=True)


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM; unittest would swallow a SystemExit, so
    # clean up here and leave at once.
    cleanup_everything()
    os._exit(128 + signum)


class Link:
    """Two namespaces joined by a veth pair: the server end srv0 has
    192.0.2.1/24, phones send on cli0."""

    def __init__(self):
        n = next(_counter)
        self.server_ns, self.client_ns = f"{PREFIX}{n}-s", f"{PREFIX}{n}-c"
        try:
            for ns in (self.server_ns, self.client_ns):
                run("ip", "netns", "add", ns)
                _namespaces.append(ns)
                run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", self.server_ns, "link", "add", "name", "srv0", "type", "veth",
                "peer", "name", "cli0", "netns", self.client_ns)
            run("ip", "-n", self.server_ns, "addr", "add", f"{SUBNET}.1/24", "dev", "srv0")
            run("ip", "-n", self.server_ns, "link", "set", "srv0", "up")
            run("ip", "-n", self.client_ns, "link", "set", "cli0", "up")
        except BaseException:
            self.close()
            raise

    def close(self):
        for ns in (self.server_ns, self.client_ns):
            if ns in _namespaces:
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
                _namespaces.remove(ns)

    def phone_command(self, vendor_class, *options):
        """The command line of a phone with a fresh MAC in the client namespace."""
        cmd = ["ip", "netns", "exec", self.client_ns, PYTHON, PHONE, "--iface", "cli0",
               "--mac", mac(), *options]
        return cmd + (["--vendor-class", vendor_class] if vendor_class is not None else [])

    def phone(self, vendor_class, *options, human=False):
        """Runs a phone; returns its replies (or its page when `human`)."""
        cmd = self.phone_command(vendor_class, *options, *([] if human else ["--json"]))
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD)
        if result.returncode != 0:
            raise AssertionError(f"phone failed ({result.returncode}): {result.stderr}")
        return result.stdout if human else json.loads(result.stdout)["replies"]


class Kea:
    """kea-dhcp4 with the hook in the server namespace of `link`; its files
    (config, TOML, log, pid and lock files) live in `workdir`, its control
    socket in /run/kea, the only place Kea 2.6 accepts one."""

    def __init__(self, link, workdir, toml, **dhcp4):
        self.link, self.workdir = link, workdir
        self.toml_path = os.path.join(workdir, "scep.toml")
        # Kea 2.6 refuses the directory unless its mode is exactly 0750.
        os.makedirs(KEA_SOCKET_DIR, exist_ok=True)
        os.chmod(KEA_SOCKET_DIR, 0o750)
        self.socket_path = os.path.join(KEA_SOCKET_DIR,
                                        "scepe2e-%s.sock" % os.path.basename(workdir))
        self.log_path = os.path.join(workdir, "kea.log")
        self.output_path = os.path.join(workdir, "kea.out")
        self.config_path = os.path.join(workdir, "kea-dhcp4.json")
        self.proc = None
        self.write_toml(toml)
        config = {
            "interfaces-config": {"interfaces": ["srv0"], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": False},
            "control-socket": {"socket-type": "unix", "socket-name": self.socket_path},
            "valid-lifetime": 600,
            "subnet4": [{
                "id": 1, "subnet": f"{SUBNET}.0/24",
                "pools": [{"pool": f"{SUBNET}.100 - {SUBNET}.250"}],
                # Sent to everybody, so a reply without 43/15 is still
                # recognisably a real reply.
                "option-data": [{"name": "routers", "data": f"{SUBNET}.1",
                                 "always-send": True}],
            }],
            "hooks-libraries": [{"library": HOOK_LIBRARY,
                                 "parameters": {"config": self.toml_path}}],
            "loggers": [{
                "name": "kea-dhcp4", "severity": "DEBUG",
                # 55 enables the hook's per-packet SCEP_DECORATED line.
                "debuglevel": 55,
                "output_options": [{"output": self.log_path}],
            }],
        }
        config.update(dhcp4)
        with open(self.config_path, "w") as f:
            json.dump({"Dhcp4": config}, f, indent=2)

    def write_toml(self, text):
        with open(self.toml_path, "w") as f:
            f.write(text)

    def _command_line(self, flag):
        # Kea 2.6 writes logs only under KEA_LOG_FILE_DIR (default /var/log/kea).
        env = dict(os.environ, KEA_PIDFILE_DIR=self.workdir, KEA_LOCKFILE_DIR=self.workdir,
                   KEA_LOG_FILE_DIR=self.workdir)
        return ["ip", "netns", "exec", self.link.server_ns, "kea-dhcp4", flag,
                self.config_path], env

    def check(self):
        """kea-dhcp4 -t: (exit code, everything it printed)."""
        cmd, env = self._command_line("-t")
        result = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                timeout=HANG_GUARD)
        return result.returncode, result.stdout + result.stderr

    def spawn(self):
        cmd, env = self._command_line("-c")
        with open(self.output_path, "w") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _processes.append(self.proc)

    def start(self):
        """Starts Kea; returns once it serves, or raises with its output."""
        self.spawn()
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kea-dhcp4 exited with {self.proc.returncode}:\n"
                                   + self.output())
            # DHCP4_STARTED comes after the sockets are open.
            if "DHCP4_STARTED" in self.log() and os.path.exists(self.socket_path):
                return self
            time.sleep(0.1)
        raise RuntimeError("kea-dhcp4 did not start:\n" + self.output())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for leftover in (self.socket_path, self.socket_path + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)

    def command(self, name, arguments=None):
        """A control-socket command; returns (parsed answer, raw text)."""
        request = {"command": name}
        if arguments is not None:
            request["arguments"] = arguments
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(HANG_GUARD)
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(request).encode())
            data = b""
            while True:  # Kea closes the connection after its answer
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.decode()
        return json.loads(text), text

    def stat(self, name):
        answer, _ = self.command("statistic-get", {"name": name})
        samples = answer.get("arguments", {}).get(name)
        if answer["result"] != 0 or not samples:
            raise AssertionError(f"statistic {name} missing: {answer}")
        return samples[0][0]

    def stats(self, profile):
        return {counter: self.stat(f"scep.{profile}.{counter}")
                for counter in ("replies-decorated", "conflicts", "replies-skipped")}

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def output(self):
        with open(self.output_path, errors="replace") as f:
            return f.read()[-4000:] + "\n" + self.log()[-4000:]


class KeaTestCase(unittest.TestCase):
    """One link and one Kea per class: starting Kea is the slow part."""
    TOML = SEED_PROFILE
    DHCP4 = {}

    @classmethod
    def setUpClass(cls):
        cls.workdir = workdir()
        cls.link = None
        cls.kea = None
        try:
            cls.link = Link()
            cls.kea = Kea(cls.link, cls.workdir, cls.TOML, **cls.DHCP4)
            cls.kea.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.kea:
            cls.kea.stop()
        if cls.link:
            cls.link.close()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def assertSeed(self, reply):
        self.assertIn(3, reply["option-codes"], "not a reply from our Kea (no routers)")
        self.assertIsNotNone(reply["option-43"], f"{reply['message-type']} lacks option 43")
        self.assertEqual(reply["option-43"]["hex"], SEED_HEX)
        self.assertEqual(reply["option-43"]["instances"], 1)
        self.assertEqual(reply["option-15"], "example.nl")

    def assertUndecorated(self, reply):
        self.assertIn(3, reply["option-codes"], "not a reply from our Kea (no routers)")
        self.assertIsNone(reply["option-43"])
        self.assertIsNone(reply["option-15"])

    def assertLogClean(self):
        """The hook logs as kea-dhcp4.scep and never shows the challenge."""
        log = self.kea.log()
        self.assertIn("[kea-dhcp4.scep/", log)
        self.assertNotIn(CHALLENGE, log)
        challenge_hex = CHALLENGE.encode().hex()
        for line in log.splitlines():
            if "[kea-dhcp4.scep/" in line:
                self.assertNotIn(challenge_hex, line.lower().replace(":", ""))


class DecorationTest(KeaTestCase):
    """Four profiles (exact, wildcard, with and without challenge and domain),
    a Kea class adding its own options 43 and 15, no conflicting options."""
    DP9841_SERVER = "http://192.0.2.80:8080/scep"
    DP9841_FP = bytes(range(32))  # a SHA-256 fingerprint
    WILD_FP = bytes(range(100, 120))
    TOML = (profile("cisco-9800", ["CP-8875", "DP-9851", "DP-9861", "DP-9871"])
            + profile("dp-9841", ["DP-9841"],
                      f'server = "{DP9841_SERVER}"\nfingerprint = "{DP9841_FP.hex()}"\n'
                      'fips = false\ncert-select = "manufacturing"\n')
            + profile("cp-7821", ["*CP-7821"],
                      f'server = "10.1.2.3"\nfingerprint = "{WILD_FP.hex().upper()}"\n'
                      'domain = "phones.example.com"\n')
            # Per-model suffix patterns: no string matches both.
            + profile("ata-191", ["*ATA-191"],
                      f'server = "10.1.2.4"\nfingerprint = "{WILD_FP.hex()}"\n'))
    DHCP4 = {"client-classes": [{
        # Kea's own options 43 and 15 for every DP-984x: the hook must replace
        # the 43 and keep the 15 of a profile without a domain.
        "name": "legacy",
        "test": "substring(option[60].text, 0, 6) == 'DP-984'",
        "option-data": [{"name": "vendor-encapsulated-options", "csv-format": False,
                         "data": "0102AABB", "always-send": True},
                        {"name": "domain-name", "data": "legacy.example",
                         "always-send": True}],
    }]}

    def test_seed_bytes_in_offer_and_ack(self):
        before = self.kea.stats("cisco-9800")
        offer, ack = self.link.phone("CP-8875")
        self.assertEqual((offer["message-type"], ack["message-type"]), ("DHCPOFFER", "DHCPACK"))
        self.assertSeed(offer)
        self.assertSeed(ack)
        self.assertEqual(ack["provisioning-options"], {})
        after = self.kea.stats("cisco-9800")
        self.assertEqual(after["replies-decorated"], before["replies-decorated"] + 2)
        self.assertEqual(after["conflicts"], before["conflicts"])
        self.assertEqual(after["replies-skipped"], before["replies-skipped"])

    def test_seed_bytes_when_prl_lacks_43_and_15(self):
        for replies in (self.link.phone("CP-8875", "--prl", "1,3,6"),
                        self.link.phone("CP-8875", "--no-prl")):
            for reply in replies:
                self.assertSeed(reply)

    def test_seed_bytes_in_ack_to_inform(self):
        for options in ([], ["--no-prl"]):
            (ack,) = self.link.phone("CP-8875", "--inform", "--ciaddr", f"{SUBNET}.50",
                                     *options)
            self.assertEqual(ack["message-type"], "DHCPACK")
            self.assertSeed(ack)

    def test_second_profile_replaces_keas_own_option_43(self):
        expected = (tlv(10, b"\x00") + tlv(11, self.DP9841_SERVER.encode())
                    + tlv(12, self.DP9841_FP) + tlv(15, b"\x00")).hex()
        for reply in self.link.phone("DP-9841"):
            self.assertEqual(reply["option-43"]["hex"], expected)
            self.assertEqual(reply["option-43"]["instances"], 1)
            self.assertEqual(reply["option-15"], "legacy.example")
            subs = {sub["code"]: sub for sub in reply["option-43"]["sub-options"]}
            self.assertEqual(subs[12]["digest"], "SHA-256")
            self.assertNotIn(13, subs)

    def test_keas_own_option_43_stays_without_profile(self):
        # Proves the class above really adds a 43, which the test before
        # saw replaced.
        for reply in self.link.phone("DP-9840"):
            self.assertEqual(reply["option-43"]["hex"], "0102aabb")
            self.assertEqual(reply["option-15"], "legacy.example")

    def test_wildcard_profile(self):
        expected = (tlv(11, b"10.1.2.3") + tlv(12, self.WILD_FP)).hex()
        for reply in self.link.phone("Cisco Systems, Inc. IP Phone CP-7821"):
            self.assertEqual(reply["option-43"]["hex"], expected)
            self.assertEqual(reply["option-15"], "phones.example.com")

    def test_suffix_wildcard_profiles_stay_apart(self):
        expected = (tlv(11, b"10.1.2.4") + tlv(12, self.WILD_FP)).hex()
        for reply in self.link.phone("Cisco ATA-191"):
            self.assertEqual(reply["option-43"]["hex"], expected)
        for reply in self.link.phone("Cisco CP-7821 ATA-191 rev2"):
            self.assertUndecorated(reply)
        self.assertEqual(self.kea.stat("scep.ambiguous-vendor-class"), 0)

    def test_unknown_vendor_class_is_untouched(self):
        for reply in self.link.phone("Polycom-VVX411"):
            self.assertUndecorated(reply)

    def test_no_vendor_class_is_untouched(self):
        for reply in self.link.phone(None):
            self.assertUndecorated(reply)

    def test_profiles_get_masks_the_challenge(self):
        answer, raw = self.kea.command("scep-profiles-get")
        self.assertEqual(answer["result"], 0, raw)
        args = answer["arguments"]
        self.assertEqual(args["config-file"], self.kea.toml_path)
        profiles = {p["name"]: p for p in args["profiles"]}
        self.assertEqual(set(profiles), {"cisco-9800", "dp-9841", "cp-7821", "ata-191"})
        seed = profiles["cisco-9800"]
        masked = SEED_HEX.replace(CHALLENGE.encode().hex(), "**" * len(CHALLENGE))
        self.assertEqual(seed["option-43"].lower(), masked)
        self.assertEqual(seed["option-43-length"], len(SEED_HEX) // 2)
        self.assertEqual(seed["challenge"], "********")
        self.assertEqual(seed["domain"], "example.nl")
        self.assertEqual(seed["vendor-class"], ["CP-8875", "DP-9851", "DP-9861", "DP-9871"])
        self.assertNotIn("challenge", profiles["dp-9841"])
        self.assertNotIn(CHALLENGE, raw)
        self.assertNotIn(CHALLENGE.encode().hex(), raw.lower())

    def test_phone_shows_scep_configuration_page(self):
        page = self.link.phone("CP-8875", human=True)
        self.assertIn("SCEP Configuration 1", page)
        self.assertRegex(page, r"Server +http://10\.79\.57\.91")
        self.assertRegex(page, r"Root CA Fingerprint +12040870625C5B755D73F5925285F8F5FF5D55AF"
                               r" \(SHA-1, 20 bytes\)")
        self.assertRegex(page, r"Certificate Select +Custom installed")
        self.assertIn("CP-8875-SEP", page)
        self.assertIn(".example.nl", page)

    def test_log(self):
        self.link.phone("CP-8875")
        self.assertLogClean()
        log = self.kea.log()
        for message in ("SCEP_LOAD_OK", "SCEP_PROFILE_LOADED", "SCEP_DECORATED"):
            self.assertRegex(log, rf"\[kea-dhcp4\.scep/[^]]*\] {message} ")


class ConflictTest(KeaTestCase):
    """Kea always sends option 66; one profile per conflicts policy."""
    TOML = "".join(profile(policy, [vendor_class], SEED_PROFILE + f'conflicts = "{policy}"\n')
                   for policy, vendor_class in (("warn", "CP-8875"), ("strip", "DP-9851"),
                                                ("skip", "DP-9861")))
    DHCP4 = {"option-data": [{"name": "tftp-server-name", "data": "tftp.example.com",
                              "always-send": True}]}
    TFTP_HEX = b"tftp.example.com".hex()

    def exchange(self, policy, vendor_class):
        before = self.kea.stats(policy)
        replies = self.link.phone(vendor_class)
        after = self.kea.stats(policy)
        return replies, {k: after[k] - before[k] for k in after}

    def test_warn_decorates_and_keeps_66(self):
        replies, delta = self.exchange("warn", "CP-8875")
        for reply in replies:
            self.assertSeed(reply)
            self.assertEqual(reply["provisioning-options"], {"66": self.TFTP_HEX})
        self.assertEqual(delta, {"replies-decorated": 2, "conflicts": 2, "replies-skipped": 0})

    def test_strip_decorates_and_removes_66(self):
        replies, delta = self.exchange("strip", "DP-9851")
        for reply in replies:
            self.assertSeed(reply)
            self.assertNotIn(66, reply["option-codes"])
        self.assertEqual(delta, {"replies-decorated": 2, "conflicts": 2, "replies-skipped": 0})

    def test_skip_leaves_reply_undecorated(self):
        replies, delta = self.exchange("skip", "DP-9861")
        for reply in replies:
            self.assertUndecorated(reply)
            self.assertEqual(reply["provisioning-options"], {"66": self.TFTP_HEX})
        self.assertEqual(delta, {"replies-decorated": 0, "conflicts": 2, "replies-skipped": 2})

    def test_log(self):
        for vendor_class in ("CP-8875", "DP-9851", "DP-9861"):
            self.link.phone(vendor_class)
        self.assertLogClean()
        log = self.kea.log()
        for message in ("SCEP_CONFLICT_WARN", "SCEP_CONFLICT_STRIPPED", "SCEP_CONFLICT_SKIPPED"):
            self.assertRegex(log, rf"\[kea-dhcp4\.scep/[^]]*\] {message} .*66")


class ReloadTest(KeaTestCase):
    TOML = profile("cisco-9800", ["CP-8875"])

    def test_broken_reload_keeps_old_config_then_fixed_reload_applies(self):
        for reply in self.link.phone("CP-8875"):
            self.assertSeed(reply)

        self.kea.write_toml(self.TOML.replace("http://", "https://"))
        answer, raw = self.kea.command("scep-reload")
        self.assertEqual(answer["result"], 1, raw)
        for part in (self.kea.toml_path, "'server'", "https"):
            self.assertIn(part, answer["text"])
        for reply in self.link.phone("CP-8875"):
            self.assertSeed(reply)

        new_server = "http://10.79.57.92"
        self.kea.write_toml(self.TOML.replace("http://10.79.57.91", new_server))
        answer, raw = self.kea.command("scep-reload")
        self.assertEqual(answer["result"], 0, raw)
        expected = SEED_HEX.replace(b"10.79.57.91".hex(), b"10.79.57.92".hex())
        for reply in self.link.phone("CP-8875"):
            self.assertEqual(reply["option-43"]["hex"], expected)
        answer, _ = self.kea.command("scep-profiles-get")
        self.assertEqual(answer["arguments"]["profiles"][0]["server"], new_server)

        self.assertLogClean()
        log = self.kea.log()
        self.assertIn("SCEP_RELOAD_FAILED", log)
        self.assertIn("SCEP_RELOAD_OK", log)


    def test_refused_reload_never_echoes_the_challenge(self):
        line = f'challenge = "{CHALLENGE}"'
        for broken in (f"challenge = {CHALLENGE}",        # TOML syntax error
                       f"challenge = 1{CHALLENGE}",       # bad number
                       f'chalenge = "{CHALLENGE}"',       # unknown key
                       f'challenge = ["{CHALLENGE}"]',    # wrong type
                       f'challenge = "{CHALLENGE}{"x" * 200}"'):  # too long
            self.kea.write_toml(self.TOML.replace(line, broken))
            answer, raw = self.kea.command("scep-reload")
            self.assertEqual(answer["result"], 1, broken)
            self.assertNotIn(CHALLENGE, raw)
        self.kea.write_toml(self.TOML)
        self.assertEqual(self.kea.command("scep-reload")[0]["result"], 0)
        self.assertLogClean()


class MultiThreadingTest(KeaTestCase):
    """Kea's packet thread pool with the shipped conf/scep.toml. Kea 2.6 turns
    it on by default, Kea 2.2 off: both modes are tested on both."""
    THREADS = True
    DHCP4 = {"multi-threading": {"enable-multi-threading": True, "thread-pool-size": 2,
                                 "packet-queue-size": 16}}

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(SOURCE_DIR, "conf", "scep.toml")) as f:
            cls.TOML = f.read()
        super().setUpClass()

    def test_decorates_with_threads(self):
        answer, _ = self.kea.command("config-get")
        self.assertIs(answer["arguments"]["Dhcp4"]["multi-threading"]
                      ["enable-multi-threading"], self.THREADS)
        before = self.kea.stats("cisco-9800")
        # Several phones at once, so that the two threads really overlap.
        phones = [(vc, subprocess.Popen(self.link.phone_command(vc, "--json"), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                  for vc in ("CP-8875", "DP-9841", "CP-8875", "Unknown-1", "DP-9871", "Unknown-2")]
        for vc, proc in phones:
            out, err = proc.communicate(timeout=HANG_GUARD)
            self.assertEqual(proc.returncode, 0, err)
            for reply in json.loads(out)["replies"]:
                if vc.startswith("Unknown"):
                    self.assertUndecorated(reply)
                else:
                    self.assertSeed(reply)
        after = self.kea.stats("cisco-9800")
        self.assertEqual(after["replies-decorated"] - before["replies-decorated"], 8)


class SingleThreadedTest(MultiThreadingTest):
    """The same phones with Kea's multi-threading explicitly off."""
    THREADS = False
    DHCP4 = {"multi-threading": {"enable-multi-threading": False}}


class InvalidConfigTest(unittest.TestCase):
    """An invalid TOML must stop Kea from taking the configuration."""
    VALID = profile("cisco-9800", ["CP-8875"])
    # Two mistakes: all must be reported at once.
    BROKEN = VALID.replace("http://", "https://").replace("fips = true", 'fips = "yes"')

    def setUp(self):
        self.workdir = workdir()
        self.link = Link()
        self.kea = Kea(self.link, self.workdir, self.BROKEN)

    def tearDown(self):
        self.kea.stop()
        self.link.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def assertNamesProblems(self, text):
        self.assertIn(self.kea.toml_path, text)
        self.assertRegex(text, r"'server'.*https")
        self.assertRegex(text, r"'fips'.*boolean")

    def test_valid_toml_passes_check(self):
        # The control for the tests below: only the TOML makes them fail.
        self.kea.write_toml(self.VALID)
        code, output = self.kea.check()
        self.assertEqual(code, 0, output)

    # Kea 2.2's -t only dlopen()s hook libraries and checks version(); it never
    # calls load(), so kea-scep-check is the pre-flight check for the TOML.
    def test_checker_refuses_invalid_toml(self):
        result = subprocess.run([CHECKER, self.kea.config_path], capture_output=True,
                                text=True, timeout=HANG_GUARD)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertNamesProblems(result.stderr)
        self.assertNotIn(CHALLENGE, result.stdout + result.stderr)
        self.kea.write_toml(self.VALID)
        result = subprocess.run([CHECKER, self.kea.config_path, self.kea.toml_path],
                                capture_output=True, text=True, timeout=HANG_GUARD)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.count(": OK, 1 profile(s)"), 2)
        self.assertNotIn(CHALLENGE, result.stdout)

    def test_config_set_refuses_invalid_toml(self):
        self.kea.write_toml(self.VALID)
        self.kea.start()
        broken = os.path.join(self.workdir, "broken.toml")
        with open(broken, "w") as f:
            f.write(self.BROKEN)
        with open(self.kea.config_path) as f:
            config = json.load(f)
        config["Dhcp4"]["hooks-libraries"][0]["parameters"]["config"] = broken
        answer, raw = self.kea.command("config-set", config)
        self.assertEqual(answer["result"], 1, raw)
        self.assertIn("hook libraries failed to load", answer["text"])
        log = self.kea.log()
        self.assertIn("SCEP_LOAD_FAILED", log)
        self.assertIn(broken, log)
        self.assertRegex(log, r"'server'.*https")
        self.assertNotIn(CHALLENGE, log)

    def test_start_refuses_invalid_toml(self):
        self.kea.spawn()
        try:
            code = self.kea.proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.fail("kea-dhcp4 kept running with an invalid TOML")
        self.assertNotEqual(code, 0)
        output = self.kea.output()
        self.assertIn("SCEP_LOAD_FAILED", output)
        self.assertNamesProblems(output)
        self.assertNotIn(CHALLENGE, output)


class OverlappingVendorClassTest(unittest.TestCase):
    """Two profiles whose wildcards can match one vendor class (issue 7 #19):
    "Cisco Systems, Inc. IP Phone CP-8875" matches both, so that phone would
    get no option 43. Refused everywhere the TOML is loaded."""
    PHONE = "Cisco Systems, Inc. IP Phone CP-8875"
    OTHER = 'server = "10.1.2.3"\nfingerprint = "' + "ab" * 20 + '"\n'
    VALID = profile("cisco-9800", ["*CP-8875"]) + profile("dp-9841", ["*DP-9841"], OTHER)
    OVERLAP = profile("cisco-9800", ["*CP-*"]) + profile("m8875", ["*8875*"], OTHER)

    def setUp(self):
        self.workdir = workdir()
        self.link = Link()
        self.kea = Kea(self.link, self.workdir, self.OVERLAP)

    def tearDown(self):
        self.kea.stop()
        self.link.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def assertNamesOverlap(self, text):
        self.assertIn(self.kea.toml_path, text)
        self.assertRegex(text, r'\[\[profile\]\] "m8875": key \'vendor-class\' entry "\*8875\*" '
                               r'and entry "\*CP-\*" of profile "cisco-9800" '
                               r'both match "(CP-8875|8875CP-)"')

    def test_checker_refuses_overlap(self):
        result = subprocess.run([CHECKER, self.kea.config_path], capture_output=True,
                                text=True, timeout=HANG_GUARD)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertNamesOverlap(result.stderr)
        self.kea.write_toml(self.VALID)
        result = subprocess.run([CHECKER, self.kea.config_path], capture_output=True,
                                text=True, timeout=HANG_GUARD)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_start_refuses_overlap(self):
        self.kea.spawn()
        try:
            code = self.kea.proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.fail("kea-dhcp4 kept running with overlapping vendor classes")
        self.assertNotEqual(code, 0)
        output = self.kea.output()
        self.assertIn("SCEP_LOAD_FAILED", output)
        self.assertNamesOverlap(output)

    def test_reload_keeps_old_profiles(self):
        self.kea.write_toml(self.VALID)
        self.kea.start()
        for reply in self.link.phone(self.PHONE):
            self.assertSeed(reply)
        self.kea.write_toml(self.OVERLAP)
        answer, raw = self.kea.command("scep-reload")
        self.assertEqual(answer["result"], 1, raw)
        self.assertNamesOverlap(answer["text"])
        for reply in self.link.phone(self.PHONE):
            self.assertSeed(reply)
        answer, _ = self.kea.command("scep-profiles-get")
        self.assertEqual([p["name"] for p in answer["arguments"]["profiles"]],
                         ["cisco-9800", "dp-9841"])

    assertSeed = KeaTestCase.assertSeed


class JourneyTest(unittest.TestCase):
    """The whole product: scep-ra and Kea with the hook share one TOML; a
    factory-reset phone (scep_phone.py: DHCP, then strongSwan pki) gets
    option 43/15, checks the CA against the fingerprint and enrolls with its
    MIC."""

    def setUp(self):
        self.workdir = workdir()
        self.link = Link()
        self.ra = None
        self.kea = None
        run(PYTHON, os.path.join(SOURCE_DIR, "tests", "fixtures", "test_pki.py"),
            os.path.join(self.workdir, "pki"))
        self.toml = f"""\
[[profile]]
name = "cisco-9800"
vendor-class = ["DP-9841", "CP-8875"]
server = "http://{SUBNET}.1:8080"
ca-cert = "state/ca.pem"
fingerprint-digest = "sha256"
domain = "example.nl"

[ra]
listen = "{SUBNET}.1:8080"
state-dir = "state"

[auth]
manufacturer-roots = "pki/manufacturer-roots.pem"
mic-issuers = ["Test Manufacturing CA SHA2"]
"""

    def tearDown(self):
        if self.kea:
            self.kea.stop()
        if self.ra and self.ra.poll() is None:
            self.ra.terminate()
            self.ra.wait(timeout=HANG_GUARD)
        self.link.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start_ra(self):
        # The Kea helper writes the TOML; scep-ra must create its CA first so
        # that the hook can hash it.
        toml = os.path.join(self.workdir, "scep.toml")
        with open(toml, "w") as f:
            f.write(self.toml)
        log = open(os.path.join(self.workdir, "ra.log"), "w")
        self.ra = subprocess.Popen(["ip", "netns", "exec", self.link.server_ns, SCEP_RA, "serve",
                                    "--config", toml], stdout=subprocess.DEVNULL, stderr=log)
        _processes.append(self.ra)
        deadline = time.monotonic() + HANG_GUARD
        while '"listening"' not in open(log.name).read():
            if self.ra.poll() is not None or time.monotonic() > deadline:
                self.fail("scep-ra did not start:\n" + open(log.name).read())
            time.sleep(0.1)
        return toml

    def test_factory_reset_phone_enrolls_with_its_mic(self):
        toml = self.start_ra()
        self.kea = Kea(self.link, self.workdir, self.toml)
        self.kea.start()
        pki = os.path.join(self.workdir, "pki")
        cmd = ["ip", "netns", "exec", self.link.client_ns, PYTHON, SCEP_PHONE, "--iface", "cli0",
               "--mac", "00:1a:2b:3c:4d:5e", "--vendor-class", "CP-8875",
               "--mic", f"{pki}/mic-cp8875.pem", "--mic-key", f"{pki}/mic-cp8875.key",
               "--new-key", f"{pki}/newkey-1.key", "--workdir", os.path.join(self.workdir, "phone"),
               "--json"]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD * 3)
        self.assertEqual(result.returncode, 0, result.stderr)
        journey = json.loads(result.stdout)
        self.assertEqual(journey["domain"], "example.nl")
        self.assertEqual(journey["server"], f"http://{SUBNET}.1:8080")
        self.assertEqual(journey["subject"], "CN=CP-8875-SEP001A2B3C4D5E.example.nl")
        self.assertEqual(journey["issuer"], "CN=kea-scep-ra Root CA")
        # The fingerprint in option 43 is the SHA-256 of the CA scep-ra serves.
        ca = subprocess.run(["openssl", "x509", "-in", os.path.join(self.workdir, "state", "ca.pem"),
                             "-noout", "-fingerprint", "-sha256"], capture_output=True, text=True)
        self.assertEqual(ca.stdout.split("=", 1)[1].strip().replace(":", ""), journey["fingerprint"])
        # The RA recorded a MIC-authenticated request from the leased address.
        listing = subprocess.run([SCEP_RA, "requests", "--config", toml], capture_output=True,
                                 text=True, timeout=HANG_GUARD)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        row = listing.stdout.splitlines()[1].split()
        self.assertEqual(row[1:4], ["issued", "mic", "CP-8875-SEP001A2B3C4D5E.example.nl"])
        self.assertIn(journey["address"], listing.stdout)
        self.assertEqual(self.kea.stat("scep.cisco-9800.replies-decorated"), 2)


class PhoneWithoutServerTest(unittest.TestCase):
    def test_phone_reports_timeout(self):
        link = Link()
        try:
            result = subprocess.run(link.phone_command("CP-8875", "--timeout", "1",
                                                       "--retries", "1"),
                                    capture_output=True, text=True, timeout=HANG_GUARD)
        finally:
            link.close()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("timeout", result.stderr)
        self.assertIn("DHCPOFFER", result.stderr)


def main():
    global HOOK, CHECKER, SCEP_RA, SOURCE_DIR
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--source-dir", default=SOURCE_DIR)
    parser.add_argument("--hook", help="default: SOURCE_DIR/build/hooks/libdhcp_scep.so")
    parser.add_argument("--checker", help="default: SOURCE_DIR/build/hooks/kea-scep-check")
    parser.add_argument("--scep-ra", help="default: SOURCE_DIR/build/ra/scep-ra")
    args, rest = parser.parse_known_args()
    SOURCE_DIR = os.path.abspath(args.source_dir)
    HOOK = os.path.abspath(args.hook or os.path.join(SOURCE_DIR, "build", "hooks",
                                                     "libdhcp_scep.so"))
    CHECKER = os.path.abspath(args.checker or os.path.join(SOURCE_DIR, "build", "hooks",
                                                           "kea-scep-check"))
    SCEP_RA = os.path.abspath(args.scep_ra or os.path.join(SOURCE_DIR, "build", "ra", "scep-ra"))
    atexit.register(cleanup_everything)
    signal.signal(signal.SIGTERM, _on_sigterm)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
