#!/usr/bin/env bash
# make bench: requests per second, latency and CPU time per request through
# the gateway, measured with wrk against the architecture's own limit in the
# same run on the same machine.
#
# It starts its own stack from release binaries (SQLite in a temp folder, or
# BENCH_DATABASE=postgres for a throwaway PostgreSQL cluster), seeds one
# client and one order, then runs each target for BENCH_SECONDS (default 5)
# with BENCH_CONNECTIONS (default 64) connections:
#   nginx return 200   nginx answering by itself (no proxying, no access log)
#   limit              the project's gateway (the same template, access log
#                      on) in front of tools/bench_limit, an axum server that
#                      answers a fixed client-sized JSON body: the most any
#                      service can reach behind this gateway on this machine
#   GET /client/{id} | GET /order/{id} | POST /order/ | POST /order/ keyed
#                      (the last with a new Idempotency-Key each time)
#   GET /console/clients  the web console's clients page, signed in as admin
#                      (scripts/dev/console-session.sh): the gateway, the
#                      console, and its one API call (through the gateway to
#                      client_service); its CPU per page counts the console too
# REPLICAS (default 1) instances of each service run behind the gateway, as
# in `make run` (scripts/dev/stack.sh): REPLICAS=2 make bench.
#
# Columns: req/s; latency percentiles; errors (non-2xx answers and socket
# errors); "÷ limit", the target's req/s over the limit row's; and "CPU µs/req",
# the CPU time (user + system, from /proc/PID/stat before and after the
# target) of the processes that answer it, over the requests answered: both
# services' instances, the database server's processes (PostgreSQL), and
# the gateway's nginx workers. (wrk's own CPU is not counted.) Unlike req/s,
# that figure does not depend on how many cores the machine has, so it
# compares across machines. The columns svc, gw and db split it: the
# services' instances (for the limit row, the limit server), the gateway's
# nginx, and the database server (PostgreSQL's processes; "-" on SQLite,
# which runs inside the services).
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
#   BENCH_PG_TCP    set: the services reach PostgreSQL over TCP on
#                   127.0.0.1 rather than its Unix socket
#   BENCH_GATEWAY_PORT (18180)  BENCH_PROFILE (release | debug)
#   BENCH_BIN_DIR, BENCH_BIN_COMMIT  REPLICAS (1)
#   BENCH_TARGETS   the targets to run, by short name, space-separated
#                   (default: "return200 limit client order post keyed console")
#   BENCH_PERF_DIR  when set (scripts/perf/profile.sh), `perf record` samples the
#                   services while each service target runs, into
#                   BENCH_PERF_DIR/<target>.perf.data
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${BENCH_SECONDS:-5}"
connections="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-2}"

scripts/setup/ensure-wrk.sh
scripts/setup/ensure-nginx.sh
profile="${BENCH_PROFILE:-release}"
case "$profile" in
    release | debug | profiling) ;;
    *)
        echo "BENCH_PROFILE=$profile: give release, debug or profiling" >&2
        exit 1
        ;;
esac
cargo_profile=(--profile "$profile")
[[ "$profile" != debug ]] || cargo_profile=(--profile dev)
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/$profile"
if [[ -n "${BENCH_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$BENCH_BIN_DIR" && pwd)"
    binaries="commit ${BENCH_BIN_COMMIT:-unknown (set BENCH_BIN_COMMIT)}, from $bin_dir"
    # The limit server is the measuring instrument, not the system measured:
    # always this tree's.
    cargo build "${cargo_profile[@]}" --locked --bin bench_limit
else
    cargo build "${cargo_profile[@]}" --locked --bin auth_service --bin client_service --bin order_service --bin console --bin bench_limit
    bin_dir="$target_dir"
    # The commit the binaries were just built from: this tree's.
    if commit="$(git rev-parse --short=12 HEAD 2>/dev/null)"; then
        [[ -z "$(git status --porcelain 2>/dev/null)" ]] || commit+=" + uncommitted changes"
    else
        commit="unknown (not a git checkout)"
    fi
    binaries="commit $commit, $profile build"
fi
limit_bin="$target_dir/bench_limit"

work="$(mktemp -d /tmp/rest-microservices-bench.XXXXXX)"
pg_dir="" pg_via=""
export GATEWAY_PORT="${BENCH_GATEWAY_PORT:-18180}" CLIENT_SERVICE_PORT=18100 ORDER_SERVICE_PORT=18101
export DATA_DIR="$work/data" LOG_FORMAT=json
baseline_port=18190 limit_port=18191 limit_server_port=18102
targets=" ${BENCH_TARGETS:-return200 limit client order post keyed console} "

# shellcheck source=scripts/dev/stack.sh
source scripts/dev/stack.sh
stack_without_rate_limits
cleanup() {
    stack_stop
    if [[ -n "$pg_dir" ]]; then scripts/dev/pg-cluster.sh stop "$pg_dir"; fi
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
        # pg_stat_statements counts the statements each target sends (the
        # stmt column); its own cost is in every db figure, the floor's too.
        admin="$(PG_CLUSTER_SETTINGS="-c shared_preload_libraries=pg_stat_statements" \
            scripts/dev/pg-cluster.sh start "$pg_dir" "${BENCH_PG_PORT:-54339}")"
        psql -q "$admin" -c "CREATE DATABASE clients" -c "CREATE DATABASE orders" -c "CREATE DATABASE pgbench" \
            -c "CREATE EXTENSION pg_stat_statements"
        # The services connect over the cluster's Unix socket (in its
        # folder), as services on the database's own machine would: it costs
        # less CPU per statement than TCP through the loopback interface.
        # BENCH_PG_TCP=1 measures TCP on 127.0.0.1 instead.
        if [[ -n "${BENCH_PG_TCP:-}" ]]; then
            pg_base="${admin%/*}" pg_via="TCP"
        else
            pg_base="postgres://postgres@localhost" pg_via="its Unix socket"
            pg_query="?host=$pg_dir&port=$(cat "$pg_dir/port")"
        fi
        export CLIENT_DATABASE_URL="$pg_base/clients${pg_query:-}" ORDER_DATABASE_URL="$pg_base/orders${pg_query:-}"
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
baseline_pid=$!
STACK_PIDS+=("$baseline_pid")
wait_for "http://127.0.0.1:$baseline_port/"

# The limit: the project's gateway, rendered from the same template with its
# access log on, in front of the limit server for both /client/ and /order/.
"$limit_bin" "127.0.0.1:$limit_server_port" &
limit_server_pid=$!
STACK_PIDS+=("$limit_server_pid")
wait_for "http://127.0.0.1:$limit_server_port/healthz"
GATEWAY_RUN_DIR="$work/limit-gateway" GATEWAY_LISTEN="127.0.0.1:$limit_port" \
    CLIENT_SERVICE_ADDRS="127.0.0.1:$limit_server_port" ORDER_SERVICE_ADDRS="127.0.0.1:$limit_server_port" \
    AUTH_SERVICE_ADDRS="127.0.0.1:$limit_server_port" CONSOLE_ADDRS="127.0.0.1:$limit_server_port" \
    gateway/render.sh
"$(nginx_bin)" -p "$work/limit-gateway" -c "$work/limit-gateway/nginx.conf" &
limit_gateway_pid=$!
STACK_PIDS+=("$limit_gateway_pid")
wait_for "http://127.0.0.1:$limit_port/healthz"

gateway="http://127.0.0.1:$GATEWAY_PORT"
# Every request is authenticated, as a user's would be: one token of the
# development client (stack.sh's auth_service), sent by every target (the
# limit server and nginx's return 200 ignore it). Each service checks its
# signature once and then remembers it.
auth="Authorization: Bearer $(stack_token)"
client_id="$(curl -fsS "$gateway/client/" -H "$auth" -H 'content-type: application/json' \
    -d '{"name":"Bench","card_number":"BENCH-1","card_issued_on":"2020-01-01"}' | sed -E 's/.*"id":([0-9]+).*/\1/')"
order_id="$(curl -fsS "$gateway/order/" -H "$auth" -H 'content-type: application/json' \
    -d "{\"client_id\":$client_id,\"item\":\"Bench\",\"price\":\"1.00\"}" | sed -E 's/^\{"id":([0-9]+).*/\1/')"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"client_id":$client_id,"item":"Bench","quantity":2,"price":"9.99"}'
LUA
# The same with a new Idempotency-Key on every request (wrk's threads each
# number their own, from a prefix setup() gives each).
cat "$work/post.lua" >"$work/keyed.lua"
cat >>"$work/keyed.lua" <<'LUA'
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("prefix", string.format("bench-%d-%d-", os.time(), threads))
end
local sent = 0
function request()
    sent = sent + 1
    wrk.headers["Idempotency-Key"] = prefix .. sent
    return wrk.format()
end
LUA

# The processes that answer the services' targets: every instance of
# client_service and order_service (auth_service only issued the token),
# the gateway's master (its workers are found as its children, each time,
# as nginx may replace one) and, on PostgreSQL, the postmaster (its backends
# likewise).
service_pids=() gateway_pid="" database_pid="" console_pid=""
for i in "${!STACK_NAMES[@]}"; do
    case "${STACK_NAMES[i]}" in
        client_service* | order_service*) service_pids+=("${STACK_PIDS[i]}") ;;
        console*) console_pid="${STACK_PIDS[i]}" ;;
        gateway) gateway_pid="${STACK_PIDS[i]}" ;;
    esac
done
if [[ -n "$pg_dir" ]]; then
    database_pid="$(head -n 1 "$pg_dir/data/postmaster.pid")"
fi

# statements_sent: how many statements the services' databases have run
# since the last reset of pg_stat_statements (BEGIN and COMMIT count).
statements_sent() {
    psql -qAt "$admin" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s
        JOIN pg_database d ON d.oid = s.dbid WHERE d.datname IN ('clients', 'orders')"
}

# cpu_ticks ROOT...: the CPU time, in clock ticks, of each ROOT and of its
# children: user + system of the live processes, plus what their exited
# children used (cutime + cstime, counted by the parent that reaped them).
# Field 2 of /proc/PID/stat, the command name, may hold blanks: the fields
# are counted from the last ')'.
cpu_ticks() {
    local pids=() root
    for root in "$@"; do
        pids+=("$root")
        mapfile -t -O "${#pids[@]}" pids < <(pgrep -P "$root" || true)
    done
    local total=0 pid stat rest
    for pid in "${pids[@]}"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
        rest="${stat##*) }"
        read -r -a fields <<<"$rest"
        # rest starts at field 3 (state): utime is field 14, i.e. index 11.
        total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
    done
    echo "$total"
}
ticks_per_second="$(getconf CLK_TCK)"

printf '\nwrk -t%s -c%s -d%ss, %s, %s instance(s) of each service, %s cores\n' \
    "$threads" "$connections" "$seconds" "${BENCH_DATABASE:-sqlite}${pg_via:+ (over $pg_via)}" "${REPLICAS:-1}" "$(nproc)"
printf 'binaries: %s\n\n' "$binaries"
# PostgreSQL's own floor, on this machine in this run: the CPU time its
# processes spend per statement when pgbench sends a primary-key SELECT,
# prepared once per connection (-M prepared), from 16 clients over the same
# socket as the services (pgbench's own CPU is not counted).
floor_us=""
if [[ -n "$pg_dir" ]]; then
    pg_host="$pg_dir"
    [[ -z "${BENCH_PG_TCP:-}" ]] || pg_host=127.0.0.1
    # pgbench_floor DATABASE PGBENCH_ARGS...: PostgreSQL's CPU time per
    # statement (µs) while pgbench runs its script on DATABASE, prepared, from
    # 16 clients for the bench's seconds ("?" when it ran none).
    pgbench_floor() {
        local database="$1" before after out statements
        shift
        before="$(cpu_ticks "$database_pid")"
        out="$(pgbench -h "$pg_host" -p "$(cat "$pg_dir/port")" -U postgres "$@" \
            -M prepared -n -c 16 -j 2 -T "$seconds" "$database" 2>&1)"
        after="$(cpu_ticks "$database_pid")"
        statements="$(awk -F': ' '/number of transactions actually processed/ {split($2, n, "/"); print n[1]}' <<<"$out")"
        awk -v t="$((after - before))" -v hz="$ticks_per_second" -v n="${statements:-0}" \
            'BEGIN {if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "?"}'
    }
    if ! init_out="$(pgbench -h "$pg_host" -p "$(cat "$pg_dir/port")" -U postgres -i -q -s 10 pgbench 2>&1)"; then
        printf 'pgbench could not make its tables:\n%s\n' "$init_out" >&2
        exit 1
    fi
    floor_us="$(pgbench_floor pgbench -S)"
    [[ "$floor_us" != "?" ]] || floor_us=""
    printf 'PostgreSQL floor (pgbench -S -M prepared, 16 clients, over %s): %s µs of PostgreSQL CPU per statement\n' \
        "$pg_via" "${floor_us:-?}"
    # And what PostgreSQL itself spends on POST /order/'s write: order_service's
    # INSERT (services/order_service/src/store.rs), sent by pgbench the same
    # way into the same table, each its own transaction as the service's is.
    cat >"$work/insert.sql" <<'SQL'
INSERT INTO orders (client_id, item, quantity, price_cents, status, created_at, updated_at) SELECT 1, 'Floor', 2, 999, 'new', now(), now() WHERE NOT EXISTS (SELECT 1 FROM deleted_clients WHERE client_id = 1) RETURNING id;
SQL
    printf "  and for order_service's INSERT (the same way, into its table): %s µs per statement\n\n" \
        "$(pgbench_floor orders -f "$work/insert.sql")"
fi
printf '%-20s %10s %9s %9s %9s %7s %8s %11s %5s %5s %5s' "target" "req/s" "p50" "p90" "p99" "errors" "÷ limit" \
    "CPU µs/req" "svc" "gw" "db"
[[ -z "$floor_us" ]] || printf ' %5s %8s' "stmt" "db÷floor"
printf '\n'
limit_rps=""
declare -A rps_of p99_of
failed=()
# run NAME SHORT URL SERVICES GATEWAY DATABASE [WRK_ARGS...]: one target.
# SERVICES, GATEWAY, DATABASE: the processes whose CPU time is counted, each
# a space-separated list (maybe empty), shown apart in the columns svc, gw
# and db after their sum.
run() {
    local name="$1" short="$2" url="$3"
    local -a groups=("$4" "$5" "$6")
    shift 6
    [[ "$targets" == *" $short "* ]] || return 0
    local out rps p50 p90 p99 non_2xx socket_errors requests perf_pid="" g
    local -a before=() after=()
    local counted=""
    [[ -z "$floor_us" || -z "${groups[2]}" ]] || counted=1
    [[ -z "$counted" ]] || psql -qAt "$admin" -c "SELECT pg_stat_statements_reset()" >/dev/null
    for g in 0 1 2; do
        # shellcheck disable=SC2086 # a list of process ids
        before[g]="$(cpu_ticks ${groups[g]})"
    done
    if [[ -n "${BENCH_PERF_DIR:-}" && "$short" =~ ^(client|order|post)$ ]]; then
        perf record -e cpu-clock -g -p "$(IFS=,; echo "${service_pids[*]}")" \
            -o "$BENCH_PERF_DIR/$short.perf.data" -q &
        perf_pid=$!
    fi
    out="$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -H "$auth" "$@" "$url")"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" && wait "$perf_pid" || true
    fi
    for g in 0 1 2; do
        # shellcheck disable=SC2086
        after[g]="$(cpu_ticks ${groups[g]})"
    done
    rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p90="$(awk '$1 == "90%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non_2xx="$(awk '/Non-2xx/ {n += $NF} END {print n + 0}' <<<"$out")"
    # "Socket errors: connect 0, read 0, write 0, timeout 3": their sum.
    socket_errors="$(awk -F'[ ,]+' '/Socket errors/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) n += $i} END {print n + 0}' <<<"$out")"
    [[ "$short" != limit ]] || limit_rps="$rps"
    rps_of[$short]="${rps:-0}"
    p99_of[$short]="$p99"
    # per_request TICKS [EMPTY]: TICKS of CPU time per request, in µs; EMPTY
    # (a group with no process) prints "-".
    per_request() {
        if [[ -n "${2:-}" ]]; then echo "-"; return; fi
        awk -v t="$1" -v hz="$ticks_per_second" -v n="${requests:-0}" \
            'BEGIN {if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "-"}'
    }
    local -a spent=() shown=()
    for g in 0 1 2; do
        spent[g]=$((after[g] - before[g]))
        shown[g]="$(per_request "${spent[g]}" "$([[ -n "${groups[g]// /}" ]] || echo empty)")"
    done
    printf '%-20s %10s %9s %9s %9s %7s %8s %11s %5s %5s %5s' "$name" "${rps:-0}" "$p50" "$p90" "$p99" \
        "$((non_2xx + socket_errors))" \
        "$(awk -v a="${rps:-0}" -v b="${limit_rps:-0}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')" \
        "$(per_request $((spent[0] + spent[1] + spent[2])))" "${shown[@]}"
    if [[ -n "$counted" ]]; then
        # Statements per request, and the db column over that many of the floor's.
        awk -v s="$(statements_sent)" -v n="${requests:-0}" -v t="${spent[2]}" -v hz="$ticks_per_second" -v f="$floor_us" \
            'BEGIN {if (n > 0 && s > 0) printf " %5.2f %8.2f", s / n, (t / hz * 1e6 / n) / (s / n * f); else printf " %5s %8s", "-", "-"}'
    elif [[ -n "$floor_us" ]]; then
        printf ' %5s %8s' "-" "-"
    fi
    printf '\n'
    if ((non_2xx > 0)) || ! awk -v r="${rps:-0}" 'BEGIN {exit !(r > 0)}'; then
        failed+=("$name: ${rps:-0} req/s, $non_2xx answers other than 2xx")
    fi
}
run "nginx return 200" return200 "http://127.0.0.1:$baseline_port/" "" "$baseline_pid" ""
run "limit" limit "http://127.0.0.1:$limit_port/client/$client_id" "$limit_server_pid" "$limit_gateway_pid" ""
services="${service_pids[*]}"
run "GET /client/{id}" client "$gateway/client/$client_id" "$services" "$gateway_pid" "$database_pid"
run "GET /order/{id}" order "$gateway/order/$order_id" "$services" "$gateway_pid" "$database_pid"
run "POST /order/" post "$gateway/order/" "$services" "$gateway_pid" "$database_pid" -s "$work/post.lua"
run "POST /order/ keyed" keyed "$gateway/order/" "$services" "$gateway_pid" "$database_pid" -s "$work/keyed.lua"
if [[ "$targets" == *" console "* ]]; then
    # A person's session (the console keeps their tokens; the cookie is all
    # a browser sends), made by signing in as a browser does.
    console_cookie="$(CONSOLE_URL="http://localhost:$GATEWAY_PORT" scripts/dev/console-session.sh admin)"
    run "GET /console/clients" console "$gateway/console/clients" "$services $console_pid" "$gateway_pid" \
        "$database_pid" -H "Cookie: $console_cookie"
fi
if ((${#failed[@]})); then
    printf '\nthe bench failed: these figures measure errors, not the system\n' >&2
    printf '  %s\n' "${failed[@]}" >&2
    tail -n 20 "$work/run"/*.log >&2 || true
    exit 1
fi

# The goals of the performance work (docs/src/performance/bench.md), as ratios to
# the limit measured above. Reported, not enforced: a figure measured on a
# shared machine is a measurement, not a test.
if [[ -n "$limit_rps" ]]; then
    printf '\ngoals (÷ limit): '
    for goal in "client 0.50" "order 0.25" "post 0.20"; do
        read -r short want <<<"$goal"
        [[ -n "${rps_of[$short]:-}" ]] || continue
        awk -v a="${rps_of[$short]}" -v b="$limit_rps" -v w="$want" -v s="$short" \
            'BEGIN {r = a / b; printf "%s %.2f (≥ %.2f: %s)  ", s, r, w, (r >= w ? "met" : "NOT met")}'
    done
    if [[ -n "${p99_of[client]:-}" && -n "${p99_of[limit]:-}" ]]; then
        # wrk prints latencies as 812.00us, 3.25ms or 1.02s.
        to_us() { awk -v v="$1" 'BEGIN {n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1e6}'; }
        awk -v a="$(to_us "${p99_of[client]}")" -v b="$(to_us "${p99_of[limit]}")" \
            'BEGIN {printf "client p99 %.1f× the limit'"'"'s (≤ 2: %s)", a / b, (a <= 2 * b ? "met" : "NOT met")}'
    fi
    printf '\n'
fi
