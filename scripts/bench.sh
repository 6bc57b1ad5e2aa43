#!/usr/bin/env bash
# make bench: requests per second and latency through the gateway, measured
# with wrk beside nginx's own `return 200` in the same run on the same
# machine (the ceiling any proxied request can reach here).
#
# It starts its own stack from release binaries (SQLite in a temp folder, or
# BENCH_DATABASE=postgres for a throwaway PostgreSQL cluster), seeds one
# client and one order, then runs, each for BENCH_SECONDS (default 5) with
# BENCH_CONNECTIONS (default 64) connections:
#   nginx return 200 | GET /client/{id} | GET /order/{id} | POST /order/
# REPLICAS (default 1) instances of each service run behind the gateway, as
# in `make run` (scripts/stack.sh): REPLICAS=2 make bench.
#
# BENCH_BIN_DIR runs binaries built elsewhere (e.g. of an older commit, to
# compare) instead of building the release binaries of this tree.
# BENCH_PG_PORT: the throwaway PostgreSQL's port (default 54339).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-5}"
connections="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-2}"

if ! command -v wrk >/dev/null; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
    else
        echo "wrk is missing: install it (Debian: apt-get install wrk)" >&2
        exit 1
    fi
fi
scripts/ensure-nginx.sh
if [[ -n "${BENCH_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$BENCH_BIN_DIR" && pwd)"
else
    cargo build --release --locked --bin client_service --bin order_service
    bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
fi

work="$(mktemp -d /tmp/rest-microservices-bench.XXXXXX)"
pg_dir=""
export GATEWAY_PORT="${BENCH_GATEWAY_PORT:-18180}" CLIENT_SERVICE_PORT=18100 ORDER_SERVICE_PORT=18101
export DATA_DIR="$work/data" LOG_FORMAT=json
baseline_port=18190

# shellcheck source=scripts/stack.sh
source scripts/stack.sh
cleanup() {
    stack_stop
    if [[ -n "$pg_dir" ]]; then scripts/pg-cluster.sh stop "$pg_dir"; fi
    rm -rf "$work"
}
trap cleanup EXIT

case "${BENCH_DATABASE:-sqlite}" in
    sqlite) ;;
    postgres)
        # A folder of its own, not inside $work: mktemp makes $work private to
        # its owner, and the cluster runs as the `postgres` user when we are
        # root (pg-cluster.sh), which could not reach a folder inside it.
        pg_dir="$(mktemp -d /tmp/rest-microservices-bench-pg.XXXXXX)"
        admin="$(scripts/pg-cluster.sh start "$pg_dir" "${BENCH_PG_PORT:-54339}")"
        psql -q "$admin" -c "CREATE DATABASE clients" -c "CREATE DATABASE orders"
        export CLIENT_DATABASE_URL="${admin%/*}/clients" ORDER_DATABASE_URL="${admin%/*}/orders"
        ;;
    *)
        echo "BENCH_DATABASE=$BENCH_DATABASE: give sqlite or postgres" >&2
        exit 1
        ;;
esac
stack_start "$bin_dir" "$work/run"

# The baseline: the same nginx binary and process settings, answering by itself.
mkdir -p "$work/baseline/tmp"
sed -e "s|\${GATEWAY_RUN_DIR}|$work/baseline|g" gateway/local/nginx.conf.template >"$work/baseline/nginx.conf"
cat >"$work/baseline/gateway.conf" <<CONF
server {
    listen 127.0.0.1:$baseline_port;
    access_log off;
    location / { return 200 "ok\n"; }
}
CONF
"$(nginx_bin)" -p "$work/baseline" -c "$work/baseline/nginx.conf" &
STACK_PIDS+=($!)
wait_for "http://127.0.0.1:$baseline_port/"

gateway="http://127.0.0.1:$GATEWAY_PORT"
client_id="$(curl -fsS "$gateway/client/" -H 'content-type: application/json' \
    -d '{"name":"Bench","card_number":"BENCH-1","card_issued_on":"2020-01-01"}' | sed -E 's/.*"id":([0-9]+).*/\1/')"
order_id="$(curl -fsS "$gateway/order/" -H 'content-type: application/json' \
    -d "{\"client_id\":$client_id,\"item\":\"Bench\",\"price\":\"1.00\"}" | sed -E 's/^\{"id":([0-9]+).*/\1/')"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"client_id":$client_id,"item":"Bench","quantity":2,"price":"9.99"}'
LUA

printf '\nwrk -t%s -c%s -d%ss, %s, %s instance(s) of each service, %s cores\n\n' \
    "$threads" "$connections" "$seconds" "${BENCH_DATABASE:-sqlite}" "${REPLICAS:-1}" "$(nproc)"
printf '%-24s %12s %10s %10s %10s %10s %9s\n' "target" "req/s" "p50" "p90" "p99" "errors" "vs nginx"
baseline_rps=""
run() {
    local name="$1" url="$2"; shift 2
    local out rps p50 p90 p99 errors
    out="$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "$@" "$url")"
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p90="$(awk '$1 == "90%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    errors="$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {n += 1} END {print n + 0}' <<<"$out")"
    [[ -z "$baseline_rps" ]] && baseline_rps="$rps"
    printf '%-24s %12s %10s %10s %10s %10s %8.1f%%\n' "$name" "$rps" "$p50" "$p90" "$p99" "$errors" \
        "$(awk -v a="$rps" -v b="$baseline_rps" 'BEGIN {print 100 * a / b}')"
}
run "nginx return 200" "http://127.0.0.1:$baseline_port/"
run "GET /client/{id}" "$gateway/client/$client_id"
run "GET /order/{id}" "$gateway/order/$order_id"
run "POST /order/" "$gateway/order/" -s "$work/post.lua"
