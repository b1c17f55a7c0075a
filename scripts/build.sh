#!/bin/sh
# Configures (once) and builds into ./build: everything, or the ninja
# targets given (e.g. ra/scep-ra).
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
    meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build "$@"
