#!/usr/bin/env bash
# make run: the whole system without Docker, in the foreground. REPLICAS
# instances of each service (default 1) on SQLite (files in DATA_DIR) and
# nginx on 127.0.0.1:GATEWAY_PORT, spreading requests over the instances.
# Ctrl-C or SIGTERM stops all of them; so does any one of them exiting.
#
#   make run                 1 instance of each: client_service on 8000, order_service on 8001
#   REPLICAS=2 make run      2 of each: client_service on 8000 and 8002, order_service on 8001 and 8003
#
# Ports, logs and the pairing of instances: see scripts/stack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
export CLIENT_SERVICE_PORT="${CLIENT_SERVICE_PORT:-8000}"
export ORDER_SERVICE_PORT="${ORDER_SERVICE_PORT:-8001}"
export REPLICAS="${REPLICAS:-1}"
export DATA_DIR="${DATA_DIR:-./data}"
export LOG_FORMAT="${LOG_FORMAT:-text}"

# shellcheck source=scripts/stack.sh
source scripts/stack.sh
# Bad settings are reported now, not after a long build.
stack_check_config

DATA_DIR="$(mkdir -p "$DATA_DIR" && cd "$DATA_DIR" && pwd)"

scripts/ensure-nginx.sh
cargo build --release --locked --bin client_service --bin order_service

run_dir="$PWD/.run"
trap 'echo; echo "stopping..."; stack_stop; exit 0' INT TERM
stack_start "${CARGO_TARGET_DIR:-$PWD/target}/release" "$run_dir"
{
    echo
    echo "The system is up:  http://127.0.0.1:$GATEWAY_PORT/client/  and  http://127.0.0.1:$GATEWAY_PORT/order/"
    for ((i = 0; i < REPLICAS; i++)); do
        for service in client_service order_service; do
            printf '  %-16s 127.0.0.1:%-6s log: .run/%s.%s.log\n' \
                "$service.$i" "$(stack_port "$service" "$i")" "$service" "$i"
        done
    done
    printf '  %-16s 127.0.0.1:%-6s logs: .run/gateway/ (access.log: one JSON line per request)\n' \
        "gateway (nginx)" "$GATEWAY_PORT"
    echo "  nginx's counters: curl --unix-socket .run/gateway/status.sock http://localhost/stub_status"
    echo "  data             $DATA_DIR"
    echo "Ctrl-C stops everything."
}
# Stop everything as soon as any one of them exits.
wait -n "${STACK_PIDS[@]}" || true
echo "a process exited; stopping the rest" >&2
stack_stop
exit 1
