# Functions to run the system as plain processes: both services and nginx
# rendered from the shipped gateway template. Sourced by run.sh and bench.sh.
#
# stack_start BIN_DIR RUN_DIR: starts client_service on $CLIENT_SERVICE_PORT,
# order_service on $ORDER_SERVICE_PORT and the gateway on 127.0.0.1:$GATEWAY_PORT,
# with data under $DATA_DIR (or $CLIENT_DATABASE_URL / $ORDER_DATABASE_URL when
# set); their logs go to RUN_DIR. stack_stop stops them all.

STACK_PIDS=()

nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

stack_start() {
    local bin_dir="$1" run_dir="$2"
    mkdir -p "$run_dir" "$DATA_DIR"
    local client_url="http://127.0.0.1:$CLIENT_SERVICE_PORT" order_url="http://127.0.0.1:$ORDER_SERVICE_PORT"

    LISTEN_ADDR="127.0.0.1:$CLIENT_SERVICE_PORT" ORDER_SERVICE_URL="$order_url" \
        DATABASE_URL="${CLIENT_DATABASE_URL:-sqlite://$DATA_DIR/client_service.db}" \
        "$bin_dir/client_service" >>"$run_dir/client_service.log" 2>&1 &
    STACK_PIDS+=($!)
    LISTEN_ADDR="127.0.0.1:$ORDER_SERVICE_PORT" CLIENT_SERVICE_URL="$client_url" \
        DATABASE_URL="${ORDER_DATABASE_URL:-sqlite://$DATA_DIR/order_service.db}" \
        "$bin_dir/order_service" >>"$run_dir/order_service.log" 2>&1 &
    STACK_PIDS+=($!)

    GATEWAY_RUN_DIR="$run_dir/gateway" GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
        CLIENT_SERVICE_ADDRS="127.0.0.1:$CLIENT_SERVICE_PORT" \
        ORDER_SERVICE_ADDRS="127.0.0.1:$ORDER_SERVICE_PORT" \
        "$(dirname "${BASH_SOURCE[0]}")/../gateway/render.sh"
    "$(nginx_bin)" -p "$run_dir/gateway" -c "$run_dir/gateway/nginx.conf" &
    STACK_PIDS+=($!)

    local url
    for url in "$client_url/readyz" "$order_url/readyz" "http://127.0.0.1:$GATEWAY_PORT/healthz"; do
        wait_for "$url" || {
            echo "not ready: $url; logs in $run_dir" >&2
            tail -n 20 "$run_dir"/*.log "$run_dir/gateway/error.log" >&2 2>/dev/null || true
            stack_stop
            return 1
        }
    done
}

wait_for() {
    local i
    for i in $(seq 1 150); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

stack_stop() {
    local pid
    for pid in "${STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    STACK_PIDS=()
}
