#!/bin/sh
# Builds the libFuzzer targets (fuzz/) with clang in their own build dir,
# writes seed corpora from the fixtures, replays the committed regression
# inputs, then fuzzes every target for SECONDS each. Fails on any crash,
# leak, sanitizer report, timeout or broken property; prints executions per
# target. Usage:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default 60 s, every target
# Long runs (the machine is shared): nice -n 19 scripts/fuzz.sh 3600
#   or a number of executions each: FUZZ_RUNS=10000000 nice -n 19 scripts/fuzz.sh 0
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_RUNS (stop after
# that many executions; SECONDS 0 means no time limit), FUZZ_TIMEOUT (seconds
# one input may take, default 60: wall-clock, and a niced fuzzer on a busy
# machine can wait many seconds for a CPU). The corpus grows in
# $FUZZ_BUILD_DIR/corpus/<target>, crash inputs land in .../artifacts/.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"pki_message pki_attributes scep_envelope scep_content option43 vendor_class toml_config message_parameter http_request admin_input"}
build=${FUZZ_BUILD_DIR:-build-fuzz}

for tool in clang clang++ openssl; do
    command -v "$tool" >/dev/null || { echo "fuzz: $tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done
# Quiet unless something fails, then the whole output.
quietly() {
    out=$(mktemp)
    if ! "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        echo "fuzz: $* failed" >&2
        exit 1
    fi
    rm -f "$out"
}
if [ ! -f "$build/build.ninja" ]; then
    # --unity on: as scripts/build.sh, for the same CPU.
    quietly env CC=clang CXX=clang++ meson setup "$build" -Dfuzzing=true --buildtype=debugoptimized \
        --unity on --unity-size 8
fi
quietly ninja -C "$build"

corpus="$build/corpus"
artifacts="$build/artifacts"
mkdir -p "$corpus" "$artifacts"
# Seeds again whenever make_seeds.py changed (new targets, new seeds).
if [ ! -f "$corpus/.seeded" ] || [ fuzz/make_seeds.py -nt "$corpus/.seeded" ]; then
    quietly /usr/bin/python3 fuzz/make_seeds.py --probe "$build/tests/tools/scep_probe" "$corpus"
    touch "$corpus/.seeded"
fi

status=0
total=0
for target in $targets; do
    binary="$build/fuzz/fuzz_$target"
    [ -x "$binary" ] || { echo "fuzz: no target $target" >&2; exit 1; }
    mkdir -p "$corpus/$target"
    # Crash inputs found and fixed earlier must stay fixed.
    if [ -d "fuzz/regressions/$target" ]; then
        if ! "$binary" fuzz/regressions/"$target"/* >"$build/$target.regressions.log" 2>&1; then
            echo "fuzz: $target: a committed regression input crashes again:" >&2
            tail -n 300 "$build/$target.regressions.log" >&2
            status=1
            continue
        fi
    fi
    limits="-max_total_time=$seconds"
    [ -n "${FUZZ_RUNS:-}" ] && limits="$limits -runs=$FUZZ_RUNS"
    [ -f "fuzz/$target.dict" ] && limits="$limits -dict=fuzz/$target.dict"
    log="$build/$target.log"
    # shellcheck disable=SC2086
    if "$binary" $limits -timeout="${FUZZ_TIMEOUT:-60}" -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$artifacts/$target-" "$corpus/$target" >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    printf 'fuzz: %-18s %-5s %12s executions %8s exec/s  corpus %s\n' "$target" "$result" \
        "${runs:-?}" "${speed:-?}" "$(ls "$corpus/$target" | wc -l)"
    total=$((total + ${runs:-0}))
    if [ "$result" != ok ]; then
        # The report whole, from the sanitizer's or the property's first line:
        # its stack traces say where, and a regression file needs them.
        report=$(sed -n '/== *ERROR\|fuzz property/,$p' "$log")
        [ -n "$report" ] || report=$(tail -n 60 "$log")
        printf '%s\n' "$report" | head -n 300 >&2
    fi
done
echo "fuzz: $total executions in total"
exit $status
