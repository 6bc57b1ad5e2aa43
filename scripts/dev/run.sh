#!/usr/bin/env bash
# make run: the whole system without Docker, in the foreground. REPLICAS
# instances of each service (default 1) on SQLite (files in DATA_DIR) and
# nginx on 127.0.0.1:GATEWAY_PORT, spreading requests over the instances.
#
#   make run                 1 instance of each: client_service on 8000, order_service on 8001
#   REPLICAS=2 make run      2 of each: client_service on 8000 and 8002, order_service on 8001 and 8003
#
# Beside them one auth_service (8020) and one console (8030, the web console
# people open at http://localhost:GATEWAY_PORT/: one instance whatever
# REPLICAS says, its sessions being in its memory).
#
# Supervision, as `restart: unless-stopped` in compose: a process that exits
# is logged and started again, after 1 s, then 2 s, 4 s, ... while it keeps
# exiting; after RESTART_LIMIT exits (default 5) within RESTART_WINDOW_SECS
# (default 60) it is given up and the rest keep serving. Ctrl-C or SIGTERM
# stops everything gracefully. (stack_supervise in scripts/dev/stack.sh.)
#
# Logs and pid files go to RUN_DIR (default .run; a relative path is taken
# from the checkout's root), so that two stacks on other ports can run from
# one checkout. RUN_BIN_DIR runs binaries built elsewhere (e.g. target/debug)
# instead of building the release binaries of this tree.
#
# Ports, logs and the pairing of instances: see scripts/dev/stack.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
export CLIENT_SERVICE_PORT="${CLIENT_SERVICE_PORT:-8000}"
export ORDER_SERVICE_PORT="${ORDER_SERVICE_PORT:-8001}"
export REPLICAS="${REPLICAS:-1}"
export DATA_DIR="${DATA_DIR:-./data}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
# As given, for the messages below (.run/client_service.0.log).
run_dir_shown="${RUN_DIR:-.run}"

# What it needs (Rust, curl, npm, envsubst, nginx): installed where it can
# be, else named, before anything slow.
scripts/setup/prerequisites.sh run
# shellcheck source=scripts/dev/stack.sh
source scripts/dev/stack.sh
# Bad settings are reported now, not after a long build.
stack_check_config
for name in RESTART_LIMIT RESTART_WINDOW_SECS; do
    if [[ -n "${!name:-}" ]] && ! [[ "${!name}" =~ ^[1-9][0-9]{0,5}$ ]]; then
        echo "$name=${!name}: give a whole number from 1 to 999999" >&2
        exit 1
    fi
done
run_dir="$(mkdir -p "$run_dir_shown" && cd "$run_dir_shown" && pwd)"
# The folder's path goes into nginx's configuration, and it holds nginx's
# status socket, whose path the kernel limits to 107 bytes.
socket="$run_dir/gateway/status.sock"
if ! [[ "$run_dir" =~ ^[A-Za-z0-9_./:@=+,-]+$ ]] || ((${#socket} > 107)); then
    echo "RUN_DIR=$run_dir_shown: give a folder whose absolute path is made of letters, digits" \
        "and . _ - / only, and short enough for $socket to fit in 107 bytes" >&2
    exit 1
fi
if [[ -n "${RUN_BIN_DIR:-}" ]]; then
    bin_dir="$(cd "$RUN_BIN_DIR" && pwd)"
    for bin in auth_service client_service order_service console; do
        [[ -x "$bin_dir/$bin" ]] || {
            echo "RUN_BIN_DIR=$RUN_BIN_DIR has no $bin: build it (cargo build --bins) or unset RUN_BIN_DIR" >&2
            exit 1
        }
    done
fi

# Made readable by this user alone (auth_service.db holds the users'
# password hashes, the .env files secrets); one that exists is left as it is.
[[ -d "$DATA_DIR" ]] || { mkdir -p "$DATA_DIR" && chmod 0700 "$DATA_DIR"; }
DATA_DIR="$(cd "$DATA_DIR" && pwd)"

if [[ -z "${RUN_BIN_DIR:-}" ]]; then
    cargo build --release --locked --bin auth_service --bin client_service --bin order_service --bin console
    bin_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
fi

trap 'echo; echo "stopping..."; stack_stop; exit 0' INT TERM
stack_start "$bin_dir" "$run_dir"
{
    echo
    echo "The system is up:  http://127.0.0.1:$GATEWAY_PORT/client/  and  http://127.0.0.1:$GATEWAY_PORT/order/"
    for ((i = 0; i < REPLICAS; i++)); do
        for service in client_service order_service; do
            printf '  %-16s 127.0.0.1:%-6s log: %s/%s.%s.log\n' \
                "$service.$i" "$(stack_port "$service" "$i")" "$run_dir_shown" "$service" "$i"
        done
    done
    printf '  %-16s 127.0.0.1:%-6s log: %s/auth_service.0.log\n' \
        "auth_service" "$(stack_port auth_service 0)" "$run_dir_shown"
    printf '  %-16s 127.0.0.1:%-6s log: %s/console.0.log\n' \
        "console" "$(stack_port console 0)" "$run_dir_shown"
    printf '  %-16s 127.0.0.1:%-6s logs: %s/gateway/ (access.log: one JSON line per request)\n' \
        "gateway (nginx)" "$GATEWAY_PORT" "$run_dir_shown"
    echo "  nginx's counters: curl --unix-socket $run_dir_shown/gateway/status.sock http://localhost/stub_status"
    echo "  process ids      $run_dir_shown/*.pid"
    echo "  data             $DATA_DIR (dev-clients.env: the development clients' ids and secrets)"
    echo "A token, for the API's Authorization header (valid for 5 minutes):"
    echo "  source $DATA_DIR/dev-clients.env && curl -s -u \"\$CLIENT_ID:\$CLIENT_SECRET\" -d grant_type=client_credentials http://127.0.0.1:$GATEWAY_PORT/auth/token"
    # sign-in.sh finds DATA_DIR and GATEWAY_PORT the same way: named only
    # when they are not its defaults.
    sign_in="scripts/dev/sign-in.sh"
    [[ "$GATEWAY_PORT" == 8080 ]] || sign_in="GATEWAY_PORT=$GATEWAY_PORT $sign_in"
    [[ "$DATA_DIR" == "$PWD/data" ]] || sign_in="DATA_DIR=$DATA_DIR $sign_in"
    echo "A person signs in (authorization code with PKCE, done with curl; prints the tokens):"
    echo "  $sign_in [viewer]"
    echo "  development users ($DATA_DIR/dev-users.env):"
    sed 's/^/    /' "$DATA_DIR/dev-users.env" 2>/dev/null || true
    echo "  the development web client ($DATA_DIR/dev-clients.env):"
    grep '^WEB_' "$DATA_DIR/dev-clients.env" 2>/dev/null | sed 's/^/    /' || true
    echo "    (the console's: sign-in.sh reads the code from the redirect without following it)"
    # The web console, and who signs in to it.
    admin_password="$(sed -n 's/^ADMIN_PASSWORD=//p' "$DATA_DIR/dev-users.env" 2>/dev/null || true)"
    viewer_password="$(sed -n 's/^VIEWER_PASSWORD=//p' "$DATA_DIR/dev-users.env" 2>/dev/null || true)"
    echo "The web console: open http://localhost:$GATEWAY_PORT/ and sign in as admin / viewer with" \
        "${admin_password:-?} / ${viewer_password:-?} (from $DATA_DIR/dev-users.env)"
    echo "A process that exits is started again. Ctrl-C stops everything."
}
# Returns only when nothing is left running; Ctrl-C and SIGTERM go to the trap.
stack_supervise || true
stack_stop
exit 1
