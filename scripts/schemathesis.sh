#!/usr/bin/env bash
# Checks both services against their own OpenAPI documents with schemathesis
# (a tool nobody here wrote), through the real gateway: every check, positive
# and negative cases, and the stateful phase that follows the documents'
# links (a created client is fetched, replaced, patched and deleted; likewise
# an order). Called by `make test`; run alone with `scripts/schemathesis.sh`.
#
#   SCHEMATHESIS_EXAMPLES  examples per operation and phase (default 50)
#   SCHEMATHESIS_SEED      the seed (default 1, so that CI is repeatable;
#                          `random` for a new one each run)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".venv"
version="4.32.5"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work="$(mktemp -d /tmp/rest-microservices-st.XXXXXX)"
export GATEWAY_PORT="${ST_GATEWAY_PORT:-18380}" CLIENT_SERVICE_PORT=18300 ORDER_SERVICE_PORT=18301
export DATA_DIR="$work/data" LOG_FORMAT=json REPLICAS=1
# shellcheck source=scripts/stack.sh
source scripts/stack.sh
trap 'stack_stop; rm -rf "$work"' EXIT
[[ -x target/debug/client_service ]] || cargo build --locked --bin client_service --bin order_service
stack_start "$PWD/target/debug" "$work/run"

gateway="http://127.0.0.1:$GATEWAY_PORT"
# A few clients, so that generated orders can name existing ones.
for n in 1 2 3 4 5; do
    curl -fsS -o /dev/null "$gateway/client/" -H 'content-type: application/json' \
        -d "{\"name\":\"Seed $n\",\"card_number\":\"SEED-$n\",\"card_issued_on\":\"2020-01-0$n\"}"
done

seed=()
[[ "${SCHEMATHESIS_SEED:-1}" == random ]] || seed=(--seed "${SCHEMATHESIS_SEED:-1}")
status=0
for service in client order; do
    echo "== schemathesis: ${service}_service (/$service/openapi.json through the gateway)"
    "$venv/bin/st" --config-file schemathesis.toml run "$gateway/$service/openapi.json" \
        --checks all --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" "${seed[@]}" \
        --request-timeout 10 --no-color >"$work/$service.log" 2>&1 || status=1
    # The summary: phases, failures, how many cases were generated.
    sed -n '/SUMMARY/,$p' "$work/$service.log"
    if [[ $status -ne 0 ]]; then
        cat "$work/$service.log"
        break
    fi
done
exit "$status"
