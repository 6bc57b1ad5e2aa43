#!/usr/bin/env bash
# scripts/make-secrets.sh [DIR]: the secrets compose needs, made once, in DIR
# (default secrets/, git-ignored and left out of the Docker build context).
# What exists already is kept: run it again after deleting a file to make
# that one anew.
#
#   auth-signing-key.pem    auth_service's Ed25519 private key
#   auth-clients            the clients: ids, argon2 hashes of the secrets, scopes
#   client_service.secret   client_service's own client secret
#   order_service.secret    order_service's own client secret
#   dev-clients.env         yours: CLIENT_ID/CLIENT_SECRET (every scope) and
#                           READONLY_CLIENT_ID/READONLY_CLIENT_SECRET (read scopes)
#   service-clients.env     the services' ids and secrets, as auth_service init wrote them
#
# It runs `auth_service init` from the auth_service image (built here with
# `docker build --target auth_service`), so it needs only Docker; with
# AUTH_SERVICE_BIN=path/to/auth_service it uses that binary instead.
# The files the containers read are readable by any user (the containers
# run as uid 10001) inside DIR, which only you can enter.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
dir="$(cd "$dir" && pwd)"

if [[ -n "${AUTH_SERVICE_BIN:-}" ]]; then
    "$AUTH_SERVICE_BIN" init "$dir"
else
    command -v docker >/dev/null || {
        echo "make-secrets: docker is missing (or set AUTH_SERVICE_BIN to an auth_service binary)" >&2
        exit 1
    }
    image="rest-microservices-auth-init"
    # The base images and the crates' source, as compose builds them, when
    # they are set (make compose-up and compose-test set them: stand-in
    # images, vendored crates; scripts/compose-lib.sh).
    build_args=()
    for arg in RUST_IMAGE RUNTIME_IMAGE CARGO_SOURCE; do
        if [[ -n "${!arg:-}" ]]; then build_args+=(--build-arg "$arg=${!arg}"); fi
    done
    docker build --quiet "${build_args[@]}" --target auth_service -t "$image" . >/dev/null
    docker run --rm --user "$(id -u):$(id -g)" --read-only --network none \
        -v "$dir:/secrets" "$image" /usr/local/bin/auth_service init /secrets
fi

# The services' own secrets, one file each (compose mounts them as secrets).
for service in client_service order_service; do
    file="$dir/$service.secret"
    [[ -f "$file" ]] && continue
    prefix="$(tr '[:lower:]' '[:upper:]' <<<"$service")"
    # Without a final line break: Kubernetes puts the file's bytes as they
    # are into SERVICE_CLIENT_SECRET (scripts/k8s-secrets.sh).
    printf '%s' "$(sed -n "s/^${prefix}_SECRET=//p" "$dir/service-clients.env")" >"$file"
    [[ -s "$file" ]] || {
        echo "make-secrets: no ${prefix}_SECRET in $dir/service-clients.env" >&2
        rm -f "$file"
        exit 1
    }
done
chmod 644 "$dir/auth-signing-key.pem" "$dir/auth-clients" "$dir/client_service.secret" "$dir/order_service.secret"
chmod 600 "$dir/dev-clients.env" "$dir/service-clients.env"
echo "make-secrets: $dir is ready; your client: source $dir/dev-clients.env"
