#!/bin/sh
# Builds the Debian packages (kea-dhcp4-scep-hook, scep-ra) for one release
# with dpkg-buildpackage, inside a clean container of that release, from a git
# clone of the committed tree (uncommitted changes are not built). Leaves the
# .debs, .changes, .buildinfo, lintian's report and SOURCE (commit and version)
# in dist/<release>/.
#
#   scripts/build-debs.sh bookworm|trixie
#   scripts/build-debs.sh --from GITDIR --version-suffix +t1 --out DIR --nocheck trixie
#
# The version is debian/changelog's plus +deb12 or +deb13, so that an upgrade
# from Debian 12 to 13 upgrades the packages too. The base image
# localhost/<release>:min is built with mmdebstrap when it is missing. Runs as
# root; every step's output is shown, and a failure names the step.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FROM=$ROOT
SUFFIX=""
OUT=""
NOCHECK=""

usage() {
    echo "usage: $0 [--from GITDIR] [--version-suffix TEXT] [--out DIR] [--nocheck] bookworm|trixie" >&2
    exit 2
}

while [ $# -gt 1 ]; do
    case "$1" in
        --from) FROM=$2; shift 2 ;;
        --version-suffix) SUFFIX=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --nocheck) NOCHECK=nocheck; shift ;;
        *) usage ;;
    esac
done
[ $# -eq 1 ] || usage
RELEASE=$1
case "$RELEASE" in
    bookworm) DEB_RELEASE=12 ;;
    trixie) DEB_RELEASE=13 ;;
    *) usage ;;
esac
OUT=${OUT:-$ROOT/dist/$RELEASE}
IMAGE=localhost/$RELEASE:min

. "$ROOT/scripts/lib.sh"
lib_label "build-debs $RELEASE"
lib_cleanup() { [ -z "${WORK:-}" ] || rm -rf "$WORK"; }
trap lib_on_exit EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    echo "build-debs: run as root (podman with runc, mmdebstrap)" >&2
    exit 1
fi

ensure_host_tools
ensure_base_image "$RELEASE"

WORK=$(mktemp -d /tmp/build-debs-"$RELEASE".XXXXXX)
step "git clone $FROM"
git clone --quiet "$FROM" "$WORK/src"
git -C "$WORK/src" log -1 --format='   commit %H %s'
if [ "$FROM" = "$ROOT" ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    echo "   note: uncommitted changes in $ROOT are not part of this build"
fi

step "changelog entry for Debian $DEB_RELEASE"
base=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$WORK/src/debian/changelog")
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$WORK/src/debian/changelog" | head -n 1)
version=$base+deb$DEB_RELEASE$SUFFIX
{
    printf 'kea-scep-ra (%s) %s; urgency=medium\n\n' "$version" "$RELEASE"
    printf '  * Build for Debian %s (%s).\n\n' "$DEB_RELEASE" "$RELEASE"
    printf ' -- %s  %s\n\n' "$maintainer" "$(date -R)"
    cat "$WORK/src/debian/changelog"
} > "$WORK/changelog" && mv "$WORK/changelog" "$WORK/src/debian/changelog"
echo "   version $version"

step "dpkg-buildpackage in a clean $RELEASE container"
# The container's script reports its own steps; its output is not filtered.
nice -n 10 podman run --rm --network=host -v "$WORK:/build" \
    -e DEB_BUILD_OPTIONS="parallel=2 $NOCHECK" -e DEB_BUILD_PROFILES="$NOCHECK" \
    -e LINT=$RELEASE \
    "$IMAGE" sh -euc '
        say() { echo "== build-debs $LINT (container): $1"; }
        export DEBIAN_FRONTEND=noninteractive
        say "apt-get update"
        apt-get update -q
        say "build dependencies (apt-get build-dep)"
        apt-get install -y -q --no-install-recommends build-essential dpkg-dev
        cd /build/src
        apt-get build-dep -y -q --no-install-recommends ./
        say "dpkg-buildpackage -us -uc -b"
        dpkg-buildpackage -us -uc -b
        say "lintian"
        apt-get install -y -q --no-install-recommends lintian
        cd /build
        status=0
        lintian --info --display-info --pedantic --fail-on error --tag-display-limit 0 \
            ./*.changes > lintian.txt 2>&1 || status=$?
        cat lintian.txt
        exit $status
    '

step "results in $OUT"
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$WORK"/*.deb "$WORK"/*.changes "$WORK"/*.buildinfo "$WORK"/lintian.txt "$OUT"/
echo "$(git -C "$WORK/src" rev-parse HEAD) $version" > "$OUT/SOURCE"
for deb in "$OUT"/*.deb; do
    printf '   %10d bytes  %s\n' "$(stat -c %s "$deb")" "$(basename "$deb")"
done
echo "   lintian: $(grep -c '^[EWIP]:' "$OUT/lintian.txt" || true) tags (see $OUT/lintian.txt)"
STEP=done
