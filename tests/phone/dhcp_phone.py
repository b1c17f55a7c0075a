#!/usr/bin/python3
"""A factory-reset Cisco phone on the wire: gets an address over DHCP (or
sends a DHCPINFORM) with a vendor class in option 60 and shows the SCEP
parameters a phone would take from option 43 and option 15.

Used by the end-to-end tests (--json) and for demos (human-readable). It
decodes option 43 on its own, without the project's code, so that a test
compares the hook against an independent reading of the format.

Needs root and Debian's python3-scapy: run it with /usr/bin/python3.
"""
import argparse
import json
import logging
import random
import re
import select
import socket
import sys
import time

# scapy warns on import about interfaces without addresses (a fresh
# namespace's lo); that noise would end up in every test log.
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
try:
    from scapy.config import conf
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
except ImportError:
    sys.exit("dhcp_phone: scapy is missing; install python3-scapy and run with /usr/bin/python3")

# The remote-provisioning options a phone must not also get, or it may
# ignore option 43 (Cisco's CDC guide).
PROVISIONING = {66: "TFTP server name", 150: "TFTP server address",
                159: "provisioning URL", 160: "provisioning server"}
DIGESTS = {20: "SHA-1", 32: "SHA-256", 48: "SHA-384", 64: "SHA-512"}
MESSAGE_TYPES = {2: "DHCPOFFER", 5: "DHCPACK", 6: "DHCPNAK"}
# What a phone asks for: subnet mask, router, DNS, domain, NTP, option 43, TFTP.
DEFAULT_PRL = [1, 3, 6, 15, 42, 43, 66, 150]


class PhoneError(Exception):
    pass


def parse_options(data):
    """DHCP options (after the magic cookie) as {code: [value, ...]}; a code
    can repeat (RFC 3396 splitting), which phones do not reassemble, so every
    instance is kept."""
    options, i = {}, 0
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            raise PhoneError(f"option {code} runs past the end of the packet")
        length = data[i + 1]
        options.setdefault(code, []).append(bytes(data[i + 2:i + 2 + length]))
        i += 2 + length
    return options


def _flag(value, off, on):
    return {b"\x00": off, b"\x01": on}.get(value, f"invalid ({value.hex()})")


def decode_option43(data):
    """Sub-options 10-15 of Cisco's CDC enrollment, as a phone reads them."""
    subs, i = [], 0
    while i < len(data):
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            subs.append({"code": data[i], "error": "truncated sub-option"})
            break
        code, length = data[i], data[i + 1]
        value = bytes(data[i + 2:i + 2 + length])
        i += 2 + length
        sub = {"code": code, "length": length, "hex": value.hex()}
        if code == 10:
            sub.update(name="FIPS Mode", value=_flag(value, "Disabled", "Enabled"))
        elif code == 11:
            sub.update(name="Server", value=value.decode("ascii", "replace"))
        elif code == 12:
            digest = DIGESTS.get(length, f"invalid length {length}")
            sub.update(name="Root CA Fingerprint", value=value.hex().upper(), digest=digest)
        elif code == 13:
            sub.update(name="Challenge Password", value=value.decode("ascii", "replace"))
        elif code == 14:
            sub.update(name="Enable 802.1X Authentication", value=_flag(value, "No", "Yes"))
        elif code == 15:
            sub.update(name="Certificate Select",
                       value=_flag(value, "Manufacturing installed", "Custom installed"))
        else:
            sub.update(name=f"unknown sub-option {code}", value=value.hex())
        subs.append(sub)
    return subs


def mic_common_name(vendor_class, mac):
    """The phone's MIC CN, e.g. CP-8875-SEP001A2B3C4D5E: the model is the last
    XX-NNNN token of option 60."""
    models = re.findall(r"[A-Z]{2}-\d{4}", vendor_class or "")
    sep = f"SEP{mac.replace(':', '').upper()}"
    return f"{models[-1]}-{sep}" if models else sep


def describe_reply(pkt):
    bootp = pkt[BOOTP]
    raw = bytes(bootp.original)
    if raw[236:240] != b"\x63\x82\x53\x63":
        raise PhoneError("reply without the DHCP magic cookie")
    options = parse_options(raw[240:])
    msg_type = options.get(53, [b"\x00"])[0][0]
    reply = {
        "message-type": MESSAGE_TYPES.get(msg_type, f"type {msg_type}"),
        "xid": bootp.xid,
        "yiaddr": bootp.yiaddr,
        "server-id": ".".join(map(str, options[54][0])) if 54 in options else None,
        "option-codes": sorted(options),
        "option-43": None,
        "option-15": None,
        "provisioning-options": {},
    }
    if 43 in options:
        joined = b"".join(options[43])
        reply["option-43"] = {"hex": joined.hex(), "length": len(joined),
                              "instances": len(options[43]),
                              "sub-options": decode_option43(joined)}
    if 15 in options:
        reply["option-15"] = b"".join(options[15]).decode("ascii", "replace")
    for code in PROVISIONING:
        if code in options:
            reply["provisioning-options"][str(code)] = b"".join(options[code]).hex()
    return reply


class Phone:
    def __init__(self, args):
        self.args = args
        self.mac = args.mac.lower()
        self.xid = random.getrandbits(32)

    def _common_options(self):
        opts = []
        if self.args.vendor_class is not None:
            opts.append(("vendor_class_id", self.args.vendor_class.encode()))
        if self.args.prl is not None:
            opts.append(("param_req_list", self.args.prl))
        opts.append(("hostname", f"SEP{self.mac.replace(':', '').upper()}".encode()))
        return opts

    def _frame(self, msg_type, extra, ciaddr="0.0.0.0"):
        chaddr = bytes.fromhex(self.mac.replace(":", ""))
        return (Ether(src=self.mac, dst="ff:ff:ff:ff:ff:ff")
                / IP(src=ciaddr, dst="255.255.255.255")
                / UDP(sport=68, dport=67)
                / BOOTP(op=1, xid=self.xid, ciaddr=ciaddr, chaddr=chaddr)
                / DHCP(options=[("message-type", msg_type)] + extra
                       + self._common_options() + ["end"]))

    def _wanted(self, pkt):
        return (BOOTP in pkt and UDP in pkt and pkt[UDP].dport == 68
                and pkt[BOOTP].op == 2 and pkt[BOOTP].xid == self.xid)

    def _exchange(self, sock, frame, expect):
        """Sends `frame` until a reply of a type in `expect` arrives; a phone
        retransmits, and so a lost first packet does not fail a test."""
        attempts = max(1, self.args.retries)
        for _ in range(attempts):
            sock.send(frame)
            deadline = time.monotonic() + self.args.timeout / attempts
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                pkt = sock.recv()
                if pkt is None or not self._wanted(pkt):
                    continue
                reply = describe_reply(pkt)
                if reply["message-type"] not in expect:
                    raise PhoneError(f"expected {' or '.join(expect)}, "
                                     f"got {reply['message-type']}")
                return reply
        raise PhoneError(f"timeout: no {' or '.join(expect)} on {self.args.iface} within "
                         f"{self.args.timeout:g}s (is a DHCP server running on that link?)")

    def run(self):
        # One socket, opened before the first send, so no reply is missed.
        # Promiscuous: servers unicast to the phone's MAC, not the interface's.
        sock = conf.L2socket(iface=self.args.iface, promisc=True)
        try:
            if self.args.inform:
                inform = self._frame("inform", [], self.args.ciaddr)
                return [self._exchange(sock, inform, ["DHCPACK"])]
            offer = self._exchange(sock, self._frame("discover", []), ["DHCPOFFER"])
            request = self._frame("request", [("requested_addr", offer["yiaddr"]),
                                              ("server_id", offer["server-id"])])
            ack = self._exchange(sock, request, ["DHCPACK", "DHCPNAK"])
            if ack["message-type"] == "DHCPNAK":
                raise PhoneError("server answered the DHCPREQUEST with DHCPNAK")
            return [offer, ack]
        finally:
            sock.close()


def provisioning_value(code, hex_value):
    data = bytes.fromhex(hex_value)
    if code == 150 and data and len(data) % 4 == 0:
        return ", ".join(".".join(map(str, data[i:i + 4])) for i in range(0, len(data), 4))
    text = data.decode("ascii", "replace")
    return text if text.isprintable() else hex_value


def print_reply(reply, args):
    """What the phone would show: its "SCEP Configuration 1" page."""
    where = f"from {reply['server-id']}"
    if reply["yiaddr"] != "0.0.0.0":
        where += f", address {reply['yiaddr']}"
    print(f"{reply['message-type']} {where} (xid 0x{reply['xid']:08x})")
    opt43 = reply["option-43"]
    if opt43 is None:
        print("  option 43: not present - SCEP Configuration 1 stays empty")
    else:
        split = f", split into {opt43['instances']} options" if opt43["instances"] > 1 else ""
        print(f"  option 43 ({opt43['length']} bytes{split}): {opt43['hex']}")
        print("  SCEP Configuration 1")
        for sub in opt43["sub-options"]:
            if "error" in sub:
                print(f"    sub-option {sub['code']}: {sub['error']}")
                continue
            value = sub["value"]
            if sub["code"] == 12:
                value += f" ({sub['digest']}, {sub['length']} bytes)"
            print(f"    {sub['name']:<30}{value}")
    domain = reply["option-15"]
    print(f"  option 15 (domain name): {domain if domain is not None else 'not present'}")
    if opt43 is not None:
        cn = mic_common_name(args.vendor_class, args.mac)
        print(f"    {'Common Name':<30}{cn + '.' + domain if domain else cn}")
        print(f"    {'User ID':<30}{cn + '@' + domain if domain else cn}")
    conflicts = reply["provisioning-options"]
    if conflicts:
        for code, value in conflicts.items():
            print(f"  option {code} ({PROVISIONING[int(code)]}): "
                  f"{provisioning_value(int(code), value)}"
                  " - remote provisioning; the phone may ignore option 43")
    else:
        print("  remote provisioning options (66/150/159/160): none")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iface", required=True, help="interface to send and listen on")
    p.add_argument("--mac", default="00:1a:2b:3c:4d:5e", help="client hardware address")
    p.add_argument("--vendor-class", help="option 60 (omit to send none), e.g. CP-8875")
    p.add_argument("--inform", action="store_true", help="send DHCPINFORM instead of DORA")
    p.add_argument("--ciaddr", help="the address the phone already has (with --inform)")
    prl = p.add_mutually_exclusive_group()
    prl.add_argument("--no-prl", action="store_true", help="send no option 55")
    prl.add_argument("--prl", help="option 55 codes, comma-separated (default "
                     + ",".join(map(str, DEFAULT_PRL)) + ")")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per exchange")
    p.add_argument("--retries", type=int, default=3, help="transmissions per exchange")
    p.add_argument("--json", action="store_true", help="print the replies as JSON")
    args = p.parse_args(argv)
    if args.inform and not args.ciaddr:
        p.error("--inform needs --ciaddr")
    if args.ciaddr and not args.inform:
        p.error("--ciaddr goes with --inform")
    try:
        socket.if_nametoindex(args.iface)
    except OSError:
        p.error(f"--iface {args.iface}: no such interface (in this network namespace)")
    if args.no_prl:
        args.prl = None
    elif args.prl is None:
        args.prl = DEFAULT_PRL
    else:
        args.prl = [int(code) for code in args.prl.split(",") if code]
    if not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", args.mac):
        p.error(f"--mac {args.mac}: expected six colon-separated hex bytes")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        replies = Phone(args).run()
    except PhoneError as e:
        print(f"dhcp_phone: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dhcp_phone: {args.iface}: {e.strerror or e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump({"iface": args.iface, "mac": args.mac, "vendor-class": args.vendor_class,
                   "replies": replies}, sys.stdout, indent=2)
        print()
    else:
        for reply in replies:
            print_reply(reply, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
