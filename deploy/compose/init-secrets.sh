#!/usr/bin/env bash
# compose.yaml's one-shot service init_secrets runs this, in the
# auth_service image, as its user (10001), with no network, after init_auth
# and before auth_service and the two services start (they wait for its
# exit 0), at every `up`:
#
#   /run/secrets/auth            auth_service's: auth-signing-key.pem and
#                                auth-clients; with a development set also
#                                dev-clients.env (yours), dev-users.env,
#                                service-clients.env and each service's
#                                secret alone
#   /run/secrets/client_service  client_service's: client_secret
#   /run/secrets/order_service   order_service's: client_secret
#   /run/secrets/console         the console's: client_secret (the web
#                                client's, WEB_CLIENT_SECRET of a
#                                development set's dev-clients.env)
#
# Each is a volume of compose.yaml (auth-keys, client-service-secret,
# order-service-secret, console-secret), or a folder of yours when
# AUTH_KEYS_DIR, CLIENT_SERVICE_SECRET_DIR, ORDER_SERVICE_SECRET_DIR and
# CONSOLE_SECRET_DIR name one.
#
# On the first `up` init_auth (deploy/compose/init-auth.sh) has made a
# development set in /run/secrets/auth with `auth_service init`; this gives
# each service its secret from it. What is there already is kept, so the
# keys and secrets survive `down` and `up` (`down -v` deletes the volumes,
# and the next `up` makes a new set). A set of your own is only checked:
# every file must be there, readable by uid 10001; nothing of it is ever
# replaced. The message of a failure names the missing file.
set -euo pipefail
auth=/run/secrets/auth
fail() {
    echo "init_secrets: $*" >&2
    exit 1
}

for file in auth-signing-key.pem auth-clients; do
    [[ -r "$auth/$file" ]] || fail "no readable $auth/$file: a set of your own needs both auth-signing-key.pem" \
        "and auth-clients (an interrupted first start leaves half a set: docker compose down -v starts over)"
done

for service in client_service order_service; do
    file="/run/secrets/$service/client_secret"
    if [[ ! -e "$file" ]]; then
        # A development set has the service's secret alone beside the keys.
        [[ -r "$auth/$service.secret" ]] || fail "no $file, and no development set in $auth to take it from:" \
            "put $service's client secret there (the one whose hash auth-clients has for $service)"
        cp "$auth/$service.secret" "$file"
        echo "init_secrets: made $file"
    fi
    [[ -r "$file" && -s "$file" ]] || fail "$file is empty or not readable by uid $(id -u)"
done

# The console's: the web client's secret of a development set (the line
# WEB_CLIENT_SECRET= of dev-clients.env), alone in its file.
file=/run/secrets/console/client_secret
if [[ ! -e "$file" ]]; then
    secret="$(sed -n 's/^WEB_CLIENT_SECRET=//p' "$auth/dev-clients.env" 2>/dev/null || true)"
    [[ -n "$secret" ]] || fail "no $file, and no development set in $auth to take it from (its" \
        "dev-clients.env's WEB_CLIENT_SECRET): put the console's client secret there (the one whose" \
        "hash auth-clients has for its client, dev-web)"
    (umask 077 && printf '%s\n' "$secret" >"$file")
    echo "init_secrets: made $file"
fi
[[ -r "$file" && -s "$file" ]] || fail "$file is empty or not readable by uid $(id -u)"
echo "init_secrets: ready (auth_service's keys and clients, client_service's, order_service's and the console's secrets)"
