#!/usr/bin/env bash
# Throughput of kea-dhcp4 with and without SCEP option 43, measured with
# perfdhcp on loopback. One invocation measures three configs:
#   a  plain Kea, no option 43 at all
#   b  plain Kea emitting the same option 43/15 as conf/scep.toml
#      (option-def in space "cisco-scep" + client class on option 60)
#   c  Kea + build/hooks/libdhcp_scep.so with conf/scep.toml
# interleaved a,b,c,a,b,c,... and reports the median completed 4-way (DORA)
# exchanges per second of each, the spread, and the ratios c/a and c/b.
# See bench/README.md. Exit status: 0 when the bench ran (whatever the
# figures), 1 when it could not (Kea did not start, no replies, b and c
# disagree on the wire, missing tool).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

ROUNDS=${ROUNDS:-5}                   # a,b,c rounds
DURATION=${DURATION:-10}              # seconds of perfdhcp per run
RATE=${RATE:-auto}                    # offered DORA/s; auto = 2 x what (a) achieves
CALIB_RATE=${CALIB_RATE:-30000}       # offered rate of the calibration run
CALIB_DURATION=${CALIB_DURATION:-5}
CLIENTS=${CLIENTS:-1000000}           # perfdhcp -R: distinct client MACs
PIN=${PIN:-1}                         # 1: taskset kea and perfdhcp on different cores
KEA_CPU=${KEA_CPU:-0}
PERFDHCP_CPU=${PERFDHCP_CPU:-1}
SERVER_PORT=${SERVER_PORT:-10067}
CLIENT_PORT=${CLIENT_PORT:-10068}
HOOK=${HOOK:-$ROOT/build/hooks/libdhcp_scep.so}
SCEP_TOML=${SCEP_TOML:-$ROOT/conf/scep.toml}
CONFIGS=${CONFIGS:-"a b c"}
KEEP_TMP=${KEEP_TMP:-0}               # 1: keep the temp dir (configs, logs, perfdhcp output)
TARGET_CA=${TARGET_CA:-0.98}
TARGET_CB=${TARGET_CB:-1.0}

VENDOR_CLASS=CP-8875                  # config (b) tests for exactly this
VENDOR_HEX=$(printf '%s' "$VENDOR_CLASS" | od -An -tx1 | tr -d ' \n')
# FACTS §1 worked example: what conf/scep.toml's profile must produce.
EXPECTED_43=0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5925285f8f5ff5d55af0d10443233334343463942393935324131350e01010f0101
EXPECTED_15=$(printf '%s' example.nl | od -An -tx1 | tr -d ' \n')

die() { echo "bench: $*" >&2; exit 1; }

for tool in kea-dhcp4 perfdhcp python3 taskset; do
    command -v "$tool" >/dev/null || die "$tool not found in PATH"
done
[ -f "$HOOK" ] || die "hook $HOOK missing: build it with 'ninja -C $ROOT/build'"
[ -f "$SCEP_TOML" ] || die "SCEP config $SCEP_TOML missing"
NCPU=$(nproc)
if [ "$PIN" = 1 ] && { [ "$KEA_CPU" -ge "$NCPU" ] || [ "$PERFDHCP_CPU" -ge "$NCPU" ]; }; then
    die "PIN=1 needs cores $KEA_CPU and $PERFDHCP_CPU; this machine has $NCPU (set PIN=0)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-option43.XXXXXX")
export KEA_PIDFILE_DIR=$TMP KEA_LOCKFILE_DIR=$TMP
KEA_PID=
cleanup() {
    if [ -n "$KEA_PID" ] && kill -0 "$KEA_PID" 2>/dev/null; then
        kill "$KEA_PID" 2>/dev/null || true
        wait "$KEA_PID" 2>/dev/null || true
    fi
    if [ "$KEEP_TMP" = 1 ]; then echo "bench: files kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

port_hex() { printf '%04X' "$1"; }
port_bound() { grep -qi ":$(port_hex "$1") " /proc/net/udp 2>/dev/null; }
for port in "$SERVER_PORT" "$CLIENT_PORT"; do
    port_bound "$port" && die "UDP port $port is in use (another Kea/perfdhcp?); set SERVER_PORT/CLIENT_PORT"
done

# ---------------------------------------------------------------- configs --
# $1 name, $2 extra top-level JSON members (with trailing comma), $3 logger JSON
write_config() {
    local name=$1 extra=$2 loggers=$3
    cat > "$TMP/$name.json" <<EOF
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["lo"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": false, "lfc-interval": 0},
  "valid-lifetime": 4000,
  "renew-timer": 1000,
  "rebind-timer": 2000,
  "control-socket": {"socket-type": "unix", "socket-name": "$TMP/$name.sock"},
  $extra
  "subnet4": [{"id": 1, "subnet": "127.0.0.0/8",
               "pools": [{"pool": "127.128.0.0 - 127.255.255.254"}]}],
  "loggers": $loggers
}}
EOF
}

PLAIN_43='
  "option-def": [
    {"space": "cisco-scep", "name": "fips-mode",          "code": 10, "type": "boolean"},
    {"space": "cisco-scep", "name": "scep-server",        "code": 11, "type": "string"},
    {"space": "cisco-scep", "name": "ca-fingerprint",     "code": 12, "type": "binary"},
    {"space": "cisco-scep", "name": "challenge-password", "code": 13, "type": "string"},
    {"space": "cisco-scep", "name": "enable-dot1x",       "code": 14, "type": "boolean"},
    {"space": "cisco-scep", "name": "cert-select",        "code": 15, "type": "uint8"}
  ],
  "client-classes": [{
    "name": "cisco-9800",
    "test": "substring(option[60].text, -7, all) == '"'CP-8875'"'",
    "option-def": [{"name": "vendor-encapsulated-options", "code": 43,
                    "type": "empty", "encapsulate": "cisco-scep"}],
    "option-data": [
      {"name": "vendor-encapsulated-options", "always-send": true},
      {"space": "cisco-scep", "name": "fips-mode",          "data": "true"},
      {"space": "cisco-scep", "name": "scep-server",        "data": "http://10.79.57.91"},
      {"space": "cisco-scep", "name": "ca-fingerprint",     "data": "12040870625C5B755D73F5925285F8F5FF5D55AF"},
      {"space": "cisco-scep", "name": "challenge-password", "data": "D233CCF9B9952A15"},
      {"space": "cisco-scep", "name": "enable-dot1x",       "data": "true"},
      {"space": "cisco-scep", "name": "cert-select",        "data": "1"},
      {"name": "domain-name", "data": "example.nl", "always-send": true}
    ]
  }],'
HOOK_43='
  "hooks-libraries": [{"library": "'"$HOOK"'",
                       "parameters": {"config": "'"$SCEP_TOML"'"}}],'

# Loggers: the measured runs log WARN and above only (no per-packet lines);
# the "load check" runs also dump every packet (kea-dhcp4.packets, level 55).
quiet_loggers() {
    echo "[{\"name\": \"kea-dhcp4\", \"severity\": \"WARN\", \"output_options\": [{\"output\": \"$TMP/$1.log\"}]}]"
}
packet_loggers() {
    echo "[{\"name\": \"kea-dhcp4\", \"severity\": \"WARN\", \"output_options\": [{\"output\": \"$TMP/$1.log\"}]},
           {\"name\": \"kea-dhcp4.packets\", \"severity\": \"DEBUG\", \"debuglevel\": 55,
            \"output_options\": [{\"output\": \"$TMP/$1.packets.log\"}]}]"
}
config_extra() {
    case $1 in
    a) echo "" ;;
    b) echo "$PLAIN_43" ;;
    c) echo "$HOOK_43" ;;
    esac
}
for cfg in a b c; do
    write_config "$cfg" "$(config_extra $cfg)" "$(quiet_loggers $cfg)"
    write_config "$cfg-debug" "$(config_extra $cfg)" "$(packet_loggers $cfg-debug)"
    kea-dhcp4 -t "$TMP/$cfg.json" > "$TMP/$cfg.check.out" 2>&1 \
        || { cat "$TMP/$cfg.check.out" >&2; die "kea-dhcp4 -t refused config ($cfg)"; }
done

# ------------------------------------------------------------ kea control --
KEA_TASKSET=() PD_TASKSET=()
if [ "$PIN" = 1 ]; then
    KEA_TASKSET=(taskset -c "$KEA_CPU")
    PD_TASKSET=(taskset -c "$PERFDHCP_CPU")
fi

start_kea() {  # $1 config name
    local name=$1
    rm -f "$TMP/$name.sock"
    "${KEA_TASKSET[@]}" kea-dhcp4 -c "$TMP/$name.json" -p "$SERVER_PORT" -P "$CLIENT_PORT" \
        > "$TMP/$name.stdout" 2>&1 &
    KEA_PID=$!
    local i
    for i in $(seq 100); do
        kill -0 "$KEA_PID" 2>/dev/null || break
        if port_bound "$SERVER_PORT" && [ -S "$TMP/$name.sock" ]; then
            sleep 0.3
            return 0
        fi
        sleep 0.1
    done
    tail -20 "$TMP/$name.stdout" "$TMP/$name.log" >&2 2>/dev/null || true
    die "kea-dhcp4 did not start with config $name"
}

stop_kea() {
    if [ -n "$KEA_PID" ]; then
        kill "$KEA_PID" 2>/dev/null || true
        wait "$KEA_PID" 2>/dev/null || true
        KEA_PID=
    fi
    local i
    for i in $(seq 50); do port_bound "$SERVER_PORT" || return 0; sleep 0.1; done
    die "UDP port $SERVER_PORT still bound after stopping kea-dhcp4"
}

kea_cpu_ticks() { awk '{print $14 + $15}' "/proc/$KEA_PID/stat"; }

# run_perfdhcp OUT RATE SECONDS: perfdhcp as a relay, option 60 = CP-8875
run_perfdhcp() {
    "${PD_TASKSET[@]}" perfdhcp -4 -l 127.0.0.1 -L "$CLIENT_PORT" -N "$SERVER_PORT" \
        -o "60,$VENDOR_HEX" -r "$2" -R "$CLIENTS" -p "$3" 127.0.0.1 > "$1" 2>&1 || true
}
# perfdhcp's own figure: completed 4-way exchanges per second
pd_rate() { sed -n 's/^Rate: \([0-9.]*\) 4-way.*/\1/p' "$1" | head -1; }
pd_drops() { awk '/drops ratio/ {printf "%s%.1f", sep, $3; sep="/"}' "$1"; }
pd_acks() { awk '/received packets/ {v=$3} END {print v+0}' "$1"; }

echo "== kea-dhcp4 option 43 bench: $(kea-dhcp4 -v) / perfdhcp, $NCPU CPUs, $(date -u '+%F %T') UTC"
echo "   hook $HOOK"
echo "   scep $SCEP_TOML"
echo "   rounds=$ROUNDS duration=${DURATION}s clients=$CLIENTS pin=$PIN" \
     "$( [ "$PIN" = 1 ] && echo "(kea cpu $KEA_CPU, perfdhcp cpu $PERFDHCP_CPU)")"

# ------------------------------------------------------------- wire check --
# 1. dhcp_probe.py does one DORA without option 55 and prints the option 43
#    and 15 bytes of OFFER and ACK as read from its UDP socket.
# 2. A short perfdhcp run with packet logging checks that every reply sent
#    under perfdhcp's traffic carries the 69-byte 43 and the 15.
echo "== wire check (b and c must put the same option 43/15 on the wire)"
declare -A PROBE
for cfg in a b c; do
    start_kea "$cfg"
    PROBE[$cfg]=$(python3 "$HERE/dhcp_probe.py" --server-port "$SERVER_PORT" \
                      --client-port "$CLIENT_PORT" --vendor-class "$VENDOR_CLASS") \
        || { stop_kea; die "no DHCP reply from config $cfg"; }
    stop_kea
    echo "$cfg: ${PROBE[$cfg]//$'\n'/ | }"
done
wire_ok=1
for cfg in b c; do
    for msg in OFFER ACK; do
        line=$(grep "^$msg " <<< "${PROBE[$cfg]}")
        got43=$(sed 's/.* 43=\([^ ]*\).*/\1/' <<< "$line")
        got15=$(sed 's/.* 15=\([^ ]*\).*/\1/' <<< "$line")
        n43=$(sed 's/.* n43=\([^ ]*\).*/\1/' <<< "$line")
        if [ "$got43" != "$EXPECTED_43" ] || [ "$got15" != "$EXPECTED_15" ] || [ "$n43" != 1 ]; then
            echo "   MISMATCH $cfg $msg: 43=$got43 15=$got15 n43=$n43"
            wire_ok=0
        fi
    done
done
for msg in OFFER ACK; do
    grep -q "^$msg 43=- " <<< "${PROBE[a]}" || { echo "   config a unexpectedly sends option 43 in $msg"; wire_ok=0; }
done
if [ "$wire_ok" = 1 ]; then
    echo "   MATCH: b and c send the identical option 43 (${#EXPECTED_43} hex = $(( ${#EXPECTED_43} / 2 )) bytes," \
         "= FACTS §1 example) and option 15 \"example.nl\" in OFFER and ACK, unrequested; a sends neither"
else
    die "wire check failed: (b) and (c) do not send the same option 43/15, the comparison would be unfair"
fi

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
    echo "   perfdhcp traffic, config $cfg: $replies replies, $with43 with the 69-byte option 43, $with15 with option 15"
    if [ "$replies" -lt 100 ]; then load_ok=0; fi
    case $cfg in
    a) [ "$any43" = 0 ] || load_ok=0 ;;
    *) [ "$with43" = "$replies" ] && [ "$with15" = "$replies" ] || load_ok=0 ;;
    esac
done
[ "$load_ok" = 1 ] || die "load check failed: see $TMP/*-debug.packets.log (run with KEEP_TMP=1)"

# -------------------------------------------------------------- calibrate --
if [ "$RATE" = auto ]; then
    start_kea a
    run_perfdhcp "$TMP/calibrate.perfdhcp" "$CALIB_RATE" "$CALIB_DURATION"
    stop_kea
    achieved=$(pd_rate "$TMP/calibrate.perfdhcp")
    [ -n "$achieved" ] || die "calibration: no perfdhcp rate (see $TMP/calibrate.perfdhcp)"
    RATE=$(awk -v r="$achieved" 'BEGIN {v = int(2 * r / 1000 + 0.5) * 1000; if (v < 2000) v = 2000; print v}')
    echo "== calibration: config a reached $achieved exchanges/s offered $CALIB_RATE; measuring at RATE=$RATE (2x)"
else
    echo "== RATE=$RATE (set by caller)"
fi

# ------------------------------------------------------------------ rounds --
RESULTS=$TMP/results.tsv
: > "$RESULTS"
CLK_TCK=$(getconf CLK_TCK)
stat_names="pkt4-received pkt4-sent pkt4-receive-drop scep.cisco-9800.replies-decorated pkt4-offer-sent pkt4-ack-sent"
printf '%-5s %-3s %12s %14s %10s %13s %12s\n' round cfg "exch/s" "drops% D/R" "kea cpu%" "kea us/pkt" "decorated"
for round in $(seq "$ROUNDS"); do
    for cfg in $CONFIGS; do
        start_kea "$cfg"
        out=$TMP/r$round-$cfg.perfdhcp
        t0=$(kea_cpu_ticks)
        run_perfdhcp "$out" "$RATE" "$DURATION"
        t1=$(kea_cpu_ticks)
        stats=$(python3 "$HERE/kea_ctl.py" "$TMP/$cfg.sock" stats $stat_names) \
            || { stop_kea; die "could not read Kea statistics ($cfg)"; }
        stop_kea
        rate=$(pd_rate "$out")
        acks=$(pd_acks "$out")
        if [ -z "$rate" ] || [ "$acks" = 0 ]; then
            cat "$out" >&2
            die "perfdhcp got no replies from config $cfg (round $round)"
        fi
        stat() { awk -v n="$1" '$1 == n {print $2}' <<< "$stats"; }
        rx=$(stat pkt4-received)
        replies=$(( $(stat pkt4-offer-sent) + $(stat pkt4-ack-sent) ))
        decorated=$(stat scep.cisco-9800.replies-decorated)
        cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN {print t / hz}')
        us_pkt=$(awk -v c="$cpu_s" -v n="$rx" 'BEGIN {printf "%.2f", n ? c * 1e6 / n : 0}')
        cpu_pct=$(awk -v c="$cpu_s" -v d="$DURATION" 'BEGIN {printf "%.0f", 100 * c / d}')
        dec="-"
        if [ "$cfg" = c ]; then
            dec="$decorated/$replies"
            [ "$decorated" = "$replies" ] || echo "   warning: hook decorated $decorated of $replies replies"
        fi
        printf '%-5s %-3s %12.1f %14s %10s %13s %12s\n' "$round" "$cfg" "$rate" "$(pd_drops "$out")" \
            "$cpu_pct" "$us_pkt" "$dec"
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$cfg" "$rate" "$us_pkt" "$cpu_pct" >> "$RESULTS"
    done
done

# ----------------------------------------------------------------- summary --
python3 - "$RESULTS" "$TARGET_CA" "$TARGET_CB" "$RATE" "$DURATION" <<'EOF'
import statistics, sys
path, target_ca, target_cb, rate, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = {}
cost = {}
by_round = {}
for line in open(path):
    rnd, cfg, eps, us, _ = line.split("\t")
    runs.setdefault(cfg, []).append(float(eps))
    cost.setdefault(cfg, []).append(float(us))
    by_round.setdefault(rnd, {})[cfg] = float(eps)
names = {"a": "plain Kea, no option 43", "b": "plain Kea option-def + class", "c": "libdhcp_scep.so hook"}
print("== summary at offered rate %s DORA/s, %s s per run (completed 4-way exchanges/s)" % (rate, duration))
print("%-3s %-30s %10s %10s %10s %8s %12s" % ("cfg", "", "median", "min", "max", "spread", "kea us/pkt"))
med = {}
for cfg in sorted(runs):
    v = runs[cfg]
    med[cfg] = statistics.median(v)
    spread = (max(v) - min(v)) / med[cfg] * 100 if med[cfg] else 0
    print("%-3s %-30s %10.1f %10.1f %10.1f %7.1f%% %12.2f" % (
        cfg, names.get(cfg, ""), med[cfg], min(v), max(v), spread, statistics.median(cost[cfg])))

def ratio(x, y, target):
    if x not in med or y not in med or not med[y]:
        return
    r = med[x] / med[y]
    paired = [d[x] / d[y] for d in by_round.values() if x in d and y in d and d[y]]
    cr = statistics.median(cost[y]) / statistics.median(cost[x])
    print("%s/%s = %.3f  (target >= %.2f: %s)   per-round ratios median %.3f [%s]; CPU cost ratio %s/%s %.3f" % (
        x, y, r, target, "PASS" if r >= target else "MISS",
        statistics.median(paired), " ".join("%.2f" % p for p in paired), y, x, cr))

ratio("c", "a", target_ca)
ratio("c", "b", target_cb)
EOF
