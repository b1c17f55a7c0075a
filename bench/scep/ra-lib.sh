# shellcheck shell=bash
# Shell shared by bench/scep/enroll-bench.sh and bench/store/store-growth.sh
# (sourced, not run): building scep-ra and scep_load, the fixture PKI, the
# MIC-enrolling scep-ra configuration and waiting for a server.
#
# The caller sets ROOT (repository), BUILD (meson build dir), WORK (its
# temporary directory), PYTHON, and defines die(); the functions set the
# globals named in their comments.

# SCEP_RA: ra/scep-ra, built first (only that target: a broken test target
# elsewhere does not stop a bench).
ra_lib_build_scep_ra() {
    ninja -C "$BUILD" ra/scep-ra >/dev/null || die "cannot build scep-ra (ninja -C $BUILD ra/scep-ra)"
    SCEP_RA=$BUILD/ra/scep-ra
}

# LOAD: bench/scep/scep_load, from the meson build when it has the target,
# else compiled here against the libraries meson built.
ra_lib_build_load() {
    local dir=$ROOT/bench/scep
    if ninja -C "$BUILD" -t targets all 2>/dev/null | grep -q '^bench/scep/scep_load:'; then
        ninja -C "$BUILD" bench/scep/scep_load >/dev/null || die "cannot build bench/scep/scep_load"
        LOAD=$BUILD/bench/scep/scep_load
        return
    fi
    echo "   (bench/scep not in the meson build: compiling scep_load directly)"
    ninja -C "$BUILD" ra/libscepra.a common/libscepcommon.a >/dev/null || die "cannot build the RA libraries"
    LOAD=$WORK/scep_load
    # shellcheck disable=SC2046
    c++ -std=c++17 -O2 -g -pthread -I"$ROOT" $(pkg-config --cflags cpp-httplib openssl) \
        "$dir"/{scep_load,load_options,load_client,load_report}.cc -o "$LOAD" \
        "$BUILD/ra/libscepra.a" "$BUILD/common/libscepcommon.a" \
        $(pkg-config --libs cpp-httplib openssl sqlite3 tomlplusplus) \
        || die "cannot compile scep_load"
}

# "commit <rev>[+dirty], scep-ra sha256 <prefix>" of SCEP_RA.
ra_lib_identity() {
    local rev dirty
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
    dirty=
    if git -C "$ROOT" status --porcelain -- ra common 2>/dev/null | grep -q .; then dirty=+dirty; fi
    echo "commit $rev$dirty, scep-ra sha256 $(sha256sum "$SCEP_RA" | cut -c1-12)"
}

# PKI (the test manufacturer PKI in WORK/pki) and MICS (scep_load's --mic
# arguments for three phones).
ra_lib_fixture() {
    "$PYTHON" "$ROOT/tests/fixtures/test_pki.py" "$WORK/pki" >/dev/null || die "test_pki.py failed"
    PKI=$WORK/pki
    # shellcheck disable=SC2034 # for the caller
    MICS=(--mic "$PKI/mic-cp8875.pem,$PKI/mic-cp8875.key"
          --mic "$PKI/mic-dp9841.pem,$PKI/mic-dp9841.key"
          --mic "$PKI/mic-cp8875-b.pem,$PKI/mic-cp8875-b.key")
}

# Waits until the server PID answers GetCACaps on PORT, or dies with the
# tail of LOG.
ra_lib_wait_for() {
    local port=$1 log=$2 pid=$3
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

# Writes FILE: scep-ra on 127.0.0.1:PORT with its state in STATE, its own
# rsa:2048 CA, auto-approving the fixture's MICs (and CHALLENGE). Callers
# may append tables after [auth].
ra_lib_mic_config() {
    local file=$1 port=$2 state=$3
    cat >"$file" <<EOF
[ra]
listen = "127.0.0.1:$port"
state-dir = "$state"

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
