#!/usr/bin/env bash
# make soak: a long, steady mix of requests through the gateway, to show what
# a short benchmark cannot: whether throughput, latency, memory and disk stay
# flat over time or grow.
#
# It starts its own stack from release binaries (one instance of each
# service; SQLite in a temp folder, or SOAK_DATABASE=postgres for a throwaway
# PostgreSQL cluster), seeds 20 clients and 200 orders, then runs wrk with a
# Lua script that sends, through the gateway:
#   40 % GET /order/{id}   40 % GET /client/{id}   (seeded, never deleted)
#   19 % POST /order/       1 % DELETE /order/{id}  (of an order it created)
# one wrk run per interval, and prints a row per interval: requests per
# second, p50 and p99 latency, errors (non-2xx answers and socket errors),
# each service's resident memory, the databases' size on disk (SQLite: both
# database files and their WALs; PostgreSQL: pg_database_size of both), and
# the largest WAL seen (sampled every second) or, on PostgreSQL, the longest
# time a session of the services sat idle in a transaction.
#
# Then a verdict, comparing the last third of the intervals with the first:
#   throughput  mean req/s fell by at most 25 %
#   latency     mean p50 and p99 rose by at most 50 % (+ 1 ms)
#   memory      each service's RSS rose by at most 25 % (+ 16 MiB) after the
#               first interval
#   disk        the database files grew by at most 2 KiB per order added
#               (orders are added all along: the data grows, its cost per
#               row may not), and each WAL stayed under its bound
#
# It fails (exit 1) when any request failed, when a WAL passed its bound
# (SOAK_WAL_BOUND_MIB, default 32: see crates/data/src/sqlite/wal.rs),
# or when a WAL is not empty once the services have been idle for a while.
# The flatness verdict only fails it with SOAK_STRICT=1: timings on a shared
# or busy machine vary for reasons of their own.
#
# Settings:
#   SOAK_SECONDS      the whole run (default 600)
#   SOAK_INTERVAL     seconds per row (default 60; for runs under 5 minutes,
#                     a fifth of the run, so that there are several rows)
#   SOAK_CONNECTIONS  wrk connections (default 16), SOAK_THREADS (default 2)
#   SOAK_DATABASE     sqlite (default) or postgres
#   SOAK_PORT         client_service's port; order_service gets +1, the
#                     gateway +80 (default 18200)
#   SOAK_PG_PORT      the throwaway PostgreSQL's port (default 54359)
#   SOAK_BIN_DIR      run binaries built elsewhere (make test: target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${SOAK_SECONDS:-600}"
connections="${SOAK_CONNECTIONS:-16}"
threads="${SOAK_THREADS:-2}"
database="${SOAK_DATABASE:-sqlite}"
wal_bound_mib="${SOAK_WAL_BOUND_MIB:-32}"
base_port="${SOAK_PORT:-18200}"
for name in seconds connections threads wal_bound_mib base_port; do
    [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || { echo "soak: $name must be a whole number > 0 (got '${!name}')" >&2; exit 2; }
done
if [[ -n "${SOAK_INTERVAL:-}" ]]; then
    interval="$SOAK_INTERVAL"
elif ((seconds >= 300)); then
    interval=60
else
    interval=$(((seconds + 4) / 5))
fi
[[ "$interval" =~ ^[1-9][0-9]*$ ]] || { echo "soak: SOAK_INTERVAL must be a whole number > 0" >&2; exit 2; }
((interval <= seconds)) || interval="$seconds"
rows=$((seconds / interval))
[[ "$database" == sqlite || "$database" == postgres ]] \
    || { echo "soak: SOAK_DATABASE must be sqlite or postgres (got '$database')" >&2; exit 2; }

scripts/setup/ensure-wrk.sh
scripts/setup/ensure-nginx.sh
if [[ -n "${SOAK_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$SOAK_BIN_DIR" && pwd)"
else
    cargo build --release --locked --bin auth_service --bin client_service --bin order_service --bin console
    bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
fi

work="$(mktemp -d /tmp/rest-microservices-soak.XXXXXX)"
export CLIENT_SERVICE_PORT="$base_port" ORDER_SERVICE_PORT=$((base_port + 1)) GATEWAY_PORT=$((base_port + 80))
export DATA_DIR="$work/data" LOG_FORMAT=json REPLICAS=1

# shellcheck source=scripts/dev/stack.sh
source scripts/dev/stack.sh
stack_without_rate_limits
pg_dir="" pg_admin=""
cleanup() {
    stack_stop
    [[ -n "$pg_dir" ]] && scripts/dev/pg-cluster.sh stop "$pg_dir"
    rm -rf "$work"
}
trap cleanup EXIT

if [[ "$database" == postgres ]]; then
    # Its own temp folder, not one inside $work: the server runs as the
    # postgres user, who cannot enter a folder private to root.
    pg_dir="$(mktemp -d /tmp/rest-microservices-soak-pg.XXXXXX)"
    pg_admin="$(scripts/dev/pg-cluster.sh start "$pg_dir" "${SOAK_PG_PORT:-54359}")"
    psql -q "$pg_admin" -c "CREATE DATABASE clients" -c "CREATE DATABASE orders"
    export CLIENT_DATABASE_URL="${pg_admin%/*}/clients" ORDER_DATABASE_URL="${pg_admin%/*}/orders"
fi
stack_start "$bin_dir" "$work/run"
client_pid="${STACK_PIDS[0]}" order_pid="${STACK_PIDS[1]}"
gateway="http://127.0.0.1:$GATEWAY_PORT"

# The API needs an access token (the development client's, stack_token in
# scripts/dev/stack.sh); a token lasts 5 minutes, so each wrk run below gets a
# fresh one (SOAK_TOKEN, read by mix.lua for its POSTs; -H for the rest).
auth="Authorization: Bearer $(stack_token)"
# Seed: 20 clients and 200 orders, read all along and never deleted.
client_ids=() order_ids=()
for i in $(seq 1 20); do
    client_ids+=("$(curl -fsS "$gateway/client/" -H "$auth" -H 'content-type: application/json' \
        -d "{\"name\":\"Soak $i\",\"card_number\":\"SOAK-$i\",\"card_issued_on\":\"2020-01-01\"}" \
        | sed -E 's/.*"id":([0-9]+).*/\1/')")
done
for i in $(seq 1 200); do
    order_ids+=("$(curl -fsS "$gateway/order/" -H "$auth" -H 'content-type: application/json' \
        -d "{\"client_id\":${client_ids[i % 20]},\"item\":\"Seed $i\",\"price\":\"1.00\"}" \
        | sed -E 's/^\{"id":([0-9]+).*/\1/')")
done

lua_list() { local IFS=,; echo "{$*}"; }
cat >"$work/mix.lua" <<LUA
-- 40 % GET /order/{id}, 40 % GET /client/{id}, 19 % POST /order/,
-- 1 % DELETE /order/{id} of an order this thread created.
local clients = $(lua_list "${client_ids[@]}")
local orders = $(lua_list "${order_ids[@]}")
local created = {}
local post_headers = { ["Content-Type"] = "application/json",
                       ["Authorization"] = "Bearer " .. os.getenv("SOAK_TOKEN") }
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(os.time() * 100 + (id or 0))
end

function request()
  local r = math.random(100)
  if r <= 40 then
    return wrk.format("GET", "/order/" .. orders[math.random(#orders)])
  elseif r <= 80 then
    return wrk.format("GET", "/client/" .. clients[math.random(#clients)])
  elseif r <= 99 or #created == 0 then
    local body = '{"client_id":' .. clients[math.random(#clients)]
      .. ',"item":"Soak","quantity":2,"price":"9.99"}'
    return wrk.format("POST", "/order/", post_headers, body)
  else
    return wrk.format("DELETE", "/order/" .. table.remove(created))
  end
end

function response(status, headers, body)
  if status == 201 and #created < 1000 then
    local location = headers["location"] or headers["Location"] or ""
    local id = location:match("^/order/(%d+)$")
    if id then created[#created + 1] = id end
  end
end
LUA

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
file_bytes() { local n=0 f; for f in "$@"; do [[ -f "$f" ]] && n=$((n + $(stat -c %s "$f"))); done; echo "$n"; }
# The databases on disk: with their WALs (shown), or without (the data, for
# the cost per order: a WAL's size is checked against its bound instead).
db_bytes() {
    if [[ "$database" == postgres ]]; then
        psql -qtAX "$pg_admin" -c "SELECT pg_database_size('clients') + pg_database_size('orders')"
    else
        file_bytes "$DATA_DIR"/client_service.db{,-wal} "$DATA_DIR"/order_service.db{,-wal}
    fi
}
data_bytes() {
    if [[ "$database" == postgres ]]; then db_bytes; else file_bytes "$DATA_DIR"/{client,order}_service.db; fi
}
# The largest WAL file now (SQLite), or the longest a session has been idle
# in a transaction now, in ms (PostgreSQL).
probe() {
    if [[ "$database" == postgres ]]; then
        psql -qtAX "$pg_admin" -c "SELECT coalesce(max(extract(epoch FROM now() - state_change) * 1000), 0)::bigint
            FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname IN ('clients', 'orders')"
    else
        local a b
        a="$(file_bytes "$DATA_DIR/client_service.db-wal")" b="$(file_bytes "$DATA_DIR/order_service.db-wal")"
        echo $((a > b ? a : b))
    fi
}
# Orders in the database: the seeded ones plus those created, less those
# deleted, counted by order_service's own metrics.
order_rows() {
    curl -fsS "http://127.0.0.1:$ORDER_SERVICE_PORT/metrics" | awk '
        /^http_requests_total\{/ && /method="POST"/ && /route="\/order\/"/ && /status="201"/ {n += $NF}
        /^http_requests_total\{/ && /method="DELETE"/ && /route="\/order\/\{id\}"/ && /status="204"/ {n -= $NF}
        END {printf "%d", n}'
}
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
        else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000; else printf "%s", v }'
}

if [[ "$database" == postgres ]]; then probe_name="idle-tx ms"; else probe_name="WAL max MiB"; fi
printf '\nsoak: %s s in %s intervals of %s s, wrk -t%s -c%s, %s, %s cores (%s)\n' \
    "$seconds" "$rows" "$interval" "$threads" "$connections" "$database" "$(nproc)" \
    "40 % GET /order/{id}, 40 % GET /client/{id}, 19 % POST /order/, 1 % DELETE /order/{id}"
printf '\n%-8s %10s %9s %9s %7s %11s %11s %9s %12s\n' \
    "t (s)" "req/s" "p50 ms" "p99 ms" "errors" "client MiB" "order MiB" "db MiB" "$probe_name"

results="$work/results"
: >"$results"
start_bytes="$(data_bytes)" start_rows="$(order_rows)"
max_probe=0
for ((row = 1; row <= rows; row++)); do
    (
        # A sample a second during the interval; bounded by its length.
        for ((s = 0; s < interval; s++)); do sleep 1; probe; done
    ) >"$work/probe" 2>/dev/null &
    probe_pid=$!
    SOAK_TOKEN="$(stack_token)"
    export SOAK_TOKEN
    out="$(wrk -t"$threads" -c"$connections" -d"${interval}s" --timeout 10s --latency -s "$work/mix.lua" \
        -H "Authorization: Bearer $SOAK_TOKEN" "$gateway")"
    wait "$probe_pid" || true
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    errors="$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")"
    peak="$(sort -n "$work/probe" | tail -n 1)"
    peak="${peak:-0}"
    ((peak > max_probe)) && max_probe="$peak"
    client_rss="$(rss_mib "$client_pid")" order_rss="$(rss_mib "$order_pid")"
    bytes="$(db_bytes)"
    if [[ "$database" == postgres ]]; then shown_peak="$peak"; else shown_peak="$(awk -v b="$peak" 'BEGIN {printf "%.1f", b / 1048576}')"; fi
    printf '%-8s %10s %9s %9s %7s %11s %11s %9s %12s\n' "$((row * interval))" "$rps" "$p50" "$p99" "$errors" \
        "$client_rss" "$order_rss" "$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')" "$shown_peak"
    echo "$rps $p50 $p99 $errors $client_rss $order_rss" >>"$results"
done
end_bytes="$(data_bytes)" end_rows="$(order_rows)"
# Idle now: within a couple of seconds the services' checkpointers empty
# their WALs (SQLite). Waits 10 s at most.
idle_wal=0
if [[ "$database" == sqlite ]]; then
    for ((i = 0; i < 20; i++)); do
        idle_wal="$(probe)"
        ((idle_wal == 0)) && break
        sleep 0.5
    done
fi

# The verdict: the last third of the rows against the first.
verdict="$(awk -v third=$(((rows + 2) / 3)) -v rows="$rows" \
    -v grown=$((end_bytes - start_bytes)) -v added=$((end_rows - start_rows)) \
    -v database="$database" -v peak="$max_probe" -v bound=$((wal_bound_mib * 1048576)) '
    { rps[NR] = $1; p50[NR] = $2; p99[NR] = $3; errors += $4; crss[NR] = $5; orss[NR] = $6 }
    function mean(a, from, to,   s, i) { s = 0; for (i = from; i <= to; i++) s += a[i]; return s / (to - from + 1) }
    function line(name, ok, text) { printf "%-11s %-5s %s\n", name, ok ? "flat" : "GREW", text; if (!ok) grew = 1 }
    END {
        f = 1; l = rows - third + 1
        r0 = mean(rps, f, third); r1 = mean(rps, l, rows)
        line("throughput", r1 >= 0.75 * r0, sprintf("%.0f -> %.0f req/s (may fall 25 %%)", r0, r1))
        a0 = mean(p50, f, third); a1 = mean(p50, l, rows); b0 = mean(p99, f, third); b1 = mean(p99, l, rows)
        line("latency", a1 <= 1.5 * a0 + 1 && b1 <= 1.5 * b0 + 1,
            sprintf("p50 %.2f -> %.2f ms, p99 %.2f -> %.2f ms (may rise 50 %% + 1 ms)", a0, a1, b0, b1))
        line("memory", crss[rows] <= 1.25 * crss[1] + 16 && orss[rows] <= 1.25 * orss[1] + 16,
            sprintf("client_service %.1f -> %.1f MiB, order_service %.1f -> %.1f MiB (may rise 25 %% + 16 MiB)",
                crss[1], crss[rows], orss[1], orss[rows]))
        per_row = added > 0 ? grown / added : 0
        ok = per_row <= 2048 && (database == "postgres" || peak <= bound)
        text = sprintf("data %+.1f MiB for %d orders added: %.0f bytes per order (may be 2048)", grown / 1048576, added, per_row)
        if (database == "sqlite") text = text sprintf("; largest WAL %.1f MiB (bound %.0f MiB)", peak / 1048576, bound / 1048576)
        line("disk", ok, text)
        printf "errors      %d\n", errors
        printf "verdict     %s\n", grew ? "something GREW (see above)" : "flat: throughput, latency, memory and disk"
    }' "$results")"
printf '\n%s\n' "$verdict"

status=0
if grep -qE '^errors +[1-9]' <<<"$verdict"; then
    echo "soak: FAILED: some requests failed (non-2xx answers or socket errors)" >&2
    status=1
fi
if [[ "$database" == sqlite ]]; then
    echo "idle WAL    $idle_wal bytes, 10 s at most after the last request (must be 0: truncated when idle)"
    if ((max_probe > wal_bound_mib * 1048576)); then
        echo "soak: FAILED: a WAL reached $max_probe bytes, past its bound of $wal_bound_mib MiB" >&2
        status=1
    fi
    if ((idle_wal > 0)); then
        echo "soak: FAILED: a WAL still holds $idle_wal bytes after the service was idle" >&2
        status=1
    fi
fi
if [[ "${SOAK_STRICT:-0}" == 1 ]] && grep -q 'GREW' <<<"$verdict"; then
    echo "soak: FAILED: something grew (SOAK_STRICT=1)" >&2
    status=1
fi
exit "$status"
