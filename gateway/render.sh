#!/usr/bin/env bash
# Renders the gateway for a plain nginx process into GATEWAY_RUN_DIR:
# gateway.conf (from templates/gateway.conf.template, the one that ships) and
# nginx.conf (the process's own paths). Start it with:
#   nginx -p "$GATEWAY_RUN_DIR" -c "$GATEWAY_RUN_DIR/nginx.conf"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${GATEWAY_RUN_DIR:?set GATEWAY_RUN_DIR}"
: "${GATEWAY_LISTEN:?set GATEWAY_LISTEN, e.g. 127.0.0.1:8080}"
: "${GATEWAY_CLIENT_SERVERS:?set GATEWAY_CLIENT_SERVERS, e.g. 'server 127.0.0.1:8000;'}"
: "${GATEWAY_ORDER_SERVERS:?set GATEWAY_ORDER_SERVERS, e.g. 'server 127.0.0.1:8001;'}"
export GATEWAY_RUN_DIR GATEWAY_LISTEN GATEWAY_CLIENT_SERVERS GATEWAY_ORDER_SERVERS
vars='${GATEWAY_RUN_DIR} ${GATEWAY_LISTEN} ${GATEWAY_CLIENT_SERVERS} ${GATEWAY_ORDER_SERVERS}'
mkdir -p "$GATEWAY_RUN_DIR/tmp"
envsubst "$vars" < "$here/templates/gateway.conf.template" > "$GATEWAY_RUN_DIR/gateway.conf"
envsubst "$vars" < "$here/local/nginx.conf.template" > "$GATEWAY_RUN_DIR/nginx.conf"
