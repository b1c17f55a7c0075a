#!/bin/sh
# The main job on its embedded defaults, on a fresh Debian 12 machine as root:
# installs what it needs, builds, starts a real kea-dhcp4 with the SCEP hook
# and conf/scep.toml in a network namespace, and shows what a factory-reset
# CP-8875 phone on the other end of a veth pair receives.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

./scripts/install-deps.sh
./scripts/build.sh >/dev/null

CONFIG=${SCEP_CONFIG:-$ROOT/conf/scep.toml}
MODEL=${PHONE_MODEL:-CP-8875}
MAC=${PHONE_MAC:-00:1a:2b:3c:4d:5e}
SRV=scepdemo-srv
PHONE=scepdemo-phone
WORK=$(mktemp -d /tmp/scep-demo.XXXXXX)
KEA_PID=""

cleanup() {
    [ -n "$KEA_PID" ] && kill "$KEA_PID" 2>/dev/null && wait "$KEA_PID" 2>/dev/null
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$PHONE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns del "$SRV" 2>/dev/null || true
ip netns del "$PHONE" 2>/dev/null || true
ip netns add "$SRV"
ip netns add "$PHONE"
ip link add scepdemo0 netns "$SRV" type veth peer name scepdemo1 netns "$PHONE"
ip -n "$SRV" addr add 192.0.2.1/24 dev scepdemo0
ip -n "$SRV" link set scepdemo0 up
ip -n "$SRV" link set lo up
ip -n "$PHONE" link set scepdemo1 address "$MAC"
ip -n "$PHONE" link set scepdemo1 up

cat > "$WORK/kea-dhcp4.json" <<JSON
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["scepdemo0"] },
    "control-socket": { "socket-type": "unix", "socket-name": "$WORK/kea.sock" },
    "lease-database": { "type": "memfile", "persist": false },
    "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24",
                   "pools": [ { "pool": "192.0.2.100 - 192.0.2.200" } ],
                   "option-data": [ { "name": "routers", "data": "192.0.2.1" } ] } ],
    "hooks-libraries": [ { "library": "$ROOT/build/hooks/libdhcp_scep.so",
                           "parameters": { "config": "$CONFIG" } } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                   "output_options": [ { "output": "$WORK/kea.log" } ] } ]
} }
JSON

echo "== kea-dhcp4 with libdhcp_scep.so and $CONFIG"
KEA_PIDFILE_DIR=$WORK KEA_LOCKFILE_DIR=$WORK ip netns exec "$SRV" kea-dhcp4 -c "$WORK/kea-dhcp4.json" \
    >"$WORK/kea.out" 2>&1 &
KEA_PID=$!
tries=0
until grep -q "SCEP_LOAD_OK" "$WORK/kea.log" 2>/dev/null && [ -S "$WORK/kea.sock" ]; do
    tries=$((tries + 1))
    if ! kill -0 "$KEA_PID" 2>/dev/null || [ "$tries" -gt 100 ]; then
        echo "kea-dhcp4 did not start:" >&2
        cat "$WORK/kea.out" "$WORK/kea.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
grep -E "SCEP_(LOAD_OK|PROFILE_LOADED)" "$WORK/kea.log" | sed 's/^.*\] /   /'

echo
echo "== factory-reset $MODEL ($MAC) asks for an address"
ip netns exec "$PHONE" /usr/bin/python3 "$ROOT/tests/phone/dhcp_phone.py" \
    --iface scepdemo1 --mac "$MAC" --vendor-class "$MODEL"

echo
echo "== Kea's view (control socket: scep-profiles-get, statistic-get)"
/usr/bin/python3 - "$WORK/kea.sock" <<'PY'
import json, socket, sys
def ask(command, arguments=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(json.dumps({"command": command, "arguments": arguments or {}}).encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return json.loads(data)
for p in ask("scep-profiles-get")["arguments"]["profiles"]:
    print(f"   profile {p['name']}: option 43 ({p['option-43-length']} bytes, challenge masked) {p['option-43']}")
    name = f"scep.{p['name']}.replies-decorated"
    value = ask("statistic-get", {"name": name})["arguments"][name][0][0]
    print(f"   {name} = {value}")
PY
