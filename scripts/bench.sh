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
# The table's header says which database, and which binaries: the git
# commit of this tree (with "+ uncommitted changes" when the tree differs from
# it) and the build profile. BENCH_PROFILE=debug measures the debug binaries
# (`make test` runs one short round that way, to check that the bench works,
# not to measure). BENCH_BIN_DIR runs binaries built elsewhere (e.g. of an
# older commit, to compare) instead of building any; BENCH_BIN_COMMIT then
# says which commit they are of, for the header.
#
# It fails (after the table) when a target got an answer other than 2xx, or
# none at all: such figures measure an error, not the system.
#
#   BENCH_SECONDS (5)  BENCH_CONNECTIONS (64)  BENCH_THREADS (2)
#   BENCH_DATABASE (sqlite | postgres)  BENCH_PG_PORT (54339)
#   BENCH_GATEWAY_PORT (18180)  BENCH_PROFILE (release | debug)
#   BENCH_BIN_DIR, BENCH_BIN_COMMIT  REPLICAS (1)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-5}"
connections="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-2}"

scripts/ensure-wrk.sh
scripts/ensure-nginx.sh
if [[ -n "${BENCH_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$BENCH_BIN_DIR" && pwd)"
    binaries="commit ${BENCH_BIN_COMMIT:-unknown (set BENCH_BIN_COMMIT)}, from $bin_dir"
else
    case "${BENCH_PROFILE:-release}" in
        release) cargo build --release --locked --bin client_service --bin order_service ;;
        debug) cargo build --locked --bin client_service --bin order_service ;;
        *)
            echo "BENCH_PROFILE=$BENCH_PROFILE: give release or debug" >&2
            exit 1
            ;;
    esac
    bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/${BENCH_PROFILE:-release}"
    # The commit the binaries were just built from: this tree's.
    if commit="$(git rev-parse --short=12 HEAD 2>/dev/null)"; then
        [[ -z "$(git status --porcelain 2>/dev/null)" ]] || commit+=" + uncommitted changes"
    else
        commit="unknown (not a git checkout)"
    fi
    binaries="commit $commit, ${BENCH_PROFILE:-release} build"
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

printf '\nwrk -t%s -c%s -d%ss, %s, %s instance(s) of each service, %s cores\n' \
    "$threads" "$connections" "$seconds" "${BENCH_DATABASE:-sqlite}" "${REPLICAS:-1}" "$(nproc)"
printf 'binaries: %s\n\n' "$binaries"
printf '%-24s %12s %10s %10s %10s %10s %9s\n' "target" "req/s" "p50" "p90" "p99" "errors" "vs nginx"
baseline_rps=""
failed=()
run() {
    local name="$1" url="$2"; shift 2
    local out rps p50 p90 p99 non_2xx socket_errors
    out="$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "$@" "$url")"
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p90="$(awk '$1 == "90%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non_2xx="$(awk '/Non-2xx/ {n += $NF} END {print n + 0}' <<<"$out")"
    # "Socket errors: connect 0, read 0, write 0, timeout 3": their sum.
    socket_errors="$(awk -F'[ ,]+' '/Socket errors/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i} END {print n + 0}' <<<"$out")"
    [[ -z "$baseline_rps" ]] && baseline_rps="$rps"
    printf '%-24s %12s %10s %10s %10s %10s %8.1f%%\n' "$name" "${rps:-0}" "$p50" "$p90" "$p99" \
        "$((non_2xx + socket_errors))" "$(awk -v a="${rps:-0}" -v b="${baseline_rps:-0}" 'BEGIN {print (b > 0 ? 100 * a / b : 0)}')"
    if ((non_2xx > 0)) || ! awk -v r="${rps:-0}" 'BEGIN {exit !(r > 0)}'; then
        failed+=("$name: ${rps:-0} req/s, $non_2xx answers other than 2xx")
    fi
}
run "nginx return 200" "http://127.0.0.1:$baseline_port/"
run "GET /client/{id}" "$gateway/client/$client_id"
run "GET /order/{id}" "$gateway/order/$order_id"
run "POST /order/" "$gateway/order/" -s "$work/post.lua"
if ((${#failed[@]})); then
    printf '\nthe bench failed: these figures measure errors, not the system\n' >&2
    printf '  %s\n' "${failed[@]}" >&2
    tail -n 20 "$work/run"/*.log >&2 || true
    exit 1
fi
