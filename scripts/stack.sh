# shellcheck shell=bash
# Functions to run the system as plain processes (no Docker): REPLICAS
# instances of each service and one nginx rendered from the shipped gateway
# template. Sourced by run.sh and bench.sh; a bash library, not a script.
#
# Settings (environment variables; run.sh and bench.sh set the ports):
#   REPLICAS              instances of EACH service, 1 to 8 (default 1)
#   CLIENT_SERVICE_PORT   port of client_service instance 0
#   ORDER_SERVICE_PORT    port of order_service instance 0
#   GATEWAY_PORT          the gateway's port, on 127.0.0.1
#   DATA_DIR              folder of the SQLite files, unless
#   CLIENT_DATABASE_URL / ORDER_DATABASE_URL   say otherwise (e.g. PostgreSQL)
#   GATEWAY_STATUS_LISTEN, GATEWAY_ACCESS_LOG  passed on to gateway/render.sh
#
# Instance i (0-based) of client_service listens on CLIENT_SERVICE_PORT + 2*i,
# and of order_service on ORDER_SERVICE_PORT + 2*i: with the defaults 8000 and
# 8001 that is 8000, 8002, 8004, ... and 8001, 8003, 8005, ..., which never
# collide. Each instance logs to RUN_DIR/<service>.<i>.log.
#
#   stack_check_config          checks REPLICAS and the ports; prints what is
#                               wrong and returns 1 (call it early, before a
#                               long build)
#   stack_start BIN_DIR RUN_DIR starts everything and waits until all of it
#                               is ready; on failure shows the logs' ends,
#                               stops what it started and returns 1
#   stack_stop                  stops everything that stack_start started
#   stack_port SERVICE I        the port of instance I of SERVICE
#                               (client_service or order_service)
#   STACK_PIDS                  the processes started (run.sh waits on them)

STACK_PIDS=()
# The repository's root, found from this file's own place when it is sourced,
# so that the functions work whatever the current directory is later.
STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

stack_replicas() { echo "${REPLICAS:-1}"; }

stack_port() {
    local service="$1" i="$2"
    case "$service" in
        client_service) echo $((CLIENT_SERVICE_PORT + 2 * i)) ;;
        order_service) echo $((ORDER_SERVICE_PORT + 2 * i)) ;;
        *) echo "stack_port: unknown service $service" >&2 && return 1 ;;
    esac
}

stack_check_config() {
    local replicas name port i
    replicas="$(stack_replicas)"
    # 8 is an arbitrary but sane ceiling for one machine: 16 service
    # processes, each with its own connection pool to the database.
    if ! [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || ((replicas > 8)); then
        echo "REPLICAS=$replicas: give a whole number from 1 to 8 (the number of instances of each service)" >&2
        return 1
    fi
    for name in CLIENT_SERVICE_PORT ORDER_SERVICE_PORT GATEWAY_PORT; do
        port="${!name:-}"
        if ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
            echo "$name=$port: give a port number from 1 to 65535" >&2
            return 1
        fi
    done
    # Every port in use must be distinct, and the last instance's still a port.
    local -A owner=([$GATEWAY_PORT]="the gateway (GATEWAY_PORT)")
    local service
    for ((i = 0; i < replicas; i++)); do
        for service in client_service order_service; do
            port="$(stack_port "$service" "$i")"
            if ((port > 65535)); then
                echo "$service instance $i would need port $port: lower its base port or REPLICAS" >&2
                return 1
            fi
            if [[ -n "${owner[$port]:-}" ]]; then
                echo "port $port is wanted by both ${owner[$port]} and $service instance $i" \
                    "(instance i listens on its service's base port + 2*i): choose other" \
                    "CLIENT_SERVICE_PORT / ORDER_SERVICE_PORT / GATEWAY_PORT" >&2
                return 1
            fi
            owner[$port]="$service instance $i"
        done
    done
}

# stack_start_instance SERVICE I BIN_DIR RUN_DIR: starts one instance in the
# background and records its PID.
#
# The database: every instance of a service uses that service's ONE
# database. For SQLite (one file, WAL mode, a busy timeout) that is safe for
# several processes on the same machine: WAL lets readers and one writer work
# at the same time, and a writer that finds the file locked waits instead of
# failing. (Not on a network file system, where SQLite's locks are
# unreliable.) PostgreSQL (CLIENT_DATABASE_URL / ORDER_DATABASE_URL) is made
# for many clients anyway.
#
# The peers: every instance calls every instance of the other service
# directly (the README's design: service-to-service calls do not go through
# the gateway): CLIENT_SERVICE_URL and ORDER_SERVICE_URL list them all,
# comma-separated. Each service's HTTP client takes turns over them, keeps a
# circuit breaker per instance and fails over to another instance when one
# does not answer, so losing client_service.1 breaks no order_service
# instance.
stack_peer_urls() {
    local service="$1" i urls=()
    for ((i = 0; i < $(stack_replicas); i++)); do
        urls+=("http://127.0.0.1:$(stack_port "$service" "$i")")
    done
    local IFS=,
    echo "${urls[*]}"
}

stack_start_instance() {
    local service="$1" i="$2" bin_dir="$3" run_dir="$4"
    local port log="$run_dir/$service.$i.log"
    port="$(stack_port "$service" "$i")"
    case "$service" in
        client_service)
            LISTEN_ADDR="127.0.0.1:$port" \
                ORDER_SERVICE_URL="$(stack_peer_urls order_service)" \
                DATABASE_URL="${CLIENT_DATABASE_URL:-sqlite://$DATA_DIR/client_service.db}" \
                "$bin_dir/client_service" >>"$log" 2>&1 &
            ;;
        order_service)
            LISTEN_ADDR="127.0.0.1:$port" \
                CLIENT_SERVICE_URL="$(stack_peer_urls client_service)" \
                DATABASE_URL="${ORDER_DATABASE_URL:-sqlite://$DATA_DIR/order_service.db}" \
                "$bin_dir/order_service" >>"$log" 2>&1 &
            ;;
    esac
    STACK_PIDS+=($!)
}

# stack_wait_ready RUN_DIR URL...: waits for each URL; on failure shows the
# logs, stops everything and returns 1.
stack_wait_ready() {
    local run_dir="$1" url
    shift
    for url in "$@"; do
        wait_for "$url" || {
            echo "not ready: $url; logs in $run_dir" >&2
            tail -n 20 "$run_dir"/*.log "$run_dir/gateway/error.log" >&2 2>/dev/null || true
            stack_stop
            return 1
        }
    done
}

stack_start() {
    local bin_dir="$1" run_dir="$2"
    local replicas i service client_addrs="" order_addrs="" urls=()
    stack_check_config || return 1
    replicas="$(stack_replicas)"
    mkdir -p "$run_dir" "$DATA_DIR"
    # The docs page served at /docs/ (npm ci once; a no-op when up to date).
    "$(dirname "${BASH_SOURCE[0]}")/../gateway/docs/build.sh" || return 1

    # Instance 0 of each service first, alone. At start a service runs its
    # database migrations; sqlx itself locks them on PostgreSQL only (an
    # advisory lock), and two processes migrating a new SQLite file at the
    # same moment can fail on "table already exists". The services now hold
    # a lock file around SQLite migrations (crates/service_kit/src/data/db.rs); this
    # order makes the start safe with binaries built before that, too, and
    # costs only the start-up time of one instance. Once instance 0 is ready
    # the schema is there, and the others, started together, have nothing to
    # migrate.
    for service in client_service order_service; do
        stack_start_instance "$service" 0 "$bin_dir" "$run_dir"
        urls+=("http://127.0.0.1:$(stack_port "$service" 0)/readyz")
    done
    stack_wait_ready "$run_dir" "${urls[@]}" || return 1
    urls=()
    for ((i = 1; i < replicas; i++)); do
        for service in client_service order_service; do
            stack_start_instance "$service" "$i" "$bin_dir" "$run_dir"
            urls+=("http://127.0.0.1:$(stack_port "$service" "$i")/readyz")
        done
    done
    if ((${#urls[@]})); then stack_wait_ready "$run_dir" "${urls[@]}" || return 1; fi

    for ((i = 0; i < replicas; i++)); do
        client_addrs+="127.0.0.1:$(stack_port client_service "$i") "
        order_addrs+="127.0.0.1:$(stack_port order_service "$i") "
    done

    # The gateway, with every instance in its upstream groups.
    local gateway_dir="$run_dir/gateway"
    GATEWAY_RUN_DIR="$gateway_dir" GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
        CLIENT_SERVICE_ADDRS="$client_addrs" ORDER_SERVICE_ADDRS="$order_addrs" \
        "$STACK_ROOT/gateway/render.sh" || {
        stack_stop
        return 1
    }
    # The status server's default Unix socket: nginx removes it when it
    # stops, but not when it is killed (SIGKILL, a crash), and a leftover
    # file makes the next start fail ("Address already in use"). If nothing
    # answers on it, it is a leftover.
    local socket="$gateway_dir/status.sock"
    if [[ -z "${GATEWAY_STATUS_LISTEN:-}" && -S "$socket" ]] \
        && ! curl -s -o /dev/null --max-time 1 --unix-socket "$socket" http://localhost/stub_status; then
        rm -f "$socket"
    fi
    "$(nginx_bin)" -p "$gateway_dir" -c "$gateway_dir/nginx.conf" &
    STACK_PIDS+=($!)
    stack_wait_ready "$run_dir" "http://127.0.0.1:$GATEWAY_PORT/healthz"
}

wait_for() {
    local i
    for i in $(seq 1 150); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# SIGTERM to every process, the last started (the gateway) first, so that no
# new request reaches a stopping service; then wait for each to exit. The
# services finish their requests in flight; nginx's master stops its workers
# (never SIGKILL nginx: the workers would be left running).
stack_stop() {
    local i
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${STACK_PIDS[i]}" 2>/dev/null || true; done
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do wait "${STACK_PIDS[i]}" 2>/dev/null || true; done
    STACK_PIDS=()
}
