#!/usr/bin/env bash
# Throughput of kea-dhcp4 with and without SCEP option 43, measured with
# perfdhcp on loopback. One invocation measures three configs (bench/lib.sh):
#   a  plain Kea, no option 43 at all
#   b  plain Kea emitting the same option 43/15 as conf/scep.toml
#      (option-def in space "cisco-scep" + client class on option 60)
#   c  Kea + build/hooks/libdhcp_scep.so with conf/scep.toml
# First checks that b and c put the same option 43/15 bytes on the wire, then
# runs a,b,c,a,b,c,... and reports the median completed 4-way (DORA)
# exchanges per second of each, the spread, and the ratios c/a and c/b.
# See bench/README.md. Exit status: 0 when the bench ran (whatever the
# figures), 1 when it could not (Kea did not start, no replies, b and c
# disagree on the wire, missing tool).
set -euo pipefail
MT=${MT:-1}                           # Kea multi-threading: 1 on, 0 off, default (bench/lib.sh)
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}                   # a,b,c rounds
DURATION=${DURATION:-10}              # seconds of perfdhcp per run
RATE=${RATE:-auto}                    # offered DORA/s; auto = 2 x what (a) achieves
CALIB_RATE=${CALIB_RATE:-30000}       # offered rate of the calibration run
CALIB_DURATION=${CALIB_DURATION:-5}
PIN=${PIN:-1}                         # 1: taskset kea and perfdhcp on different cores
KEA_CPU=${KEA_CPU:-0}
PERFDHCP_CPU=${PERFDHCP_CPU:-1}
CONFIGS=${CONFIGS:-"a b c"}
TARGET_CA=${TARGET_CA:-0.98}
TARGET_CB=${TARGET_CB:-1.0}

# FACTS §1 worked example: what conf/scep.toml's profile must produce.
EXPECTED_43=0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5925285f8f5ff5d55af0d10443233334343463942393935324131350e01010f0101
EXPECTED_15=$(printf '%s' example.nl | od -An -tx1 | tr -d ' \n')

bench_require kea-dhcp4 perfdhcp python3 taskset
if [ "$MT" = 1 ] && ! hook_mt_compatible "$HOOK"; then
    die "MT=1: $HOOK does not export multi_threading_compatible, Kea would refuse it"
fi
NCPU=$(nproc)
if [ "$PIN" = 1 ] && { [ "$KEA_CPU" -ge "$NCPU" ] || [ "$PERFDHCP_CPU" -ge "$NCPU" ]; }; then
    die "PIN=1 needs cores $KEA_CPU and $PERFDHCP_CPU; this machine has $NCPU (set PIN=0)"
fi
check_ports_free
bench_tmp

for cfg in a b c; do
    write_config "$cfg" "$(config_extra $cfg)" "$(quiet_loggers $cfg)"
    write_config "$cfg-debug" "$(config_extra $cfg)" "$(packet_loggers $cfg-debug)"
done
if [ "$PIN" = 1 ]; then
    KEA_WRAPPER=(taskset -c "$KEA_CPU")
    PD_WRAPPER=(taskset -c "$PERFDHCP_CPU")
fi

echo "== kea-dhcp4 $(kea-dhcp4 -v) + perfdhcp on loopback, $NCPU CPUs, $(date -u '+%F %T') UTC"
echo "   $(mt_label)"
echo "   hook: $HOOK"
echo "         $(hook_identity)"
echo "   scep: $SCEP_TOML"
echo "   rounds=$ROUNDS duration=${DURATION}s clients=$CLIENTS pin=$PIN" \
     "$( [ "$PIN" = 1 ] && echo "(kea on cpu $KEA_CPU, perfdhcp on cpu $PERFDHCP_CPU)")"

# ------------------------------------------------------------- wire check --
# 1. dhcp_probe.py does one DORA without option 55 and prints the option 43
#    and 15 bytes of OFFER and ACK as read from its UDP socket.
# 2. A 1 s perfdhcp run with packet logging checks that every reply sent to
#    perfdhcp's traffic carries the 69-byte 43 and the 15 (b, c) or none (a).
echo "== wire check: b and c must put the same option 43/15 on the wire"
declare -A PROBE
for cfg in a b c; do
    start_kea "$cfg"
    PROBE[$cfg]=$(python3 "$BENCH_DIR/dhcp_probe.py" --server-port "$SERVER_PORT" \
                      --client-port "$CLIENT_PORT" --vendor-class "$VENDOR_CLASS") \
        || { stop_kea; die "no DHCP reply from config $cfg"; }
    stop_kea
    echo "   $cfg: ${PROBE[$cfg]//$'\n'/ | }"
done
wire_ok=1
field() { sed -n "s/^$1 \(.* \)\?$2=\([^ ]*\).*/\2/p" <<< "$3"; }
for cfg in b c; do
    for msg in OFFER ACK; do
        got43=$(field "$msg" 43 "${PROBE[$cfg]}")
        got15=$(field "$msg" 15 "${PROBE[$cfg]}")
        n43=$(field "$msg" n43 "${PROBE[$cfg]}")
        if [ "$got43" != "$EXPECTED_43" ] || [ "$got15" != "$EXPECTED_15" ] || [ "$n43" != 1 ]; then
            echo "   MISMATCH $cfg $msg: 43=$got43 15=$got15 n43=$n43"
            wire_ok=0
        fi
    done
done
for msg in OFFER ACK; do
    [ "$(field "$msg" 43 "${PROBE[a]}")" = - ] || { echo "   config a sends option 43 in $msg"; wire_ok=0; }
done
[ "$wire_ok" = 1 ] || die "wire check failed: (b) and (c) do not send the same option 43/15"
echo "   MATCH: b and c send byte-identical option 43 ($(( ${#EXPECTED_43} / 2 )) bytes, the FACTS §1" \
     "example) and option 15 \"example.nl\" in OFFER and ACK without being asked; a sends neither"

load_ok=1
for cfg in a b c; do
    start_kea "$cfg-debug"
    run_perfdhcp "$TMP/$cfg-debug.perfdhcp" 200 1
    stop_kea
    log=$TMP/$cfg-debug.packets.log
    replies=$(grep -c 'DHCP4_RESPONSE_DATA' "$log" || true)
    with43=$(grep -c 'type=043, len=069' "$log" || true)
    with15=$(grep -c 'type=015, len=010' "$log" || true)
    any43=$(grep -c 'type=043' "$log" || true)
    echo "   perfdhcp traffic to $cfg: $replies replies, $with43 with the 69-byte option 43, $with15 with option 15"
    [ "$replies" -ge 100 ] || load_ok=0
    case $cfg in
    a) [ "$any43" = 0 ] || load_ok=0 ;;
    *) { [ "$with43" = "$replies" ] && [ "$with15" = "$replies" ]; } || load_ok=0 ;;
    esac
done
[ "$load_ok" = 1 ] || die "load check failed: see the *-debug.packets.log files (rerun with KEEP_TMP=1)"
echo "   MATCH under perfdhcp traffic too"

# -------------------------------------------------------------- calibrate --
if [ "$RATE" = auto ]; then
    start_kea a
    run_perfdhcp "$TMP/calibrate.perfdhcp" "$CALIB_RATE" "$CALIB_DURATION"
    stop_kea
    achieved=$(pd_rate "$TMP/calibrate.perfdhcp")
    [ -n "$achieved" ] && [ "$(pd_acks "$TMP/calibrate.perfdhcp")" != 0 ] \
        || die "calibration: perfdhcp got no replies (see $TMP/calibrate.perfdhcp)"
    RATE=$(awk -v r="$achieved" 'BEGIN {v = int(2 * r / 1000 + 0.5) * 1000; if (v < 2000) v = 2000; print v}')
    echo "== calibration: a completed $achieved exchanges/s when offered $CALIB_RATE/s;" \
         "measuring at RATE=$RATE (2x)"
else
    echo "== RATE=$RATE (set by caller)"
fi

# ------------------------------------------------------------------ rounds --
# Per run: perfdhcp's completed exchanges/s, its DISCOVER/REQUEST drop %,
# Kea's CPU use (/proc/PID/stat) and CPU time per packet Kea received
# (statistic pkt4-received): the last one does not depend on how much CPU
# the other tenants of the machine left to Kea.
RESULTS=$TMP/results.tsv
: > "$RESULTS"
CLK_TCK=$(getconf CLK_TCK)
stat_names="pkt4-received pkt4-offer-sent pkt4-ack-sent scep.cisco-9800.replies-decorated"
kea_cpu_ticks() { awk '{print $14 + $15}' "/proc/$KEA_PID/stat"; }
echo "== $ROUNDS rounds of $CONFIGS, ${DURATION}s each, offered $RATE DORA/s"
printf '   %-5s %-3s %10s %12s %9s %11s %14s\n' round cfg "exch/s" "drop% D/R" "kea cpu%" "kea us/pkt" "decorated"
for round in $(seq "$ROUNDS"); do
    for cfg in $CONFIGS; do
        start_kea "$cfg"
        out=$TMP/r$round-$cfg.perfdhcp
        t0=$(kea_cpu_ticks)
        run_perfdhcp "$out" "$RATE" "$DURATION"
        t1=$(kea_cpu_ticks)
        stats=$(python3 "$BENCH_DIR/kea_ctl.py" "$(kea_socket "$cfg")" stats $stat_names) \
            || { stop_kea; die "could not read Kea statistics ($cfg)"; }
        stop_kea
        rate=$(pd_rate "$out")
        if [ -z "$rate" ] || [ "$(pd_acks "$out")" = 0 ]; then
            # b is a yardstick, not a target: Kea 2.2's class-level option-def
            # under multi-threading sends replies perfdhcp rejects (README).
            if [ "$cfg" = b ]; then
                echo "   $round     b   perfdhcp failed, run left out: $(grep -m1 '^ERROR' "$out" || echo 'no replies')"
                continue
            fi
            cat "$out" >&2
            die "perfdhcp got no replies from config $cfg (round $round)"
        fi
        kstat() { awk -v n="$1" '$1 == n {print $2}' <<< "$stats"; }
        rx=$(kstat pkt4-received)
        replies=$(( $(kstat pkt4-offer-sent) + $(kstat pkt4-ack-sent) ))
        cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN {print t / hz}')
        us_pkt=$(awk -v c="$cpu_s" -v n="$rx" 'BEGIN {printf "%.2f", n ? c * 1e6 / n : 0}')
        cpu_pct=$(awk -v c="$cpu_s" -v d="$DURATION" 'BEGIN {printf "%.0f", 100 * c / d}')
        dec=-
        if [ "$cfg" = c ]; then
            dec="$(kstat scep.cisco-9800.replies-decorated)/$replies"
            [ "$(kstat scep.cisco-9800.replies-decorated)" = "$replies" ] \
                || echo "   warning: the hook decorated $dec replies"
        fi
        printf '   %-5s %-3s %10.1f %12s %9s %11s %14s\n' "$round" "$cfg" "$rate" "$(pd_drops "$out")" \
            "$cpu_pct" "$us_pkt" "$dec"
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$cfg" "$rate" "$us_pkt" "$cpu_pct" >> "$RESULTS"
    done
done

# ----------------------------------------------------------------- summary --
python3 - "$RESULTS" "$TARGET_CA" "$TARGET_CB" "$RATE" "$DURATION" <<'EOF'
import statistics, sys
path, target_ca, target_cb, rate, duration = sys.argv[1:6]
target_ca, target_cb = float(target_ca), float(target_cb)
eps, cost, by_round = {}, {}, {}
for line in open(path):
    rnd, cfg, r, us, _ = line.rstrip("\n").split("\t")
    eps.setdefault(cfg, []).append(float(r))
    cost.setdefault(cfg, []).append(float(us))
    by_round.setdefault(rnd, {})[cfg] = float(r)
names = {"a": "plain Kea, no option 43", "b": "plain Kea, option-def+class", "c": "libdhcp_scep.so hook"}
print("== summary: completed DORA exchanges/s at offered %s/s, %s s runs" % (rate, duration))
print("   %-3s %-28s %9s %9s %9s %8s %11s" % ("cfg", "", "median", "min", "max", "spread", "kea us/pkt"))
med, med_cost = {}, {}
for cfg in sorted(eps):
    v = eps[cfg]
    med[cfg] = statistics.median(v)
    med_cost[cfg] = statistics.median(cost[cfg])
    spread = 100 * (max(v) - min(v)) / med[cfg] if med[cfg] else 0
    print("   %-3s %-28s %9.0f %9.0f %9.0f %7.0f%% %11.2f" % (
        cfg, names.get(cfg, ""), med[cfg], min(v), max(v), spread, med_cost[cfg]))
print("   (spread = (max-min)/median; kea us/pkt = median Kea CPU time per received packet)")

def ratio(x, y, target):
    if x not in med or y not in med or not med[y]:
        return
    r = med[x] / med[y]
    paired = [d[x] / d[y] for d in by_round.values() if x in d and y in d and d[y]]
    print("   %s/%s = %.3f   target >= %.2f: %s   (per-round %s/%s: median %.3f, [%s];"
          " CPU-cost ratio %s/%s = %.3f)" % (
              x, y, r, target, "PASS" if r >= target else "MISS", x, y,
              statistics.median(paired), " ".join("%.2f" % p for p in paired),
              y, x, med_cost[y] / med_cost[x] if med_cost[x] else 0))

ratio("c", "a", target_ca)
ratio("c", "b", target_cb)
EOF
