#!/usr/bin/env bash
# make compose-test: the containerised system, built and run for real on this
# machine, and checked through the gateway's published port on 127.0.0.1.
#
#   1. a Docker engine: docker.io and docker-compose installed when missing,
#      dockerd started when none answers (and stopped at the end, only if it
#      was started here); stand-ins for the upstream images built from
#      Debian's packages (scripts/deploy/compose-standins.sh), vendored crates and
#      npm's cache for the builds (no registry is reachable from a
#      container here); nothing else: no keys, no secrets, no volume
#   2. the README's and the guide's compose examples, extracted from the
#      Markdown and run as written (scripts/docs/check-docs.py examples --kind
#      compose): their `docker compose up --build` in the background, with
#      the stand-ins' variables and nothing before it, then their token and
#      first call against localhost:8080; Ctrl-C (SIGINT) stops it.
#      (`docker compose` is docker-compose 1.29 here when the docker CLI
#      has no compose plugin: docker_compose_shim in compose-lib.sh.)
#   3. the quick start's first command once more, detached:
#      `docker compose up -d --build`
#      (docker-compose, with the stand-ins' variables): the images built
#      with the shipped Dockerfiles from the shipped compose.yaml,
#      init_auth makes the development keys, clients and users (in
#      auth_service's PostgreSQL database), init_secrets gives each service
#      its secret, in new volumes; every container healthy
#   4. the start order (Docker's own events): init_auth exited 0 (after
#      PostgreSQL was healthy) before init_secrets started, init_secrets
#      exited 0 before auth_service, the services and the console started,
#      the services after PostgreSQL was healthy, the gateway after the
#      services and the console were
#   5. the quick start's other two commands as the guide shows them,
#      TOKEN="$(scripts/dev/dev-token.sh)" and an authenticated curl; a token
#      of fewer scopes; the keys' volumes are the app user's alone and each
#      container sees only its own; the development users (dev-users.env)
#      are in auth_service's database
#   6. the API end to end on PostgreSQL (scripts/deploy/compose-check.py api);
#      the web console at the gateway's / (compose-check.py console): its
#      page, "Sign in" sent to the issuer's /auth/authorize, and a whole
#      sign-in as admin through it
#   7. one replica of each service killed under steady reads through the
#      gateway: no read fails, and both come back by the restart policy.
#      Killed with SIGKILL to the container's process from the host, as a
#      crash or the OOM killer does: `docker kill` is, to Docker, an explicit
#      stop, after which the restart policy does NOT start the container
#      again (Docker 20.10: RestartCount stays 0)
#   8. a third client_service replica (`up --scale client_service=3`) under
#      steady reads: the gateway sends it requests within 30 s, with no
#      restart (its follow-upstreams.sh looks the name up every second);
#      then back to 2; no read fails
#   9. the observability profile: Prometheus scrapes every target, up == 1
#      (Grafana: no stand-in image, see docs/src/deployment/docker.md#without-a-registry)
#  10. only the gateway (and Prometheus, on loopback) publish a port; every
#      container (init_secrets too, which has no network) runs as a non-root
#      user with no capability and no-new-privileges, and those that should
#      have a read-only root file system have it
#  11. `down` and `up` again keep the data and the keys (the same
#      development client)
#  12. production's own keys and secrets, made with auth_service's commands
#      as the guide shows and named by AUTH_KEYS_DIR,
#      CLIENT_SERVICE_SECRET_DIR and ORDER_SERVICE_SECRET_DIR: a missing
#      file stops `up`, naming it; with all of them the system serves a
#      client of that clients file, and has no development client
#  13. `down -v` removes every volume (the data and the keys)
#
# Every wait is bounded; a failure prints the logs of the containers; the
# project's containers, networks and volumes are removed at the end, pass or
# fail. Settings: COMPOSE_TEST_PORT (the gateway's host port, 18480),
# COMPOSE_TEST_PROMETHEUS_PORT (19490), and those of scripts/deploy/compose-lib.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/deploy/compose-lib.sh
source scripts/deploy/compose-lib.sh

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

step "1. engine, stand-in images, offline sources (and nothing else)"
engine_ensure
standins_build
offline_sources
# Leftovers of an earlier run that was killed before its own cleanup.
dc --profile observability down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
volumes="$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[[ -z "$volumes" ]] || fail "volumes of an earlier run are left: $volumes"

step "2. the README's and the guide's compose examples, extracted from the Markdown and run as written"
# On localhost:8080, compose's default port, as the examples say.
build_started=$SECONDS
shim="$(docker_compose_shim)"
[[ -z "$shim" ]] || say "the docker CLI has no compose plugin: \`docker compose\` is docker-compose ($shim/docker)"
PATH="${shim:+$shim:}$PATH" env -u GATEWAY_PORT scripts/docs/check-docs.py examples --kind compose \
    || fail "the docs' compose examples"
build_seconds=$((SECONDS - build_started))
say "the docs' examples: ${build_seconds}s (the images' build included)"
dc --profile observability down -v --remove-orphans --timeout 20 >/dev/null 2>&1
volumes="$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[[ -z "$volumes" ]] || fail "volumes left after down -v: $volumes"

step "3. the quick start detached: docker compose up -d --build, on new volumes"
up_at="$(date +%s)"
dc_up 1800 --build
wait_healthy 300
dc logs --no-color init_auth init_secrets | sed 's/^/    /'

step "4. the start order of compose.yaml's depends_on"
docker events --since "$up_at" --until "$(date +%s)" --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter type=container \
    --format '{{.TimeNano}} {{index .Actor.Attributes "com.docker.compose.service"}} {{index .Actor.Attributes "exitCode"}}|{{.Action}}' \
    >"$tmp/events"
python3 - "$tmp/events" <<'EOF' || fail "start order"
import sys
started, healthy, exited = {}, {}, {}
for line in open(sys.argv[1]):
    t, service, rest = line.rstrip("\n").split(" ", 2)
    code, action = rest.split("|", 1)
    t = int(t)
    if action == "start":
        started.setdefault(service, []).append(t)
    elif action == "health_status: healthy":
        healthy.setdefault(service, []).append(t)
    elif action == "die":
        exited.setdefault(service, []).append((t, code))
problems = []
# The development set and users first: init_auth ran once, after PostgreSQL
# was healthy, and exited 0 before init_secrets started.
if len(started.get("init_auth", [])) != 1 or [c for _, c in exited.get("init_auth", [])] != ["0"]:
    problems.append(f"init_auth: started {len(started.get('init_auth', []))} time(s), exits {exited.get('init_auth')}")
else:
    if "postgres" in healthy and started["init_auth"][0] < min(healthy["postgres"]):
        problems.append("init_auth started before postgres was healthy")
    if any(t < exited["init_auth"][0][0] for t in started.get("init_secrets", [])):
        problems.append("init_secrets started before init_auth had exited")
# The keys first: init_secrets ran once and exited 0 before any container
# that reads them started.
if len(started.get("init_secrets", [])) != 1 or [c for _, c in exited.get("init_secrets", [])] != ["0"]:
    problems.append(f"init_secrets: started {len(started.get('init_secrets', []))} time(s), exits {exited.get('init_secrets')}")
else:
    done = exited["init_secrets"][0][0]
    for s in ("auth_service", "client_service", "order_service", "console"):
        if any(t < done for t in started.get(s, [])):
            problems.append(f"a {s} container started before init_secrets had exited")
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
if len(started.get("console", [])) != 1:
    problems.append(f"console: {len(started.get('console', []))} containers started, not 1")
# The gateway starts once every container of the services it depends on is healthy.
ready = [first_healthy(s) for s in ("client_service", "order_service", "auth_service", "console")]
for t in started.get("gateway", ["missing"]):
    if t == "missing":
        problems.append("the gateway never started")
    elif None not in ready and t < max(ready):
        problems.append("the gateway started before every service was healthy")
for p in problems:
    print("    FAILED: " + p, file=sys.stderr)
if not problems:
    print("    ok: init_auth exited 0 after postgres was healthy and before init_secrets started;"
          " init_secrets exited 0 before auth_service, the services and the console started;"
          " client_service x2 and order_service x2 after postgres was healthy;"
          " the gateway after every service container and the console were")
sys.exit(1 if problems else 0)
EOF

step "5. the quick start's token and first call, as the guide shows them"
scripts/dev/dev-token.sh --help | grep -q "valid for 5 minutes (AUTH_TOKEN_TTL_SECS" \
    || fail "scripts/dev/dev-token.sh --help does not say how long a token lives"
# The guide's two commands, word for word but for the port (GATEWAY_PORT,
# this test's, where the guide has compose's default 8080).
TOKEN="$(scripts/dev/dev-token.sh)" || fail "scripts/dev/dev-token.sh gave no token"
curl -fsS -H "Authorization: Bearer $TOKEN" "http://localhost:$GATEWAY_PORT/client/" >"$tmp/first-call" \
    || fail "the first authenticated call"
python3 -c 'import json, sys; assert isinstance(json.load(open(sys.argv[1])), list)' "$tmp/first-call" \
    || fail "GET /client/ did not answer a JSON list: $(head -c 300 "$tmp/first-call")"
echo "    ok: scripts/dev/dev-token.sh printed a token; GET /client/ with it: 200, a JSON list"
TOKEN="$(scripts/dev/dev-token.sh clients:read)" || fail "scripts/dev/dev-token.sh clients:read gave no token"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name": "R", "card_number": "R-1", "card_issued_on": "2021-06-15"}' "http://localhost:$GATEWAY_PORT/client/")"
[[ "$status" == 403 ]] || fail "a clients:read token could create a client ($status, not 403)"
echo "    ok: scripts/dev/dev-token.sh clients:read: a token that reads, and may not write (403)"
# The development client, for the checks below, where dev-token.sh reads it.
mkdir -p "$tmp/dev"
dc exec -T auth_service cat /run/secrets/auth/dev-clients.env >"$tmp/dev/dev-clients.env"
# The keys' volumes: the app user's (10001) alone, and each container sees
# only its own (the image's other folders under /run/secrets stay empty).
for service in auth_service client_service order_service console; do
    # shellcheck disable=SC2016
    dc exec -T "$service" bash -c 'cd /run/secrets && for d in *; do
        printf "%s %s " "$d" "$(stat -c %u.%a "$d")"; echo $(ls -A "$d"); done' >"$tmp/secrets.$service"
done
python3 - "$tmp" <<'EOF' || fail "the keys' volumes"
import sys
problems = []
want = {"auth_service": {"auth": {"auth-signing-key.pem", "auth-clients", "dev-clients.env", "dev-users.env"}},
        "client_service": {"client_service": {"client_secret"}},
        "order_service": {"order_service": {"client_secret"}},
        "console": {"console": {"client_secret"}}}
for service, own in want.items():
    for line in open(f"{sys.argv[1]}/secrets.{service}"):
        name, mode, *files = line.split()
        if mode != "10001.700":
            problems.append(f"{service}: /run/secrets/{name} is {mode} (owner.mode), not 10001.700")
        if name in own and not own[name] <= set(files):
            problems.append(f"{service}: /run/secrets/{name} lacks {sorted(own[name] - set(files))}")
        if name not in own and files:
            problems.append(f"{service}: sees /run/secrets/{name}: {files}")
for p in problems:
    print("    FAILED: " + p, file=sys.stderr)
if not problems:
    print("    ok: /run/secrets/* owned by 10001, mode 0700; auth_service sees only its keys,"
          " each service and the console only its own secret")
sys.exit(1 if problems else 0)
EOF
# The development users: named in dev-users.env, in auth_service's
# PostgreSQL database (its DATABASE_URL, as the service has it).
dc exec -T auth_service cat /run/secrets/auth/dev-users.env >"$tmp/dev-users.env"
dc exec -T auth_service auth_service users list >"$tmp/users" || fail "auth_service users list"
for prefix in ADMIN VIEWER; do
    user="$(sed -n "s/^${prefix}_USER=//p" "$tmp/dev-users.env")"
    if [[ -z "$user" ]] || ! grep -q "^${prefix}_PASSWORD=." "$tmp/dev-users.env"; then
        fail "dev-users.env lacks ${prefix}_USER or ${prefix}_PASSWORD"
    fi
    grep -qw -- "$user" "$tmp/users" || fail "the user $user of dev-users.env is not in auth_service's database: $(cat "$tmp/users")"
done
echo "    ok: dev-users.env names admin and viewer; auth_service users list (PostgreSQL) has them"

step "6. the API end to end on PostgreSQL, through http://127.0.0.1:$GATEWAY_PORT"
python3 scripts/deploy/compose-check.py api "$GATEWAY_PORT" "$tmp/dev" >"$tmp/api.out" || {
    cat "$tmp/api.out"
    fail "the API checks"
}
grep -v '^CLIENT=' "$tmp/api.out"
read -r kept_client kept_order < <(sed -n 's/^CLIENT=\([0-9]*\) ORDER=\([0-9]*\)$/\1 \2/p' "$tmp/api.out")
[[ -n "$kept_client" && -n "$kept_order" ]] || fail "no client and order kept by the API checks"
mkdir -p "$tmp/console-users"
cp "$tmp/dev-users.env" "$tmp/console-users/dev-users.env"
python3 scripts/deploy/compose-check.py console "$GATEWAY_PORT" "$tmp/console-users" \
    || fail "the web console through the gateway"

step "7. one replica of each service killed under steady reads through the gateway"
victims=("$(dc ps -q client_service | head -n 1)" "$(dc ps -q order_service | head -n 1)")
before=()
for id in "${victims[@]}"; do before+=("$(docker inspect --format '{{.RestartCount}}' "$id")"); done
python3 scripts/deploy/compose-check.py reads "$GATEWAY_PORT" "$tmp/dev" "$kept_client" "$kept_order" 120 "$tmp/stop-reads" &
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

step "8. a third client_service replica (--scale) under steady reads: the gateway uses it, with no restart"
gateway_id="$(dc ps -q gateway)"
gateway_started="$(docker inspect --format '{{.State.StartedAt}}' "$gateway_id")"
old_replicas="$(dc ps -q client_service | sort)"
rm -f "$tmp/stop-reads"
python3 scripts/deploy/compose-check.py reads "$GATEWAY_PORT" "$tmp/dev" "$kept_client" "$kept_order" 180 "$tmp/stop-reads" &
reader=$!
sleep 2
scaled_at="$(date +%s)"
dc_up 120 --no-deps --no-recreate --scale client_service=3 client_service >"$tmp/scale.log" 2>&1 \
    || fail "docker-compose up --scale client_service=3: $(cat "$tmp/scale.log")"
third="$(comm -13 <(echo "$old_replicas") <(dc ps -q client_service | sort) | head -n 1)"
[[ -n "$third" ]] || fail "no third client_service container"
address="$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$third")"
deadline=$((SECONDS + 90))
# (grep -c reads the whole log: grep -q would stop early, and docker logs'
# SIGPIPE would fail the pipeline, under pipefail.)
until docker logs --since "$scaled_at" "$gateway_id" 2>/dev/null | grep -c -F "\"upstream_addr\":\"$address:8000\"" >/dev/null; do
    if ((SECONDS > deadline)); then
        touch "$tmp/stop-reads"
        wait "$reader" || true
        fail "the gateway sent no request to the third replica ($address) within 90 s of the scale"
    fi
    sleep 1
done
say "the third replica ($address) serves the gateway's requests, $(($(date +%s) - scaled_at)) s after the scale (its start included)"
dc_up 120 --no-deps --no-recreate --scale client_service=2 client_service >"$tmp/scale.log" 2>&1 \
    || fail "docker-compose up --scale client_service=2: $(cat "$tmp/scale.log")"
sleep 3
touch "$tmp/stop-reads"
wait "$reader" || fail "reads failed while client_service was scaled to 3 and back to 2"
[[ "$(docker inspect --format '{{.State.StartedAt}}' "$gateway_id")" == "$gateway_started" ]] \
    || fail "the gateway was restarted"
say "back to $(dc ps -q client_service | wc -l) replicas; the gateway was not restarted"

step "9. the observability profile: Prometheus scrapes every target (up == 1)"
# Grafana is not started: it has no stand-in (no Debian package); its
# provisioning files are checked by scripts/deploy/check-deploy.sh.
COMPOSE_PROFILES=observability dc_up 300 nginx_exporter prometheus
python3 scripts/deploy/compose-check.py prometheus "$PROMETHEUS_PORT" \
    client_service=2 order_service=2 gateway=1 prometheus=1 150 || fail "Prometheus's targets"

step "10. published ports, users, capabilities, read-only root file systems"
mapfile -t containers < <(dc --profile observability ps -q)
python3 - "$GATEWAY_PORT" "$PROMETHEUS_PORT" "${containers[@]}" <<'EOF' || fail "the containers' isolation"
import json, subprocess, sys
gateway_port, prometheus_port, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
# Read-only root file system: all but Prometheus, whose time series
# database lives in the container.
read_only = {"init_auth", "init_secrets", "client_service", "order_service", "auth_service", "console", "gateway",
             "postgres", "nginx_exporter"}
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
    if (hc.get("CapDrop") or []) != ["ALL"]:
        problems.append(f"{name}: cap_drop is {hc.get('CapDrop')}, not [ALL]")
    if not c["State"]["Running"]:
        # The one-shot init_auth and init_secrets, done: no process to look
        # at; their user (the image's, numeric) instead, and init_secrets's
        # lack of any network.
        user = c["Config"].get("User") or "0"
        if service not in ("init_auth", "init_secrets") or c["State"]["ExitCode"] != 0:
            problems.append(f"{name}: not running (exit {c['State']['ExitCode']})")
        if user.split(":")[0] in ("0", "root", ""):
            problems.append(f"{name}: runs as {user!r}")
        if service == "init_secrets" and hc.get("NetworkMode") != "none":
            problems.append(f"{name}: network {hc.get('NetworkMode')!r}, not none")
        rows.append(f"{name:45} uid {user.split(':')[0]:12} read-only {'yes' if hc.get('ReadonlyRootfs') else 'no'}"
                    f"  (exited 0; network {hc.get('NetworkMode')})")
        continue
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

step "11. down and up again keep the data and the keys"
dc --profile observability down --timeout 20
dc_up 600
wait_healthy 300
dc exec -T auth_service cat /run/secrets/auth/dev-clients.env | cmp -s - "$tmp/dev/dev-clients.env" \
    || fail "the development client changed across down and up"
echo "    ok: the same development client after down and up"
python3 scripts/deploy/compose-check.py get "$GATEWAY_PORT" "$tmp/dev" "/client/$kept_client" 200 || fail "the data after down and up"
python3 scripts/deploy/compose-check.py get "$GATEWAY_PORT" "$tmp/dev" "/order/$kept_order" 200 || fail "the data after down and up"

step "12. production: keys and secrets of your own (AUTH_KEYS_DIR, CLIENT_SERVICE_SECRET_DIR, ORDER_SERVICE_SECRET_DIR, CONSOLE_SECRET_DIR)"
# As the guide shows it (with $own for its secrets/): a key made by
# auth_service new-key, a clients file of hashes made by auth_service
# hash-secret (no development client in it), each service's secret alone;
# then readable by the containers' user only.
own="$tmp/own"
mkdir -p "$own/auth" "$own/client_service" "$own/order_service" "$own/console"
dc run --rm --no-deps -T --user "$(id -u):$(id -g)" -v "$own/auth:/keys" auth_service \
    auth_service new-key /keys/auth-signing-key.pem | sed 's/^/    kid: /'
new_secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
hash_secret() { printf '%s' "$1" | dc run --rm --no-deps -T auth_service auth_service hash-secret; }
client_secret="$(new_secret)" order_secret="$(new_secret)" my_secret="$(new_secret)" console_secret="$(new_secret)"
{
    echo "client_service $(hash_secret "$client_secret") orders:read orders:write"
    echo "order_service $(hash_secret "$order_secret") clients:read"
    echo "my-client $(hash_secret "$my_secret") clients:read clients:write orders:read orders:write"
    # The console's web client (compose's CONSOLE_CLIENT_ID), its URIs on the gateway.
    echo "dev-web $(hash_secret "$console_secret") clients:read clients:write orders:read orders:write" \
        "grant_types=authorization_code,refresh_token redirect_uri=http://localhost:$GATEWAY_PORT/console/callback" \
        "post_logout_redirect_uri=http://localhost:$GATEWAY_PORT/console/"
} >"$own/auth/auth-clients"
printf '%s' "$client_secret" >"$own/client_service/client_secret"
printf '%s' "$order_secret" >"$own/order_service/client_secret"
printf '%s' "$console_secret" >"$own/console/client_secret"
chown -R 10001:10001 "$own"
chmod 0400 "$own"/*/*
chmod 0500 "$own"/*
export AUTH_KEYS_DIR="$own/auth" CLIENT_SERVICE_SECRET_DIR="$own/client_service" \
    ORDER_SERVICE_SECRET_DIR="$own/order_service" CONSOLE_SECRET_DIR="$own/console"
dc --profile observability down --timeout 20
# One file missing: `up` stops before anything that needs it starts, and
# init_secrets names it.
mv "$own/order_service/client_secret" "$own/order_service.secret"
if dc_up 300 >"$tmp/up-missing.out" 2>&1; then
    fail "up went on without order_service's secret"
fi
dc logs --no-color init_secrets | grep -q "no /run/secrets/order_service/client_secret" \
    || fail "init_secrets did not name the missing file: $(dc logs --no-color init_secrets | tail -n 5)"
for id in $(dc ps -q auth_service client_service order_service console); do
    [[ "$(docker inspect --format '{{.State.Running}}' "$id")" == false ]] || fail "a service started without its secret"
done
[[ ! -e "$own/auth/dev-users.env" ]] || fail "init_auth made development users with keys of your own"
dc logs --no-color init_auth | grep -q "a set of your own: nothing to do" \
    || fail "init_auth did not leave your keys alone: $(dc logs --no-color init_auth | tail -n 5)"
echo "    ok: without order_service's secret, up stopped; init_secrets: $(dc logs --no-color init_secrets | grep -o 'no /run/secrets/order_service/client_secret[^:]*');" \
    "init_auth left your keys alone (no development user)"
mv "$own/order_service.secret" "$own/order_service/client_secret"
dc_up 600
wait_healthy 300
mkdir -p "$tmp/mine"
printf 'CLIENT_ID=my-client\nCLIENT_SECRET=%s\n' "$my_secret" >"$tmp/mine/dev-clients.env"
python3 scripts/deploy/compose-check.py get "$GATEWAY_PORT" "$tmp/mine" "/order/$kept_order" 200 \
    || fail "your own client, with your own keys, on the same data"
if scripts/dev/dev-token.sh --from compose >/dev/null 2>&1; then
    fail "a development client answered while the keys are your own"
fi
for service in client_service order_service console; do
    [[ "$(stat -c %a "$own/$service/client_secret")" == 400 ]] || fail "init_secrets changed $own/$service/client_secret"
done
echo "    ok: the system runs on your files (GET /order/$kept_order: 200, through order_service's own token);" \
    "no development client; nothing of yours changed"
unset AUTH_KEYS_DIR CLIENT_SERVICE_SECRET_DIR ORDER_SERVICE_SECRET_DIR CONSOLE_SECRET_DIR

step "13. down -v removes every volume: the data and the keys"
dc --profile observability down -v --timeout 20
volumes="$(docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
[[ -z "$volumes" ]] || fail "volumes left after down -v: $volumes"
echo "    ok: pgdata, auth-keys, client-service-secret, order-service-secret and console-secret are gone after down -v"

step "passed in $((SECONDS - started))s (of which the docs' examples, the images' build included, ${build_seconds}s)"
