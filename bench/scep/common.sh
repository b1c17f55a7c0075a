# shellcheck shell=bash
# Shared by bench/scep/enroll-bench.sh, bench/scep/profile.sh and
# bench/store/store-growth.sh (sourced):
# building scep-ra and the load generator, the manufacturer PKI fixture, the
# MIC-mode scep-ra config and waiting for a server. The caller defines die(),
# ROOT, BUILD, PYTHON and (before scep_build_load, make_fixture)
# WORK.

# Builds scep-ra only: a broken target elsewhere in the tree does not stop a bench.
scep_build_ra() {
    ninja -C "$BUILD" ra/scep-ra >/dev/null || die "cannot build scep-ra (ninja -C $BUILD ra/scep-ra)"
    SCEP_RA=$BUILD/ra/scep-ra
}

# Builds scep_load into LOAD.
scep_build_load() {
    if ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^bench/scep/scep_load:'; then
        ninja -C "$BUILD" bench/scep/scep_load >/dev/null || die "cannot build bench/scep/scep_load"
        LOAD=$BUILD/bench/scep/scep_load
        return
    fi
    # The root meson.build does not include bench/scep yet: compile it
    # against the libraries meson built.
    echo "   (bench/scep not in the meson build: compiling scep_load directly)"
    ninja -C "$BUILD" ra/libscepra.a common/libscepcommon.a >/dev/null || die "cannot build the RA libraries"
    LOAD=$WORK/scep_load
    # shellcheck disable=SC2046
    c++ -std=c++17 -O2 -g -pthread -I"$ROOT" $(pkg-config --cflags cpp-httplib openssl) \
        "$ROOT"/bench/scep/{scep_load,load_options,load_client,load_report}.cc -o "$LOAD" \
        "$BUILD/ra/libscepra.a" "$BUILD/common/libscepcommon.a" \
        $(pkg-config --libs cpp-httplib openssl sqlite3 tomlplusplus) \
        || die "cannot compile scep_load"
}

ra_identity() {
    local rev dirty
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
    dirty=
    if git -C "$ROOT" status --porcelain -- ra common 2>/dev/null | grep -q .; then dirty=+dirty; fi
    echo "commit $rev$dirty, scep-ra sha256 $(sha256sum "$SCEP_RA" | cut -c1-12)"
}

# The test manufacturer PKI in WORK/pki; MICS holds scep_load's --mic options.
make_fixture() {
    "$PYTHON" "$ROOT/tests/fixtures/test_pki.py" "$WORK/pki" >/dev/null || die "test_pki.py failed"
    PKI=$WORK/pki
    # shellcheck disable=SC2034  # the callers pass it to scep_load
    MICS=(--mic "$PKI/mic-cp8875.pem,$PKI/mic-cp8875.key"
          --mic "$PKI/mic-dp9841.pem,$PKI/mic-dp9841.key"
          --mic "$PKI/mic-cp8875-b.pem,$PKI/mic-cp8875-b.key")
}

# Stops the processes whose PIDs are given (empty ones are skipped) and
# reaps them: for the callers' EXIT traps.
stop_pids() {
    local pid
    for pid in "$@"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}

# Waits until the server (PID, default SERVER_PID) answers GetCACaps, or dies.
wait_for() {
    local port=$1 log=$2 pid=${3:-$SERVER_PID}
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/scep?operation=GetCACaps"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { tail -5 "$log" >&2; die "server on port $port exited"; }
        sleep 0.1
    done
    tail -5 "$log" >&2
    die "server on port $port did not answer within 30 s"
}

# DIR/scep.toml: scep-ra on RA_PORT with its own rsa:2048 CA, state in
# DIR/state, MIC-signed requests of the fixture's models approved at once.
write_ra_config() {
    local dir=$1
    cat >"$dir/scep.toml" <<EOF
[ra]
listen = "127.0.0.1:$RA_PORT"
state-dir = "$dir/state"

[ca]
key = "rsa:2048"

[auth]
manufacturer-roots = "$PKI/manufacturer-roots.pem"
mic-issuers = ["Test Manufacturing CA SHA2"]
mic-models = ["CP-8875", "DP-9841"]   # no [[profile]] here to name them
challenge = "$CHALLENGE"
allow-des = true
approval = "auto"
EOF
}

# sign/s from `openssl speed rsa2048`, found by its column header: OpenSSL 3.0
# prints sign verify sign/s verify/s, 3.5 adds encrypt and decrypt columns.
speed_signs() {
    awk '!col && /sign\/s/ { for (i = 1; i <= NF; i++) if ($i == "sign/s") col = i; next }
         col && /^rsa +2048 +bits/ { print $(3 + col); exit }' "$1"
}
