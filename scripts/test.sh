#!/bin/sh
# The whole test suite on a fresh Debian 12 machine, as root: installs what
# it needs, builds, and runs every test (unit and end-to-end).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
meson test -C build --print-errorlogs "$@"
