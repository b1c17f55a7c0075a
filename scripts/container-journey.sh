#!/bin/sh
# Builds the two images of containers/Containerfile for one Debian release
# and plays a factory-reset CP-8875's whole journey across containers, as
# root:
#
#   phone (network namespace) --- bridge --- kea-dhcp4 container (+ libdhcp_scep.so)
#                                       \--- scep-ra container
#
# The phone broadcasts DHCP with option 60, gets option 43/15 from Kea and the
# hook, fetches the CA from the scep-ra container, checks it against the
# option-43 fingerprint and enrolls, signing with its MIC (test manufacturer
# PKI from tests/fixtures, which the scep-ra container trusts through a
# mounted bundle). Each container has a network namespace of its own, wired
# to the others by veth pairs on a bridge: DHCP needs layer 2.
#
#   scripts/container-journey.sh [bookworm|trixie]
#
# The images are built from the committed HEAD (git archive), not from the
# working tree. BASE names the base image (default localhost/<release>:min,
# built with mmdebstrap when missing; debian:<release>-slim where a registry
# is reachable). PODMAN is the podman command (here: "podman --runtime runc",
# with CONTAINERS_CONF pointing at a file with default_ulimits = []).
# KEEP=1 keeps the work directory. Needs podman, iproute2, git, openssl and,
# for the phone, python3-scapy, python3-cryptography, strongswan-pki and
# libstrongswan-extra-plugins.
set -eu
cd "$(dirname "$0")/.."

RELEASE=${1:-bookworm}
case "$RELEASE" in
    bookworm | trixie) ;;
    *) echo "usage: $0 [bookworm|trixie]" >&2; exit 2 ;;
esac
PODMAN=${PODMAN:-podman}
BASE=${BASE:-localhost/$RELEASE:min}
RA_IMAGE=localhost/kea-scep-ra/scep-ra:$RELEASE
KEA_IMAGE=localhost/kea-scep-ra/kea-dhcp4:$RELEASE
MAC=00:1a:2b:3c:4d:5e
KEA_IP=192.0.2.1
RA_IP=192.0.2.2
NS=scepj                        # prefix of namespaces and containers
STARTED=$(date +%s)

fail() {
    echo "container-journey ($RELEASE): $*" >&2
    exit 1
}

step() {
    echo
    echo "== [$(($(date +%s) - STARTED))s] $*"
}

need() {  # PROGRAM PACKAGE
    command -v "$1" >/dev/null 2>&1 || fail "$1 is missing: apt-get install $2"
}

[ "$(id -u)" -eq 0 ] || fail "run as root (network namespaces, podman)"
need podman podman
need ip iproute2
need git git
need openssl openssl
need pki "strongswan-pki libstrongswan-extra-plugins"
[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is missing: apt-get install python3"
/usr/bin/python3 -c 'import scapy.all, cryptography' 2>/dev/null ||
    fail "the phone needs Debian's python3-scapy and python3-cryptography:" \
         "apt-get install python3-scapy python3-cryptography"

WORK=$(mktemp -d /tmp/container-journey.XXXXXX)
cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        for name in ra kea; do
            if $PODMAN container exists "$NS-$name" 2>/dev/null; then
                echo "---- podman logs $NS-$name (last 40 lines)" >&2
                $PODMAN logs "$NS-$name" 2>&1 | tail -n 40 >&2 || true
            fi
        done
    fi
    remove_leftovers
    if [ "${KEEP:-0}" = 1 ]; then
        echo "container-journey: work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
remove_leftovers() {
    for name in ra kea; do
        $PODMAN rm -f -t 5 "$NS-$name" >/dev/null 2>&1 || true
    done
    for ns in lan kea ra phone; do
        ip netns delete "$NS-$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
remove_leftovers

# ---- the images ---------------------------------------------------------
if ! $PODMAN image exists "$BASE"; then
    case "$BASE" in
        localhost/*:min) ;;
        *) fail "base image $BASE is not there: podman pull it, or set BASE" ;;
    esac
    step "Base image $BASE (mmdebstrap --variant=minbase $RELEASE)"
    need mmdebstrap mmdebstrap
    mmdebstrap --quiet --variant=minbase "$RELEASE" "$WORK/base.tar" ||
        fail "mmdebstrap $RELEASE failed"
    $PODMAN import "$WORK/base.tar" "$BASE" >/dev/null
    rm -f "$WORK/base.tar"
fi

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "container-journey: uncommitted changes are not in the images (they build from HEAD)" >&2
fi
mkdir "$WORK/src"
git archive HEAD | tar -x -C "$WORK/src"
for target in scep-ra kea-dhcp4; do
    image=$RA_IMAGE
    [ "$target" = kea-dhcp4 ] && image=$KEA_IMAGE
    step "podman build --target $target (BASE=$BASE, $(git rev-parse --short HEAD))"
    # The second target reuses the first one's builder stage from the cache.
    # RUN steps reach the Debian mirror over the host's network.
    # shellcheck disable=SC2086 # PODMAN may hold options
    nice -n 10 $PODMAN build --format docker --network host --build-arg "BASE=$BASE" \
        -f "$WORK/src/containers/Containerfile" --target "$target" -t "$image" "$WORK/src" \
        >"$WORK/build-$target.log" 2>&1 || {
        tail -n 60 "$WORK/build-$target.log" >&2
        fail "podman build --target $target failed (log above)"
    }
done
BUILT=$(date +%s)
$PODMAN image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    grep -E "^localhost/kea-scep-ra/(scep-ra|kea-dhcp4):$RELEASE " | sed 's/^/   /'

# ---- the RA's CA and the one TOML file -----------------------------------
# podman run, its stderr shown only when it fails: without systemd (as here)
# podman reports on every start that it cannot schedule the health checks,
# which this script then runs itself (wait_healthy).
run() {
    $PODMAN run "$@" 2>"$WORK/podman-run.err" || {
        cat "$WORK/podman-run.err" >&2
        return 1
    }
}
# State on bind mounts: the container's own overlay has fsync=volatile.
# :U gives the directory to the image's user.
mkdir -m 0700 "$WORK/ra-state" "$WORK/kea-leases"
mkdir -m 0755 "$WORK/etc"
step "scep-ra init: the CA, created in the state volume"
run --rm -v "$WORK/ra-state:/var/lib/scep-ra:U" "$RA_IMAGE" init >"$WORK/init.out" ||
    fail "scep-ra init failed"
sed 's/^/   /' "$WORK/init.out"
FINGERPRINT=$(run --rm -v "$WORK/ra-state:/var/lib/scep-ra:U" "$RA_IMAGE" \
    fingerprint --digest sha256) || fail "scep-ra fingerprint failed"
echo "   CA SHA-256 fingerprint: $FINGERPRINT"

# The phone's MIC comes from the test manufacturer; scep-ra trusts Cisco's
# bundle (shipped in the image) plus that test root, mounted over it.
/usr/bin/python3 "$WORK/src/tests/fixtures/test_pki.py" "$WORK/pki" >/dev/null
cat "$WORK/src/conf/manufacturer-roots.pem" "$WORK/pki/manufacturer-roots.pem" \
    >"$WORK/etc/manufacturer-roots.pem"
cat >"$WORK/etc/scep.toml" <<TOML
[[profile]]
name = "cisco-9800"
vendor-class = ["DP-9841", "DP-9851", "DP-9861", "DP-9871", "CP-8875"]
server = "http://$RA_IP:8080"
fingerprint = "$FINGERPRINT"
fips = false
dot1x = true
cert-select = "custom"
domain = "example.nl"

[ra]
listen = "0.0.0.0:8080"
state-dir = "/var/lib/scep-ra"

[auth]
manufacturer-roots = "manufacturer-roots.pem"
mic-issuers = ["Cisco Manufacturing CA", "Cisco Manufacturing CA SHA2",
               "Cisco Manufacturing CA III", "Test Manufacturing CA SHA2"]

[admin]
listen = "0.0.0.0:8443"
TOML
chmod 0644 "$WORK/etc/scep.toml" "$WORK/etc/manufacturer-roots.pem"

# ---- layer 2: a bridge and one veth pair per party -----------------------
step "Network: bridge in $NS-lan; kea $KEA_IP, scep-ra $RA_IP, phone $MAC (no address)"
for ns in lan kea ra phone; do
    ip netns add "$NS-$ns"
    ip -n "$NS-$ns" link set lo up
done
ip -n "$NS-lan" link add br0 type bridge
ip -n "$NS-lan" link set br0 up
for party in kea ra phone; do
    ip -n "$NS-lan" link add "to-$party" type veth peer name eth0 netns "$NS-$party"
    ip -n "$NS-lan" link set "to-$party" master br0 up
done
ip -n "$NS-kea" addr add "$KEA_IP/24" dev eth0
ip -n "$NS-ra" addr add "$RA_IP/24" dev eth0
ip -n "$NS-phone" link set eth0 address "$MAC"
for party in kea ra phone; do
    ip -n "$NS-$party" link set eth0 up
done

wait_healthy() {  # CONTAINER
    tries=0
    until $PODMAN healthcheck run "$1" >/dev/null 2>&1; do
        tries=$((tries + 1))
        state=$($PODMAN inspect -f '{{.State.Status}}' "$1" 2>/dev/null || echo gone)
        [ "$state" = running ] || fail "$1 is $state"
        [ "$tries" -lt 60 ] || fail "$1 is not healthy after 30 s"
        sleep 0.5
    done
    echo "   $1 healthy after $((tries / 2)) s:" \
         "$($PODMAN inspect -f '{{.State.Health.Status}}' "$1")"
}

step "scep-ra container (user scep-ra, no capabilities, read-only root)"
run -d --name "$NS-ra" --network "ns:/run/netns/$NS-ra" \
    --cap-drop all --read-only \
    -v "$WORK/etc/scep.toml:/etc/kea-scep-ra/scep.toml:ro" \
    -v "$WORK/etc/manufacturer-roots.pem:/etc/kea-scep-ra/manufacturer-roots.pem:ro" \
    -v "$WORK/ra-state:/var/lib/scep-ra:U" \
    "$RA_IMAGE" >/dev/null || fail "podman run scep-ra failed"
wait_healthy "$NS-ra"

step "kea-dhcp4 container (user _kea, only NET_RAW and NET_BIND_SERVICE)"
run -d --name "$NS-kea" --network "ns:/run/netns/$NS-kea" \
    --cap-drop all --cap-add NET_RAW,NET_BIND_SERVICE \
    -v "$WORK/etc/scep.toml:/etc/kea-scep-ra/scep.toml:ro" \
    -v "$WORK/kea-leases:/var/lib/kea:U" \
    "$KEA_IMAGE" >/dev/null || fail "podman run kea-dhcp4 failed"
wait_healthy "$NS-kea"
$PODMAN logs "$NS-kea" 2>&1 | grep -o 'SCEP_PROFILE_LOADED.*' | sed 's/^/   /'

# ---- the phone ------------------------------------------------------------
JOURNEY_STARTED=$(date +%s)
ip netns exec "$NS-phone" /usr/bin/python3 "$WORK/src/tests/phone/scep_phone.py" \
    --iface eth0 --mac "$MAC" --vendor-class CP-8875 \
    --mic "$WORK/pki/mic-cp8875.pem" --mic-key "$WORK/pki/mic-cp8875.key" \
    --new-key "$WORK/pki/newkey-1.key" --workdir "$WORK/phone" ||
    fail "the phone's journey failed"

# ---- what each side recorded ----------------------------------------------
step "Checks"
openssl verify -CAfile "$WORK/ra-state/ca.pem" "$WORK/phone/cdc.pem" >/dev/null ||
    fail "the phone's certificate does not verify against the scep-ra container's CA"
SERIAL=$(openssl x509 -in "$WORK/phone/cdc.pem" -noout -serial | sed 's/^serial=//')
echo "   the phone's certificate verifies against the CA in the scep-ra volume"
$PODMAN exec "$NS-ra" scep-ra certs | grep -qi "$SERIAL" ||
    fail "scep-ra certs does not list serial $SERIAL"
echo "   scep-ra certs lists serial $SERIAL"
grep -qi "$MAC" "$WORK/kea-leases/kea-leases4.csv" ||
    fail "the Kea lease file in the volume holds no lease for $MAC"
echo "   the Kea lease file in the volume holds the phone's lease"
for name in ra kea; do
    status=$($PODMAN exec "$NS-$name" cat /proc/1/status)
    uid=$(echo "$status" | awk '/^Uid:/ {print $3}')
    caps=$(echo "$status" | awk '/^CapEff:/ {print $2}')
    [ "$uid" != 0 ] || fail "$NS-$name runs as root"
    echo "   $NS-$name: $(echo "$status" | awk '/^Name:/ {print $2}') runs as uid $uid," \
         "effective capabilities $caps"
done
ENDED=$(date +%s)

step "Done"
echo "   images built in $((BUILT - STARTED)) s;" \
     "containers up and journey in $((ENDED - BUILT)) s" \
     "(the phone alone: $((ENDED - JOURNEY_STARTED)) s)"
