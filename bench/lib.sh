# shellcheck shell=bash
# Shared by bench/dhcp-option43.sh and bench/callgrind-option43.sh (sourced).
# Writes the kea-dhcp4 configs into $TMP and starts/stops kea-dhcp4 on
# loopback (FACTS §4: "dhcp-socket-type": "udp" on lo, -p/-P ports, perfdhcp
# acting as a relay with giaddr 127.0.0.1).
#
#   a  plain Kea, no option 43 at all
#   b  plain Kea: option-def in space "cisco-scep" for sub-options 10-15, a
#      client class on option 60, option 43 + 15 always-send
#   c  Kea + the libdhcp_scep.so hook with conf/scep.toml
#
# All three share subnet, pool, lease database (memfile, persist=false),
# timers, logging (WARN to a file) and a control socket.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

SERVER_PORT=${SERVER_PORT:-10067}
CLIENT_PORT=${CLIENT_PORT:-10068}
CLIENTS=${CLIENTS:-1000000}           # perfdhcp -R: distinct client MACs
HOOK=${HOOK:-$ROOT/build/hooks/libdhcp_scep.so}
SCEP_TOML=${SCEP_TOML:-$ROOT/conf/scep.toml}
KEEP_TMP=${KEEP_TMP:-0}               # 1: keep the temp dir (configs, logs, outputs)
# Kea's packet processing threads: 1 on, 0 off, "default" = whatever this Kea
# release does (2.2: off, 2.6: on) with no "multi-threading" map at all.
MT=${MT:-default}
KEA_THREADS=${KEA_THREADS:-4}         # thread-pool-size when MT=1
KEA_QUEUE=${KEA_QUEUE:-64}            # packet-queue-size when MT=1

VENDOR_CLASS=CP-8875                  # config (b) tests for exactly this
VENDOR_HEX=$(printf '%s' "$VENDOR_CLASS" | od -An -tx1 | tr -d ' \n')

die() { echo "bench: $*" >&2; exit 1; }
case $MT in 1 | 0 | default) ;; *) die "MT must be 1, 0 or default, not '$MT'" ;; esac

tool_package() {  # the Debian package that ships a tool the benches use
    case $1 in
    perfdhcp) echo " (apt-get install kea-admin, or scripts/install-deps.sh bench)" ;;
    kea-dhcp4) echo " (apt-get install kea-dhcp4-server)" ;;
    valgrind | callgrind_control | callgrind_annotate) echo " (apt-get install valgrind)" ;;
    taskset) echo " (apt-get install util-linux)" ;;
    esac
}

bench_require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found in PATH$(tool_package "$tool")"
    done
    [ -f "$HOOK" ] || die "hook $HOOK missing: build it with 'ninja -C $ROOT/build'"
    [ -f "$SCEP_TOML" ] || die "SCEP config $SCEP_TOML missing"
}

# Which hook binary was measured: the work tree can move under a bench.
hook_identity() {
    local rev dirty
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
    dirty=$(git -C "$ROOT" status --porcelain -- hooks common 2>/dev/null | grep -q . && echo "+dirty" || true)
    echo "commit $rev$dirty, $(basename "$HOOK") sha256 $(sha256sum "$HOOK" | cut -c1-12)," \
         "built $(date -u -r "$HOOK" '+%F %T') UTC"
}

bench_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-option43.XXXXXX")
    export KEA_PIDFILE_DIR=$TMP KEA_LOCKFILE_DIR=$TMP KEA_LOG_FILE_DIR=$TMP
    install -d -m 0750 /run/kea  # Kea 2.6: control sockets only there, mode 0750
    KEA_PID=
    trap bench_cleanup EXIT
    trap 'exit 1' INT TERM
}

bench_cleanup() {
    if [ -n "${KEA_PID:-}" ] && kill -0 "$KEA_PID" 2>/dev/null; then
        kill "$KEA_PID" 2>/dev/null || true
        wait "$KEA_PID" 2>/dev/null || true
    fi
    if [ "$KEEP_TMP" = 1 ]; then echo "bench: files kept in $TMP"; else rm -rf "$TMP"; fi
}

port_bound() { grep -qi ":$(printf '%04X' "$1") " /proc/net/udp 2>/dev/null; }

check_ports_free() {
    local port
    for port in "$SERVER_PORT" "$CLIENT_PORT"; do
        port_bound "$port" && die "UDP port $port is in use (another Kea/perfdhcp?); set SERVER_PORT/CLIENT_PORT"
    done
    return 0
}

# ---------------------------------------------------------------- configs --
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

hook_json() {  # $1 built hook library, $2 parameters JSON (optional)
    # Kea loads hooks from its hook directory (only from there since 2.6).
    local library
    library=$("$ROOT/scripts/install-hook.sh" "$1") || die "cannot install $1 into Kea's hook directory"
    echo "\"hooks-libraries\": [{\"library\": \"$library\"${2:+, \"parameters\": $2}}],"
}

config_extra() {
    case $1 in
    a) echo "" ;;
    b) echo "$PLAIN_43" ;;
    c) hook_json "$HOOK" "{\"config\": \"$SCEP_TOML\"}" ;;
    *) die "unknown config $1" ;;
    esac
}

quiet_loggers() {
    echo "[{\"name\": \"kea-dhcp4\", \"severity\": \"WARN\", \"output_options\": [{\"output\": \"$TMP/$1.log\"}]}]"
}
# Also dumps every packet with its options (kea-dhcp4.packets, level 55).
packet_loggers() {
    echo "[{\"name\": \"kea-dhcp4\", \"severity\": \"WARN\", \"output_options\": [{\"output\": \"$TMP/$1.log\"}]},
           {\"name\": \"kea-dhcp4.packets\", \"severity\": \"DEBUG\", \"debuglevel\": 55,
            \"output_options\": [{\"output\": \"$TMP/$1.packets.log\"}]}]"
}

# The "multi-threading" map for MT (Kea 2.2 and 2.6 both take it).
mt_json() {
    case $MT in
    1) echo "\"multi-threading\": {\"enable-multi-threading\": true,
        \"thread-pool-size\": $KEA_THREADS, \"packet-queue-size\": $KEA_QUEUE}," ;;
    0) echo '"multi-threading": {"enable-multi-threading": false},' ;;
    *) echo "" ;;
    esac
}

# The threading Kea runs with, for the report header.
mt_label() {
    case $MT in
    1) echo "multi-threading on (thread-pool-size $KEA_THREADS, packet-queue-size $KEA_QUEUE)" ;;
    0) echo "multi-threading off" ;;
    *) echo "multi-threading: this Kea's default" ;;
    esac
}

# Kea refuses, with MT on, a hook that does not declare itself compatible.
hook_mt_compatible() {
    nm -D --defined-only "$1" 2>/dev/null | grep -qw multi_threading_compatible
}

# write_config NAME EXTRA_JSON LOGGERS_JSON, then checks it with kea-dhcp4 -t
write_config() {
    local name=$1 extra=$2 loggers=$3
    cat > "$TMP/$name.json" <<EOF
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["lo"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": false, "lfc-interval": 0},
  "valid-lifetime": 4000,
  "renew-timer": 1000,
  "rebind-timer": 2000,
  "control-socket": {"socket-type": "unix", "socket-name": "$(kea_socket "$name")"},
  $(mt_json)
  $extra
  "subnet4": [{"id": 1, "subnet": "127.0.0.0/8",
               "pools": [{"pool": "127.128.0.0 - 127.255.255.254"}]}],
  "loggers": $loggers
}}
EOF
    kea-dhcp4 -t "$TMP/$name.json" > "$TMP/$name.check.out" 2>&1 \
        || { cat "$TMP/$name.check.out" >&2; die "kea-dhcp4 -t refused config $name"; }
}

# ------------------------------------------------------------ kea control --
KEA_WRAPPER=()                        # e.g. (taskset -c 0) or (valgrind ...)

start_kea() {  # $1 config name; waits until the DHCP and control sockets are up
    local name=$1
    rm -f "$(kea_socket "$name")"
    "${KEA_WRAPPER[@]}" kea-dhcp4 -c "$TMP/$name.json" -p "$SERVER_PORT" -P "$CLIENT_PORT" \
        > "$TMP/$name.stdout" 2>&1 &
    KEA_PID=$!
    for _ in $(seq "${START_TIMEOUT_TENTHS:-100}"); do
        kill -0 "$KEA_PID" 2>/dev/null || break
        if port_bound "$SERVER_PORT" && [ -S "$(kea_socket "$name")" ]; then
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
    for _ in $(seq 100); do port_bound "$SERVER_PORT" || return 0; sleep 0.1; done
    die "UDP port $SERVER_PORT still bound after stopping kea-dhcp4"
}

PD_WRAPPER=()                         # e.g. (taskset -c 1)

# run_perfdhcp OUT RATE SECONDS [extra perfdhcp args]: relay, option 60 = CP-8875
run_perfdhcp() {
    local out=$1 rate=$2 secs=$3
    shift 3
    "${PD_WRAPPER[@]}" perfdhcp -4 -l 127.0.0.1 -L "$CLIENT_PORT" -N "$SERVER_PORT" \
        -o "60,$VENDOR_HEX" -r "$rate" -R "$CLIENTS" ${secs:+-p "$secs"} "$@" 127.0.0.1 \
        > "$out" 2>&1 || true
}
# perfdhcp's own figure: completed 4-way exchanges per second (no -W, so the
# divisor is the test period)
pd_rate() { sed -n 's/^Rate: \([0-9.]*\) 4-way.*/\1/p' "$1" | head -1; }
pd_drops() { awk '/drops ratio/ {printf "%s%.1f", sep, $3; sep="/"}' "$1"; }
pd_acks() { awk '/received packets/ {v=$3} END {print v+0}' "$1"; }

# Kea 2.6 accepts control sockets only in /run/kea.
kea_socket() {
    echo "/run/kea/scep-bench-$$-$1.sock"
}
