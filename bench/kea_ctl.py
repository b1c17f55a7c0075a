#!/usr/bin/env python3
"""Tiny client for Kea's control socket, used by bench/dhcp-option43.sh.

    kea_ctl.py SOCKET stats NAME...   prints "NAME VALUE" per statistic
                                      (0 when Kea does not know it)
"""
import json
import socket
import sys


def command(path, cmd, arguments=None):
    request = {"command": cmd}
    if arguments is not None:
        request["arguments"] = arguments
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(json.dumps(request).encode())
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        chunks.append(data)
        try:
            return json.loads(b"".join(chunks))
        except ValueError:
            continue
    return json.loads(b"".join(chunks))


def main(argv):
    if len(argv) < 3 or argv[2] != "stats":
        print(__doc__, file=sys.stderr)
        return 2
    answer = command(argv[1], "statistic-get-all")
    if answer.get("result") != 0:
        print("statistic-get-all failed: %s" % answer.get("text"), file=sys.stderr)
        return 1
    stats = answer.get("arguments", {})
    for name in argv[3:]:
        samples = stats.get(name)
        value = samples[0][0] if samples else 0
        print(name, value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
