#!/usr/bin/env bash
# SCEP enrollment benchmark (issue "scep-ra"): scep-ra against micromdm's
# scepserver and against the RSA crypto floor, and scep-ra as an RA in front
# of scepserver (issue 10) against scepserver directly, in one invocation.
#
#   1. builds scep-ra and the load generator if needed;
#   2. generates the test manufacturer PKI (tests/fixtures/test_pki.py);
#   3. ROUNDS times, in rotating order:
#        floor      openssl speed -seconds SPEED_SECONDS rsa2048 (one core):
#                   3 RSA-2048 private-key ops per enrollment (decrypt the
#                   envelope, sign the certificate, sign the CertRep)
#        scep-ra    fresh state dir, rsa:2048 CA, MIC-signed PKCSReqs
#        scepserver fresh depot, 2048-bit CA, self-signed + challengePassword
#        scepserver-direct  the scepserver run at UPSTREAM_N/UPSTREAM_C: the
#                   baseline of
#        scep-ra-upstream  scep-ra ([ca] backend = "scep", same challenge) in
#                   front of a fresh scepserver: the same requests as
#                   scepserver-direct, through the RA; CPU of both processes
#      each server run = N timed enrollments at concurrency C (scep_load),
#      server CPU = utime+stime of the server process over the timed window;
#   4. prints the medians, the ratios and PASS/MISS per target:
#        scep-ra CPU-s/enrollment / floor     <= TARGET_FLOOR   (1.7 on Debian 12, 1.5 later)
#        scep-ra enrollments/s / scepserver's >= TARGET_SPEEDUP (3)
#      and, as ratios against scepserver direct in the same rounds, the RA's
#      throughput, its added p50/p99 latency and its CPU per enrollment
#
# Exit status: 0 when the bench ran (PASS or MISS), 1 when it could not
# (missing tool, build failure, a server did not start, scep_load failed, or
# a scep-ra reply was not a SUCCESS carrying the requested certificate).
# See bench/scep/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}

N=${N:-2000}                          # timed enrollments per server run
C=${C:-8}                             # concurrent keep-alive connections
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-0}                   # untimed requests first; 0 = 2 per connection
POOL=${POOL:-64}                      # RSA-2048 CSR keys, reused round-robin
CIPHER=${CIPHER:-aes128}              # aes128 | aes256 | des3 | des (both servers: aes128/des3)
DIGEST=${DIGEST:-sha256}              # sha256 | sha1
SPEED_SECONDS=${SPEED_SECONDS:-3}
RA_PORT=${RA_PORT:-18480}
REF_PORT=${REF_PORT:-18481}
SERVERS=${SERVERS:-"scep-ra scepserver scepserver-direct scep-ra-upstream"}   # add "scep-ra-challenge" for scep-ra's challenge path
# BASE_RA: another scep-ra binary (an older build) that runs as "scep-ra-base"
# in the same rounds, for before/after ratios from one invocation.
BASE_RA=${BASE_RA:-}
if [ -n "$BASE_RA" ]; then
    [ -x "$BASE_RA" ] || { echo "enroll-bench: BASE_RA '$BASE_RA' is not an executable" >&2; exit 1; }
    case " $SERVERS " in *" scep-ra-base "*) ;; *) SERVERS="$SERVERS scep-ra-base" ;; esac
fi
# scep-ra in front of scepserver, against scepserver directly: N and C of
# both runs. C=1 because scepserver 2.1.0's depot races under concurrency
# (duplicate serials, FAILUREs; see README.md), which would measure its bug.
UPSTREAM_N=${UPSTREAM_N:-500}
UPSTREAM_C=${UPSTREAM_C:-1}
CHALLENGE=${CHALLENGE:-bench-challenge-secret}
REF_TOLERATE=${REF_TOLERATE:-1}       # 1: scepserver 2.1.0's concurrency failures are reported, not fatal
SERVER_CPUS=${SERVER_CPUS:-}          # e.g. "0": taskset -c for the servers (default: unpinned)
LOAD_CPUS=${LOAD_CPUS:-}              # taskset -c for scep_load
# Issue 11's targets: OpenSSL 3.0 (Debian 12) spends more per certificate
# parse than 3.2 and later (Debian 13) whatever the RA does.
DEFAULT_TARGET_FLOOR=1.5
case "$(openssl version)" in "OpenSSL 3.0."* | "OpenSSL 3.1."*) DEFAULT_TARGET_FLOOR=1.7 ;; esac
TARGET_FLOOR=${TARGET_FLOOR:-$DEFAULT_TARGET_FLOOR}
TARGET_SPEEDUP=${TARGET_SPEEDUP:-3}
KEEP_TMP=${KEEP_TMP:-0}               # 1: keep state dirs, depots, logs, outputs
PYTHON=${PYTHON:-/usr/bin/python3}    # needs python3-cryptography (tests/fixtures/README.md)
POOL_KEYS=${POOL_KEYS:-}              # PEM file to keep the pool keys across invocations (default: per run)

die() { echo "enroll-bench: $*" >&2; exit 1; }
# shellcheck source=bench/scep/common.sh
source "$BENCH_DIR/common.sh"

for tool in openssl scepserver curl ninja awk ss "$PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# ------------------------------------------------------------------ build --
echo "== build"
scep_build_ra

WORK=$(mktemp -d "${TMPDIR:-/tmp}/enroll-bench.XXXXXX")
SERVER_PID=
UPSTREAM_PID=
cleanup() {
    stop_pids "$SERVER_PID" "$UPSTREAM_PID"
    if [ "$KEEP_TMP" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

scep_build_load

# ---------------------------------------------------------------- fixture --
echo "== fixture"
make_fixture

for port in "$RA_PORT" "$REF_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        die "TCP port $port is in use (set RA_PORT / REF_PORT)"
    fi
done

SERVER_WRAP=()
LOAD_WRAP=()
[ -n "$SERVER_CPUS" ] && SERVER_WRAP=(taskset -c "$SERVER_CPUS")
[ -n "$LOAD_CPUS" ] && LOAD_WRAP=(taskset -c "$LOAD_CPUS")

echo "== scep-ra $(ra_identity); scepserver $(dpkg-query -W -f='${Version}' scep 2>/dev/null || echo '?');" \
     "$(openssl version | cut -d' ' -f1-2); $(nproc) CPUs; $(date -u '+%F %T') UTC"
echo "   N=$N C=$C rounds=$ROUNDS pool=$POOL cipher=$CIPHER digest=$DIGEST" \
     "servers=${SERVER_CPUS:-unpinned} load=${LOAD_CPUS:-unpinned}"

stop_server() {
    stop_pids "$SERVER_PID" "$UPSTREAM_PID"
    SERVER_PID=
    UPSTREAM_PID=
}

# A fresh scepserver on REF_PORT, its depot in DIR; its PID goes into the
# variable named VAR.
start_scepserver() {
    local dir=$1 log=$1/server.log
    scepserver ca -init -keySize 2048 -depot "$dir/depot" >"$dir/ca-init.log" 2>&1 \
        || die "scepserver ca -init failed"
    "${SERVER_WRAP[@]}" scepserver -depot "$dir/depot" -port "$REF_PORT" -challenge "$CHALLENGE" \
        -allowrenew 0 >"$dir/server.out" 2>"$log" &
    printf -v "$2" '%s' $!
    wait_for "$REF_PORT" "$log" "${!2}"
}

# scep-ra in front of a fresh scepserver (DIR/upstream) with [ca] backend =
# "scep", pinned to its CA, with scepserver's challenge: the requests are
# the scepserver run's, and the CSR's challenge passes through.
start_upstream_ra() {
    local dir=$1 pin
    mkdir -p "$dir/upstream"
    start_scepserver "$dir/upstream" UPSTREAM_PID
    pin=$(openssl x509 -in "$dir/upstream/depot/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :)
    cat >"$dir/scep.toml" <<EOF
[ra]
listen = "127.0.0.1:$RA_PORT"
state-dir = "$dir/state"

[ca]
backend = "scep"
url = "http://127.0.0.1:$REF_PORT/scep"
ca-fingerprint = "sha256:$pin"
timeout = "60s"

[auth]
manufacturer-roots = "$PKI/manufacturer-roots.pem"
mic-issuers = ["Test Manufacturing CA SHA2"]
challenge = "$CHALLENGE"
approval = "auto"
EOF
    "${SERVER_WRAP[@]}" "$SCEP_RA" serve --config "$dir/scep.toml" >"$dir/server.out" 2>"$dir/server.log" &
    SERVER_PID=$!
    wait_for "$RA_PORT" "$dir/server.log"
}

# Runs scep_load; keeps its RESULT line in RESULT_LINE.
run_load() {
    local out=$1 rc=0
    shift
    "${LOAD_WRAP[@]}" "$LOAD" -n "$LOAD_N" -c "$LOAD_C" --warmup "$WARMUP" --pool "$POOL" \
        --pool-keys "${POOL_KEYS:-$WORK/pool-keys.pem}" --cipher "$CIPHER" --digest "$DIGEST" \
        --server-pid "$SERVER_PID" "$@" >"$out" 2>"$out.err" || rc=$?
    sed 's/^/     /' "$out" | grep -v '^     RESULT' || true
    sed 's/^/     ! /' "$out.err" | head -8
    RESULT_LINE=$(grep '^RESULT ' "$out" || true)
    return $rc
}

# `server` is scep-ra (MIC), scep-ra-challenge, scepserver, scepserver-direct or
# scep-ra-upstream.
run_server() {
    local server=$1 round=$2
    local dir=$WORK/r$round/$server
    mkdir -p "$dir"
    LOAD_N=$N
    LOAD_C=$C
    case $server in scepserver-direct|scep-ra-upstream) LOAD_N=$UPSTREAM_N LOAD_C=$UPSTREAM_C ;; esac
    case $server in
    scep-ra|scep-ra-challenge|scep-ra-base)
        local binary=$SCEP_RA
        [ "$server" = scep-ra-base ] && binary=$BASE_RA
        write_ra_config "$dir"
        "${SERVER_WRAP[@]}" "$binary" serve --config "$dir/scep.toml" >"$dir/server.out" 2>"$dir/server.log" &
        SERVER_PID=$!
        wait_for "$RA_PORT" "$dir/server.log"
        local mode=("${MICS[@]}")
        [ "$server" = scep-ra-challenge ] && mode=(--challenge "$CHALLENGE")
        echo "   [$round] $server (pid $SERVER_PID)"
        local rc=0
        run_load "$dir/load.out" --url "http://127.0.0.1:$RA_PORT/scep" "${mode[@]}" || rc=$?
        if [ $rc != 0 ]; then
            stop_server
            die "$server run failed (scep_load exit status $rc, see above; logs in $dir)"
        fi
        ;;
    scepserver|scepserver-direct)
        start_scepserver "$dir" SERVER_PID
        echo "   [$round] $server (pid $SERVER_PID, N=$LOAD_N C=$LOAD_C)"
        local tolerate=()
        [ "$REF_TOLERATE" = 1 ] && tolerate=(--tolerate-failures)
        local rc=0
        run_load "$dir/load.out" --url "http://127.0.0.1:$REF_PORT/scep" --challenge "$CHALLENGE" \
            "${tolerate[@]}" || rc=$?
        if [ $rc != 0 ]; then
            stop_server
            die "scepserver run failed (scep_load exit status $rc, see above; logs in $dir)"
        fi
        ;;
    scep-ra-upstream)
        start_upstream_ra "$dir"
        echo "   [$round] scep-ra-upstream (scep-ra pid $SERVER_PID -> scepserver pid $UPSTREAM_PID," \
             "N=$LOAD_N C=$LOAD_C)"
        # scepserver's own concurrency failures reach the client through the
        # RA as FAILURE replies: tolerated as in the scepserver run.
        local tolerate=()
        [ "$REF_TOLERATE" = 1 ] && tolerate=(--tolerate-failures)
        local rc=0
        run_load "$dir/load.out" --url "http://127.0.0.1:$RA_PORT/scep" --challenge "$CHALLENGE" \
            --upstream-pid "$UPSTREAM_PID" "${tolerate[@]}" || rc=$?
        if [ $rc != 0 ]; then
            stop_server
            die "scep-ra-upstream run failed (scep_load exit status $rc, see above; logs in $dir)"
        fi
        ;;
    *) die "unknown server $server (scep-ra, scep-ra-challenge, scep-ra-base, scepserver," \
           "scepserver-direct, scep-ra-upstream)" ;;
    esac
    stop_server
    echo "$server $round $RESULT_LINE" >>"$WORK/results.txt"
}

run_floor() {
    local round=$1 out=$WORK/speed-$1.txt signs
    "${SERVER_WRAP[@]}" openssl speed -seconds "$SPEED_SECONDS" rsa2048 >"$out" 2>&1 \
        || die "openssl speed failed"
    signs=$(speed_signs "$out")
    awk -v s="$signs" 'BEGIN {exit !(s + 0 > 0)}' \
        || die "cannot read rsa2048 sign/s from openssl speed (see $out): no floor, no figures"
    echo "   [$round] floor: openssl speed rsa2048: $signs private-key signs/s (one core)" \
         "-> $(awk -v s="$signs" 'BEGIN {printf "%.4f", 3000 / s}') ms CPU per enrollment"
    echo "floor $round signs=$signs" >>"$WORK/results.txt"
}

# ----------------------------------------------------------------- rounds --
: >"$WORK/results.txt"
read -ra STEPS <<<"floor $SERVERS"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    # rotate the order so that no server always runs first or last
    count=${#STEPS[@]}
    for i in $(seq 0 $((count - 1))); do
        step=${STEPS[$(((i + round - 1) % count))]}
        if [ "$step" = floor ]; then
            run_floor "$round"
        else
            run_server "$step" "$round"
        fi
    done
done

# ---------------------------------------------------------------- summary --
echo
awk -v servers="$SERVERS" -v target_floor="$TARGET_FLOOR" -v target_speedup="$TARGET_SPEEDUP" \
    -v n="$N" -v c="$C" -v un="$UPSTREAM_N" -v uc="$UPSTREAM_C" '
function median(list,    a, k, i, j, t) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (k == 0) return -1
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
function add(key, value) { values[key] = (key in values) ? values[key] " " value : value }
$1 == "floor" { split($3, kv, "="); add("floor signs", kv[2]); floor_round[$2] = 3 / kv[2]; next }
{
    server = $1; round = $2
    for (i = 4; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    add(server " rate", f["rate"]); add(server " p50", f["p50_ms"]); add(server " p99", f["p99_ms"])
    add(server " cpu", f["cpu_ms_per_enroll"] / 1000)
    add(server " failed", f["failed"]); add(server " dup", f["duplicate_serials"])
    rate[server, round] = f["rate"]; cpu[server, round] = f["cpu_ms_per_enroll"] / 1000
    p50[server, round] = f["p50_ms"]; p99[server, round] = f["p99_ms"]
    if ("upstream_cpu_ms_per_enroll" in f && f["upstream_cpu_ms_per_enroll"] >= 0)
        add(server " ucpu", f["upstream_cpu_ms_per_enroll"] / 1000)
    delete f
}
END {
    signs = median(values["floor signs"]); floor_cpu = 3 / signs
    printf "== summary: medians of %d rounds, N=%d enrollments per run, concurrency %d\n", split(values["floor signs"], tmp, " "), n, c
    printf "   crypto floor: openssl speed rsa2048 %.0f signs/s on one core -> 3 private-key ops = %.3f ms CPU/enrollment\n\n", signs, 1000 * floor_cpu
    printf "   %-18s %13s %9s %9s %16s %9s %s\n", "server", "enrollments/s", "p50 ms", "p99 ms", "CPU-s/enrollment", "x floor", "failed/dup-serials (all runs)"
    k = split(servers, names, " ")
    for (i = 1; i <= k; i++) {
        s = names[i]
        if (!((s " rate") in values)) continue
        m_rate[s] = median(values[s " rate"]); m_cpu[s] = median(values[s " cpu"])
        split(values[s " failed"], fl, " "); split(values[s " dup"], dp, " "); nf = 0; nd = 0
        for (j in fl) nf += fl[j]; for (j in dp) nd += dp[j]
        printf "   %-18s %13.1f %9.1f %9.1f %16.5f %9.2f %d/%d\n", s, m_rate[s], median(values[s " p50"]), median(values[s " p99"]), m_cpu[s], m_cpu[s] / floor_cpu, nf, nd
    }
    printf "   %-18s %13s %9s %9s %16.5f %9.2f\n", "floor (3 RSA ops)", "", "", "", floor_cpu, 1
    print ""
    if (("scep-ra" in m_rate) && ("scep-ra-base" in m_rate)) {
        line = ""
        for (round = 1; (("scep-ra", round) in cpu) && (("scep-ra-base", round) in cpu); round++)
            line = line sprintf(" %.2f", cpu["scep-ra", round] / cpu["scep-ra-base", round])
        printf "   scep-ra CPU / scep-ra-base CPU %5.2f   (BASE_RA, same rounds) per round:%s\n", m_cpu["scep-ra"] / m_cpu["scep-ra-base"], line
        printf "   scep-ra-base CPU / floor       %5.2f\n", m_cpu["scep-ra-base"] / floor_cpu
    }
    if ("scep-ra" in m_rate) {
        r = m_cpu["scep-ra"] / floor_cpu
        printf "   scep-ra CPU / floor           %6.2f   target <= %s   %s\n", r, target_floor, (r <= target_floor ? "PASS" : "MISS")
        line = ""
        for (round = 1; (("scep-ra", round) in cpu); round++)
            line = line sprintf(" %.2f", cpu["scep-ra", round] / floor_round[round])
        printf "     per round:%s\n", line
    }
    if (("scep-ra" in m_rate) && ("scepserver" in m_rate) && m_rate["scepserver"] > 0) {
        r = m_rate["scep-ra"] / m_rate["scepserver"]
        printf "   scep-ra / scepserver enr/s    %6.2f   target >= %s     %s\n", r, target_speedup, (r >= target_speedup ? "PASS" : "MISS")
        line = ""
        for (round = 1; (("scep-ra", round) in rate) && (("scepserver", round) in rate); round++)
            line = line sprintf(" %.2f", rate["scep-ra", round] / rate["scepserver", round])
        printf "     per round:%s\n", line
        printf "   scepserver CPU / scep-ra CPU  %6.2f\n", m_cpu["scepserver"] / m_cpu["scep-ra"]
    }
    u = "scep-ra-upstream"; d = "scepserver-direct"
    if ((u in m_rate) && (d in m_rate) && m_rate[d] > 0) {
        up50 = median(values[u " p50"]); dp50 = median(values[d " p50"])
        up99 = median(values[u " p99"]); dp99 = median(values[d " p99"])
        ucpu = median(values[u " ucpu"])
        print ""
        print "   scep-ra in front of scepserver ([ca] backend = \"scep\") against scepserver directly,"
        printf "   the same requests in the same rounds, N=%d at concurrency %d (ratios: through the RA / direct):\n", un, uc
        printf "   enrollments/s                 %6.2f   (%.1f vs %.1f)\n", m_rate[u] / m_rate[d], m_rate[u], m_rate[d]
        printf "   p50 latency                   %6.2f   (%+.1f ms added by the RA)\n", up50 / dp50, up50 - dp50
        printf "   p99 latency                   %6.2f   (%+.1f ms)\n", up99 / dp99, up99 - dp99
        printf "   RA CPU per enrollment         %6.2f x scepserver direct (%.3f ms vs %.3f ms)\n", m_cpu[u] / m_cpu[d], 1000 * m_cpu[u], 1000 * m_cpu[d]
        printf "   scepserver CPU behind the RA  %6.2f x direct (%.3f ms per enrollment)\n", ucpu / m_cpu[d], 1000 * ucpu
        line = ""; added = ""
        for (round = 1; ((u, round) in rate) && ((d, round) in rate); round++) {
            line = line sprintf(" %.2f", rate[u, round] / rate[d, round])
            added = added sprintf(" %+.1f", p50[u, round] - p50[d, round])
        }
        printf "     per round: enr/s ratio%s; p50 added ms%s\n", line, added
    }
}' "$WORK/results.txt"
if grep -q '^scepserver .* \(failed=[1-9]\|duplicate_serials=[1-9]\)' "$WORK/results.txt"; then
    echo
    echo "   note: scepserver 2.1.0's file depot has no locking; under concurrency it answers some"
    echo "   requests FAILURE (\"could not convert  to serial number\") and issues duplicate serials."
    echo "   Its enrollments/s counts successful timed replies only (REF_TOLERATE=1)."
fi
