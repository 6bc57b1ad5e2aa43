#!/usr/bin/env bash
# The first container of the dev overlay's Job dev-secrets runs this in
# auth_service's image (bash, coreutils, auth_service; no kubectl), as its
# user, with auth_service's database (DATABASE_URL, the Secret
# auth-service-database: the network to PostgreSQL and nothing else). It
# writes SECRETS_OUT/secrets.yaml, the Secrets that the Job's second
# container applies (kubectl apply --server-side):
#
#   dev-clients                  dev-clients.env: your development client
#                                (scripts/dev/dev-token.sh reads it) and
#                                the web client; dev-users.env: the
#                                development users admin and viewer
#   client-service-credentials   SERVICE_CLIENT_SECRET of client_service
#   order-service-credentials    SERVICE_CLIENT_SECRET of order_service
#   console-credentials          client_secret: the console's, the web
#                                client's (WEB_CLIENT_SECRET of
#                                dev-clients.env)
#   auth-service-keys            auth-signing-key.pem, auth-clients
#
# in that order: auth-service-keys, last, exists only once the others were
# applied. Each Secret that exists already is mounted (an optional volume)
# at SECRETS_EXISTING/NAME, so that a run after the first (the Job is made
# again by every `kubectl apply -k` once its TTL has removed it, and a
# failed try is tried again) changes nothing:
#   - no auth-service-keys: a new development set (`auth_service init`,
#     random keys and secrets, the development users in the database),
#     replacing any other of the five;
#   - auth-service-keys: every Secret written as it is; a missing
#     credentials Secret cannot be made again (auth-clients has only its
#     secret's hash), so the run fails saying how to start over; with the
#     Job's own set (dev-clients), `auth_service init` again adds the users
#     of dev-users.env that the database lacks (a new database), and
#     changes nothing else. A missing console-credentials (a set made
#     before the console) is made from dev-clients.env's web client.
# Nothing of it is ever in the repository. scripts/deploy/check-k8s.py runs this
# script too (with the same auth_service) and starts the binaries with what
# it wrote.
set -euo pipefail
existing="${SECRETS_EXISTING:?the folder where the existing Secrets are mounted}"
out="${SECRETS_OUT:?the folder for secrets.yaml}"
namespace="${POD_NAMESPACE:?the namespace of the Secrets}"
database="${DATABASE_URL:?the database of auth_service, for the development users}"
# The development web client's URIs: the gateway as `kubectl port-forward`
# publishes it (docs/src/deployment/kubernetes.md).
web_origin="${WEB_ORIGIN:-http://localhost:8080}"
made="$out/made"
mkdir -p "$made"

# init_users: `auth_service init` in made/ with the database: makes what
# is missing there (everything, the first time) and adds the development
# users that the database lacks. PostgreSQL may still be starting (the
# first apply starts it with this Job): tried again for up to 3 minutes.
init_users() {
    local try
    for try in $(seq 1 36); do
        # (pipefail: the pipeline fails when auth_service init does. The
        # database URL, with its password, in the environment: never on a
        # command line, where the process list shows it.)
        if DATABASE_URL="$database" auth_service init "$made" --web-origin "$web_origin" \
            | sed 's/^/dev-secrets: /'; then
            return 0
        fi
        echo "dev-secrets: auth_service init failed (try $try; the database may be starting): again in 5 s" >&2
        sleep 5
    done
    echo "dev-secrets: auth_service init failed for 3 minutes: is the postgres pod running?" >&2
    exit 1
}

# take SECRET KEY FILE: KEY of an existing SECRET into made/FILE; false when
# there is none.
take() {
    [[ -f "$existing/$1/$2" ]] || return 1
    cp "$existing/$1/$2" "$made/$3"
}

if [[ -f "$existing/auth-service-keys/auth-signing-key.pem" && -f "$existing/auth-service-keys/auth-clients" ]]; then
    echo "dev-secrets: auth-service-keys exists: every Secret stays as it is"
    take auth-service-keys auth-signing-key.pem auth-signing-key.pem
    take auth-service-keys auth-clients auth-clients
    own=""
    if take dev-clients dev-clients.env dev-clients.env; then
        own=1
        take dev-clients dev-users.env dev-users.env || true
    else
        echo "dev-secrets: no Secret dev-clients (the keys are not this Job's): scripts/dev/dev-token.sh has no client"
    fi
    for service in client_service order_service; do
        take "${service//_/-}-credentials" SERVICE_CLIENT_SECRET "$service.secret" || {
            echo "dev-secrets: auth-service-keys exists but ${service//_/-}-credentials does not, and its secret" \
                "cannot be made again (auth-clients keeps only its hash). To start over with a new set:" \
                "kubectl -n $namespace delete secret auth-service-keys; kubectl -n $namespace delete job dev-secrets;" \
                "then kubectl apply -k again" >&2
            exit 1
        }
    done
    if ! take console-credentials client_secret console.secret; then
        # The web client's secret is in dev-clients.env (a set made before
        # the console came has no console-credentials yet).
        if [[ -z "$own" ]] || ! sed -n 's/^WEB_CLIENT_SECRET=//p' "$made/dev-clients.env" | grep . >"$made/console.secret"; then
            echo "dev-secrets: auth-service-keys exists but console-credentials does not, and there is no" \
                "dev-clients.env with the web client's secret to make it from: create it (key client_secret)," \
                "or start over: kubectl -n $namespace delete secret auth-service-keys; kubectl -n $namespace" \
                "delete job dev-secrets; then kubectl apply -k again" >&2
            exit 1
        fi
    fi
    [[ -z "$own" ]] || init_users
else
    echo "dev-secrets: no auth-service-keys: making a new development set (auth_service init)"
    init_users
    sed -n 's/^WEB_CLIENT_SECRET=//p' "$made/dev-clients.env" >"$made/console.secret"
fi

# secret NAME APP KEY=FILE...: one Secret of the manifest, its data from the
# files in made/ (base64), with the project's labels.
secret() {
    local name="$1" app="$2" pair
    shift 2
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$name" "$namespace"
    printf '  labels:\n    app.kubernetes.io/name: %s\n    app.kubernetes.io/component: %s\n' \
        "$app" "$(case "$app" in dev-secrets) echo secrets ;; console) echo web ;; *) echo api ;; esac)"
    printf '    app.kubernetes.io/part-of: rest-microservices\n    app.kubernetes.io/managed-by: dev-secrets\n'
    printf 'type: Opaque\ndata:\n'
    for pair in "$@"; do
        printf '  %s: %s\n' "${pair%%=*}" "$(base64 -w0 <"$made/${pair#*=}")"
    done
}

{
    if [[ -f "$made/dev-clients.env" ]]; then
        if [[ -f "$made/dev-users.env" ]]; then
            secret dev-clients dev-secrets dev-clients.env=dev-clients.env dev-users.env=dev-users.env
        else
            secret dev-clients dev-secrets dev-clients.env=dev-clients.env
        fi
    fi
    secret client-service-credentials client-service SERVICE_CLIENT_SECRET=client_service.secret
    secret order-service-credentials order-service SERVICE_CLIENT_SECRET=order_service.secret
    secret console-credentials console client_secret=console.secret
    secret auth-service-keys auth-service auth-signing-key.pem=auth-signing-key.pem auth-clients=auth-clients
} >"$out/secrets.yaml"
rm -rf "$made"
echo "dev-secrets: $out/secrets.yaml: $(grep -c '^kind: Secret' "$out/secrets.yaml") Secrets for the namespace $namespace"
