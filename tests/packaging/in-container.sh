#!/bin/sh
# The package checks, run inside a container booted with systemd by
# tests/packaging/check-debs.sh, one phase per call:
#   in-container.sh PHASE
# /debs holds the packages under test, /debs-upgrade a later version of them,
# /src the source tree (test PKI, simulated phone). State between phases lives
# in /root/check. Every check prints what it checked; the first failure stops.
set -eu

CHECK=/root/check
STATE=/var/lib/scep-ra
CONF=/etc/kea-scep-ra/scep.toml
USER=_scep-ra
# Kea's hook directory, which kea-dhcp4-server's package creates.
HOOK=$(echo /usr/lib/*/kea/hooks)/libdhcp_scep.so
SERVER_IP=192.0.2.1
PHONE_NS=scepchk-phone

PACKAGES="/debs/kea-dhcp4-scep-hook_*.deb /debs/scep-ra_*.deb"  # not the -dbgsym ones
mkdir -p "$CHECK"

fail() {
    echo "in-container: FAIL: $*" >&2
    exit 1
}
ok() {
    echo "   ok: $*"
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
    what=$1
    shift
    "$@" || fail "$what"
    ok "$what"
}
# same VALUE EXPECTED DESCRIPTION
same() {
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
    ok "$3 ($1)"
}
stat_of() {
    stat -c '%a %U:%G' "$1"
}
main_pid() {
    systemctl show -p MainPID --value scep-ra.service
}
as_ra() {
    runuser -u "$USER" -- scep-ra "$@"
}
healthz() {
    curl -sS --fail --max-time 10 --cacert "$STATE/ca.pem" https://127.0.0.1:8443/healthz
}
wait_healthy() {
    tries=0
    until [ -e "$STATE/ca.pem" ] && healthz >"$CHECK/healthz.json" 2>"$CHECK/healthz.err"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 60 ] || ! systemctl is-active --quiet scep-ra.service; then
            systemctl status --no-pager scep-ra.service || true
            journalctl -u scep-ra.service --no-pager | tail -n 30
            cat "$CHECK/healthz.err" 2>/dev/null || true
            fail "scep-ra did not become healthy"
        fi
        sleep 0.5
    done
    ok "GET /healthz: $(cat "$CHECK/healthz.json")"
}
# Everything a package could leave behind. Files other packages own change
# content (passwd, group) but not paths; runtime, logs, caches, apt's and
# dpkg's own records, Kea's leases and config, and the check's files are left
# out. deb-systemd-helper's records are kept in: purge must clear them.
snapshot() {
    {
        find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
            -o -path /var/tmp -o -path /var/log -o -path /var/cache -o -path /var/lib/apt \
            -o -path /var/lib/dpkg -o -path /var/lib/kea -o -path /etc/kea -o -path /root \
            -o -path /var/lib/systemd -o -path /src -o -path /debs -o -path /debs-upgrade \
            -o -path /var/lib/dhcp -o -path /var/lib/ucf \
            -o -path /etc/.pwd.lock -o -path /etc/ld.so.cache \) -prune \
            -o -printf '%p %m %u:%g\n'
        find /var/lib/systemd -path '*deb-systemd-*' -printf '%p %m %u:%g\n'
    } | sort
}

phase_prepare() {
    echo "== prepare: dependencies of the packages, then a snapshot"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    deps=""
    for deb in $PACKAGES; do
        deps="$deps${deps:+, }$(dpkg-deb -f "$deb" Depends)"
    done
    echo "   apt-get satisfy: $deps"
    apt-get satisfy -y -q --no-install-recommends "$deps"
    snapshot >"$CHECK/before.txt"
    ok "snapshot of $(wc -l <"$CHECK/before.txt") paths"
}

phase_install() {
    echo "== install: $(echo $PACKAGES)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
    for pkg in kea-dhcp4-scep-hook scep-ra; do
        same "$(dpkg-query -W -f='${db:Status-Status}' "$pkg")" installed "$pkg"
    done
    check "$HOOK is a shared object" sh -c "file -L '$HOOK' | grep -q 'shared object'"
    check "kea-scep-check runs" sh -c 'kea-scep-check 2>&1 | grep -qi usage'
    check "scep-ra runs" sh -c 'scep-ra 2>&1 | grep -q "usage: scep-ra"'
    check "Cisco roots installed as in the tree" \
        cmp /usr/share/kea-scep-ra/manufacturer-roots.pem /src/conf/manufacturer-roots.pem

    entry=$(getent passwd "$USER") || fail "no user $USER"
    uid=$(echo "$entry" | cut -d: -f3)
    [ "$uid" -lt 1000 ] || fail "$USER is not a system user (uid $uid)"
    same "$(echo "$entry" | cut -d: -f6-)" "$STATE:/usr/sbin/nologin" "$USER home and shell"
    check "group $USER" sh -c "getent group $USER >/dev/null"
    check "_kea is in group $USER (the hook reads the config)" \
        sh -c "id -nG _kea | tr ' ' '\n' | grep -qx '$USER'"

    same "$(stat_of "$STATE")" "700 $USER:$USER" "$STATE"
    same "$(find "$STATE" -mindepth 1 | wc -l)" 0 "files in $STATE before the first start"

    check "$CONF is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' scep-ra | grep -q ' $CONF '"
    same "$(stat_of "$CONF")" "640 root:$USER" "$CONF"
    same "$(dpkg-statoverride --list "$CONF")" "root $USER 640 $CONF" "statoverride"
    check "packaged config is valid for scep-ra (as $USER)" as_ra check-config
    check "packaged config is refused by the hook until a profile is added" \
        sh -c "! kea-scep-check $CONF >$CHECK/kea-check.out 2>&1 && grep -q 'no profile' $CHECK/kea-check.out"

    same "$(systemctl is-enabled scep-ra.service || true)" disabled "scep-ra.service after install"
    same "$(systemctl is-active scep-ra.service || true)" inactive "scep-ra.service not started"
    unit=$(systemctl show -p FragmentPath --value scep-ra.service)
    echo "   unit: $unit"
    systemd-analyze verify "$unit" >"$CHECK/verify.out" 2>&1 || {
        cat "$CHECK/verify.out"
        fail "systemd-analyze verify $unit"
    }
    # verify reports problems of other units it loads; none may name ours.
    if grep -i "scep-ra" "$CHECK/verify.out"; then
        fail "systemd-analyze verify reports scep-ra.service"
    fi
    ok "systemd-analyze verify $unit"
    systemd-analyze security --no-pager scep-ra.service >"$CHECK/security.out" 2>&1 || true
    grep -E '^✗|^\?' "$CHECK/security.out" | sed 's/^/   /' | cut -c1-140 || true
    score=$(sed -n 's/.*Overall exposure level for scep-ra.service: \([0-9.]*\).*/\1/p' \
        "$CHECK/security.out")
    [ -n "$score" ] || { cat "$CHECK/security.out"; fail "no exposure score"; }
    echo "$score" >"$CHECK/exposure-score"
    # A hardening option lost in an edit raises the score well above this.
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
        fail "systemd-analyze security: exposure $score > 2.0"
    ok "systemd-analyze security: exposure level $score"
}

# The administrator's edits: a CA name, the test manufacturer trusted beside
# Cisco, and a profile for the simulated phone (its fingerprint comes later).
edit_config() {
    rm -rf "$CHECK/pki"
    /usr/bin/python3 /src/tests/fixtures/test_pki.py "$CHECK/pki" >/dev/null
    cat /usr/share/kea-scep-ra/manufacturer-roots.pem "$CHECK/pki/manufacturer-roots.pem" \
        >/etc/kea-scep-ra/roots-with-test-manufacturer.pem
    sed -i \
        -e 's|^# name = "kea-scep-ra Root CA".*|name = "Package Check CA"|' \
        -e 's|^manufacturer-roots = .*|manufacturer-roots = "roots-with-test-manufacturer.pem"|' \
        -e '/^\[auth\]/a mic-issuers = ["Cisco Manufacturing CA SHA2", "Test Manufacturing CA SHA2"]' \
        "$CONF"
    cat >>"$CONF" <<EOF

[[profile]]
name = "package-check"
vendor-class = ["CP-8875"]
server = "http://$SERVER_IP:8080"
fingerprint = "$(printf '%064d' 0)"
dot1x = true
cert-select = "custom"
domain = "example.nl"
EOF
}

phase_start() {
    echo "== start: the administrator edits the config, then enables the service"
    edit_config
    check "edited config is valid (as $USER)" as_ra check-config
    systemctl enable --now scep-ra.service
    wait_healthy
    pid=$(main_pid)
    same "$(ps -o user= -p "$pid")" "$USER" "scep-ra runs as"
    status=/proc/$pid/status
    same "$(sed -n 's/^CapEff:\t*//p' "$status")" 0000000000000000 "effective capabilities"
    same "$(sed -n 's/^CapBnd:\t*//p' "$status")" 0000000000000000 "bounding set"
    same "$(sed -n 's/^NoNewPrivs:\t*//p' "$status")" 1 "NoNewPrivs"
    same "$(sed -n 's/^Seccomp:\t*//p' "$status")" 2 "seccomp filter mode"
    same "$(stat_of "$STATE")" "700 $USER:$USER" "$STATE after the first start"
    same "$(stat_of "$STATE/ca.key")" "600 $USER:$USER" "$STATE/ca.key"
    # Certificates and the CRL are public (0644, and behind the 0700
    # directory); keys and the database are the service's alone.
    loose=$(find "$STATE" -mindepth 1 ! -name '*.pem' ! -name crl.der -perm /077 -printf '%p %m\n')
    [ -z "$loose" ] || fail "files in $STATE readable by others: $loose"
    ok "keys and database are 0600 ($(ls "$STATE" | tr '\n' ' '))"
    # ProtectSystem=strict: in the service's mount namespace / is read-only and
    # the state directory is the one writable place.
    same "$(awk '$5 == "/" { split($6, o, ","); print o[1] }' /proc/"$pid"/mountinfo | tail -n 1)" \
        ro "/ as the service sees it"
    same "$(awk -v d="$STATE" '$5 == d { split($6, o, ","); print o[1] }' /proc/"$pid"/mountinfo |
        tail -n 1)" rw "$STATE as the service sees it"

    fp=$(as_ra fingerprint --digest sha256)
    [ ${#fp} -eq 64 ] || fail "fingerprint: '$fp'"
    echo "$fp" >"$CHECK/fingerprint"
    sed -i "s|^fingerprint = \"0*\"|fingerprint = \"$fp\"|" "$CONF"
    ok "CA fingerprint $fp in the profile"
    check "Kea's user reads the config through the group (kea-scep-check as _kea)" \
        runuser -u _kea -- kea-scep-check "$CONF"
}

phase_kea() {
    echo "== kea: kea-dhcp4-server loads the installed hook"
    ip netns del "$PHONE_NS" 2>/dev/null || true
    ip link del scepchk0 2>/dev/null || true
    ip netns add "$PHONE_NS"
    ip link add scepchk0 type veth peer name scepchk1 netns "$PHONE_NS"
    ip addr add "$SERVER_IP/24" dev scepchk0
    ip link set scepchk0 up
    ip -n "$PHONE_NS" link set scepchk1 up
    ip -n "$PHONE_NS" link set lo up
    [ -e "$CHECK/kea-dhcp4.conf.orig" ] || cp /etc/kea/kea-dhcp4.conf "$CHECK/kea-dhcp4.conf.orig"
    # Kea 2.2 wants the absolute path, Kea 2.6 the bare name in its hook directory.
    case "$(kea-dhcp4 -v)" in
        2.2.*) library=$HOOK ;;
        *) library=$(basename "$HOOK") ;;
    esac
    cat >/etc/kea/kea-dhcp4.conf <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["scepchk0"] },
    "lease-database": { "type": "memfile", "persist": false },
    "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24",
                   "pools": [ { "pool": "192.0.2.100 - 192.0.2.200" } ] } ],
    "hooks-libraries": [ { "library": "$library", "parameters": { "config": "$CONF" } } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                   "output_options": [ { "output": "stdout" } ] } ]
} }
EOF
    since=$(date '+%Y-%m-%d %H:%M:%S')
    systemctl restart kea-dhcp4-server.service
    tries=0
    until journalctl -u kea-dhcp4-server.service --since "$since" --no-pager | grep -q DHCP4_STARTED; do
        tries=$((tries + 1))
        if [ "$tries" -gt 40 ]; then
            journalctl -u kea-dhcp4-server.service --since "$since" --no-pager | tail -n 30
            fail "kea-dhcp4 did not start with the hook"
        fi
        sleep 0.5
    done
    journalctl -u kea-dhcp4-server.service --since "$since" --no-pager | grep SCEP_ | sed 's/^/   /'
    check "Kea loaded the profile" sh -c \
        "journalctl -u kea-dhcp4-server.service --since '$since' --no-pager | grep -q 'SCEP_PROFILE_LOADED.*package-check'"
}

phase_journey() {
    echo "== journey: a factory-reset CP-8875 gets DHCP option 43 and enrolls with its MIC"
    rm -rf "$CHECK/phone"
    ip netns exec "$PHONE_NS" /usr/bin/python3 /src/tests/phone/scep_phone.py \
        --iface scepchk1 --vendor-class CP-8875 \
        --mic "$CHECK/pki/mic-cp8875.pem" --mic-key "$CHECK/pki/mic-cp8875.key" \
        --new-key "$CHECK/pki/newkey-1.key" --workdir "$CHECK/phone" ||
        fail "the phone's journey"
    check "the certificate chains to the installed CA" \
        openssl verify -CAfile "$STATE/ca.pem" "$CHECK/phone/cdc.pem"
    as_ra certs >"$CHECK/certs.txt"
    check "scep-ra certs lists it" grep -q "CP-8875-SEP" "$CHECK/certs.txt"
    if journalctl -u scep-ra.service --no-pager | grep -E '"level":"error"|SIGSYS|audit.*seccomp'; then
        fail "scep-ra logged errors under its hardening"
    fi
    ok "no errors in scep-ra's journal"
}

phase_reload() {
    echo "== reload: systemctl reload scep-ra (SIGHUP)"
    pid=$(main_pid)
    since=$(date '+%Y-%m-%d %H:%M:%S')
    sed -i 's|^validity-days = .*|validity-days = 200|' "$CONF"
    systemctl reload scep-ra.service
    sleep 2
    same "$(systemctl is-active scep-ra.service || true)" active "scep-ra after a reload"
    same "$(main_pid)" "$pid" "main PID after a reload (no restart)"
    journalctl -u scep-ra.service --since "$since" --no-pager | tail -n 5 | sed 's/^/   /'
    check "the journal records the reload" sh -c \
        "journalctl -u scep-ra.service --since '$since' --no-pager | grep -q 'configuration reloaded'"
    wait_healthy

    echo "== reload with an invalid file: the running configuration stays"
    cp "$CONF" "$CHECK/scep.toml.good"
    since=$(date '+%Y-%m-%d %H:%M:%S')
    sed -i 's|^validity-days = .*|validity-days = "many"|' "$CONF"
    systemctl reload scep-ra.service
    sleep 2
    same "$(systemctl is-active scep-ra.service || true)" active "scep-ra after an invalid reload"
    same "$(main_pid)" "$pid" "main PID after an invalid reload"
    journalctl -u scep-ra.service --since "$since" --no-pager | tail -n 5 | sed 's/^/   /'
    check "the journal says the running configuration stays, naming the key" sh -c \
        "journalctl -u scep-ra.service --since '$since' --no-pager |
         grep 'configuration reload refused' | grep -q 'validity-days'"
    cp "$CHECK/scep.toml.good" "$CONF"
    systemctl reload scep-ra.service
    wait_healthy
}

# The unit has no capability: port 80 is refused until the README's drop-in
# gives CAP_NET_BIND_SERVICE back (and the host's user namespace to hold it).
phase_low_port() {
    echo "== a SCEP port below 1024: refused, then allowed by the README's drop-in"
    sed -i 's|^listen = "0.0.0.0:8080"|listen = "0.0.0.0:80"|' "$CONF"
    since=$(date '+%Y-%m-%d %H:%M:%S')
    systemctl restart scep-ra.service || true
    sleep 2
    check "port 80 is refused without the capability" sh -c \
        "journalctl -u scep-ra.service --since '$since' --no-pager | grep -q 'cannot listen on 0.0.0.0:80: Permission denied'"
    dropin=/etc/systemd/system/scep-ra.service.d/low-port.conf
    mkdir -p "$(dirname "$dropin")"
    sed -n '/^```ini$/,/^```$/p' /src/README.md | grep -v '^```' >"$dropin"
    check "the README's drop-in has the capability" grep -q CAP_NET_BIND_SERVICE "$dropin"
    systemctl daemon-reload
    systemctl reset-failed scep-ra.service
    systemctl restart scep-ra.service
    wait_healthy
    check "scep-ra listens on port 80" sh -c \
        "curl -sS --fail --max-time 5 'http://127.0.0.1/scep?operation=GetCACaps' | grep -q POSTPKIOperation"
    systemd-analyze security --no-pager scep-ra.service | tail -n 1 | sed 's/^/   with the drop-in: /'
    rm -f "$dropin"
    sed -i 's|^listen = "0.0.0.0:80"|listen = "0.0.0.0:8080"|' "$CONF"
    systemctl daemon-reload
    systemctl restart scep-ra.service
    wait_healthy
}

sha() {
    sha256sum "$@" | cut -d' ' -f1 | tr '\n' ' '
}

phase_upgrade() {
    echo "== a stopped service stays stopped when the package is configured again"
    systemctl stop scep-ra.service
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall $PACKAGES
    same "$(systemctl is-active scep-ra.service || true)" inactive "scep-ra after a reinstall"
    systemctl start scep-ra.service
    wait_healthy

    echo "== upgrade to $(echo /debs-upgrade/kea-dhcp4-scep-hook_*.deb /debs-upgrade/scep-ra_*.deb)"
    sha "$STATE/ca.key" "$STATE/ca.pem" >"$CHECK/ca.sha"
    conf_sha=$(sha "$CONF")
    pid=$(main_pid)
    certs_before=$(as_ra certs | wc -l)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confold \
        /debs-upgrade/kea-dhcp4-scep-hook_*.deb /debs-upgrade/scep-ra_*.deb
    want=$(dpkg-deb -f /debs-upgrade/scep-ra_*.deb Version)
    for pkg in kea-dhcp4-scep-hook scep-ra; do
        same "$(dpkg-query -W -f='${Version}' "$pkg")" "$want" "$pkg version"
    done
    same "$(sha "$CONF")" "$conf_sha" "the administrator's $CONF is kept"
    check "the new packaged config is beside it" test -f "$CONF.dpkg-dist"
    same "$(stat_of "$CONF")" "640 root:$USER" "$CONF after the upgrade"
    same "$(sha "$STATE/ca.key" "$STATE/ca.pem")" "$(cat "$CHECK/ca.sha")" "CA key and certificate"
    same "$(systemctl is-enabled scep-ra.service)" enabled "scep-ra.service stays enabled"
    [ "$(main_pid)" != "$pid" ] || fail "scep-ra was not restarted by the upgrade"
    ok "scep-ra restarted on the new binary (PID $pid -> $(main_pid))"
    wait_healthy
    same "$(as_ra fingerprint --digest sha256)" "$(cat "$CHECK/fingerprint")" "CA fingerprint"
    same "$(as_ra certs | wc -l)" "$certs_before" "lines of scep-ra certs"
}

phase_remove() {
    echo "== remove: the service stops, config and state stay"
    systemctl stop kea-dhcp4-server.service
    cp "$CHECK/kea-dhcp4.conf.orig" /etc/kea/kea-dhcp4.conf
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -q scep-ra kea-dhcp4-scep-hook
    same "$(systemctl is-active scep-ra.service || true)" inactive "scep-ra.service"
    check "no scep-ra process" sh -c '! pgrep -x scep-ra'
    check "binaries gone" sh -c "! test -e /usr/bin/scep-ra && ! test -e '$HOOK'"
    check "config kept" test -f "$CONF"
    same "$(sha "$STATE/ca.key" "$STATE/ca.pem")" "$(cat "$CHECK/ca.sha")" "CA key and certificate"
    check "user kept" getent passwd "$USER"
}

phase_purge_keeps_ca() {
    echo "== purge with a CA in $STATE: the state directory is kept"
    rm -f /etc/kea-scep-ra/roots-with-test-manufacturer.pem  # the administrator's own file
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q scep-ra kea-dhcp4-scep-hook \
        >"$CHECK/purge.out" 2>&1 || { cat "$CHECK/purge.out"; fail "apt-get purge"; }
    cat "$CHECK/purge.out"
    check "purge says it keeps the CA" grep -q "purge keeps $STATE: it holds the CA's private key" \
        "$CHECK/purge.out"
    same "$(sha "$STATE/ca.key" "$STATE/ca.pem")" "$(cat "$CHECK/ca.sha")" "CA key and certificate"
    check "/etc/kea-scep-ra is gone" sh -c '! test -e /etc/kea-scep-ra'
    check "no statoverride left" sh -c "! dpkg-statoverride --list '$CONF'"
    check "user and group kept (they own $STATE)" sh -c "getent passwd $USER && getent group $USER"
    check "_kea left group $USER" sh -c "! id -nG _kea | tr ' ' '\n' | grep -qx '$USER'"
    leftover "$STATE"
}

# leftover [KEPT]: the paths the packages left, compared with the snapshot.
leftover() {
    snapshot >"$CHECK/after.txt"
    diff "$CHECK/before.txt" "$CHECK/after.txt" | grep '^[<>]' >"$CHECK/diff.txt" || true
    if [ -n "${1:-}" ]; then
        grep -v "^> $1[/ ]" "$CHECK/diff.txt" >"$CHECK/diff-unexpected.txt" || true
    else
        cp "$CHECK/diff.txt" "$CHECK/diff-unexpected.txt"
    fi
    if [ -s "$CHECK/diff-unexpected.txt" ]; then
        cat "$CHECK/diff-unexpected.txt"
        fail "the filesystem differs from before the installation"
    fi
    ok "nothing left behind${1:+ but $1 ($(grep -c . "$CHECK/diff.txt") paths)}"
}

phase_reinstall_keeps_ca() {
    echo "== reinstall over the kept state: the same CA serves again"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
    same "$(stat_of "$STATE")" "700 $USER:$USER" "$STATE"
    systemctl start scep-ra.service
    wait_healthy
    same "$(as_ra fingerprint --digest sha256)" "$(cat "$CHECK/fingerprint")" "CA fingerprint"
    systemctl stop scep-ra.service
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q scep-ra kea-dhcp4-scep-hook
    same "$(sha "$STATE/ca.key" "$STATE/ca.pem")" "$(cat "$CHECK/ca.sha")" "CA key after purge"
}

phase_purge_unused() {
    echo "== install and purge without a first start: nothing is left"
    rm -rf "$STATE"  # the administrator removes the kept CA (after a backup)
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
    same "$(systemctl is-active scep-ra.service || true)" inactive "scep-ra.service"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q scep-ra kea-dhcp4-scep-hook
    check "$STATE is gone" sh -c "! test -e $STATE"
    leftover
}

[ $# -eq 1 ] || fail "usage: in-container.sh PHASE"
"phase_$1"
