#!/bin/sh
# piuparts on the packages of one release: install into a minimal chroot of
# that release (dependencies from Debian's mirror), remove, purge, and fail on
# any file left behind or broken along the way. Runs as root on the host
# (piuparts chroots); the base tarball is made with mmdebstrap once.
#
#   tests/packaging/piuparts.sh bookworm|trixie [DIR]   (default dist/<release>)
#
# piuparts cannot start services (its chroot has no init, and it denies
# starts through policy-rc.d) and does not run the upgrade between two local
# builds: check-debs.sh does those in a systemd container.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RELEASE=${1:-}
case "$RELEASE" in bookworm|trixie) ;; *) echo "usage: $0 bookworm|trixie [DIR]" >&2; exit 2 ;; esac
DEBS=${2:-$ROOT/dist/$RELEASE}
BASE=${TMPDIR:-/var/tmp}/kea-scep-ra-piuparts-$RELEASE.tar.gz

say() { echo "== piuparts $RELEASE: $1"; }

for tool in piuparts mmdebstrap; do
    if ! command -v "$tool" >/dev/null; then
        say "installing $tool"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$tool"
    fi
done
if [ ! -s "$BASE" ]; then
    say "base tarball $BASE (mmdebstrap --variant=minbase)"
    mmdebstrap --variant=minbase "$RELEASE" "$BASE.tmp.tar.gz"
    mv "$BASE.tmp.tar.gz" "$BASE"
fi

# Debian 12's piuparts (1.1.7) does not know that trixie's debconf leaves
# this empty directory behind: it fails Debian's own kea-dhcp4-server alike.
ignore=""
[ "$RELEASE" = trixie ] && ignore="--ignore=/var/cache/debconf/tmp.ci/"

say "install, remove, purge: $(cd "$DEBS" && echo kea-dhcp4-scep-hook_*.deb scep-ra_*.deb)"
# shellcheck disable=SC2086
piuparts -d "$RELEASE" -m http://deb.debian.org/debian -b "$BASE" --no-upgrade-test \
    $ignore "$DEBS"/kea-dhcp4-scep-hook_*.deb "$DEBS"/scep-ra_*.deb
