#!/bin/sh
# Formats the project's C++ sources with .clang-format (clang-format, from
# Debian's clang-format package; 14 on Debian 12, 19 on Debian 13).
#   scripts/format.sh            rewrite every tracked *.cc and *.h in place
#   scripts/format.sh --check    change nothing; list the files that would
#                                change and fail if there is any
#   scripts/format.sh [--check] FILE...   only those files
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null ||
    { echo "format: clang-format not found: apt-get install clang-format" >&2; exit 1; }

check=""
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
if [ $# -eq 0 ]; then
    set -- $(git ls-files '*.cc' '*.h')
fi

if [ -z "$check" ]; then
    clang-format --style=file -i "$@"
    exit 0
fi
unformatted=0
for file in "$@"; do
    if ! clang-format --style=file --dry-run --Werror "$file" >/dev/null 2>&1; then
        lines=$(clang-format --style=file "$file" | diff "$file" - | grep -c '^<' || true)
        echo "format: $file: $lines lines would change" >&2
        unformatted=$((unformatted + 1))
    fi
done
if [ "$unformatted" -gt 0 ]; then
    echo "format: $unformatted files are not formatted: run scripts/format.sh" >&2
    exit 1
fi
