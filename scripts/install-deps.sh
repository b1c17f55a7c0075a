#!/bin/sh
# Installs the Debian 12/13 packages kea-scep-ra builds, runs and tests with.
#   install-deps.sh        everything: build, demo, every test suite, fuzzing
#   install-deps.sh demo   what the demo needs: the build (tests included) and
#                          the simulated phone; no browser, no fuzzing compiler,
#                          no third-party SCEP clients but strongSwan's
#   install-deps.sh demo-upstream   the demo plus micromdm's scepserver (scep),
#                          the enterprise CA of `demo.sh --upstream`
#   install-deps.sh bench  the build plus what the benchmarks run against:
#                          micromdm's scepserver, Kea's perfdhcp (kea-admin),
#                          the sqlite3 shell (bench/store)
#   install-deps.sh profile  bench plus perf (linux-perf), for bench/scep/profile.sh
# Idempotent: only talks to apt when something is missing.
set -eu

BUILD="
  g++ meson ninja-build pkg-config dpkg-dev python3
  kea-dev kea-dhcp4-server libboost-dev
  libssl-dev openssl
  libtomlplusplus-dev doctest-dev
  libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev
"
DEMO="
  iproute2 python3-scapy python3-cryptography
  strongswan-pki libstrongswan-extra-plugins curl
"
TESTS="
  scep certmonger dbus-daemon
  python3-selenium chromium chromium-driver libnss3-tools
  clang libclang-rt-dev clang-format clang-tidy
"
BENCH="
  scep kea-admin curl iproute2 python3-cryptography sqlite3
"
case "${1:-all}" in
    all) PACKAGES="$BUILD $DEMO $TESTS $BENCH" ;;
    demo) PACKAGES="$BUILD $DEMO" ;;
    demo-upstream) PACKAGES="$BUILD $DEMO scep" ;;
    bench) PACKAGES="$BUILD $BENCH" ;;
    profile) PACKAGES="$BUILD $BENCH linux-perf" ;;
    *) echo "usage: $0 [demo|demo-upstream|bench|profile]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (it installs Debian packages)" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # apt's own output stays visible: when it fails, it says why.
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
