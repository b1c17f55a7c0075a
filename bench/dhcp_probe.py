#!/usr/bin/env python3
"""Wire check for bench/dhcp-option43.sh.

Acts like perfdhcp does (a relay: giaddr set, hops 1) and runs one
DISCOVER/OFFER + REQUEST/ACK exchange against a kea-dhcp4 started with
`-p SERVER_PORT -P CLIENT_PORT`, then prints, for each reply, the raw bytes
of option 43 and option 15 exactly as they came off the UDP socket.

The DISCOVER and REQUEST carry option 60 but no option 55 (parameter request
list), so the reply shows only what the server sends unasked (always-send).

Output, one line per reply:
    OFFER 43=<hex> 15=<hex> n43=<number of option-43 instances>
    ACK   43=<hex> 15=<hex> n43=<...>
`-` stands for an absent option. Exit status 0 when both replies arrived.
"""
import argparse
import os
import socket
import struct
import sys

MAGIC = b"\x63\x82\x53\x63"


def build(msg_type, xid, mac, giaddr, vendor_class, extra=b""):
    hdr = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 1,               # BOOTREQUEST, ethernet, hlen 6, hops 1 (relayed)
        xid, 0, 0,
        b"\0" * 4, b"\0" * 4, b"\0" * 4,
        socket.inet_aton(giaddr),
        mac + b"\0" * 10, b"\0" * 64, b"\0" * 128)
    opts = bytes([53, 1, msg_type])
    opts += bytes([60, len(vendor_class)]) + vendor_class
    opts += extra
    opts += b"\xff"
    return hdr + MAGIC + opts


def parse(pkt):
    if len(pkt) < 240 or pkt[236:240] != MAGIC:
        raise ValueError("not a DHCP packet")
    yiaddr = socket.inet_ntoa(pkt[16:20])
    xid = struct.unpack("!I", pkt[4:8])[0]
    opts = []
    i = 240
    while i < len(pkt):
        code = pkt[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        length = pkt[i + 1]
        opts.append((code, pkt[i + 2:i + 2 + length]))
        i += 2 + length
    return xid, yiaddr, opts


def first(opts, code):
    for c, v in opts:
        if c == code:
            return v
    return None


def exchange(sock, server, request, xid, want_type, timeout):
    sock.settimeout(timeout)
    sock.sendto(request, server)
    while True:
        data, _ = sock.recvfrom(4096)
        rxid, yiaddr, opts = parse(data)
        t = first(opts, 53)
        if rxid == xid and t and t[0] == want_type:
            return yiaddr, opts


def describe(name, opts):
    o43 = [v for c, v in opts if c == 43]
    o15 = first(opts, 15)
    return "%s 43=%s 15=%s n43=%d" % (
        name,
        b"".join(o43).hex() if o43 else "-",
        o15.hex() if o15 is not None else "-",
        len(o43))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--server-port", type=int, default=10067)
    ap.add_argument("--client-port", type=int, default=10068)
    ap.add_argument("--vendor-class", default="CP-8875")
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.server, args.client_port))
    server = (args.server, args.server_port)
    vc = args.vendor_class.encode()
    mac = os.urandom(6)
    mac = bytes([mac[0] & 0xFC]) + mac[1:]
    xid = struct.unpack("!I", os.urandom(4))[0]
    try:
        yiaddr, offer = exchange(sock, server, build(1, xid, mac, args.server, vc),
                                 xid, 2, args.timeout)
        sid = first(offer, 54)
        extra = bytes([50, 4]) + socket.inet_aton(yiaddr)
        if sid is not None:
            extra += bytes([54, len(sid)]) + sid
        _, ack = exchange(sock, server, build(3, xid, mac, args.server, vc, extra),
                          xid, 5, args.timeout)
    except socket.timeout:
        print("no reply from %s:%d" % server, file=sys.stderr)
        return 1
    print(describe("OFFER", offer))
    print(describe("ACK", ack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
