#!/usr/bin/env bash
# make compose-up: the containerised system, as `docker compose up --build`
# starts it, left running on http://127.0.0.1:${GATEWAY_PORT:-8080} until
# `make compose-down`. By default it uses the same stand-ins and offline
# sources as make compose-test (scripts/deploy/compose-lib.sh), so that it works on
# a machine that reaches no image registry and whose containers reach no
# crates.io or npm registry; COMPOSE_STANDINS=0 COMPOSE_OFFLINE=0 use the
# official images and the registries instead. It installs docker.io and docker-compose when missing and
# starts dockerd when none answers; make compose-down stops that dockerd.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/deploy/compose-lib.sh
source scripts/deploy/compose-lib.sh
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-rest-microservices}"
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"

engine_ensure
standins_build
offline_sources
# What the quick start runs (`docker compose up -d --build`), with the
# stand-ins' variables; init_secrets makes the keys and secrets in the
# project's volumes on the first start.
say "docker-compose -p $COMPOSE_PROJECT_NAME up -d --build"
dc_up 1800 --build
prune_builds
say "waiting (at most 300 s) for every container to be healthy"
wait_healthy 300 || {
    echo "compose-up: the system did not become healthy; it is left as it is for a look (make compose-down removes it)" >&2
    exit 1
}
dc ps
cat <<MSG

compose-up: the system runs on http://127.0.0.1:$GATEWAY_PORT (project $COMPOSE_PROJECT_NAME)
  TOKEN="\$(COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME scripts/dev/dev-token.sh)"      # valid for 5 minutes
  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$GATEWAY_PORT/client/
  make compose-down      # removes its containers, networks and volumes (the keys too)
MSG
