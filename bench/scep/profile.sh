#!/usr/bin/env bash
# Where scep-ra's CPU goes per MIC enrollment (issue 11), by `perf record`.
#
#   1. builds scep-ra and scep_load, generates the test manufacturer PKI and
#      starts scep-ra with enroll-bench.sh's config (bench/scep/common.sh);
#   2. runs scep_load (N enrollments at concurrency C, MIC-signed PKCSReqs)
#      while `perf record` samples the scep-ra process only (cpu-clock, call
#      graphs by DWARF unwinding: Debian's libcrypto and libsqlite3 have no
#      frame pointers, so CALL_GRAPH=fp loses the callers of their code);
#   3. sorts the samples into buckets (bench/scep/profile_buckets.py, a table
#      of call-chain rules) and prints, per bucket, its share of the samples
#      and that share of scep-ra's CPU time per enrollment in a run of the
#      same load without perf (utime+stime from /proc/PID/stat over
#      scep_load's timed window; perf's own cost is not counted);
#   4. PROBES=1: a second, shorter run (PROBE_N) under `perf stat` with
#      uprobes counts decoder contexts, RSA operations and fdatasync calls
#      per enrollment (skipped, with the reason, where uprobes do not work).
#
# Needs root (or perf_event_paranoid <= 1, for the kernel's share) and
# `perf` (Debian package linux-perf). Exit status: 0 when the profile was
# printed, 1 when it could not be taken. See bench/scep/README.md, "Profile".
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}

N=${N:-2000}                          # timed enrollments
C=${C:-8}                             # concurrent keep-alive connections
WARMUP=${WARMUP:-0}                   # untimed requests first; 0 = 2 per connection
POOL=${POOL:-64}                      # RSA-2048 CSR keys, reused round-robin
POOL_KEYS=${POOL_KEYS:-}              # PEM file keeping the pool keys across invocations
CIPHER=${CIPHER:-aes128}
DIGEST=${DIGEST:-sha256}
RA_PORT=${RA_PORT:-18490}             # not enroll-bench's, so both can be installed side by side
CHALLENGE=${CHALLENGE:-bench-challenge-secret}
CALL_GRAPH=${CALL_GRAPH:-dwarf}       # dwarf | fp
FREQ=${FREQ:-1999}                    # samples per second of scep-ra CPU time
PROBES=${PROBES:-1}                   # 1: count calls with uprobes in a second run
PROBE_N=${PROBE_N:-400}
FLOOR_SECONDS=${FLOOR_SECONDS:-2}     # openssl speed -seconds, for the floor printed alongside
TOP=${TOP:-0}                         # > 0: also list the TOP symbols of "the rest"
KEEP_TMP=${KEEP_TMP:-0}               # 1: keep perf.data, perf script output, logs
PYTHON=${PYTHON:-/usr/bin/python3}    # needs python3-cryptography (the fixture)

die() { echo "profile: $*" >&2; exit 1; }
# shellcheck source=bench/scep/common.sh
source "$BENCH_DIR/common.sh"

command -v perf >/dev/null || die "perf not found (scripts/install-deps.sh profile installs linux-perf)"
for tool in curl ninja ss "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
case $CALL_GRAPH in
dwarf) CALL_GRAPH_OPT=(--call-graph "dwarf,16384") ;;
fp) CALL_GRAPH_OPT=(--call-graph fp) ;;
*) die "CALL_GRAPH must be dwarf or fp, not '$CALL_GRAPH'" ;;
esac
PARANOID=$(cat /proc/sys/kernel/perf_event_paranoid)
if [ "$(id -u)" != 0 ] && [ "$PARANOID" -gt 1 ]; then
    die "perf_event_paranoid is $PARANOID: run as root, or sysctl kernel.perf_event_paranoid=1" \
        "(kernel samples are needed for fsync, pwrite and HTTP)"
fi
perf stat -e cpu-clock -o /dev/null true 2>/dev/null || die "perf cannot count here (perf stat -e cpu-clock true failed)"

echo "== build"
scep_build_ra
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scep-profile.XXXXXX")
SERVER_PID=
PERF_PID=
PROBES_ADDED=0
TRACEFS_MOUNTED=0
cleanup() {
    stop_pids "$PERF_PID" "$SERVER_PID"
    if [ "$PROBES_ADDED" = 1 ]; then perf probe -q -d 'probe_scep:*' 2>/dev/null || true; fi
    if [ "$TRACEFS_MOUNTED" = 1 ]; then umount /sys/kernel/tracing 2>/dev/null || true; fi
    if [ "$KEEP_TMP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
scep_build_load

echo "== fixture"
make_fixture
if ss -Hltn "sport = :$RA_PORT" | grep -q .; then
    die "TCP port $RA_PORT is in use (set RA_PORT)"
fi

start_ra() {
    local dir=$1
    mkdir -p "$dir"
    write_ra_config "$dir"
    "$SCEP_RA" serve --config "$dir/scep.toml" >"$dir/server.out" 2>"$dir/server.log" &
    SERVER_PID=$!
    wait_for "$RA_PORT" "$dir/server.log"
}

stop_ra() {
    stop_pids "$SERVER_PID"
    SERVER_PID=
}

# scep_load N OUT: MIC-signed enrollments against the running scep-ra.
load() {
    local n=$1 out=$2
    "$LOAD" -n "$n" -c "$C" --warmup "$WARMUP" --pool "$POOL" \
        --pool-keys "${POOL_KEYS:-$WORK/pool-keys.pem}" --cipher "$CIPHER" --digest "$DIGEST" \
        --server-pid "$SERVER_PID" --url "http://127.0.0.1:$RA_PORT/scep" "${MICS[@]}" \
        >"$out" 2>"$out.err" || { cat "$out" "$out.err" >&2; die "scep_load failed"; }
}

result_field() { sed -n "s/^RESULT .*[ ]$2=\([^ ]*\).*/\1/p" "$1"; }

echo "== scep-ra $(ra_identity); $(openssl version | cut -d' ' -f1-2); perf $(perf --version | cut -d' ' -f3);" \
     "$(nproc) CPUs; $(date -u '+%F %T') UTC"
echo "   N=$N C=$C pool=$POOL cipher=$CIPHER digest=$DIGEST; perf record -e cpu-clock -F $FREQ" \
     "${CALL_GRAPH_OPT[*]} -p <scep-ra>"

# --------------------------------------------------------------- baseline --
# Sampling with DWARF stacks costs scep-ra CPU time of its own (the kernel
# copies each sample's stack): the shares of the profiled run are applied to
# the CPU time per enrollment of this run without perf.
start_ra "$WORK/baseline"
load "$N" "$WORK/baseline.out"
stop_ra
CPU_MS=$(result_field "$WORK/baseline.out" cpu_ms_per_enroll)
[ -n "$CPU_MS" ] || die "scep_load printed no cpu_ms_per_enroll"
echo "   without perf: $(grep '^RESULT' "$WORK/baseline.out" | cut -d' ' -f2-10)"

# The floor now, on this machine: 3 RSA-2048 private-key operations.
openssl speed -seconds "$FLOOR_SECONDS" rsa2048 >"$WORK/speed.txt" 2>&1 || die "openssl speed failed"
SIGNS=$(speed_signs "$WORK/speed.txt")
awk -v s="$SIGNS" 'BEGIN {exit !(s + 0 > 0)}' || die "cannot read rsa2048 sign/s from openssl speed"
FLOOR_US=$(awk -v s="$SIGNS" 'BEGIN {printf "%.0f", 3e6 / s}')
echo "   floor:        3 RSA-2048 private-key ops = $FLOOR_US us (openssl speed: $SIGNS signs/s, one core)"

# ---------------------------------------------------------------- profile --
start_ra "$WORK/profile"
perf record -q -e cpu-clock -F "$FREQ" "${CALL_GRAPH_OPT[@]}" -p "$SERVER_PID" \
    -o "$WORK/perf.data" >"$WORK/perf-record.log" 2>&1 &
PERF_PID=$!
sleep 0.5
kill -0 "$PERF_PID" 2>/dev/null || { cat "$WORK/perf-record.log" >&2; die "perf record did not start"; }
load "$N" "$WORK/profile.out"
kill -INT "$PERF_PID"
wait "$PERF_PID" 2>/dev/null || true
PERF_PID=
stop_ra
echo "   under perf:   $(grep '^RESULT' "$WORK/profile.out" | cut -d' ' -f2-10)"

perf script -i "$WORK/perf.data" --no-inline -F comm,tid,period,ip,sym,dso >"$WORK/perf.script" 2>"$WORK/perf-script.log" \
    || { tail -5 "$WORK/perf-script.log" >&2; die "perf script failed"; }
echo
"$PYTHON" "$BENCH_DIR/profile_buckets.py" --cpu-ms "$CPU_MS" --floor-us "$FLOOR_US" --top "$TOP" \
    "$WORK/perf.script" \
    || die "profile_buckets.py failed"

# ----------------------------------------------------------------- probes --
# Uprobes on exported functions need no kernel headers, only tracefs.
PROBE_SPECS=(
    "libcrypto.so.3 OSSL_DECODER_CTX_new_for_pkey decoder_ctx"
    "libcrypto.so.3 RSA_private_encrypt rsa_priv_enc"
    "libcrypto.so.3 RSA_private_decrypt rsa_priv_dec"
    "libcrypto.so.3 RSA_public_encrypt rsa_pub_enc"
    "libcrypto.so.3 RSA_public_decrypt rsa_pub_dec"
    "libc.so.6 fdatasync fdatasync"
    "libc.so.6 fsync fsync"
)
library_path() { ldd "$SCEP_RA" | awk -v lib="$1" '$1 == lib {print $3}'; }
# The function's own address: by name, perf probe would also probe its PLT
# stub inside the library and count every call twice.
symbol_address() {
    nm -D --defined-only "$1" | awk -v fn="$2" '$3 == fn || index($3, fn "@") == 1 {print "0x" $1; exit}'
}

# Adds the uprobes, or leaves in SKIP why it could not.
add_probes() {
    local spec lib fn name path address
    SKIP=
    if [ ! -e /sys/kernel/tracing/uprobe_events ]; then
        if [ "$(id -u)" = 0 ] && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
            TRACEFS_MOUNTED=1
        fi
        [ -e /sys/kernel/tracing/uprobe_events ] || { SKIP="tracefs with uprobe_events unavailable"; return 1; }
    fi
    for spec in "${PROBE_SPECS[@]}"; do
        read -r lib fn name <<<"$spec"
        path=$(library_path "$lib")
        address=$(symbol_address "$path" "$fn")
        [ -n "$address" ] || { SKIP="no symbol $fn in ${path:-$lib}"; return 1; }
        PROBES_ADDED=1
        perf probe -q -x "$path" -a "probe_scep:$name=$address" >>"$WORK/probe.log" 2>&1 \
            || { SKIP="perf probe -x $path $fn failed: $(tail -1 "$WORK/probe.log")"; return 1; }
    done
}

if [ "$PROBES" = 1 ]; then
    echo
    if add_probes; then
        start_ra "$WORK/probes"
        events=
        for spec in "${PROBE_SPECS[@]}"; do events+="probe_scep:${spec##* },"; done
        perf stat -x, -e "${events%,}" -p "$SERVER_PID" -o "$WORK/probe.stat" &
        PERF_PID=$!
        sleep 0.5
        load "$PROBE_N" "$WORK/probes.out"
        kill -INT "$PERF_PID"
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=
        stop_ra
        warm=$((C * 2))
        [ "$WARMUP" != 0 ] && warm=$WARMUP
        echo "== uprobe counts per enrollment ($PROBE_N timed + $warm warm-up enrollments, perf stat)"
        awk -F, -v n=$((PROBE_N + warm)) '$3 ~ /^probe_scep:/ {
            sub(/^probe_scep:/, "", $3); printf "   %-16s %8.2f\n", $3, $1 / n }' "$WORK/probe.stat"
    else
        echo "== uprobe counts skipped: $SKIP"
    fi
fi
