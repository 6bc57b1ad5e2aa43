#!/usr/bin/env bash
# compose.yaml's one-shot service init_secrets runs this, in the
# auth_service image, as its user (10001), before auth_service and the two
# services start (they wait for it to exit 0), at every `up`:
#
#   /run/secrets/auth            auth_service's: auth-signing-key.pem and
#                                auth-clients; with a development set also
#                                dev-clients.env (yours), service-clients.env
#                                and each service's secret alone
#   /run/secrets/client_service  client_service's: client_secret
#   /run/secrets/order_service   order_service's: client_secret
#
# Each is a volume of compose.yaml (auth-keys, client-service-secret,
# order-service-secret), or a folder of yours when AUTH_KEYS_DIR,
# CLIENT_SERVICE_SECRET_DIR and ORDER_SERVICE_SECRET_DIR name one.
#
# When /run/secrets/auth holds neither the key nor the clients file (a new
# volume: the first `up`), it makes a development set there with
# `auth_service init`, and gives each service its secret. What is there
# already is kept, so the keys and secrets survive `down` and `up` (`down -v`
# deletes the volumes, and the next `up` makes a new set). A set of your own
# is only checked: every file must be there, readable by uid 10001; nothing
# of it is ever replaced. The message of a failure names the missing file.
set -euo pipefail
auth=/run/secrets/auth
fail() {
    echo "init_secrets: $*" >&2
    exit 1
}

if [[ ! -e "$auth/auth-signing-key.pem" && ! -e "$auth/auth-clients" ]]; then
    echo "init_secrets: $auth is empty: making a development set (auth_service init)"
    auth_service init "$auth" | sed 's/^/init_secrets: /'
fi
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
echo "init_secrets: ready (auth_service's keys and clients, client_service's and order_service's secrets)"
