#!/bin/sh
# The unit and integration suites once more, built with ASan and UBSan
# (meson b_sanitize=address,undefined) in ./build-asan. Every finding fails
# the run: UBSan does not recover, ASan halts, LeakSanitizer runs at exit.
#
# What it covers, and why not e2e: the unit suites (common, hook, RA) and
# the integration suites (a sanitized scep-ra and scep_probe driven by real
# SCEP clients) run sanitized executables. The e2e suite loads the hook into
# Debian's kea-dhcp4, which is not sanitized: a sanitized .so would need
# libasan LD_PRELOADed into Kea and would then report Kea's own allocations,
# so the hook's code is covered here through unit-hook instead, which links
# the same hook implementation into a sanitized executable with real Kea
# packets.
#   usage: scripts/test-sanitized.sh [meson test arguments, e.g. unit-ra]
set -eu
cd "$(dirname "$0")/.."
build=${SANITIZED_BUILD_DIR:-build-asan}

if [ ! -f "$build/build.ninja" ]; then
    # b_lundef=false: the hook is a shared module whose ASan symbols come from
    # the executable that loads it; meson refuses -Wl,--no-undefined with it.
    # -O0: the time these suites spend is in OpenSSL (not sanitized, not
    # rebuilt) and in the Python clients, so optimising our code buys little
    # at run time, while -O1 and above cost CI minutes to compile (toml++,
    # Beast and nlohmann templates under ASan).
    # --unity on: those headers are then parsed once per eight sources
    # instead of once per source. A cold build of the targets below took
    # 2 min 51 s on a two-core machine, against 46 of 120 steps in 27 min
    # without it (beside CI's other work); the code compiled is the same.
    meson setup "$build" --buildtype=debug -Doptimization=0 \
        -Db_sanitize=address,undefined -Db_lundef=false --unity on --unity-size 8 >/dev/null
fi
# Only what the two suites run: not the benchmark (scep_load) nor
# kea-scep-check. unit-hook-load loads the built hook module through Kea's
# HooksManager, so the module is built too.
ninja -C "$build" tests/unit/unit-common tests/unit/unit-hook tests/unit/unit-hook-load \
    hooks/libdhcp_scep.so tests/unit/unit-ra ra/scep-ra tests/tools/scep_probe

# halt_on_error/abort: the first finding ends that process with a failure;
# detect_leaks: LSan at exit; print_stacktrace: UBSan says where. Reports
# also go to $build/sanitizer/: the integration suites start scep-ra and
# scep_probe as child processes, and a finding in one the test kills or
# whose exit status it does not look at would otherwise go unseen. Any
# report there fails the run. No suppressions: one would have to be about
# third-party code, with a comment saying why.
reports=$build/sanitizer
rm -rf "$reports"
mkdir -p "$reports"
reports=$(cd "$reports" && pwd)
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
export LSAN_OPTIONS="log_path=$reports/lsan"
status=0
if [ $# -gt 0 ]; then
    meson test -C "$build" --no-rebuild --print-errorlogs "$@" || status=$?
else
    meson test -C "$build" --no-rebuild --print-errorlogs --suite unit --suite integration \
        || status=$?
fi
if [ -n "$(ls -A "$reports")" ]; then
    for report in "$reports"/*; do
        echo "== sanitizer report $report:" >&2
        head -n 200 "$report" >&2
    done
    echo "test-sanitized: FAILED: sanitizer reports in $reports" >&2
    exit 1
fi
[ "$status" -eq 0 ] || echo "test-sanitized: FAILED: meson test exited $status" >&2
exit "$status"
