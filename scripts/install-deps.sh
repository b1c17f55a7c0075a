#!/bin/sh
# Installs the Debian 12/13 packages kea-scep-ra builds, runs and tests with.
# Idempotent: only talks to apt when something is missing.
set -eu

PACKAGES="
  g++ meson ninja-build pkg-config dpkg-dev
  kea-dev kea-dhcp4-server libboost-dev
  libssl-dev openssl
  libtomlplusplus-dev doctest-dev
  iproute2 python3 python3-scapy python3-cryptography
  libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev
  scep strongswan-pki libstrongswan-extra-plugins curl certmonger dbus-daemon
  python3-selenium chromium chromium-driver libnss3-tools
  clang libclang-rt-dev
"

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
