# shellcheck shell=bash
# The measurements of bench/store/store-growth.sh (sourced by it, after
# bench/scep/common.sh). Each figure goes to WORK/results.txt as a line
# "SIZE KEY VALUE"; summarize prints the table.

record() { echo "$1 $2 $3" >>"$WORK/results.txt"; }

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Starts `scep-ra serve` on CONFIG; sets SERVER_PID and STARTUP_MS (launch
# until /healthz answers 200 over HTTPS).
start_server() {
    local t0 i code
    t0=$(now_ms)
    "$SCEP_RA" serve --config "$CONFIG" >"$DIR/server.out" 2>>"$DIR/server.log" &
    SERVER_PID=$!
    for i in $(seq 1 6000); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$STATE/ca.pem" \
            "https://127.0.0.1:$ADMIN_PORT/healthz" 2>/dev/null || true)
        if [ "$code" = 200 ]; then
            STARTUP_MS=$(($(now_ms) - t0))
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$DIR/server.log" >&2; die "scep-ra exited"; }
        # The first start creates the CA (and ca.pem) itself.
        sleep 0.01
    done
    die "scep-ra did not answer /healthz within 60 s"
}

stop_server() {
    stop_pids "$SERVER_PID"
    SERVER_PID=
}

# Main file + WAL after a checkpoint (the server is stopped).
database_bytes() {
    sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
    local wal=0
    [ -f "$DB-wal" ] && wal=$(stat -c %s "$DB-wal")
    echo $(($(stat -c %s "$DB") + wal))
}

# One HTTPS call to the admin API; prints "HTTP-CODE SERVER-MS": the time
# after the TLS handshake until the whole answer was read.
admin_call() {
    local token=$1 path=$2
    shift 2
    curl -s --cacert "$STATE/ca.pem" -H "Authorization: Bearer $token" -o "$DIR/answer.json" \
        -w '%{http_code} %{time_pretransfer} %{time_total}\n' "$@" \
        "https://127.0.0.1:$ADMIN_PORT$path" | awk '{ printf "%s %.3f\n", $1, 1000 * ($3 - $2) }'
}

# search NAME PATH: median server time of RUNS calls, and the total found
# (found_NAME: the API's total, a lower bound when it says total_exact false).
search() {
    local name=$1 path=$2 i out times=() total
    for i in $(seq 1 "$RUNS"); do
        out=$(admin_call "$VIEWER" "$path")
        [ "${out%% *}" = 200 ] || die "GET $path answered ${out%% *}: $(head -c 300 "$DIR/answer.json")"
        times+=("${out#* }")
    done
    total=$(grep -o '"total":[0-9]*' "$DIR/answer.json" | cut -d: -f2 || true)
    record "$SIZE" "search_${name}_ms" "$(echo "${times[*]}" | median)"
    record "$SIZE" "found_$name" "${total:--}"
    # A text search counts 1,000 past the page at most: "1000+ found".
    local more=""
    if grep -q '"total_exact":false' "$DIR/answer.json"; then more="+"; fi
    printf '   %-22s %8.2f ms  (%s found)  GET %s\n' "$name" "$(echo "${times[*]}" | median)" \
        "${total:--}$more" "$path"
}

# The admin searches, on a device in the middle of the seeded range.
searches() {
    local dev hex mac
    dev=$((SIZE / 2))
    hex=$(printf '005B%08X' "$dev")
    mac=$(echo "$hex" | sed 's/\(..\)/\1:/g; s/:$//')
    search pending "/api/requests?status=pending"
    search mac_requests "/api/requests?mac=$mac"
    search mac_certificates "/api/certificates?q=$mac"
    search cn_certificates "/api/certificates?q=${hex:6}"
    search cn_common "/api/certificates?q=8865"   # CP-8865: 1 device in 5
    search cn_requests "/api/requests?q=${hex:6}"
    search expiring "/api/certificates?expiring_within_days=30"
    search revoked "/api/certificates?status=revoked"
    search metrics "/metrics"
}

# Revoking rebuilds and signs the CRL before the answer: RUNS revocations
# of certificates seeded valid, then GET /crl of the cached one.
crl() {
    local serials serial out times=() get=() i entries
    serials=$(sqlite3 "$DB" "SELECT serial FROM certificates WHERE revoked = 0 ORDER BY rowid \
        LIMIT $RUNS OFFSET $((SIZE / 3))")
    for serial in $serials; do
        out=$(admin_call "$APPROVER" "/api/certificates/$serial/revoke" -X POST \
            -H 'Content-Type: application/json' -d '{"reason": "keyCompromise"}')
        [ "${out%% *}" = 200 ] || die "revoke $serial answered ${out%% *}: $(cat "$DIR/answer.json")"
        times+=("${out#* }")
    done
    for i in $(seq 1 "$RUNS"); do
        get+=("$(curl -s -o "$DIR/crl.der" -w '%{time_total}' "http://127.0.0.1:$RA_PORT/crl" |
            awk '{ printf "%.3f", 1000 * $1 }')")
    done
    entries=$(openssl crl -inform DER -in "$DIR/crl.der" -noout -text | grep -c 'Serial Number:')
    record "$SIZE" crl_revoke_ms "$(echo "${times[*]}" | median)"
    record "$SIZE" crl_get_ms "$(echo "${get[*]}" | median)"
    record "$SIZE" crl_entries "$entries"
    record "$SIZE" crl_bytes "$(stat -c %s "$DIR/crl.der")"
    printf '   CRL: revoke + rebuild %.2f ms, GET /crl %.2f ms, %s entries, %s bytes\n' \
        "$(echo "${times[*]}" | median)" "$(echo "${get[*]}" | median)" "$entries" \
        "$(stat -c %s "$DIR/crl.der")"
}

# One scep_load run against the store of SIZE (its server, the binary
# labelled LABEL, is up); keeps the RESULT line's p99, CPU per enrollment and
# rate in WORK/load.txt.
enrollments() {
    local round=$1 label=$2 out=$DIR/load-$1-$2.out line p99 cpu rate
    "$LOAD" -n "$LOAD_N" -c "$LOAD_C" --warmup 0 --pool "$POOL" --pool-keys "$WORK/pool-keys.pem" \
        --url "http://127.0.0.1:$RA_PORT/scep" "${MICS[@]}" --server-pid "$SERVER_PID" \
        >"$out" 2>"$out.err" || { cat "$out.err" >&2; die "scep_load failed"; }
    line=$(grep '^RESULT ' "$out")
    p99=$(field p99_ms "$line")
    cpu=$(field cpu_ms_per_enroll "$line")
    rate=$(field rate "$line")
    echo "$SIZE $label $p99 $cpu $rate" >>"$WORK/load.txt"
    echo "   [$round] $SIZE certificates, $label: p99 $p99 ms, CPU $cpu ms/enrollment, $rate enrollments/s"
}

# The value of KEY=VALUE in scep_load's RESULT line (a whole word: not
# upstream_cpu_ms_per_enroll for cpu_ms_per_enroll).
field() { echo " $2" | grep -o " $1=[-0-9.]*" | cut -d= -f2; }

# The stores of SIZE (already seeded) with their paths.
use_size() {
    SIZE=$1
    DIR=$WORK/s$SIZE
    CONFIG=$DIR/scep.toml
    STATE=$DIR/state
    DB=$STATE/scep-ra.db
}

# LOAD_ROUNDS rounds; each runs scep_load against every size, in an order
# that rotates, so that what else the machine does falls on all sizes alike
# (and, with BASE_RA, on both binaries: they alternate which goes first).
enrollment_rounds() {
    local round i count sizes binaries label own=$SCEP_RA
    read -ra sizes <<<"$SIZES"
    count=${#sizes[@]}
    echo "== enrollments: $LOAD_ROUNDS rounds of N=$LOAD_N at C=$LOAD_C against each size, rotating"
    for round in $(seq 1 "$LOAD_ROUNDS"); do
        binaries=(scep-ra)
        if [ -n "$BASE_RA" ]; then
            if [ $((round % 2)) = 1 ]; then binaries=(scep-ra base); else binaries=(base scep-ra); fi
        fi
        for i in $(seq 0 $((count - 1))); do
            use_size "${sizes[$(((i + round - 1) % count))]}"
            for label in "${binaries[@]}"; do
                if [ "$label" = base ]; then SCEP_RA=$BASE_RA; else SCEP_RA=$own; fi
                start_server
                enrollments "$round" "$label"
                stop_server
            done
        done
    done
    SCEP_RA=$own
    for size in "${sizes[@]}"; do
        for label in scep-ra ${BASE_RA:+base}; do
            local prefix=
            [ "$label" = base ] && prefix=base_
            record "$size" "${prefix}enroll_p99_ms" "$(load_median "$size" "$label" 3)"
            record "$size" "${prefix}enroll_cpu_ms" "$(load_median "$size" "$label" 4)"
            record "$size" "${prefix}enroll_rate" "$(load_median "$size" "$label" 5)"
        done
    done
}

# The median of column COLUMN of WORK/load.txt over the runs of SIZE, LABEL.
load_median() {
    awk -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l { print $c }' "$WORK/load.txt" | median
}

# Seeds a fresh state dir to SIZE certificates and measures it.
measure_size() {
    use_size "$1"
    mkdir -p "$DIR"
    write_ra_config "$DIR"  # CONFIG and STATE
    printf '\n[admin]\nlisten = "127.0.0.1:%s"\n' "$ADMIN_PORT" >>"$CONFIG"
    echo "== $SIZE certificates"
    start_server
    "$LOAD" -n 1 -c 1 --warmup 0 --pool 1 --url "http://127.0.0.1:$RA_PORT/scep" \
        --mic "$PKI/mic-cp8875.pem,$PKI/mic-cp8875.key" --server-pid "$SERVER_PID" \
        >"$DIR/template.out" 2>&1 || { cat "$DIR/template.out" >&2; die "template enrollment failed"; }
    stop_server
    local t0 starts=() i bytes certs
    t0=$(now_ms)
    "$SEED" --db "$DB" --certificates "$SIZE" | sed 's/^/   /'
    record "$SIZE" seed_s "$(awk -v ms=$(($(now_ms) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')"
    bytes=$(database_bytes)
    certs=$(sqlite3 "$DB" 'SELECT count(*) FROM certificates')
    record "$SIZE" db_mb "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
    record "$SIZE" bytes_per_cert "$((bytes / certs))"
    VIEWER=$("$SCEP_RA" token create --name bench-viewer --role viewer --config "$CONFIG" 2>>"$DIR/cli.log")
    APPROVER=$("$SCEP_RA" token create --name bench-approver --role approver --config "$CONFIG" 2>>"$DIR/cli.log")
    for i in $(seq 1 "$STARTS"); do
        [ "$i" = 1 ] || stop_server
        start_server
        starts+=("$STARTUP_MS")
    done
    record "$SIZE" startup_ms "$(echo "${starts[*]}" | median)"
    echo "   start-up until /healthz: ${starts[*]} ms; database $bytes bytes, $((bytes / certs)) per certificate"
    searches
    crl
    stop_server
}

# The table: one column per size, the ratio largest / smallest, and the
# goals (p99 and CPU within TARGET_RATIO, searches under TARGET_SEARCH_MS at
# the largest size).
summarize() {
    echo
    awk -v target_ratio="$TARGET_RATIO" -v target_ms="$TARGET_SEARCH_MS" '
    { if (!($1 in seen)) { seen[$1] = 1; sizes[++n] = $1 }
      if (!($2 in known)) { known[$2] = 1; keys[++k] = $2 }
      v[$1, $2] = $3 }
    END {
        first = sizes[1]; last = sizes[n]
        printf "== store growth: %s certificates\n", (n > 1 ? first " to " last : first)
        printf "   %-26s", "figure"
        for (i = 1; i <= n; i++) printf " %12s", sizes[i]
        printf " %9s  %s\n", "ratio", "goal"
        for (j = 1; j <= k; j++) {
            key = keys[j]
            printf "   %-26s", key
            for (i = 1; i <= n; i++) printf " %12s", ((sizes[i], key) in v) ? v[sizes[i], key] : "-"
            a = v[first, key] + 0; b = v[last, key] + 0
            ratio = (n > 1 && a > 0) ? sprintf("%.2f", b / a) : "-"
            goal = ""
            if (key == "enroll_p99_ms" || key == "enroll_cpu_ms")
                goal = sprintf("ratio <= %s  %s", target_ratio, (ratio != "-" && ratio + 0 <= target_ratio) ? "PASS" : "MISS")
            else if (key ~ /^search_/)
                goal = sprintf("< %s ms at %s  %s", target_ms, last, (b < target_ms) ? "PASS" : "MISS")
            printf " %9s  %s\n", ratio, goal
        }
    }' "$1"
}
