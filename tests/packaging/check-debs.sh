#!/bin/sh
# Checks the Debian packages of one release in a fresh container booted with
# systemd: install (files, modes, user, conffile, unit, systemd-analyze verify
# and security), the service started for real (/healthz, capabilities,
# read-only system), Kea loading the installed hook, a simulated phone's
# whole journey (DHCP option 43, CA fingerprint, MIC enrollment) against the
# installed Kea and scep-ra, reload, a port below 1024, upgrade to a later
# build keeping an edited conffile and the CA, remove, purge (which keeps a
# CA), reinstall on the kept CA, and a purge that leaves nothing behind. Then
# piuparts (piuparts.sh).
#
#   tests/packaging/check-debs.sh bookworm|trixie
#
# Uses dist/<release>/ (scripts/build-debs.sh builds it from HEAD when it is
# missing or was built from another commit) and
# builds the later version into dist/<release>-upgrade/ from a clone whose
# packaged config differs, so that dpkg has a conffile conflict to keep.
# KEEP=1 leaves the container running for a look inside; PHASES="prepare
# install ..." runs only those (see in-container.sh); PIUPARTS=0 skips
# piuparts. Runs as root.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 bookworm|trixie" >&2; exit 2; }
RELEASE=$1
case "$RELEASE" in bookworm|trixie) ;; *) echo "usage: $0 bookworm|trixie" >&2; exit 2 ;; esac
# Other directories (e.g. while iterating on the packaging) may be given with
# DEBS=DIR UPGRADE=DIR; nothing is built then.
DEBS=${DEBS:-$ROOT/dist/$RELEASE}
UPGRADE=${UPGRADE:-$ROOT/dist/$RELEASE-upgrade}
IMAGE=localhost/kea-scep-ra-check:$RELEASE
CTR=kea-scep-ra-check-$RELEASE-$$

. "$ROOT/scripts/lib.sh"
lib_label "check-debs $RELEASE"
WORK=""
STARTED=$(date +%s)
lib_cleanup() {
    if [ "$status" -ne 0 ] && podman container exists "$CTR" 2>/dev/null; then
        echo "-- journal of the container (last 40 lines)" >&2
        podman exec "$CTR" journalctl --no-pager -n 40 >&2 || true
    fi
    if podman container exists "$CTR" 2>/dev/null; then
        if [ "${KEEP:-0}" = 1 ]; then
            echo "check-debs: container $CTR kept (podman --runtime runc exec -it $CTR bash)" >&2
        else
            podman rm -f "$CTR" >/dev/null || true
        fi
    fi
    [ -z "$WORK" ] || rm -rf "$WORK"
}
trap lib_on_exit EXIT
trap 'exit 130' INT TERM

# The default packages are rebuilt when they were built from another commit.
if [ ! -f "$DEBS/SOURCE" ] || { [ "$DEBS" = "$ROOT/dist/$RELEASE" ] &&
        [ "$(cut -d' ' -f1 "$DEBS/SOURCE")" != "$(git -C "$ROOT" rev-parse HEAD)" ]; }; then
    step "packages of HEAD (scripts/build-debs.sh $RELEASE)"
    "$ROOT/scripts/build-debs.sh" "$RELEASE"
fi
commit=$(cut -d' ' -f1 "$DEBS/SOURCE")
echo "   packages: $(cat "$DEBS/SOURCE") in $DEBS"
if [ "$UPGRADE" = "$ROOT/dist/$RELEASE-upgrade" ] &&
   [ "$(cat "$UPGRADE/BASED-ON" 2>/dev/null || true)" != "$commit" ]; then
    step "later version for the upgrade (a changed packaged config, +upgradetest1)"
    WORK=$(mktemp -d /tmp/check-debs-"$RELEASE".XXXXXX)
    git clone --quiet "$ROOT" "$WORK/src"
    git -C "$WORK/src" checkout --quiet "$commit"
    echo "# (a later release changed this file)" >> "$WORK/src/conf/scep-ra.toml.in"
    git -C "$WORK/src" -c user.name=check -c user.email=check@localhost \
        commit --quiet -am "upgrade test: the packaged config changes"
    "$ROOT/scripts/build-debs.sh" --from "$WORK/src" --version-suffix +upgradetest1 \
        --out "$UPGRADE" --nocheck "$RELEASE"
    echo "$commit" > "$UPGRADE/BASED-ON"
fi

if ! podman image exists "$IMAGE"; then
    step "check image $IMAGE: systemd and the test tools, none of the packages"
    podman build --pull=never -t "$IMAGE" -f - "$ROOT/tests/packaging" <<EOF
FROM localhost/$RELEASE:min
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends systemd systemd-sysv dbus procps file curl openssl \
    iproute2 python3 python3-scapy python3-cryptography strongswan-pki \
    libstrongswan-extra-plugins kea-dhcp4-server && apt-get clean
EOF
fi

step "boot systemd in a fresh container"
podman run -d --name "$CTR" --systemd=always --privileged \
    -v "$ROOT:/src:ro" -v "$DEBS:/debs:ro" -v "$UPGRADE:/debs-upgrade:ro" \
    "$IMAGE" /sbin/init >/dev/null
tries=0
until state=$(podman exec "$CTR" systemctl is-system-running 2>/dev/null) ||
      [ "$state" = degraded ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ]; then
        podman logs "$CTR" | tail -n 30
        echo "systemd did not come up: $state" >&2
        exit 1
    fi
    sleep 0.5
done
echo "   systemd $(podman exec "$CTR" systemctl --version | head -n 1 | cut -d' ' -f2-): $state"

ALL_PHASES="prepare install start kea journey reload low_port upgrade remove purge_keeps_ca
            reinstall_keeps_ca purge_unused"
for phase in ${PHASES:-$ALL_PHASES}; do
    step "$phase"
    podman exec "$CTR" sh /src/tests/packaging/in-container.sh "$phase"
done
SCORE=$(podman exec "$CTR" cat /root/check/exposure-score 2>/dev/null || echo "not measured")
[ "${KEEP:-0}" = 1 ] || podman rm -f "$CTR" >/dev/null

if [ "${PIUPARTS:-1}" = 1 ]; then
    step "piuparts (tests/packaging/piuparts.sh $RELEASE)"
    "$ROOT/tests/packaging/piuparts.sh" "$RELEASE" "$DEBS"
fi

STEP=done
echo "== check-debs $RELEASE: ${PHASES:+phases $PHASES: }all checks passed in $(( $(date +%s) - STARTED )) s"
echo "   exposure level (systemd-analyze security): $SCORE"
for deb in "$DEBS"/*.deb; do
    printf '   %10d bytes  %s\n' "$(stat -c %s "$deb")" "$(basename "$deb")"
done
