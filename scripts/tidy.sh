#!/bin/sh
# Runs clang-tidy with .clang-tidy over the project's C++ sources, using
# build/compile_commands.json (scripts/build.sh makes it). Prints every
# finding, then a count per check; fails when there is any.
#   scripts/tidy.sh                 every source in the compile database
#   scripts/tidy.sh FILE...         only those (e.g. ra/http/*.cc)
# Environment: TIDY_BUILD_DIR (default build), TIDY_JOBS (default: the
# number of CPUs; clang-tidy parses Boost and OpenSSL headers per file).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
build=${TIDY_BUILD_DIR:-build}
command -v clang-tidy >/dev/null ||
    { echo "tidy: clang-tidy not found: apt-get install clang-tidy" >&2; exit 1; }
[ -f "$build/compile_commands.json" ] ||
    { echo "tidy: no $build/compile_commands.json: run scripts/build.sh first" >&2; exit 1; }

if [ $# -eq 0 ]; then
    # Each source once (main.cc and support.cc are in several tests), without
    # generated code (the console assets).
    set -- $(/usr/bin/python3 -c '
import json, os, sys
seen = set()
for entry in json.load(open(sys.argv[1])):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    if path.startswith(sys.argv[2] + "/") and "/meson-generated" not in path and \
            not path.startswith(os.path.abspath(sys.argv[3]) + "/") and path not in seen:
        seen.add(path)
        print(os.path.relpath(path, sys.argv[2]))
' "$build/compile_commands.json" "$root" "$build")
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Headers: only the project's own (Kea's live under /usr/include/kea/hooks).
printf '%s\n' "$@" | xargs -P "${TIDY_JOBS:-$(nproc)}" -n 1 \
    clang-tidy --quiet -p "$build" --header-filter="^$root/(common|hooks|ra|tests|fuzz|bench)/" \
    >"$log" 2>/dev/null || true
# One finding per warning line; the same header finding seen from several
# sources counts once.
findings=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" | sort -u || true)
if [ -z "$findings" ]; then
    echo "tidy: no findings in $# files"
    exit 0
fi
grep -E -A3 '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" || true
echo
echo "tidy: findings per check:"
printf '%s\n' "$findings" | sed -n 's/.*\[\([^]]*\)\]$/\1/p' | sort | uniq -c | sort -rn
echo "tidy: $(printf '%s\n' "$findings" | wc -l) findings in $# files"
exit 1
