# Shared by the scripts that run podman containers (scripts/build-debs.sh,
# tests/packaging/check-debs.sh, scripts/test-fresh.sh). POSIX sh; source it:
#   . "$ROOT/scripts/lib.sh"
#   lib_label "build-debs bookworm"   # the prefix of every banner
#   step "name"                       # "== build-debs bookworm: name"
#   trap lib_on_exit EXIT             # names the failed step, runs lib_cleanup
#
# Step banners start with "== LABEL: "; a failure prints
# "== LABEL: FAILED at step "STEP": REASON" (.ci/run greps for both).

LIB_LABEL=${LIB_LABEL:-$(basename "$0" .sh)}
STEP=""

lib_label() { LIB_LABEL=$1; }

step() {
    STEP=$1
    printf '\n== %s: %s\n' "$LIB_LABEL" "$STEP"
}

say() { printf '\n== %s: %s\n' "$LIB_LABEL" "$*"; }

# fail STEP [REASON]: names the step and exits 1.
fail() {
    STEP=$1
    printf '\n== %s: FAILED at step "%s"%s\n' "$LIB_LABEL" "$1" "${2:+: $2}" >&2
    STEP=""  # reported once: the EXIT trap stays quiet
    exit 1
}

# Scripts define lib_cleanup (containers, temp dirs) when they need one;
# it runs from the EXIT trap, with the exit status in $status.
lib_cleanup() { :; }

# The EXIT trap: names the step a failing command stopped at, then cleans up.
lib_on_exit() {
    status=$?
    if [ "$status" -ne 0 ] && [ -n "$STEP" ] && [ "$STEP" != done ]; then
        printf '\n== %s: FAILED at step "%s" (exit %s)\n' "$LIB_LABEL" "$STEP" "$status" >&2
    fi
    lib_cleanup
    exit "$status"
}

# podman on these machines: runc (crun cannot handle the sandbox's hybrid
# cgroups) and no default ulimits (the sandbox forbids raising
# RLIMIT_NOFILE, which podman does by default); FACTS.md §6.
export CONTAINERS_CONF="${CONTAINERS_CONF:-/tmp/containers.conf}"
# Written whole, then renamed: checks that run side by side share the file.
if [ ! -f "$CONTAINERS_CONF" ]; then
    printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF.$$"
    mv -f "$CONTAINERS_CONF.$$" "$CONTAINERS_CONF"
fi
podman() { command podman --runtime runc "$@"; }

# Installs what is missing of mmdebstrap, podman, runc and git (needs root).
ensure_host_tools() {
    missing=""
    for tool in mmdebstrap podman runc git; do
        # A path, not just a name: the podman function above is found too.
        case "$(command -v "$tool")" in
            /*) ;;
            *) missing="$missing $tool" ;;
        esac
    done
    [ -z "$missing" ] && return 0
    step "host tools:$missing"
    [ "$(id -u)" -eq 0 ] || fail "host tools" "run as root to install$missing"
    apt-get update -q || fail "host tools" "apt-get update"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing ||
        fail "host tools" "apt-get install$missing"
}

# ensure_base_image RELEASE [rebuild]: localhost/RELEASE:min from mmdebstrap
# --variant=minbase, built when missing (or always, with "rebuild").
ensure_base_image() {
    image=localhost/$1:min
    if [ "${2:-}" != rebuild ] && podman image exists "$image"; then
        return 0
    fi
    step "base image $image (mmdebstrap --variant=minbase $1)"
    base_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/$1-base.XXXXXX") || fail "base image" "mktemp"
    if ! mmdebstrap --variant=minbase "$1" "$base_dir/base.tar"; then
        rm -rf "$base_dir"
        fail "base image" "mmdebstrap"
    fi
    if ! podman import "$base_dir/base.tar" "$image" >/dev/null; then
        rm -rf "$base_dir"
        fail "base image" "podman import"
    fi
    rm -rf "$base_dir"
}
