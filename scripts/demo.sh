#!/bin/sh
# The main job on its embedded defaults, on a fresh Debian 12 or 13 machine as root:
# installs what it needs, builds, then plays a factory-reset CP-8875's whole
# journey. In one network namespace run scep-ra (embedded CA, created on
# first start) and kea-dhcp4 with libdhcp_scep.so; on the other end of a veth
# pair a simulated phone with a MIC from a test manufacturer hierarchy gets
# option 43/15, fetches and checks the CA, enrolls signed with its MIC, and
# shows the certificate it was issued.
#
#   demo.sh              scep-ra issues from its embedded CA
#   demo.sh --upstream   the same journey with micromdm's scepserver as the
#                        enterprise CA: scep-ra authenticates the phone and
#                        forwards its CSR there ([ca] backend = "scep"); the
#                        phone pins and gets a certificate of scepserver's root
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

UPSTREAM=0
case "${1:-}" in
    "") ;;
    --upstream) UPSTREAM=1 ;;
    *) echo "usage: $0 [--upstream]" >&2; exit 2 ;;
esac

if [ "$UPSTREAM" = 1 ]; then
    ./scripts/install-deps.sh demo-upstream
else
    ./scripts/install-deps.sh demo
fi
# The build is quiet when it works and shows everything when it does not.
# Only the product: the hook, its checker and scep-ra (the test command
# builds the rest).
BUILD_LOG=$(mktemp /tmp/scep-demo-build.XXXXXX)
if ! ./scripts/build.sh hooks/libdhcp_scep.so hooks/kea-scep-check ra/scep-ra >"$BUILD_LOG" 2>&1; then
    cat "$BUILD_LOG" >&2
    echo "demo: the build failed (output above)" >&2
    exit 1
fi
rm -f "$BUILD_LOG"
# Kea loads the hook from its own hook directory (only from there since 2.6).
HOOK_LIBRARY=$(./scripts/install-hook.sh build/hooks/libdhcp_scep.so)

MODEL=${PHONE_MODEL:-CP-8875}
MAC=${PHONE_MAC:-00:1a:2b:3c:4d:5e}
SRV=scepdemo-srv
PHONE=scepdemo-phone
SERVER_IP=192.0.2.1
WORK=$(mktemp -d /tmp/scep-demo.XXXXXX)
KEA_PID=""
RA_PID=""
CA_PID=""

cleanup() {
    for pid in $KEA_PID $RA_PID $CA_PID; do
        # scepserver ends on SIGTERM with status 143: no reason to stop
        # cleaning up (set -e).
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$PHONE" 2>/dev/null || true
    rm -rf "$WORK" "${KEA_SOCKET:-}" "${KEA_SOCKET:-}.lock"
}
trap cleanup EXIT INT TERM

wait_until() {  # WHAT PID LOG COMMAND...: until COMMAND succeeds, while PID lives
    what=$1 pid=$2 log=$3
    shift 3
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        if ! kill -0 "$pid" 2>/dev/null || [ "$tries" -gt 150 ]; then
            echo "$what did not start:" >&2
            cat "$log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
}

has_line() {  # PATTERN FILE
    grep -q "$1" "$2" 2>/dev/null
}

wait_for() {  # PATTERN FILE PID WHAT
    wait_until "$4" "$3" "$2" has_line "$1" "$2"
}

ip netns del "$SRV" 2>/dev/null || true
ip netns del "$PHONE" 2>/dev/null || true
ip netns add "$SRV"
ip netns add "$PHONE"
ip link add scepdemo0 netns "$SRV" type veth peer name scepdemo1 netns "$PHONE"
ip -n "$SRV" addr add "$SERVER_IP/24" dev scepdemo0
ip -n "$SRV" link set scepdemo0 up
ip -n "$SRV" link set lo up
ip -n "$PHONE" link set scepdemo1 address "$MAC"
ip -n "$PHONE" link set scepdemo1 up
ip -n "$PHONE" link set lo up

# The phone's factory certificate comes from a test manufacturer; the RA
# trusts Cisco's real manufacturing CAs (its default) plus that test root.
/usr/bin/python3 tests/fixtures/test_pki.py "$WORK/pki" >/dev/null
cat conf/manufacturer-roots.pem "$WORK/pki/manufacturer-roots.pem" > "$WORK/manufacturer-roots.pem"

# The enterprise CA scep-ra forwards to (--upstream): scepserver with a CA of
# its own, in the server namespace; scep-ra reaches it over that namespace's
# loopback and pins it by its SHA-256 fingerprint.
CA_CERT=state/ca.pem
CA_TABLE=""
if [ "$UPSTREAM" = 1 ]; then
    UPSTREAM_URL=http://127.0.0.1:8081/scep
    scepserver ca -init -depot "$WORK/depot" -keySize 2048 \
        -organization "Example Enterprise CA" >"$WORK/scepserver.log" 2>&1
    echo "== the enterprise CA: micromdm scepserver on $UPSTREAM_URL"
    ip netns exec "$SRV" scepserver -depot "$WORK/depot" -port 8081 \
        >>"$WORK/scepserver.log" 2>&1 &
    CA_PID=$!
    wait_until scepserver "$CA_PID" "$WORK/scepserver.log" \
        ip netns exec "$SRV" curl -sf -o /dev/null "$UPSTREAM_URL?operation=GetCACaps"
    PIN=$(openssl x509 -in "$WORK/depot/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
    echo "   root $(openssl x509 -in "$WORK/depot/ca.pem" -noout -subject -nameopt RFC2253 | cut -d= -f2-)"
    echo "   SHA-256 $PIN"
    echo
    # The phones pin the enterprise root: scep-ra keeps the upstream chain
    # it fetched (and checked against the pin) in state/upstream-ca.pem.
    CA_CERT=state/upstream-ca.pem
    CA_TABLE="[ca]
backend = \"scep\"
url = \"$UPSTREAM_URL\"
ca-fingerprint = \"sha256:$PIN\"
poll-interval = \"2s\"
"
fi

# One file for both: the profile's fingerprint is computed from the CA
# certificate scep-ra creates (or, with --upstream, fetches) on its first start.
cat > "$WORK/scep.toml" <<TOML
[[profile]]
name = "cisco-9800"
vendor-class = ["DP-9841", "DP-9851", "DP-9861", "DP-9871", "CP-8875"]
server = "http://$SERVER_IP:8080"
ca-cert = "$CA_CERT"
fingerprint-digest = "sha256"
fips = false
dot1x = true
cert-select = "custom"
domain = "example.nl"

[ra]
listen = "$SERVER_IP:8080"
state-dir = "state"

$CA_TABLE
[auth]
manufacturer-roots = "manufacturer-roots.pem"
# Cisco's phone manufacturing CAs plus the test manufacturer's.
mic-issuers = ["Cisco Manufacturing CA", "Cisco Manufacturing CA SHA2",
               "Cisco Manufacturing CA III", "Test Manufacturing CA SHA2"]
TOML

if [ "$UPSTREAM" = 1 ]; then
    echo "== scep-ra (RA in front of the enterprise CA) on http://$SERVER_IP:8080"
else
    echo "== scep-ra (embedded CA) on http://$SERVER_IP:8080"
fi
ip netns exec "$SRV" "$ROOT/build/ra/scep-ra" serve --config "$WORK/scep.toml" \
    >"$WORK/ra.out" 2>"$WORK/ra.log" &
RA_PID=$!
wait_for '"listening"' "$WORK/ra.log" "$RA_PID" "scep-ra"
# The hook computes option 43's fingerprint from the CA file when Kea loads it.
wait_for "BEGIN CERTIFICATE" "$WORK/$CA_CERT" "$RA_PID" "scep-ra's CA certificate"
sed 's/^/   /' "$WORK/ra.out"

# Kea 2.6 accepts control sockets only in /run/kea, and only when that
# directory's mode is 0750 (the package's tmpfiles make it so under systemd).
install -d -m 0750 /run/kea
KEA_SOCKET=/run/kea/scepdemo-$$.sock
cat > "$WORK/kea-dhcp4.json" <<JSON
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["scepdemo0"] },
    "control-socket": { "socket-type": "unix", "socket-name": "$KEA_SOCKET" },
    "lease-database": { "type": "memfile", "persist": false },
    "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24",
                   "pools": [ { "pool": "192.0.2.100 - 192.0.2.200" } ],
                   "option-data": [ { "name": "routers", "data": "$SERVER_IP" } ] } ],
    "hooks-libraries": [ { "library": "$HOOK_LIBRARY",
                           "parameters": { "config": "$WORK/scep.toml" } } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                   "output_options": [ { "output": "$WORK/kea.log" } ] } ]
} }
JSON

echo
echo "== kea-dhcp4 with libdhcp_scep.so"
KEA_PIDFILE_DIR=$WORK KEA_LOCKFILE_DIR=$WORK KEA_LOG_FILE_DIR=$WORK ip netns exec "$SRV" kea-dhcp4 -c "$WORK/kea-dhcp4.json" \
    >"$WORK/kea.out" 2>&1 &
KEA_PID=$!
wait_for "DHCP4_STARTED" "$WORK/kea.log" "$KEA_PID" "kea-dhcp4"
grep -E "SCEP_PROFILE_LOADED" "$WORK/kea.log" | sed 's/^.*\] /   /'

echo
ip netns exec "$PHONE" /usr/bin/python3 tests/phone/scep_phone.py \
    --iface scepdemo1 --mac "$MAC" --vendor-class "$MODEL" \
    --mic "$WORK/pki/mic-cp8875.pem" --mic-key "$WORK/pki/mic-cp8875.key" \
    --new-key "$WORK/pki/newkey-1.key" --workdir "$WORK/phone"

echo
echo "== The CA admin's view: scep-ra requests / certs"
"$ROOT/build/ra/scep-ra" requests --config "$WORK/scep.toml" | sed 's/^/   /'
"$ROOT/build/ra/scep-ra" certs --config "$WORK/scep.toml" | sed 's/^/   /'

if [ "$UPSTREAM" = 1 ]; then
    echo
    echo "== The enterprise CA's view: scepserver's depot (index.txt)"
    sed 's/^/   /' "$WORK/depot/index.txt"
    printf '   '
    openssl verify -CAfile "$WORK/depot/ca.pem" "$WORK/phone/cdc.pem"
fi
