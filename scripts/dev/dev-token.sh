#!/usr/bin/env bash
# scripts/dev/dev-token.sh [--from run|compose|swarm|kubernetes] [SCOPE...]
#
# Prints an access token of the development client (every scope it has, or
# only the SCOPEs given), asked for at the gateway's token endpoint of the
# running system, however it runs:
#
#   run         `make run`: the client in DATA_DIR/dev-clients.env (default
#               ./data), the gateway at 127.0.0.1:GATEWAY_PORT (default 8080)
#   compose     `docker compose up`: the client in dev-clients.env in
#               auth_service's container (the volume auth-keys, made by
#               init_auth), read with `docker compose exec`; the gateway
#               at the host port compose published for it. It waits up to
#               60 s for the gateway, which may still be starting.
#   swarm       scripts/deploy/swarm-deploy.sh (Docker Swarm mode): the client
#               in SWARM_SECRETS_DIR/dev-clients.env (default
#               .run/swarm/secrets), the gateway at 127.0.0.1:GATEWAY_PORT
#               (default 8080)
#   kubernetes  the dev overlay: the client in the Secret dev-clients
#               (namespace rest-microservices, or NAMESPACE), the gateway at
#               127.0.0.1:GATEWAY_PORT, where your
#               `kubectl -n rest-microservices port-forward service/gateway 8080:8080` listens
#
# Without --from it tries them in that order and prints the first token it
# is given: each system has its own random client secret, so the gateway
# that answers accepts only its own system's, and the one it accepts is the
# one that runs. (make run's file is read first because it costs nothing;
# a stale one is merely refused.)
#
# A token is valid for 5 minutes (AUTH_TOKEN_TTL_SECS, 300 s by default): a
# call answered 401 after that needs a new one. The token alone goes to
# standard output, so:
#
#   TOKEN="$(scripts/dev/dev-token.sh)"          # or: TOKEN="$(make -s token)"
#   curl -H "Authorization: Bearer $TOKEN" http://localhost:8080/client/
#   scripts/dev/dev-token.sh clients:read        # a token that can only read clients
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { sed -n '2,/^set -euo pipefail$/{/^set /d;s/^# \{0,1\}//;p}' "$0"; }

from=""
scopes=()
while (($#)); do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --from)
            [[ $# -ge 2 ]] || { echo "dev-token: --from needs run, compose, swarm or kubernetes" >&2; exit 2; }
            from="$2"
            shift 2
            ;;
        --from=*)
            from="${1#--from=}"
            shift
            ;;
        -*)
            echo "dev-token: unknown option $1 (see --help)" >&2
            exit 2
            ;;
        *)
            scopes+=("$1")
            shift
            ;;
    esac
done
case "$from" in
    "" | run | compose | swarm | kubernetes) ;;
    *)
        echo "dev-token: --from $from: say run, compose, swarm or kubernetes" >&2
        exit 2
        ;;
esac

data_dir="${DATA_DIR:-./data}"
namespace="${NAMESPACE:-rest-microservices}"
scope="${scopes[*]:-}"
# What each way gave instead of a token, for the message at the end.
tried=()

# env_value NAME TEXT: NAME's value in the env-file TEXT.
env_value() { sed -n "s/^$1=//p" <<<"$2" | head -n 1; }

# ask PORT ENV_TEXT: a token from the gateway at PORT for the client of
# ENV_TEXT (CLIENT_ID, CLIENT_SECRET). Prints it and returns 0; returns 1
# when the gateway refused the client, 2 when nothing answered. The secret
# goes to curl on its standard input, never on a command line.
ask() {
    local port="$1" id secret out status body
    id="$(env_value CLIENT_ID "$2")"
    secret="$(env_value CLIENT_SECRET "$2")"
    [[ -n "$id" && -n "$secret" ]] || return 1
    out="$(printf 'user = "%s:%s"\n' "$id" "$secret" \
        | curl -sS --max-time 10 -K - -w '\n%{http_code}' -d grant_type=client_credentials \
            ${scope:+--data-urlencode "scope=$scope"} "http://127.0.0.1:$port/auth/token" 2>/dev/null)" || return 2
    status="${out##*$'\n'}"
    body="${out%$'\n'*}"
    if [[ "$status" == 200 ]]; then
        sed -E 's/.*"access_token":"([^"]+)".*/\1/' <<<"$body"
        return 0
    fi
    last_answer="$status $(tr -d '\n' <<<"$body" | cut -c1-200)"
    return 1
}

# try NAME PORT ENV_TEXT WAIT_SECONDS: `ask`, again every second while
# nothing answers, for WAIT_SECONDS; records what went wrong.
try() {
    local name="$1" port="$2" env="$3" wait="$4" deadline=$((SECONDS + $4)) rc
    while :; do
        rc=0
        ask "$port" "$env" || rc=$?
        case "$rc" in
            0) return 0 ;;
            1)
                tried+=("$name: the gateway at 127.0.0.1:$port refused its client ($last_answer)")
                return 1
                ;;
        esac
        if ((SECONDS >= deadline)); then
            tried+=("$name: nothing answered at http://127.0.0.1:$port/auth/token$( ((wait)) && echo " (waited ${wait}s)")")
            return 1
        fi
        sleep 1
    done
}

# from_file FROM FILE WHERE: the client in FILE, a dev-clients.env on this
# machine (WHERE: what makes it, for the message when it is missing).
from_file() {
    local from="$1" file="$2" where="$3"
    if [[ ! -f "$file" ]]; then
        tried+=("$from: no $file ($where)")
        return 1
    fi
    try "$from" "${GATEWAY_PORT:-8080}" "$(cat "$file")" 0
}

from_run() {
    from_file run "$data_dir/dev-clients.env" \
        "made by \`make run\` at its first start; DATA_DIR names another folder"
}

# compose_cli: `docker compose` (v2) or else `docker-compose` (1.29); both
# read compose.yaml, .env and COMPOSE_PROJECT_NAME in this folder.
compose_cli() {
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null; then
        compose=(docker-compose)
    else
        return 1
    fi
}

from_compose() {
    local env port
    if ! command -v docker >/dev/null || ! compose_cli; then
        tried+=("compose: neither \`docker compose\` nor docker-compose is installed")
        return 1
    fi
    if ! env="$("${compose[@]}" exec -T auth_service cat /run/secrets/auth/dev-clients.env 2>/dev/null)"; then
        tried+=("compose: no running auth_service with a development client in this folder's project (${COMPOSE_PROJECT_NAME:-named after the folder}; with keys of your own there is none)")
        return 1
    fi
    port="$("${compose[@]}" port gateway 8080 2>/dev/null | tail -n 1)"
    port="${port##*:}"
    try compose "${port:-${GATEWAY_PORT:-8080}}" "$env" 60
}

from_swarm() {
    from_file swarm "${SWARM_SECRETS_DIR:-.run/swarm/secrets}/dev-clients.env" \
        "made by scripts/deploy/swarm-deploy.sh; SWARM_SECRETS_DIR names another folder"
}

from_kubernetes() {
    local env
    if ! command -v kubectl >/dev/null; then
        tried+=("kubernetes: no kubectl")
        return 1
    fi
    if ! env="$(kubectl -n "$namespace" get secret dev-clients --request-timeout=5s \
        -o go-template='{{index .data "dev-clients.env" | base64decode}}' 2>/dev/null)"; then
        tried+=("kubernetes: no Secret dev-clients in the namespace $namespace of kubectl's current cluster")
        return 1
    fi
    try kubernetes "${GATEWAY_PORT:-8080}" "$env" 0
}

for way in ${from:-run compose swarm kubernetes}; do
    case "$way" in
        run) from_run && exit 0 ;;
        compose) from_compose && exit 0 ;;
        swarm) from_swarm && exit 0 ;;
        kubernetes) from_kubernetes && exit 0 ;;
    esac
done
{
    echo "dev-token: no token:"
    printf '  - %s\n' "${tried[@]}"
    echo "Start the system first: \`make run\`, \`docker compose up -d\`, or the Kubernetes dev overlay" \
        "and \`kubectl -n rest-microservices port-forward service/gateway 8080:8080\`."
} >&2
exit 1
