#!/usr/bin/env bash
# Checks both services against their own OpenAPI documents with schemathesis
# (a tool nobody here wrote), through the real gateway: every check, positive
# and negative cases, and the stateful phase that follows the documents'
# links (a created client is fetched, replaced, patched and deleted; likewise
# an order). Called by `make test`; run alone with `scripts/ci/schemathesis.sh`.
#
# Every request carries an access token of the development client with
# every scope (a new one for each run; the documents declare the OAuth2
# scheme, and schemathesis's ignored_auth check sends requests without it,
# which must be refused).
#
# Two runs, one after the other on the same system: one with a fixed seed,
# the same cases every time (a failure there is a regression), then one with
# a new random seed each time, printed, so that every run explores new cases.
# A failure prints schemathesis's report: for each failing case a `curl`
# line and an `st replay ID` (from the crash files it keeps in .schemathesis/),
# and how to run the same run again.
#
#   SCHEMATHESIS_EXAMPLES     examples per operation and phase (default 50)
#   SCHEMATHESIS_SEED         the fixed seed (default 1)
#   SCHEMATHESIS_RANDOM_SEED  the second run's seed: unset, a new one each
#                             time; a number runs that one again (the one a
#                             failure printed); `off` leaves the run out
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=".venv"
version="4.32.5"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

work="$(mktemp -d /tmp/rest-microservices-st.XXXXXX)"
export GATEWAY_PORT="${ST_GATEWAY_PORT:-18380}" CLIENT_SERVICE_PORT=18300 ORDER_SERVICE_PORT=18301
export DATA_DIR="$work/data" LOG_FORMAT=json REPLICAS=1
# The longest lifetime auth_service gives: one token lasts a whole run.
export AUTH_TOKEN_TTL_SECS=600
# shellcheck source=scripts/dev/stack.sh
source scripts/dev/stack.sh
stack_without_rate_limits
trap 'stack_stop; rm -rf "$work"' EXIT
bin_dir="$(cd "${CARGO_TARGET_DIR:-target}" 2>/dev/null && pwd || echo "$PWD/target")/debug"
[[ -x "$bin_dir/auth_service" && -x "$bin_dir/console" ]] \
    || cargo build --locked --bin auth_service --bin client_service --bin order_service --bin console
stack_start "$bin_dir" "$work/run"

gateway="http://127.0.0.1:$GATEWAY_PORT"
# A few clients, so that generated orders can name existing ones.
token="$(stack_token)"
for n in 1 2 3 4 5; do
    curl -fsS -o /dev/null "$gateway/client/" -H 'content-type: application/json' \
        -H "Authorization: Bearer $token" \
        -d "{\"name\":\"Seed $n\",\"card_number\":\"SEED-$n\",\"card_issued_on\":\"2020-01-0$n\"}"
done

# The seeds: the fixed one, then the random one.
fixed="${SCHEMATHESIS_SEED:-1}"
# (`random` was this variable's way of asking for a new seed; the second run
# does that now, and `random` still gets one.)
[[ "$fixed" != random ]] || fixed="$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
random="${SCHEMATHESIS_RANDOM_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
for seed in "$fixed" "$random"; do
    [[ "$seed" =~ ^[0-9]{1,20}$ || "$seed" == off ]] || {
        echo "seed $seed: give a whole number (SCHEMATHESIS_SEED, SCHEMATHESIS_RANDOM_SEED; or off for the latter)" >&2
        exit 2
    }
done
[[ "$fixed" != off ]] || { echo "SCHEMATHESIS_SEED=off: give a number" >&2; exit 2; }

# run_seed SEED WHAT: both documents with that seed; on a failure, the whole
# report and how to reproduce it, and returns 1.
run_seed() {
    local seed="$1" what="$2" service log ids
    for service in client order; do
        echo "== schemathesis, seed $seed ($what): ${service}_service (/$service/openapi.json through the gateway)"
        log="$work/$service.$seed.log"
        token="$(stack_token)"
        if "$venv/bin/st" --config-file schemathesis.toml run "$gateway/$service/openapi.json" \
            --header "Authorization: Bearer $token" --checks all --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" --seed "$seed" \
            --request-timeout 10 --no-color >"$log" 2>&1; then
            # The summary: phases, failures, how many cases were generated.
            sed -n '/SUMMARY/,$p' "$log"
            continue
        fi
        cat "$log"
        ids="$(grep -oE 'st replay [A-Za-z0-9_-]+' "$log" | awk '{print $3}' | sort -u | tr '\n' ' ')"
        cat <<HOW

== schemathesis found failures with seed $seed ($what). To reproduce:
   this run again:  SCHEMATHESIS_SEED=$fixed SCHEMATHESIS_RANDOM_SEED=$random SCHEMATHESIS_EXAMPLES=${SCHEMATHESIS_EXAMPLES:-50} scripts/ci/schemathesis.sh
   one case, against a running system (make run, on 127.0.0.1:8080): the curl line under
   "Reproduce with:" above, with $gateway replaced by http://127.0.0.1:8080 and a token
   of your own (scripts/dev/dev-token.sh) in its Authorization header; or, on this
   machine (the crash files are in .schemathesis/), for each case id: ${ids:-(none recorded)}
     $venv/bin/st replay ID --url http://127.0.0.1:8080/ --schema-location http://127.0.0.1:8080/$service/openapi.json
HOW
        return 1
    done
}

run_seed "$fixed" "fixed"
if [[ "$random" == off ]]; then
    echo "== schemathesis: the random-seed run is off (SCHEMATHESIS_RANDOM_SEED=off)"
else
    echo "== schemathesis: random seed $random (new each run; SCHEMATHESIS_RANDOM_SEED=$random runs it again)"
    run_seed "$random" "random"
fi
