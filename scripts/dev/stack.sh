# shellcheck shell=bash
# Functions to run the system as plain processes (no Docker): REPLICAS
# instances of each service, one auth_service (the token issuer), one
# console (the web console at /: one instance, whatever REPLICAS says, as
# its sessions are in its memory) and one nginx rendered from the shipped
# gateway template. Sourced by run.sh,
# bench.sh and soak.sh; a bash library, not a script.
#
# Settings (environment variables; run.sh and bench.sh set the ports):
#   REPLICAS              instances of EACH service, 1 to 8 (default 1)
#   CLIENT_SERVICE_PORT   port of client_service instance 0
#   ORDER_SERVICE_PORT    port of order_service instance 0
#   AUTH_SERVICE_PORT     auth_service's port (default CLIENT_SERVICE_PORT + 20,
#                         above every instance port: 8020 with the defaults)
#   CONSOLE_PORT          the console's port (default CLIENT_SERVICE_PORT + 30:
#                         8030 with the defaults)
#   GATEWAY_PORT          the gateway's port, on 127.0.0.1
#   DATA_DIR              folder of the SQLite files and of auth_service's
#                         development keys and clients (`auth_service init`
#                         makes them at the first start: auth-signing-key.pem,
#                         auth-clients, dev-clients.env, service-clients.env),
#                         and of the SQLite files unless
#   CLIENT_DATABASE_URL / ORDER_DATABASE_URL   say otherwise (e.g. PostgreSQL)
#   AUTH_DATABASE_URL     auth_service's database (its users, sign-in
#                         sessions, codes, refresh tokens; `init` adds the
#                         development users, DATA_DIR/dev-users.env);
#                         default sqlite://DATA_DIR/auth_service.db
#                         (and DATA_DIR/console-client-secret: the
#                         development web client's secret, from
#                         dev-clients.env, the console's
#                         CONSOLE_CLIENT_SECRET_FILE)
#   GATEWAY_STATUS_LISTEN, GATEWAY_ACCESS_LOG  passed on to gateway/render.sh
#   RESTART_LIMIT, RESTART_WINDOW_SECS         stack_supervise's (5 and 60)
#
# Instance i (0-based) of client_service listens on CLIENT_SERVICE_PORT + 2*i,
# and of order_service on ORDER_SERVICE_PORT + 2*i: with the defaults 8000 and
# 8001 that is 8000, 8002, 8004, ... and 8001, 8003, 8005, ..., which never
# collide. Each instance logs to RUN_DIR/<service>.<i>.log and its process
# id is in RUN_DIR/<service>.<i>.pid (the gateway's in RUN_DIR/gateway.pid)
# while it runs; auth_service and the console are instance 0 of their own
# (auth_service.0.log, console.0.log).
#
#   stack_check_config          checks REPLICAS, the ports and the database
#                               URLs' schemes; prints what is wrong and
#                               returns 1 (call it early, before a long build)
#   stack_start BIN_DIR RUN_DIR starts everything and waits until all of it
#                               is ready; on failure shows the logs' ends,
#                               stops what it started and returns 1
#   stack_supervise             keeps it running (run.sh): restarts what
#                               exits, with a backoff, and gives up on what
#                               keeps failing (RESTART_LIMIT exits within
#                               RESTART_WINDOW_SECS); returns 1 only when
#                               nothing is left running
#   stack_stop                  stops everything that stack_start started
#   stack_port SERVICE I        the port of instance I of SERVICE
#                               (client_service, order_service, auth_service
#                               or console)
#   stack_token [SCOPE...]      prints an access token of the development
#                               client with every scope (dev-clients.env),
#                               or with the scopes given, from the gateway
#   stack_without_rate_limits   exports rate limits high enough never to
#                               refuse a request: for the benchmarks and
#                               tests that send thousands of requests a
#                               second from one address with one token
#                               (the defaults are for users)
#   STACK_PIDS                  the processes started, one slot each (an
#                               empty slot: not running now)

STACK_PIDS=()

stack_without_rate_limits() {
    export GATEWAY_ADDRESS_RATE=9999999r/s GATEWAY_ADDRESS_BURST=9999999 \
        GATEWAY_ANONYMOUS_RATE=9999999r/s GATEWAY_ANONYMOUS_BURST=9999999 \
        RATE_LIMIT_PER_SECOND=1000000 RATE_LIMIT_BURST=1000000
}

# What runs in each slot of STACK_PIDS: "client_service 0", ..., "gateway"
# (bench.sh adds a process of its own, without a name: never restarted).
STACK_NAMES=()
STACK_BIN_DIR=""
STACK_RUN_DIR=""
# stack_supervise's timer (a `sleep` until the next restart is due).
STACK_TIMER=""
# The repository's root, found from this file's own place when it is sourced,
# so that the functions work whatever the current directory is later.
STACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

stack_replicas() { echo "${REPLICAS:-1}"; }

stack_port() {
    local service="$1" i="$2"
    case "$service" in
        client_service) echo $((CLIENT_SERVICE_PORT + 2 * i)) ;;
        order_service) echo $((ORDER_SERVICE_PORT + 2 * i)) ;;
        auth_service) stack_auth_port ;;
        console) stack_console_port ;;
        *) echo "stack_port: unknown service $service" >&2 && return 1 ;;
    esac
}

stack_auth_port() { echo "${AUTH_SERVICE_PORT:-$((CLIENT_SERVICE_PORT + 20))}"; }
# The web console's port, where the gateway sends / and /console/ (the
# console's own default LISTEN_ADDR is 127.0.0.1:8030).
stack_console_port() { echo "${CONSOLE_PORT:-$((CLIENT_SERVICE_PORT + 30))}"; }

stack_check_config() {
    local replicas name port i
    replicas="$(stack_replicas)"
    # 8 is an arbitrary but sane ceiling for one machine: 16 service
    # processes, each with its own connection pool to the database.
    if ! [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || ((replicas > 8)); then
        echo "REPLICAS=$replicas: give a whole number from 1 to 8 (the number of instances of each service)" >&2
        return 1
    fi
    for name in CLIENT_SERVICE_PORT ORDER_SERVICE_PORT GATEWAY_PORT AUTH_SERVICE_PORT CONSOLE_PORT; do
        port="${!name:-}"
        [[ "$name" != AUTH_SERVICE_PORT ]] || port="$(stack_auth_port)"
        [[ "$name" != CONSOLE_PORT ]] || port="$(stack_console_port)"
        if ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
            echo "$name=$port: give a port number from 1 to 65535" >&2
            return 1
        fi
    done
    # The database URLs, which the binaries would refuse only at start,
    # after the build (auth_service's even earlier, at `auth_service init`).
    # The value is not shown: it may hold a password.
    local url
    for name in CLIENT_DATABASE_URL ORDER_DATABASE_URL AUTH_DATABASE_URL; do
        url="${!name:-}"
        if [[ -n "$url" && ! "$url" =~ ^(sqlite:|postgres://|postgresql://) ]]; then
            echo "$name is not a database URL: give sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB" \
                "(or unset it: a SQLite file in DATA_DIR)" >&2
            return 1
        fi
    done
    # Every port in use must be distinct, and the last instance's still a port.
    local -A owner=([$GATEWAY_PORT]="the gateway (GATEWAY_PORT)")
    port="$(stack_auth_port)"
    if [[ -n "${owner[$port]:-}" ]]; then
        echo "port $port is wanted by both the gateway and auth_service: choose another AUTH_SERVICE_PORT" >&2
        return 1
    fi
    owner[$port]="auth_service (AUTH_SERVICE_PORT)"
    port="$(stack_console_port)"
    if [[ -n "${owner[$port]:-}" ]]; then
        echo "port $port is wanted by both ${owner[$port]} and the console: choose another CONSOLE_PORT" >&2
        return 1
    fi
    owner[$port]="the console (CONSOLE_PORT)"
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

# How the instances are started (stack_launch below).
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
# directly (docs/src/how-it-works/service-calls.md: service-to-service calls
# do not go through the gateway): CLIENT_SERVICE_URL and ORDER_SERVICE_URL list them all,
# comma-separated. Each service's HTTP client takes turns over them, keeps a
# circuit breaker per instance and fails over to another instance when one
# does not answer, so losing client_service.1 breaks no order_service
# instance. stack_peer_urls SERVICE: every instance of SERVICE, comma-separated.
stack_peer_urls() {
    local service="$1" i urls=()
    for ((i = 0; i < $(stack_replicas); i++)); do
        urls+=("http://127.0.0.1:$(stack_port "$service" "$i")")
    done
    local IFS=,
    echo "${urls[*]}"
}

# stack_start_instance SERVICE I: gives instance I of SERVICE the next slot
# and starts it in the background (stack_launch).
stack_start_instance() {
    local service="$1" i="$2"
    STACK_NAMES+=("$service $i")
    stack_launch $((${#STACK_NAMES[@]} - 1))
}

# stack_label SLOT: how the messages name what runs in SLOT, e.g.
# client_service.1 (its log and pid files are named the same way).
stack_label() {
    local name="${STACK_NAMES[$1]:-}"
    if [[ "$name" == *" "* ]]; then echo "${name/ /.}"; else echo "${name:-process}"; fi
}

# stack_launch SLOT: starts (or starts again) what runs in SLOT, in the
# background, and records its process id in STACK_PIDS and in its pid file.
stack_launch() {
    local slot="$1" service i port log pid
    read -r service i <<<"${STACK_NAMES[$slot]}"
    if [[ "$service" == gateway ]]; then
        stack_launch_gateway
        pid=$!
    elif [[ "$service" == auth_service ]]; then
        # The token issuer; its files are made by stack_start (auth_service
        # init). The issuer is the gateway's /auth, where callers reach it.
        LISTEN_ADDR="127.0.0.1:$(stack_auth_port)" \
            AUTH_ISSUER="$(stack_issuer)" \
            AUTH_SIGNING_KEY_FILE="${AUTH_SIGNING_KEY_FILE:-$DATA_DIR/auth-signing-key.pem}" \
            AUTH_PUBLISHED_KEY_FILES="${AUTH_PUBLISHED_KEY_FILES:-}" \
            AUTH_CLIENTS_FILE="${AUTH_CLIENTS_FILE:-$DATA_DIR/auth-clients}" \
            DATABASE_URL="$(stack_auth_database_url)" \
            "$STACK_BIN_DIR/auth_service" >>"$STACK_RUN_DIR/auth_service.0.log" 2>&1 &
        pid=$!
    elif [[ "$service" == console ]]; then
        # The web console: a confidential client (dev-web) of the issuer,
        # which people reach at the gateway's http://localhost:GATEWAY_PORT
        # (the dev-web client's redirect URIs, stack_start's `init`); it
        # calls the API through the gateway, like any client. Its own
        # calls to the issuer go to the issuer's URLs (127.0.0.1 reaches
        # the gateway here: no CONSOLE_AUTH_INTERNAL_URL).
        LISTEN_ADDR="127.0.0.1:$(stack_console_port)" \
            CONSOLE_PUBLIC_URL="$(stack_web_origin)" \
            AUTH_ISSUER="$(stack_issuer)" \
            CONSOLE_CLIENT_ID="$(stack_dev_value WEB_CLIENT_ID)" \
            CONSOLE_CLIENT_SECRET_FILE="$DATA_DIR/console-client-secret" \
            CONSOLE_API_URL="http://127.0.0.1:$GATEWAY_PORT" \
            CONSOLE_INSTANCES="$(stack_console_instances)" \
            "$STACK_BIN_DIR/console" >>"$STACK_RUN_DIR/console.0.log" 2>&1 &
        pid=$!
    else
        port="$(stack_port "$service" "$i")"
        log="$STACK_RUN_DIR/$service.$i.log"
        case "$service" in
            client_service)
                LISTEN_ADDR="127.0.0.1:$port" \
                    SERVICE_CLIENT_ID="$(stack_env_value CLIENT_SERVICE_ID)" \
                    AUTH_ISSUER="$(stack_issuer)" \
                    AUTH_JWKS_URL="http://127.0.0.1:$(stack_auth_port)/auth/jwks.json" \
                    AUTH_TOKEN_URL="http://127.0.0.1:$(stack_auth_port)/auth/token" \
                    SERVICE_CLIENT_SECRET="$(stack_env_value CLIENT_SERVICE_SECRET)" \
                    ORDER_SERVICE_URL="$(stack_peer_urls order_service)" \
                    DATABASE_URL="${CLIENT_DATABASE_URL:-sqlite://$DATA_DIR/client_service.db}" \
                    "$STACK_BIN_DIR/client_service" >>"$log" 2>&1 &
                ;;
            order_service)
                LISTEN_ADDR="127.0.0.1:$port" \
                    SERVICE_CLIENT_ID="$(stack_env_value ORDER_SERVICE_ID)" \
                    AUTH_ISSUER="$(stack_issuer)" \
                    AUTH_JWKS_URL="http://127.0.0.1:$(stack_auth_port)/auth/jwks.json" \
                    AUTH_TOKEN_URL="http://127.0.0.1:$(stack_auth_port)/auth/token" \
                    SERVICE_CLIENT_SECRET="$(stack_env_value ORDER_SERVICE_SECRET)" \
                    CLIENT_SERVICE_URL="$(stack_peer_urls client_service)" \
                    DATABASE_URL="${ORDER_DATABASE_URL:-sqlite://$DATA_DIR/order_service.db}" \
                    "$STACK_BIN_DIR/order_service" >>"$log" 2>&1 &
                ;;
        esac
        pid=$!
    fi
    STACK_PIDS[slot]="$pid"
    echo "$pid" >"$STACK_RUN_DIR/$(stack_label "$slot").pid"
}

# auth_service's database: AUTH_DATABASE_URL, else a SQLite file in DATA_DIR.
stack_auth_database_url() { echo "${AUTH_DATABASE_URL:-sqlite://$DATA_DIR/auth_service.db}"; }

# The issuer every token names (AUTH_ISSUER): the gateway's /auth.
stack_issuer() { echo "http://127.0.0.1:$GATEWAY_PORT/auth"; }

# stack_env_value NAME: NAME's value in DATA_DIR/service-clients.env (the
# services' own client ids and secrets, made by `auth_service init`).
stack_env_value() {
    sed -n "s/^$1=//p" "$DATA_DIR/service-clients.env"
}

# stack_dev_value NAME: NAME's value in DATA_DIR/dev-clients.env (the
# development clients, the web client dev-web among them).
stack_dev_value() {
    sed -n "s/^$1=//p" "$DATA_DIR/dev-clients.env"
}

# The origin people open in a browser: the gateway, as localhost (the
# console's CONSOLE_PUBLIC_URL, and the dev-web client's redirect URIs).
stack_web_origin() { echo "http://localhost:$GATEWAY_PORT"; }

# The console's CONSOLE_INSTANCES: every instance it shows on its System
# page, as service=base URL (each has /healthz, /readyz and /metrics),
# comma-separated; the services' instances, auth_service and the console.
stack_console_instances() {
    local service i list=()
    for ((i = 0; i < $(stack_replicas); i++)); do
        for service in client_service order_service; do
            list+=("$service=http://127.0.0.1:$(stack_port "$service" "$i")")
        done
    done
    list+=("auth_service=http://127.0.0.1:$(stack_auth_port)" "console=http://127.0.0.1:$(stack_console_port)")
    local IFS=,
    echo "${list[*]}"
}

# stack_token [SCOPE...]: an access token of the development client with
# every scope (DATA_DIR/dev-clients.env), or only the scopes given, asked
# for at the gateway's token endpoint as any client would.
stack_token() {
    local id secret scope="$*"
    id="$(sed -n 's/^CLIENT_ID=//p' "$DATA_DIR/dev-clients.env")"
    secret="$(sed -n 's/^CLIENT_SECRET=//p' "$DATA_DIR/dev-clients.env")"
    curl -fsS -u "$id:$secret" -d grant_type=client_credentials ${scope:+--data-urlencode "scope=$scope"} \
        "http://127.0.0.1:$GATEWAY_PORT/auth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# stack_launch_gateway: starts nginx in the background (its pid is $!).
stack_launch_gateway() {
    local gateway_dir="$STACK_RUN_DIR/gateway"
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
    # A port that something already listens on (another stack, a `make run`
    # elsewhere) would be answered by that, and the readiness checks below
    # would believe it.
    local port ports=("$GATEWAY_PORT" "$(stack_auth_port)" "$(stack_console_port)")
    for ((i = 0; i < replicas; i++)); do
        ports+=("$(stack_port client_service "$i")" "$(stack_port order_service "$i")")
    done
    for port in "${ports[@]}"; do
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "port $port on 127.0.0.1 is already in use (another stack?): stop that, or choose" \
                "other GATEWAY_PORT / CLIENT_SERVICE_PORT / ORDER_SERVICE_PORT / AUTH_SERVICE_PORT / CONSOLE_PORT" >&2
            return 1
        fi
    done
    mkdir -p "$run_dir"
    # DATA_DIR, when it is new, readable by this user alone: auth_service.db
    # holds the users' password hashes, the .env files secrets.
    [[ -d "$DATA_DIR" ]] || { mkdir -p "$DATA_DIR" && chmod 0700 "$DATA_DIR"; }
    STACK_BIN_DIR="$bin_dir"
    STACK_RUN_DIR="$(cd "$run_dir" && pwd)"
    for service in auth_service console; do
        if [[ ! -x "$bin_dir/$service" ]]; then
            echo "$bin_dir has no $service: build it (cargo build [--release] --bin $service)" >&2
            return 1
        fi
    done
    # auth_service's development keys and clients, made once (kept after).
    # With its development users in its database, and the development web
    # client's redirect URIs on this gateway, as the browser opens it
    # (localhost). The database URL (which may hold a password) goes in
    # the environment, not on the command line, where any user of the
    # machine could read it in the process list.
    DATABASE_URL="$(stack_auth_database_url)" "$bin_dir/auth_service" init "$DATA_DIR" \
        --web-origin "$(stack_web_origin)" | sed 's/^/auth_service init: /' || return 1
    # The console's client secret, alone in a file of this user's
    # (CONSOLE_CLIENT_SECRET_FILE), written anew at each start.
    (umask 077 && stack_dev_value WEB_CLIENT_SECRET >"$DATA_DIR/console-client-secret") || return 1
    chmod 0600 "$DATA_DIR/console-client-secret"
    # A DATA_DIR made before the console (its redirect URIs on
    # 127.0.0.1) keeps them: `init` replaces nothing. Said, with the way out.
    local redirect
    redirect="$(stack_dev_value WEB_REDIRECT_URI)"
    if [[ "$redirect" != "$(stack_web_origin)/console/callback" ]]; then
        echo "warning: $DATA_DIR/dev-clients.env's web client returns to $redirect, not" \
            "$(stack_web_origin)/console/callback: signing in to the console will fail. It was made" \
            "with another gateway address; move $DATA_DIR away (or start with another DATA_DIR)" \
            "and a new development set is made." >&2
    fi
    # The docs page served at /docs/ (npm ci once; a no-op when up to date).
    "$(dirname "${BASH_SOURCE[0]}")/../../gateway/docs/build.sh" || return 1

    # Instance 0 of each service first, alone. At start a service runs its
    # database migrations; sqlx itself locks them on PostgreSQL only (an
    # advisory lock), and two processes migrating a new SQLite file at the
    # same moment can fail on "table already exists". The services now hold
    # a lock file around SQLite migrations (crates/data/src/db.rs); this
    # order makes the start safe with binaries built before that, too, and
    # costs only the start-up time of one instance. Once instance 0 is ready
    # the schema is there, and the others, started together, have nothing to
    # migrate.
    # auth_service beside them: the services ask it for keys and tokens only
    # when requests come. (Started last, so that STACK_PIDS[0] and [1] stay
    # client_service.0 and order_service.0: soak.sh reads them.)
    for service in client_service order_service auth_service; do
        stack_start_instance "$service" 0
        urls+=("http://127.0.0.1:$(stack_port "$service" 0)/readyz")
    done
    stack_wait_ready "$run_dir" "${urls[@]}" || return 1
    urls=()
    for ((i = 1; i < replicas; i++)); do
        for service in client_service order_service; do
            stack_start_instance "$service" "$i"
            urls+=("http://127.0.0.1:$(stack_port "$service" "$i")/readyz")
        done
    done
    if ((${#urls[@]})); then stack_wait_ready "$run_dir" "${urls[@]}" || return 1; fi

    # The console: one instance (its sessions are in its memory; REPLICAS
    # is for the services). It calls nothing at start.
    stack_start_instance console 0
    stack_wait_ready "$run_dir" "http://127.0.0.1:$(stack_console_port)/readyz" || return 1

    for ((i = 0; i < replicas; i++)); do
        client_addrs+="127.0.0.1:$(stack_port client_service "$i") "
        order_addrs+="127.0.0.1:$(stack_port order_service "$i") "
    done

    # The gateway, with every instance in its upstream groups.
    GATEWAY_RUN_DIR="$STACK_RUN_DIR/gateway" GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
        CLIENT_SERVICE_ADDRS="$client_addrs" ORDER_SERVICE_ADDRS="$order_addrs" \
        AUTH_SERVICE_ADDRS="127.0.0.1:$(stack_auth_port)" \
        CONSOLE_ADDRS="127.0.0.1:$(stack_console_port)" \
        "$STACK_ROOT/gateway/render.sh" || {
        stack_stop
        return 1
    }
    STACK_NAMES+=(gateway)
    stack_launch $((${#STACK_NAMES[@]} - 1))
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
# (never SIGKILL nginx: the workers would be left running). A restart that
# stack_supervise has scheduled does not happen any more.
stack_stop() {
    local i
    if [[ -n "$STACK_TIMER" ]]; then
        kill -PIPE "$STACK_TIMER" 2>/dev/null || true
        wait "$STACK_TIMER" 2>/dev/null || true
        STACK_TIMER=""
    fi
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
        [[ -z "${STACK_PIDS[i]}" ]] || kill -TERM "${STACK_PIDS[i]}" 2>/dev/null || true
    done
    for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
        [[ -z "${STACK_PIDS[i]}" ]] || wait "${STACK_PIDS[i]}" 2>/dev/null || true
        [[ -z "${STACK_NAMES[i]:-}" || -z "$STACK_RUN_DIR" ]] || rm -f "$STACK_RUN_DIR/$(stack_label "$i").pid"
    done
    STACK_PIDS=()
    STACK_NAMES=()
}

# stack_log MESSAGE: one line on stderr with the time, for stack_supervise.
stack_log() { printf '%(%H:%M:%S)T %s\n' -1 "$*" >&2; }

# stack_exit_reason STATUS: how a process ended, from its wait status.
stack_exit_reason() {
    local status="$1"
    if ((status > 128)) && kill -l $((status - 128)) >/dev/null 2>&1; then
        echo "was killed by SIG$(kill -l $((status - 128)))"
    else
        if ((status == 0)); then echo "exited with status 0 (stopped)"; else echo "exited with status $status"; fi
    fi
}

# stack_now_ms: sets NOW_MS to the time, in milliseconds since the epoch.
# (A variable, not output to capture: see stack_supervise's loop.)
stack_now_ms() {
    local us="${EPOCHREALTIME//[!0-9]/}"
    NOW_MS=$((us / 1000))
}

# stack_supervise: what `restart: unless-stopped` does in compose, for the
# processes of stack_start (run.sh calls it once everything is up). A
# process that exits, however it exits (a crash, SIGKILL, a graceful
# SIGTERM, exit 0), is logged and started again on the same port, after a
# delay that doubles with each exit within the window: 1 s, 2 s, 4 s, 8 s,
# ... (at most 30 s). Once it has exited RESTART_LIMIT times (default 5)
# within RESTART_WINDOW_SECS (default 60), it is given up: logged, not
# started again, and the rest keep running (nginx routes around an instance
# that is gone; the gateway itself is supervised the same way). An instance
# that stays up longer than the window starts over at 1 s. Returns 1 when
# nothing is left running; otherwise it runs until a signal's trap (run.sh:
# SIGINT, SIGTERM) calls stack_stop and exits.
#
# How it notices an exit: `wait -n` returns when one of the processes ends,
# but it only sees a child that bash has not reported yet, and bash reports
# (and forgets) a child that ended while it was busy elsewhere (starting
# another one, say). So every turn of the loop looks at each process itself
# (kill -0), and the wait also ends after at most 1 s (a `sleep`, the
# timer), so that no exit goes unnoticed for longer than that.
stack_supervise() {
    local limit="${RESTART_LIMIT:-5}" window="${RESTART_WINDOW_SECS:-60}"
    # slot -> the times (ms) of its exits within the window
    local -A exits=()
    # slot -> when (ms) it is due to start again
    local -A due=()
    local slot pid status now next delay n t kept label pause NOW_MS
    local -a pids
    # No turn of the loop runs a command substitution, `$(...)`, on its way
    # to the wait: when SIGTERM reaches bash (5.2) inside one, bash can fail
    # to parse the trap's command ("trap: line 2: unexpected EOF while
    # looking for matching `)'", seen in CI), and run.sh then ends with
    # status 2 without stopping what it started. (Substitutions remain only
    # where a process has exited.)
    while :; do
        stack_now_ms
        now="$NOW_MS"
        # What has ended since the last turn.
        for slot in "${!STACK_PIDS[@]}"; do
            pid="${STACK_PIDS[slot]}"
            if [[ -z "$pid" ]] || kill -0 "$pid" 2>/dev/null; then continue; fi
            # Gone: bash keeps its exit status for `wait PID`.
            status=0
            wait "$pid" 2>/dev/null || status=$?
            STACK_PIDS[slot]=""
            label="$(stack_label "$slot")"
            rm -f "$STACK_RUN_DIR/$label.pid"
            kept=""
            n=1
            for t in ${exits[$slot]:-}; do
                if ((now - t < window * 1000)); then
                    kept+="$t "
                    n=$((n + 1))
                fi
            done
            exits[$slot]="$kept$now"
            if [[ -z "${STACK_NAMES[slot]:-}" ]]; then
                stack_log "process $pid $(stack_exit_reason "$status") (not restarted)"
            elif ((n >= limit)); then
                stack_log "$label (pid $pid) $(stack_exit_reason "$status"): it exited $n times" \
                    "within ${window}s, GIVING UP on it (RESTART_LIMIT=$limit, RESTART_WINDOW_SECS=$window)." \
                    "The rest keep running; see $STACK_RUN_DIR/$label.log"
            else
                delay=$((1 << (n - 1)))
                ((delay <= 30)) || delay=30
                due[$slot]=$((now + delay * 1000))
                stack_log "$label (pid $pid) $(stack_exit_reason "$status"): starting it again" \
                    "in ${delay}s (exit $n of $limit allowed within ${window}s)"
            fi
        done
        # What is due starts now.
        next=$((now + 1000))
        for slot in "${!due[@]}"; do
            if ((due[$slot] <= now)); then
                unset "due[$slot]"
                stack_launch "$slot"
                stack_log "$(stack_label "$slot") started again (pid ${STACK_PIDS[slot]})"
            elif ((due[$slot] < next)); then
                next="${due[$slot]}"
            fi
        done
        pids=()
        for slot in "${!STACK_PIDS[@]}"; do
            [[ -z "${STACK_PIDS[slot]}" ]] || pids+=("${STACK_PIDS[slot]}")
        done
        if ((${#pids[@]} == 0 && ${#due[@]} == 0)); then
            stack_log "nothing is left running"
            return 1
        fi
        # Until one of them ends, or the timer (at most 1 s, less when a
        # restart is due sooner). A signal's trap also ends the wait. bash's
        # own "Killed ..." line about a child is left out where it can be:
        # the log above says it.
        printf -v pause '%d.%03d' $(((next - now) / 1000)) $(((next - now) % 1000))
        sleep "$pause" &
        STACK_TIMER=$!
        wait -n "${pids[@]}" "$STACK_TIMER" 2>/dev/null || true
        # SIGPIPE: bash reports no child that it ends (SIGTERM: "Terminated").
        kill -PIPE "$STACK_TIMER" 2>/dev/null || true
        wait "$STACK_TIMER" 2>/dev/null || true
        STACK_TIMER=""
    done
}
