#!/bin/bash
# Prints the Debian packages holding the shared libraries that FILE... link
# to, one per line. The runtime stages install exactly these, so one
# Containerfile serves every release whatever its package names (Debian 13
# renamed many libraries for the 64-bit time_t transition: libssl3t64, ...).
set -euo pipefail

libraries=$(for file in "$@"; do ldd "$file"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
for lib in $libraries; do
    real=$(readlink -f "$lib")
    # dpkg knows each file under the path its package shipped it at: /lib or
    # /usr/lib, depending on the release (merged /usr).
    owner=""
    for path in "$lib" "$real" "${real#/usr}" "/usr$real"; do
        if owner=$(dpkg -S "$path" 2>/dev/null); then
            break
        fi
    done
    if [ -z "$owner" ]; then
        echo "runtime-packages: no Debian package holds $lib" >&2
        exit 1
    fi
    echo "${owner%%:*}"
done | sort -u
