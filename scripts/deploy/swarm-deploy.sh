#!/usr/bin/env bash
# scripts/deploy/swarm-deploy.sh [--build] [STACK]: the system on Docker Swarm
# mode, as the stack STACK (default rms), on the swarm this engine is a
# manager of (`docker swarm init` makes a single-node one). Run it again to
# roll out a change (a new IMAGE_TAG, a changed compose.yaml or stack.yaml):
# Swarm updates only the services whose definition changed, task by task.
#
#   1. --build: the five images built by compose, from compose.yaml and
#      its build arguments (the same images as `docker compose up --build`),
#      tagged rest-microservices/SERVICE:IMAGE_TAG (scripts/deploy/swarm-stack.py
#      build-override); without it they must exist already. A stack does
#      not build (`docker stack deploy` ignores build:).
#   2. the keys and secrets, in SWARM_SECRETS_DIR: when it has none, a
#      development set made there as compose's init_auth makes it, with
#      `auth_service init` (a throwaway container of the auth_service image,
#      no network), plus console.secret (the web client's secret alone, as
#      compose's init_secrets writes it). A folder of yours instead needs
#      auth-signing-key.pem, auth-clients, client_service.secret,
#      order_service.secret and console.secret; nothing in it is changed.
#   3. the stack file rendered (swarm-stack.py render) into
#      .run/swarm/STACK.yaml, and `docker stack deploy` with it
#      (--resolve-image never: the images are this engine's own, in no registry)
#   4. waits until every service has all its tasks running and healthy
#      (SWARM_WAIT seconds, default 600)
#   5. a development set's users (dev-users.env: admin and viewer) added
#      to auth_service's database, in its task, when it lacks them, as
#      compose's init_auth does (`auth_service users add`)
#
# Settings: IMAGE_TAG (latest), SWARM_SECRETS_DIR (.run/swarm/secrets),
# SWARM_STACK_OVERRIDE (a YAML file merged after deploy/swarm/stack.yaml:
# the settings of one deployment),
# GATEWAY_PORT (8080: the published port, and the web client's URIs of a
# development set), and every ${VARIABLE} of compose.yaml, as for compose.
# The development client, for a token: SWARM_SECRETS_DIR/dev-clients.env
# (scripts/dev/dev-token.sh --from swarm reads it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/deploy/swarm-lib.sh
source scripts/deploy/swarm-lib.sh

build=0
if [[ "${1:-}" == --build ]]; then
    build=1
    shift
fi
stack="${1:-rms}"
tag="${IMAGE_TAG:-latest}"
secrets="${SWARM_SECRETS_DIR:-$root/.run/swarm/secrets}"
port="${GATEWAY_PORT:-8080}"

[[ "$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)" == "active true" ]] \
    || swarm_die "this Docker engine is not a manager of a swarm: docker swarm init"

# ---- 1. the images
if ((build)); then
    swarm_build_images "$tag"
fi
for service in $(scripts/deploy/swarm-stack.py built-services); do
    docker image inspect "rest-microservices/$service:$tag" >/dev/null 2>&1 \
        || swarm_die "no image rest-microservices/$service:$tag: build them with --build (or IMAGE_TAG=... names another tag)"
done

# ---- 2. the keys and secrets
swarm_make_secrets "$secrets" "$tag" "http://localhost:$port"

# ---- 3. render and deploy
mkdir -p .run/swarm
scripts/deploy/swarm-stack.py render --stack "$stack" --secrets-dir "$secrets" --tag "$tag" \
    ${SWARM_STACK_OVERRIDE:+--override "$SWARM_STACK_OVERRIDE"} >".run/swarm/$stack.yaml.tmp"
mv -f ".run/swarm/$stack.yaml.tmp" ".run/swarm/$stack.yaml"
swarm_say "docker stack deploy -c .run/swarm/$stack.yaml $stack (images rest-microservices/*:$tag)"
docker stack deploy --resolve-image never -c ".run/swarm/$stack.yaml" "$stack"

# ---- 4. every task running and healthy
swarm_wait_stack "$stack" "${SWARM_WAIT:-600}"

# ---- 5. the development users
swarm_add_dev_users "$stack" "$secrets"
swarm_say "stack $stack: up; the gateway on http://localhost:$port (docker stack services $stack)"
