#!/usr/bin/env bash
# scripts/dev-token.sh [SCOPE...]: prints an access token of the development
# client (DATA_DIR/dev-clients.env, made by `make run` at its first start),
# asked for at the gateway's token endpoint of a running system: with every
# scope of that client, or with the scopes given. For scripts and a shell:
#
#   token="$(scripts/dev-token.sh)"
#   curl -H "Authorization: Bearer $token" http://127.0.0.1:8080/client/
#   scripts/dev-token.sh clients:read      # a token that can only read clients
#
# Reads DATA_DIR (default ./data) and GATEWAY_PORT (default 8080), as
# `make run` does. A token is valid for 5 minutes (AUTH_TOKEN_TTL_SECS).
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_DIR="${DATA_DIR:-./data}" GATEWAY_PORT="${GATEWAY_PORT:-8080}"
[[ -f "$DATA_DIR/dev-clients.env" ]] || {
    echo "no $DATA_DIR/dev-clients.env: start the system once with \`make run\` (or set DATA_DIR)" >&2
    exit 1
}
# shellcheck source=scripts/stack.sh
source scripts/stack.sh
token="$(stack_token "$@")" && [[ -n "$token" ]] || {
    echo "no token from http://127.0.0.1:$GATEWAY_PORT/auth/token: is the system running?" >&2
    exit 1
}
echo "$token"
