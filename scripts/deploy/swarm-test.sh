#!/usr/bin/env bash
# make swarm-test: the system on Docker Swarm mode, on a single-node swarm
# of this machine's engine, and what an orchestrator does to it, under a
# steady load through the gateway's published port on 127.0.0.1:
#
#   1. the engine, stand-in images and offline sources of make compose-test
#      (scripts/deploy/compose-lib.sh); `docker swarm init` (an engine that
#      is in a swarm already is refused: this test makes its own and
#      leaves it)
#   2. the images built by compose from compose.yaml (as compose-test
#      builds them), tagged swarm-test-1; a second version of client_service
#      and order_service, swarm-test-2 (the same image with a label added:
#      a new image to Swarm); an image that never becomes healthy,
#      swarm-test-broken (client_service's, whose process sleeps)
#   3. the stack deployed with scripts/deploy/swarm-deploy.sh, as the guide
#      shows (a development set of keys made on the host, Swarm secrets,
#      the stack file rendered from compose.yaml and deploy/swarm/stack.yaml);
#      every service's tasks running and healthy; each task sees only its
#      own secrets, the app user's, mode 0400
#   then, each under its own steady load (scripts/deploy/swarm-load.py: 4
#   workers reading a client and an order and creating orders with an
#   Idempotency-Key, about 40 requests a second), printed as requests sent,
#   failed, and creates stored (each key exactly once):
#   4. step 1, a rolling update of client_service and order_service to
#      swarm-test-2 (both at once, each task by task, start-first): done
#      without a rollback, every task on the new image; every new task
#      serves the gateway's requests (their logs hold the load's request
#      ids); zero failed requests
#   5. step 2, a client_service task's process killed with SIGKILL (from
#      the host, as a crash or the OOM killer): Swarm replaces the task;
#      zero failed reads (a create in flight on the killed task may fail:
#      the gateway never sends a POST twice; it is sent again by the load
#      with its key, and must be stored once)
#   6. step 3, an update of client_service to swarm-test-broken: its task
#      never becomes healthy, Swarm rolls the service back by itself to
#      swarm-test-2; zero failed requests
#   7. step 4, both services scaled to 4 tasks, then back to 2: each new
#      task serves the gateway's requests; zero failed requests
#   8. `docker stack rm`, the stack's volume removed, `docker swarm leave
#      --force` (and docker_gwbridge removed when this test made it)
#
# SWARM_TEST_BREAK shows what the test catches: `resolve-once` turns the
# gateway's follow-upstreams.sh off and names the services on its server
# lines (nginx resolves the names once, at start, and keeps the tasks'
# addresses of that moment: all gone after step 1); `no-healthcheck`
# disables their health checks (a task's address is given out as soon as it
# starts, and the broken image is never found out). Either must make the
# test fail.
#
# Every wait is bounded; a failure prints the tasks and the services' logs;
# the stack, its volume, the test's images and the swarm are removed at
# the end, pass or fail. Settings: SWARM_TEST_PORT (the gateway's host
# port, 18580), SWARM_TEST_STACK (rmstest), and those of
# scripts/deploy/compose-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/deploy/compose-lib.sh
source scripts/deploy/compose-lib.sh
# shellcheck source=scripts/deploy/swarm-lib.sh
source scripts/deploy/swarm-lib.sh

stack="${SWARM_TEST_STACK:-rmstest}"
export COMPOSE_PROJECT_NAME="${SWARM_TEST_PROJECT:-rest-microservices-swarm-test}"
export GATEWAY_PORT="${SWARM_TEST_PORT:-18580}"
# The load comes from one address with one token: rate limits that never
# refuse it (compose.yaml's defaults are for users).
export GATEWAY_ADDRESS_RATE=9999999r/s GATEWAY_ADDRESS_BURST=9999999 \
    RATE_LIMIT_PER_SECOND=1000000 RATE_LIMIT_BURST=1000000
tag1=swarm-test-1
tag2=swarm-test-2
broken=swarm-test-broken
break_mode="${SWARM_TEST_BREAK:-}"
case "$break_mode" in
    "" | resolve-once | no-healthcheck) ;;
    *)
        echo "SWARM_TEST_BREAK=$break_mode: say resolve-once or no-healthcheck" >&2
        exit 2
        ;;
esac
started=$SECONDS
step() { printf '\n== swarm-test: %s\n' "$*"; }
fail() {
    echo "swarm-test: FAILED: $*" >&2
    exit 1
}
tmp="$(mktemp -d /tmp/swarm-test.XXXXXX)"
secrets="$tmp/secrets"
swarm_ours=""
gwbridge_ours=""
summary=()
loader=""
loader_label=""

cleanup() {
    local rc=$? i
    set +e
    if [[ -n "$loader" ]]; then
        # The load under way when a check failed: what it saw, too.
        touch "$tmp/stop-$loader_label"
        wait "$loader"
        cat "$tmp"/load-*.out >&2
        head -n 5 "$tmp"/load-*.err >&2
    fi
    if ! docker info >/dev/null 2>&1; then
        rm -rf "$tmp"
        exit "$rc"
    fi
    if ((rc)) && [[ -n "$swarm_ours" ]]; then
        echo "---- swarm-test failed: the stack's tasks, and its services' logs (last 40 lines each)" >&2
        docker stack ps --no-trunc --format '{{.Name}} {{.Image}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' "$stack" >&2
        for service in $(docker stack services --format '{{.Name}}' "$stack" 2>/dev/null); do
            echo "---- docker service logs --tail 40 $service" >&2
            docker service logs --no-trunc --tail 40 "$service" >&2 2>&1
        done
    fi
    if [[ -n "$swarm_ours" ]]; then
        say "docker stack rm $stack"
        docker stack rm "$stack" >/dev/null 2>&1
        # The tasks' containers and the stack's network go in the background.
        for ((i = 0; i < 60; i++)); do
            [[ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" \
                && -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ]] && break
            sleep 1
        done
        docker volume rm "${stack}_pgdata" >/dev/null 2>&1
        say "docker swarm leave --force"
        docker swarm leave --force >/dev/null 2>&1
        if [[ -n "$gwbridge_ours" ]]; then docker network rm docker_gwbridge >/dev/null 2>&1; fi
    fi
    for image in $(docker image ls --filter 'reference=rest-microservices/*:swarm-test-*' --format '{{.Repository}}:{{.Tag}}'); do
        docker image rm "$image" >/dev/null 2>&1
    done
    prune_builds
    # Only a dockerd that this run started (not, say, make compose-up's).
    if [[ -n "${COMPOSE_ENGINE_STARTED:-}" ]]; then engine_stop_ours; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers ----
# load_start LABEL [--gate reads]: the steady load in the background, until
# load_stop (at most 900 s).
load_start() {
    local label="$1"
    shift
    rm -f "$tmp/stop-$label"
    scripts/deploy/swarm-load.py "$GATEWAY_PORT" "$secrets" "$label" "$tmp/stop-$label" 900 4 "$@" \
        >"$tmp/load-$label.out" 2>"$tmp/load-$label.err" &
    loader=$!
    loader_label="$label"
    # Its client and order made, the workers running.
    sleep 5
}

# load_stop LABEL: stops the load; its line goes to the summary; fails when
# the load failed.
load_stop() {
    local label="$1" rc=0
    touch "$tmp/stop-$label"
    wait "$loader" || rc=$?
    loader=""
    cat "$tmp/load-$label.out"
    sed 's/^/    /' "$tmp/load-$label.err" >&2
    summary+=("$(cat "$tmp/load-$label.out")")
    ((rc == 0)) || fail "$label: requests failed, or a create is not stored exactly once"
}

update_state() {
    docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$1"
}

# wait_update SERVICE WANT SECONDS: until SERVICE's update is in state WANT
# (completed, rollback_completed); fails at once on any other end.
wait_update() {
    local service="$1" want="$2" limit="$3" deadline state
    deadline=$((SECONDS + limit))
    while :; do
        state="$(update_state "$service")"
        [[ "$state" == "$want" ]] && return 0
        case "$state" in
            completed | paused | rollback_completed | rollback_paused)
                fail "$service: update $state, not $want: $(docker service inspect --format '{{.UpdateStatus.Message}}' "$service")"
                ;;
        esac
        ((SECONDS < deadline)) || fail "$service: update not $want after ${limit}s (state: ${state:-none})"
        sleep 2
    done
}

# images_of SERVICE: the images of its running tasks, one a line.
images_of() {
    docker service ps --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' "$1" | cut -d' ' -f1
}

# served_since SERVICE SINCE LABEL: every running task of SERVICE serves
# requests of LABEL after SINCE (a Unix time): its log holds their ids.
# Waits for it up to 60 s (the gateway looks the tasks up every second,
# then spreads the requests over them in turn).
served_since() {
    local service="$1" since="$2" label="$3" deadline=$((SECONDS + 60)) id n counts missing
    while :; do
        counts=()
        missing=""
        for id in $(swarm_containers "$stack" "$service"); do
            n="$(docker logs --since "$since" "$id" 2>&1 | grep -c -- "\"$label-" || true)"
            counts+=("$n")
            ((n > 0)) || missing="$(docker inspect --format '{{.Name}}' "$id")"
        done
        [[ -n "$missing" ]] || break
        ((SECONDS < deadline)) \
            || fail "$service: the task $missing served no request of $label within 60 s (the gateway does not reach it)"
        sleep 2
    done
    echo "    ok: every task of $service serves the gateway's requests, $(($(date +%s) - since)) s after it was there" \
        "(${#counts[@]} tasks: ${counts[*]} requests of $label)"
}

# ------------------------------------------------------------------ steps ----
step "1. engine, stand-in images, offline sources; a single-node swarm"
engine_ensure
standins_build
offline_sources
state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
[[ "$state" == inactive ]] \
    || fail "this engine is in a swarm already ($state): make swarm-test makes its own and leaves it; run it on an engine in none"
docker network inspect docker_gwbridge >/dev/null 2>&1 || gwbridge_ours=1
# An address to advertise: the engine's own choice, or the one of the
# default route when it cannot choose (several interfaces).
if ! docker swarm init >"$tmp/init.out" 2>&1; then
    addr="$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')"
    docker swarm init --advertise-addr "${addr:-127.0.0.1}" >"$tmp/init.out" 2>&1 \
        || fail "docker swarm init: $(cat "$tmp/init.out")"
fi
swarm_ours=1
# The data of an earlier run that was killed before its own cleanup.
docker volume rm "${stack}_pgdata" >/dev/null 2>&1 || true
say "swarm: $(docker info --format '{{.Swarm.LocalNodeState}}, node {{.Swarm.NodeID}}, {{.Swarm.Nodes}} node(s), {{.Swarm.Managers}} manager(s)')"

step "2. the images: compose's builds, tagged $tag1; $tag2 (a label added); $broken (never healthy)"
build_started=$SECONDS
swarm_build_images "$tag1"
for service in client_service order_service; do
    printf 'FROM rest-microservices/%s:%s\n' "$service" "$tag1" \
        | docker build -q --label "rest-microservices.swarm-test.version=2" -t "rest-microservices/$service:$tag2" - >/dev/null
    [[ "$(docker image inspect --format '{{.Id}}' "rest-microservices/$service:$tag1")" \
        != "$(docker image inspect --format '{{.Id}}' "rest-microservices/$service:$tag2")" ]] \
        || fail "rest-microservices/$service:$tag2 is the same image as $tag1"
done
# Its process runs and never listens: the health check never passes.
printf 'FROM rest-microservices/client_service:%s\nCMD ["sleep", "infinity"]\n' "$tag1" \
    | docker build -q -t "rest-microservices/client_service:$broken" - >/dev/null
say "images: ${SECONDS}s after the build started ($((SECONDS - build_started))s)"

step "3. the stack deployed as the guide shows it (scripts/deploy/swarm-deploy.sh)${break_mode:+, broken on purpose: $break_mode}"
override=""
case "$break_mode" in
    resolve-once)
        override="$tmp/override.yaml"
        cat >"$override" <<'EOF'
services:
  gateway:
    environment:
      GATEWAY_FOLLOW_NAMES: ""
      GATEWAY_CLIENT_SERVERS: server client_service:8000 max_fails=2 fail_timeout=2s;
      GATEWAY_ORDER_SERVERS: server order_service:8001 max_fails=2 fail_timeout=2s;
      GATEWAY_AUTH_SERVERS: server auth_service:8020 max_fails=2 fail_timeout=2s;
      GATEWAY_CONSOLE_SERVERS: server console:8030 max_fails=2 fail_timeout=2s;
EOF
        ;;
    no-healthcheck)
        override="$tmp/override.yaml"
        # test NONE, as `disable: true` would be, which Docker refuses
        # beside compose.yaml's test (the override is merged onto it).
        { echo 'services:' && printf '  %s:\n    healthcheck:\n      test: ["NONE"]\n' client_service order_service; } >"$override"
        ;;
esac
deploy_started=$SECONDS
IMAGE_TAG="$tag1" SWARM_SECRETS_DIR="$secrets" SWARM_STACK_OVERRIDE="$override" SWARM_WAIT=600 \
    scripts/deploy/swarm-deploy.sh "$stack" || fail "the deploy"
say "deployed, every task running and healthy, in $((SECONDS - deploy_started))s"
docker stack services --format '    {{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}' "$stack"
# Each task sees only its own secrets, the app user's (10001), mode 0400.
for service in auth_service client_service order_service console; do
    id="$(swarm_containers "$stack" "$service" | head -n 1)"
    docker exec "$id" find /run/secrets -type f -printf '%p %U %m\n' | sort >"$tmp/secrets.$service"
done
python3 - "$tmp" <<'EOF' || fail "the tasks' secrets"
import sys
want = {"auth_service": {"/run/secrets/auth/auth-signing-key.pem", "/run/secrets/auth/auth-clients"},
        "client_service": {"/run/secrets/client_service/client_secret"},
        "order_service": {"/run/secrets/order_service/client_secret"},
        "console": {"/run/secrets/console/client_secret"}}
problems = []
for service, files in want.items():
    seen = {}
    for line in open(f"{sys.argv[1]}/secrets.{service}"):
        path, uid, mode = line.split()
        seen[path] = (uid, mode)
    if set(seen) != files:
        problems.append(f"{service} sees {sorted(seen)}, not {sorted(files)}")
    for path, (uid, mode) in seen.items():
        if (uid, mode) != ("10001", "400"):
            problems.append(f"{service}: {path} is uid {uid} mode {mode}, not 10001 0400")
for p in problems:
    print("    FAILED: " + p, file=sys.stderr)
if not problems:
    print("    ok: each task sees only its own secrets (Swarm secrets), uid 10001, mode 0400")
sys.exit(1 if problems else 0)
EOF
for service in client_service order_service; do
    # shellcheck disable=SC2046 # one container id a word
    echo "    $service: endpoint mode $(docker service inspect --format '{{.Spec.EndpointSpec.Mode}}' "${stack}_$service"), tasks" \
        $(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $(swarm_containers "$stack" "$service"))
done

step "4. step 1: a rolling update of client_service and order_service to $tag2, under load"
load_start step1
for service in client_service order_service; do
    docker service update --detach --quiet --image "rest-microservices/$service:$tag2" "${stack}_$service" >/dev/null
done
update_started=$SECONDS
for service in client_service order_service; do
    wait_update "${stack}_$service" completed 600
done
say "both updates completed in $((SECONDS - update_started))s (task by task, start-first, each monitored 45 s)"
swarm_wait_stack "$stack" 120 || fail "the stack after the update"
for service in client_service order_service; do
    # (The list first, then grep: grep -q may stop before docker has
    # written, and its SIGPIPE would fail the pipeline, under pipefail.)
    images="$(images_of "${stack}_$service")"
    if grep -qv ":$tag2\$" <<<"$images"; then
        fail "$service: a task does not run $tag2: $(images_of "${stack}_$service" | tr '\n' ' ')"
    fi
done
echo "    ok: every task of client_service and order_service runs $tag2"
since="$(date +%s)"
served_since client_service "$since" step1
served_since order_service "$since" step1
load_stop step1

step "5. step 2: a client_service task's process killed with SIGKILL, under load"
load_start step2 --gate reads
victim="$(swarm_containers "$stack" client_service | head -n 1)"
pid="$(docker inspect --format '{{.State.Pid}}' "$victim")"
say "kill -KILL $pid: the process of $(docker inspect --format '{{.Name}}' "$victim")"
kill -KILL "$pid"
kill_at=$SECONDS
deadline=$((SECONDS + 120))
until [[ "$(swarm_containers "$stack" client_service | grep -vc "^${victim:0:12}")" -ge 2 ]] \
    && swarm_wait_stack "$stack" 1 2>/dev/null; do
    ((SECONDS < deadline)) || fail "client_service: the killed task was not replaced within 120 s"
    sleep 1
done
say "replaced by Swarm: 2 tasks running and healthy again $((SECONDS - kill_at))s after the kill"
docker service ps --format '    {{.Name}} {{.CurrentState}} {{.Error}}' "${stack}_client_service" | head -n 4
sleep 5
load_stop step2

step "6. step 3: an update of client_service to $broken, which never becomes healthy, under load"
load_start step3
docker service update --detach --quiet --image "rest-microservices/client_service:$broken" "${stack}_client_service" >/dev/null
update_started=$SECONDS
wait_update "${stack}_client_service" rollback_completed 600
say "Swarm rolled back by itself, $((SECONDS - update_started))s after the update: $(docker service inspect --format '{{.UpdateStatus.Message}}' "${stack}_client_service")"
swarm_wait_stack "$stack" 120 || fail "the stack after the rollback"
images="$(images_of "${stack}_client_service")"
if grep -qv ":$tag2\$" <<<"$images"; then
    fail "client_service: a task does not run $tag2 after the rollback: $(images_of "${stack}_client_service" | tr '\n' ' ')"
fi
echo "    ok: every task of client_service runs $tag2 again"
sleep 5
load_stop step3

step "7. step 4: client_service and order_service scaled to 4 tasks, then back to 2, under load"
load_start step4
docker service scale --detach "${stack}_client_service=4" "${stack}_order_service=4" >/dev/null
swarm_wait_stack "$stack" 180 || fail "the stack after scaling up"
say "4 tasks of each, running and healthy"
since="$(date +%s)"
served_since client_service "$since" step4
served_since order_service "$since" step4
docker service scale --detach "${stack}_client_service=2" "${stack}_order_service=2" >/dev/null
swarm_wait_stack "$stack" 180 || fail "the stack after scaling down"
say "2 tasks of each again; the load goes on for 10 s on them"
sleep 10
load_stop step4

step "8. docker stack rm, docker swarm leave --force (the engine as it was)"
summary_text="$(printf '    %s\n' "${summary[@]}")"
# cleanup (the EXIT trap) removes the stack, its volume, the test's images and the swarm.
echo "$summary_text"
step "passed in $((SECONDS - started))s"
