#!/bin/sh
# The whole test suite on a fresh Debian 12 or 13 machine, as root: installs what
# it needs, builds, and runs every test (unit and end-to-end), then every
# fuzz target for 15 s (FUZZ_SECONDS) after replaying its regression inputs.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
meson test -C build --print-errorlogs "$@"
./scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
