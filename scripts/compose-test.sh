#!/usr/bin/env bash
# make compose-test: the containerised system, built and run for real on this
# machine, and checked through the gateway's published port on 127.0.0.1.
#
#   1. a Docker engine: docker.io and docker-compose installed when missing,
#      dockerd started when none answers (and stopped at the end, only if it
#      was started here); stand-ins for the upstream images built from
#      Debian's packages (scripts/compose-standins.sh), vendored crates and
#      npm's cache for the builds (no registry is reachable from a
#      container here); secrets/ made when incomplete (make-secrets.sh)
#   2. the project's images, built with the shipped Dockerfiles by
#      docker-compose from the shipped compose.yaml
#   3. `up`: every container healthy; the services started after
#      PostgreSQL was healthy, the gateway after the services were (Docker's
#      own events)
#   4. the API end to end on PostgreSQL (scripts/compose-check.py api)
#   5. one replica of each service killed under steady reads through the
#      gateway: no read fails, and both come back by the restart policy.
#      Killed with SIGKILL to the container's process from the host, as a
#      crash or the OOM killer does: `docker kill` is, to Docker, an explicit
#      stop, after which the restart policy does NOT start the container
#      again (Docker 20.10: RestartCount stays 0)
#   6. the observability profile: Prometheus scrapes every target, up == 1
#      (Grafana: no stand-in image, see docs/src/deployment/docker.md#without-a-registry)
#   7. only the gateway (and Prometheus, on loopback) publish a port; every
#      container runs as a non-root user with no capability and
#      no-new-privileges, and those that should have a read-only root file
#      system have it
#   8. `down` and `up` again keep the data; `down -v` removes the volume
#
# Every wait is bounded; a failure prints the logs of the containers; the
# project's containers, networks and volumes are removed at the end, pass or
# fail. Settings: COMPOSE_TEST_PORT (the gateway's host port, 18480),
# COMPOSE_TEST_PROMETHEUS_PORT (19490), and those of scripts/compose-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/compose-lib.sh
source scripts/compose-lib.sh

export COMPOSE_PROJECT_NAME="${COMPOSE_TEST_PROJECT:-rest-microservices-test}"
# The checks send steady reads from one address with one token: rate limits
# that never refuse them (compose.yaml's defaults are for users).
export GATEWAY_ADDRESS_RATE=9999999r/s GATEWAY_ADDRESS_BURST=9999999 \
    RATE_LIMIT_PER_SECOND=1000000 RATE_LIMIT_BURST=1000000
export GATEWAY_PORT="${COMPOSE_TEST_PORT:-18480}"
export PROMETHEUS_PORT="${COMPOSE_TEST_PROMETHEUS_PORT:-19490}"
started=$SECONDS
step() { printf '\n== compose-test: %s\n' "$*"; }
fail() {
    echo "compose-test: FAILED: $*" >&2
    exit 1
}
tmp="$(mktemp -d /tmp/compose-test.XXXXXX)"

cleanup() {
    local rc=$?
    set +e
    if ((rc)) && docker info >/dev/null 2>&1; then
        echo "---- compose-test failed: the containers' logs (last 60 lines each)" >&2
        dc --profile observability ps >&2
        dc --profile observability logs --no-color --tail 60 >&2
    fi
    if docker info >/dev/null 2>&1; then
        say "down -v: removing the test project's containers, networks and volumes"
        dc --profile observability down -v --remove-orphans --timeout 20 >/dev/null 2>&1
    fi
    if docker info >/dev/null 2>&1; then prune_builds; fi
    # Only a dockerd that this run started (not, say, make compose-up's).
    if [[ -n "${COMPOSE_ENGINE_STARTED:-}" ]]; then engine_stop_ours; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

step "1. engine, stand-in images, offline sources, secrets"
engine_ensure
standins_build
offline_sources
# Leftovers of an earlier run that was killed before its own cleanup.
dc --profile observability down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true

step "2. build the images with the shipped Dockerfiles (docker-compose build)"
build_started=$SECONDS
dc build
secrets_ensure
build_seconds=$((SECONDS - build_started))
say "build: ${build_seconds}s"

step "3. up: every container healthy, in the order of compose.yaml's depends_on"
up_at="$(date +%s)"
dc_up 600
wait_healthy 300
docker events --since "$up_at" --until "$(date +%s)" --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter type=container --format '{{.TimeNano}} {{index .Actor.Attributes "com.docker.compose.service"}} {{.Action}}' \
    >"$tmp/events"
python3 - "$tmp/events" <<'EOF' || fail "start order"
import sys
started, healthy = {}, {}
for line in open(sys.argv[1]):
    t, service, action = line.rstrip("\n").split(" ", 2)
    t = int(t)
    if action == "start":
        started.setdefault(service, []).append(t)
    elif action == "health_status: healthy":
        healthy.setdefault(service, []).append(t)
problems = []
def first_healthy(s):
    if s not in healthy:
        problems.append(f"no 'healthy' event of {s}")
        return None
    return max(healthy[s]) if s != "postgres" else min(healthy[s])
pg = first_healthy("postgres")
for s in ("client_service", "order_service"):
    for t in started.get(s, []):
        if pg is not None and t < pg:
            problems.append(f"a {s} container started before postgres was healthy")
    if len(started.get(s, [])) != 2:
        problems.append(f"{s}: {len(started.get(s, []))} containers started, not 2 (deploy.replicas)")
# The gateway starts once every container of the services it depends on is healthy.
ready = [first_healthy(s) for s in ("client_service", "order_service", "auth_service")]
for t in started.get("gateway", ["missing"]):
    if t == "missing":
        problems.append("the gateway never started")
    elif None not in ready and t < max(ready):
        problems.append("the gateway started before every service was healthy")
for p in problems:
    print("    FAILED: " + p, file=sys.stderr)
if not problems:
    print("    ok: client_service x2 and order_service x2 started after postgres was healthy;"
          " the gateway after every service container was")
sys.exit(1 if problems else 0)
EOF

step "4. the API end to end on PostgreSQL, through http://127.0.0.1:$GATEWAY_PORT"
python3 scripts/compose-check.py api "$GATEWAY_PORT" secrets >"$tmp/api.out" || {
    cat "$tmp/api.out"
    fail "the API checks"
}
grep -v '^CLIENT=' "$tmp/api.out"
read -r kept_client kept_order < <(sed -n 's/^CLIENT=\([0-9]*\) ORDER=\([0-9]*\)$/\1 \2/p' "$tmp/api.out")
[[ -n "$kept_client" && -n "$kept_order" ]] || fail "no client and order kept by the API checks"

step "5. one replica of each service killed under steady reads through the gateway"
victims=("$(dc ps -q client_service | head -n 1)" "$(dc ps -q order_service | head -n 1)")
before=()
for id in "${victims[@]}"; do before+=("$(docker inspect --format '{{.RestartCount}}' "$id")"); done
python3 scripts/compose-check.py reads "$GATEWAY_PORT" secrets "$kept_client" "$kept_order" 120 "$tmp/stop-reads" &
reader=$!
sleep 3
for id in "${victims[@]}"; do
    pid="$(docker inspect --format '{{.State.Pid}}' "$id")"
    say "kill -KILL $pid: the process of $(docker inspect --format '{{.Name}}' "$id")"
    kill -KILL "$pid"
done
deadline=$((SECONDS + 90))
for i in 0 1; do
    id="${victims[$i]}"
    until [[ "$(docker inspect --format '{{.RestartCount}} {{.State.Status}} {{.State.Health.Status}}' "$id")" =~ ^([0-9]+)\ running\ healthy$ ]] \
        && ((BASH_REMATCH[1] > before[i])); do
        if ((SECONDS > deadline)); then
            touch "$tmp/stop-reads"
            wait "$reader" || true
            docker logs --tail 60 "$id" >&2
            fail "$(docker inspect --format '{{.Name}}' "$id") did not come back within 90 s"
        fi
        sleep 1
    done
    say "$(docker inspect --format '{{.Name}}: restarted {{.RestartCount}} time(s) by the restart policy ({{.HostConfig.RestartPolicy.Name}}), healthy' "$id")"
done
sleep 3
touch "$tmp/stop-reads"
wait "$reader" || fail "reads failed while a replica of each service was killed"

step "6. the observability profile: Prometheus scrapes every target (up == 1)"
# Grafana is not started: it has no stand-in (no Debian package); its
# provisioning files are checked by scripts/check-deploy.sh.
COMPOSE_PROFILES=observability dc_up 300 nginx_exporter prometheus
python3 scripts/compose-check.py prometheus "$PROMETHEUS_PORT" \
    client_service=2 order_service=2 gateway=1 prometheus=1 150 || fail "Prometheus's targets"

step "7. published ports, users, capabilities, read-only root file systems"
mapfile -t containers < <(dc --profile observability ps -q)
python3 - "$GATEWAY_PORT" "$PROMETHEUS_PORT" "${containers[@]}" <<'EOF' || fail "the containers' isolation"
import json, subprocess, sys
gateway_port, prometheus_port, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
# Read-only root file system: all but Prometheus, whose time series
# database lives in the container.
read_only = {"client_service", "order_service", "auth_service", "gateway", "postgres", "nginx_exporter"}
# The gateway on every address (IPv4 and IPv6, as `ports: "PORT:8080"`
# says), Prometheus on the IPv4 loopback only.
published_ok = {("gateway", "8080/tcp"): {("0.0.0.0", gateway_port), ("::", gateway_port)},
                ("prometheus", "9090/tcp"): {("127.0.0.1", prometheus_port)}}
problems = []
rows = []
for c in json.loads(subprocess.check_output(["docker", "inspect", *ids])):
    service = c["Config"]["Labels"]["com.docker.compose.service"]
    name = c["Name"].lstrip("/")
    for port, bindings in (c["NetworkSettings"]["Ports"] or {}).items():
        for b in bindings or []:
            if (b["HostIp"], b["HostPort"]) not in published_ok.get((service, port), set()):
                problems.append(f"{name}: {port} published on {b['HostIp']}:{b['HostPort']}")
    hc = c["HostConfig"]
    if hc.get("CapAdd"):
        problems.append(f"{name}: cap_add {hc['CapAdd']}")
    if "no-new-privileges:true" not in (hc.get("SecurityOpt") or []):
        problems.append(f"{name}: no no-new-privileges")
    if bool(hc.get("ReadonlyRootfs")) != (service in read_only):
        problems.append(f"{name}: read-only root file system is {bool(hc.get('ReadonlyRootfs'))}")
    # Every process of the container, as the kernel sees it.
    top = subprocess.check_output(["docker", "top", c["Id"], "-eo", "pid,uid,comm"], text=True).splitlines()[1:]
    users = set()
    for line in top:
        pid, uid, comm = line.split(None, 2)
        status = dict(l.split(":\t", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":\t" in l)
        uids = status["Uid"].split()
        if "0" in uids:
            problems.append(f"{name}: {comm} (pid {pid}) runs as root")
        for cap in ("CapEff", "CapPrm", "CapBnd"):
            if int(status[cap], 16):
                problems.append(f"{name}: {comm} has {cap} {status[cap]}")
        if status.get("NoNewPrivs", "").strip() != "1":
            problems.append(f"{name}: {comm} without NoNewPrivs")
        users.add(uid)
    rows.append(f"{name:45} uid {','.join(sorted(users)):12} read-only {'yes' if hc.get('ReadonlyRootfs') else 'no'}")
for r in sorted(rows):
    print("    " + r)
for p in problems:
    print("    FAILED: " + p, file=sys.stderr)
if not problems:
    print("    ok: only the gateway (0.0.0.0:%s) and Prometheus (127.0.0.1:%s) publish a port; every process"
          " non-root, no capability, no-new-privileges" % (gateway_port, prometheus_port))
sys.exit(1 if problems else 0)
EOF

step "8. down and up again keep the data; down -v removes it"
dc --profile observability down --timeout 20
dc_up 600
wait_healthy 300
python3 scripts/compose-check.py get "$GATEWAY_PORT" secrets "/client/$kept_client" 200 || fail "the data after down and up"
python3 scripts/compose-check.py get "$GATEWAY_PORT" secrets "/order/$kept_order" 200 || fail "the data after down and up"
dc --profile observability down -v --timeout 20
volumes="$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[[ -z "$volumes" ]] || fail "volumes left after down -v: $volumes"
echo "    ok: the volume ${COMPOSE_PROJECT_NAME}_pgdata is gone after down -v"

step "passed in $((SECONDS - started))s (of which the images' build ${build_seconds}s)"
