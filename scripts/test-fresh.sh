#!/bin/bash
# Proves the README's commands on a machine that has never seen the project:
# a minimal Debian image (mmdebstrap --variant=minbase) and, in a clean
# container of it, a clone of the committed tree runs the main command, the
# test command, one step at a time; the package checks build and check the
# .debs of the same commit in their own clean containers. The first failing
# step is named and its output is left on screen.
#   usage: scripts/test-fresh.sh bookworm|trixie [STEP...]
#   steps: demo tests packages bench bench-dhcp profile store-growth quick (default: demo
#   tests packages, in that order; bench, profile, store-growth and quick need the build
#   that demo or tests leaves; the benches install their own tools (profile
#   with perf), and bench-dhcp builds the hook itself;
#   quick runs the hook's unit suites and the Kea end-to-end suite of the
#   test command, building only what they need), or base alone:
#   only the host tools and the base image (what .ci/run prepares before it
#   runs checks side by side, so that they never wait on one apt lock).
# Environment: FRESH_REBUILD_BASE=1 rebuilds the base image even if present;
# FUZZ_SECONDS is passed to the test command; BASE_REF=<commit> makes the
# bench step build scep-ra of that commit too (from `git archive`, in
# /base) and run it as enroll-bench.sh's BASE_RA: before/after ratios on
# that release from one invocation. SERVERS is passed to enroll-bench.sh,
# SIZES to store-growth.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RELEASE=${1:-}
case "$RELEASE" in
    bookworm | trixie) shift ;;
    *) echo "usage: $0 bookworm|trixie [demo] [tests] [packages] [bench] [bench-dhcp] [profile] [store-growth] [quick] | base" >&2
       exit 2 ;;
esac
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(demo tests packages)

IMAGE=localhost/$RELEASE:min
NAME=kea-scep-fresh-$RELEASE-$$
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/kea-scep-fresh.XXXXXX")
mkdir "$WORK/bench" "$WORK/base"
. "$ROOT/scripts/lib.sh"
lib_label "fresh $RELEASE"
lib_cleanup() {
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap lib_on_exit EXIT
trap 'exit 130' INT TERM

ensure_host_tools
ensure_base_image "$RELEASE" ${FRESH_REBUILD_BASE:+rebuild}
if [ "${STEPS[*]}" = base ]; then
    say "base image $IMAGE ready"
    exit 0
fi

# ------------------------------------------------------------------ clone --
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "test-fresh: note: uncommitted changes are not tested (a clone of HEAD is)" >&2
fi
git clone --quiet "$ROOT" "$WORK/src" || fail "clone"
say "$(git -C "$WORK/src" log -1 --format='%h %s') in a clean $RELEASE container"
BASE_REF=${BASE_REF:-}
BENCH_BASE=""
if [ -n "$BASE_REF" ]; then
    git -C "$ROOT" archive "$BASE_REF" | tar -x -C "$WORK/base" || fail "clone" "git archive $BASE_REF"
    say "bench baseline: $(git -C "$ROOT" log -1 --format='%h %s' "$BASE_REF")"
    # Its build only: the bench runs the checked-out tree's scripts.
    BENCH_BASE="(cd /base && ./scripts/build.sh ra/scep-ra >/dev/null) && BASE_RA=/base/build/ra/scep-ra "
fi

# --privileged: the tests create network namespaces and veth pairs. The
# host's network: apt reaches Debian's mirror, tests use loopback. /bench
# is a bind mount: on the container's own overlay fsync is a no-op
# (fsync=volatile), which would flatter the store's durable writes.
podman run -d --name "$NAME" --privileged --network=host -v "$WORK/src:/src" \
    -v "$WORK/bench:/bench" -v "$WORK/base:/base" ${SERVERS:+-e SERVERS="$SERVERS"} ${SIZES:+-e SIZES="$SIZES"} \
    -e FUZZ_SECONDS="${FUZZ_SECONDS:-15}" -e CI=true "$IMAGE" sleep infinity >/dev/null \
    || fail "container" "podman run $IMAGE"
# As in Debian's official container images: dpkg skips its fsync()s, which
# on a container's overlay cost minutes of unpacking and protect nothing.
podman exec "$NAME" sh -c 'echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/container-unsafe-io' \
    || fail "container" "dpkg force-unsafe-io"

declare -A COMMAND=(
    [demo]="./scripts/demo.sh"
    [tests]="./scripts/test.sh"
    [bench]="./scripts/install-deps.sh bench && ${BENCH_BASE}TMPDIR=/bench ./bench/scep/enroll-bench.sh"
    [bench-dhcp]="./scripts/install-deps.sh bench && ./scripts/build.sh hooks/libdhcp_scep.so \
        && TMPDIR=/bench ./bench/dhcp-option43.sh"
    [profile]="./scripts/install-deps.sh profile && TMPDIR=/bench ./bench/scep/profile.sh"
    [store-growth]="./scripts/install-deps.sh bench && TMPDIR=/bench ./bench/store/store-growth.sh"
    [quick]="meson test -C build --print-errorlogs unit-hook unit-hook-load unit-common e2e-kea"
)
declare -a TIMES=()
for step in "${STEPS[@]}"; do
    started=$SECONDS
    case "$step" in
        demo | tests | bench | bench-dhcp | profile | store-growth | quick)
            say "step $step: ${COMMAND[$step]}"
            podman exec -w /src "$NAME" sh -c "${COMMAND[$step]}" \
                || fail "$step" "${COMMAND[$step]} exited $?" ;;
        packages)
            # Packages are built and checked in containers of their own (a
            # build container, then one booted with systemd): from the host.
            say "step packages: tests/packaging/check-debs.sh $RELEASE"
            "$ROOT/tests/packaging/check-debs.sh" "$RELEASE" \
                || fail "$step" "tests/packaging/check-debs.sh $RELEASE exited $?" ;;
        *) fail "$step" "unknown step (demo, tests, packages, bench, bench-dhcp, profile, store-growth, quick)" ;;
    esac
    TIMES+=("$step $((SECONDS - started)) s")
done

say "passed: ${TIMES[*]}; total $SECONDS s"
