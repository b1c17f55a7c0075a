#!/bin/sh
# Installs a built hook library (libdhcp_scep.so by default) into the hook
# directory of the installed kea-dhcp4, under its own file name, and prints
# the "library" value to configure it with.
#
# Kea 2.6 (Debian 13) loads hook libraries only from its hook directory and
# takes them by bare file name; Kea 2.2 (Debian 12) needs an absolute path.
# Tests and the demo run the hook Kea will really load, so they install it
# the way `meson install` does rather than point Kea at the build tree.
#   usage: scripts/install-hook.sh [HOOK.so]   (default build/hooks/libdhcp_scep.so)
set -eu
cd "$(dirname "$0")/.."
built=${1:-build/hooks/libdhcp_scep.so}
name=$(basename "$built")

[ -f "$built" ] || { echo "install-hook: no built hook at $built (run scripts/build.sh)" >&2; exit 1; }
command -v kea-dhcp4 >/dev/null || { echo "install-hook: kea-dhcp4 not found (install kea-dhcp4-server)" >&2; exit 1; }

dir=$(kea-dhcp4 -W | sed -n 's/^ *Hooks directory: *//p')
[ -d "$dir" ] || { echo "install-hook: kea-dhcp4 -W names no hook directory ('$dir')" >&2; exit 1; }

# A running Kea keeps the old file mapped: replace it by rename, never in place.
if ! cmp -s "$built" "$dir/$name"; then
    tmp=$(mktemp "$dir/.$name.XXXXXX")
    cp "$built" "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dir/$name"
fi

version=$(kea-dhcp4 -v)
case "$version" in
    1.* | 2.[0-5].*) echo "$dir/$name" ;;
    *) echo "$name" ;;
esac
