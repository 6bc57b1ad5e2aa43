#!/usr/bin/env bash
# make compose-down: removes what make compose-up made: the project's
# containers, networks and volumes (its data: `down -v`), and stops the
# dockerd that make compose-up started, if it started one. The images and
# the build cache stay, so that the next compose-up is fast.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/deploy/compose-lib.sh
source scripts/deploy/compose-lib.sh
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-rest-microservices}"

if docker info >/dev/null 2>&1; then
    say "docker-compose -p $COMPOSE_PROJECT_NAME --profile observability down -v --remove-orphans"
    dc --profile observability down -v --remove-orphans --timeout 20
else
    say "no Docker engine answers: nothing to remove"
fi
engine_stop_ours
