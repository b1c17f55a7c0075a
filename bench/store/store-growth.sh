#!/usr/bin/env bash
# Store growth (issue 11): how scep-ra behaves as its database grows to a
# million certificates, in one invocation. For each size in SIZES:
#
#   1. a fresh state dir; scep-ra enrolls one fixture phone (the template
#      row), then bench/store/store_seed grows the database to SIZE
#      certificates with requests and audit rows in proportion (1% revoked,
#      1 in 5 superseded by a renewal, about 1 in 12 expiring within 30
#      days, pending and rejected requests, failed enrollments);
#   2. database size: main file + WAL after a checkpoint, per certificate;
#   3. start-up: `scep-ra serve` launched until GET /healthz answers 200
#      (median of STARTS starts);
#   4. admin searches through the real admin API over HTTPS (curl, a viewer
#      token): server time = time_total - time_pretransfer, so the TLS
#      handshake is not counted; median of RUNS calls each;
#   5. the CRL: POST /api/certificates/{serial}/revoke, which rebuilds and
#      signs the CRL with every revoked entry before it answers (median of
#      RUNS revocations), and GET /crl of the cached CRL;
#   6. enrollments, once every size is seeded: LOAD_ROUNDS rounds, each
#      running bench/scep/scep_load (LOAD_N MIC enrollments at concurrency
#      LOAD_C) against every size in rotating order: p99 latency and the
#      server's CPU per enrollment (medians per size).
#
# Then a table per size and the ratios last size / first size against the
# goals: p99 and CPU within 20%, every search under 50 ms at the largest.
# Exit status 0 when it ran (PASS or MISS), 1 when it could not.
# See bench/store/README.md.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SIZES=${SIZES:-"10000 100000 1000000"}
LOAD_N=${LOAD_N:-2000}
LOAD_C=${LOAD_C:-8}
LOAD_ROUNDS=${LOAD_ROUNDS:-3}
RUNS=${RUNS:-7}
STARTS=${STARTS:-3}
POOL=${POOL:-64}
RA_PORT=${RA_PORT:-18580}
ADMIN_PORT=${ADMIN_PORT:-18583}
TARGET_RATIO=${TARGET_RATIO:-1.2}
TARGET_SEARCH_MS=${TARGET_SEARCH_MS:-50}
KEEP_TMP=${KEEP_TMP:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
# BASE_RA: another scep-ra binary (an older build, a variant) that takes
# the same enrollment rounds against the same stores, right after this
# one's: its figures come out as base_enroll_* beside enroll_*.
BASE_RA=${BASE_RA:-}
CHALLENGE=bench-challenge-secret   # write_ra_config writes it

die() { echo "store-growth: $*" >&2; exit 1; }

for tool in ninja curl sqlite3 awk ss "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
if [ -n "$BASE_RA" ] && [ ! -x "$BASE_RA" ]; then die "BASE_RA '$BASE_RA' is not an executable"; fi
for port in "$RA_PORT" "$ADMIN_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then die "TCP port $port is in use"; fi
done

# shellcheck source=../scep/common.sh
. "$ROOT/bench/scep/common.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/store-growth.XXXXXX")
SERVER_PID=
cleanup() {
    stop_pids "$SERVER_PID"
    if [ "$KEEP_TMP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "== build"
scep_build_ra
scep_build_load
ninja -C "$BUILD" bench/store/store_seed >/dev/null || die "cannot build bench/store/store_seed"
SEED=$BUILD/bench/store/store_seed
echo "== fixture"
make_fixture
echo "== scep-ra $(ra_identity); $(sqlite3 --version | cut -d' ' -f1) (CLI);" \
     "$(nproc) CPUs; $(date -u '+%F %T') UTC"
echo "   sizes: $SIZES; load N=$LOAD_N C=$LOAD_C x$LOAD_ROUNDS; searches x$RUNS; starts x$STARTS"

. "$BENCH_DIR/store-lib.sh"

: >"$WORK/results.txt"
for size in $SIZES; do
    measure_size "$size"
done
enrollment_rounds
summarize "$WORK/results.txt"
