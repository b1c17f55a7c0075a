#!/usr/bin/env bash
# Instructions kea-dhcp4 executes per DORA exchange, by valgrind's callgrind:
# deterministic, so it shows differences of 1% that the throughput bench
# (bench/dhcp-option43.sh) cannot resolve on a shared machine.
#
# Configs a, b, c as in bench/lib.sh, plus two reference hooks built from
# bench/ref_hook.cc (skipped without g++):
#   r0  an empty pkt4_send callout (Kea's cost of calling any callout)
#   r1  prebuilt option 43/15 added to every reply (the least any hook can do)
# For each: start kea-dhcp4 under callgrind, zero the counters once it is up,
# run EXCHANGES DORA exchanges with perfdhcp at a low rate, dump, and divide.
# Then lists the hook's own functions per reply (config c).
#
# Env: EXCHANGES (1000), CG_RATE (50/s), CONFIGS ("a b c r0 r1"), KEEP_TMP=1.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXCHANGES=${EXCHANGES:-1000}
CG_RATE=${CG_RATE:-50}
CONFIGS=${CONFIGS:-"a b c r0 r1"}
EXPECTED_43=0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5925285f8f5ff5d55af0d10443233334343463942393935324131350e01010f0101

bench_require kea-dhcp4 perfdhcp python3 valgrind callgrind_control callgrind_annotate
check_ports_free
bench_tmp
START_TIMEOUT_TENTHS=600              # kea-dhcp4 starts slowly under valgrind

configs=()
for cfg in $CONFIGS; do
    case $cfg in
    a|b|c)
        write_config "$cfg" "$(config_extra "$cfg")" "$(quiet_loggers "$cfg")"
        configs+=("$cfg") ;;
    r0|r1)
        if ! command -v g++ >/dev/null; then
            echo "bench: no g++, skipping reference hook $cfg"
            continue
        fi
        g++ -std=c++17 -O2 -fPIC -shared -DREF_HOOK_MODE="${cfg#r}" -isystem /usr/include/kea \
            "$BENCH_DIR/ref_hook.cc" -o "$TMP/ref_hook_$cfg.so" \
            -lkea-dhcp++ -lkea-hooks -lkea-cc -lkea-exceptions -lkea-util \
            || die "could not build the reference hook $cfg"
        write_config "$cfg" "$(hook_json "$TMP/ref_hook_$cfg.so" \
                                  "{\"option-43\": \"$EXPECTED_43\", \"domain\": \"example.nl\"}")" \
                     "$(quiet_loggers "$cfg")"
        configs+=("$cfg") ;;
    *) die "unknown config $cfg" ;;
    esac
done

echo "== callgrind: kea-dhcp4 $(kea-dhcp4 -v), $EXCHANGES DORA exchanges at $CG_RATE/s per config"
echo "   hook: $HOOK"
echo "         $(hook_identity)"
for cfg in "${configs[@]}"; do
    KEA_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$cfg.out")
    start_kea "$cfg"
    callgrind_control -z "$KEA_PID" > /dev/null 2>&1
    run_perfdhcp "$TMP/cg.$cfg.perfdhcp" "$CG_RATE" "" -n "$EXCHANGES" -s 1
    callgrind_control -d "$KEA_PID" > /dev/null 2>&1
    stop_kea
    acks=$(pd_acks "$TMP/cg.$cfg.perfdhcp")
    [ "$acks" -gt 0 ] || die "perfdhcp got no replies from $cfg under callgrind"
    echo "$cfg $acks $(sed -n 's/^summary: *//p' "$TMP/cg.$cfg.out.1")" >> "$TMP/cg.tsv"
done

python3 - "$TMP/cg.tsv" <<'EOF'
import sys
names = {"a": "plain Kea, no option 43", "b": "plain Kea, option-def+class",
         "c": "libdhcp_scep.so hook", "r0": "reference: empty pkt4_send",
         "r1": "reference: prebuilt 43/15"}
rows = [line.split() for line in open(sys.argv[1])]
per = {cfg: int(ir) / int(acks) for cfg, acks, ir in rows}
base = per.get("a")
print("   %-3s %-28s %9s %12s %9s" % ("cfg", "", "exchanges", "Ir/exchange", "vs a"))
for cfg, acks, ir in rows:
    print("   %-3s %-28s %9s %12.0f %9s" % (cfg, names.get(cfg, ""), acks, per[cfg],
          "%+.1f%%" % (100 * (per[cfg] / base - 1)) if base else "-"))
if "c" in per and "b" in per:
    print("   c/b instructions: %.3f" % (per["c"] / per["b"]))
EOF

if [ -f "$TMP/cg.c.out.1" ]; then
    replies=$(( 2 * $(awk '$1 == "c" {print $2}' "$TMP/cg.tsv") ))
    echo "== config c: the hook's callout and what it calls, Ir per reply ($replies replies)"
    callgrind_annotate --inclusive=yes --tree=calling --threshold=100 "$TMP/cg.c.out.1" \
        > "$TMP/cg.c.tree" 2>/dev/null || true
    python3 - "$TMP/cg.c.tree" "$replies" <<'EOF2'
import re, sys
path, replies = sys.argv[1], int(sys.argv[2])
line_re = re.compile(r"^\s*([\d,]+) \([ \d.]+%\)\s+([*>])\s+(.*?)(?: \(([\d,]+)x\))?(?: \[(.*)\])?$")
blocks, cur = [], []
for line in open(path):
    if not line.strip():
        if cur:
            blocks.append(cur)
        cur = []
        continue
    m = line_re.match(line.rstrip("\n"))
    if m:
        cur.append(m.groups())
if cur:
    blocks.append(cur)
wanted = [("scep_callouts.cc", "pkt4_send"), ("scep_hook.cc", "scep::hook::ScepHook::process(")]
short = lambda f: re.sub(r"std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string", f)
for src, func in wanted:
    best = None
    for b in blocks:
        head = [e for e in b if e[1] == "*"]
        if not head:
            continue
        name = head[0][2]
        callees = [e for e in b if e[1] == ">"]
        # the same function can show up in several blocks (one per debug-info
        # file name); keep the one that lists its callees
        if src + ":" + func in name and (best is None or len(callees) > len(best) - 1):
            best = [head[0]] + callees
    if not best:
        continue
    for ir, kind, name, calls, _ in best:
        name = short(name.split(":", 1)[1] if kind == "*" or name.startswith("/") or name.startswith("???") else name)
        print("   %7.0f  %s%s%s" % (int(ir.replace(",", "")) / replies, "" if kind == "*" else "  > ",
                                   name[:110], " (%sx)" % calls if calls else ""))
EOF2
fi
