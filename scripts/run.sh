#!/usr/bin/env bash
# make run: the whole system without Docker, in the foreground. Both
# services on SQLite (files in DATA_DIR) and nginx on 127.0.0.1:GATEWAY_PORT.
# Ctrl-C or SIGTERM stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
export CLIENT_SERVICE_PORT="${CLIENT_SERVICE_PORT:-8000}"
export ORDER_SERVICE_PORT="${ORDER_SERVICE_PORT:-8001}"
export DATA_DIR="${DATA_DIR:-./data}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
DATA_DIR="$(mkdir -p "$DATA_DIR" && cd "$DATA_DIR" && pwd)"

scripts/ensure-nginx.sh
cargo build --release --locked --bin client_service --bin order_service

# shellcheck source=scripts/stack.sh
source scripts/stack.sh
run_dir="$PWD/.run"
trap 'echo; echo "stopping..."; stack_stop; exit 0' INT TERM
stack_start "${CARGO_TARGET_DIR:-$PWD/target}/release" "$run_dir"
cat <<MSG

The system is up:  http://127.0.0.1:$GATEWAY_PORT/client/  and  http://127.0.0.1:$GATEWAY_PORT/order/
  client_service   127.0.0.1:$CLIENT_SERVICE_PORT   log: .run/client_service.log
  order_service    127.0.0.1:$ORDER_SERVICE_PORT   log: .run/order_service.log
  gateway (nginx)  127.0.0.1:$GATEWAY_PORT   logs: .run/gateway/
  data             $DATA_DIR
Ctrl-C stops everything.
MSG
# Stop everything as soon as any one of them exits.
wait -n "${STACK_PIDS[@]}" || true
echo "a process exited; stopping the rest" >&2
stack_stop
exit 1
