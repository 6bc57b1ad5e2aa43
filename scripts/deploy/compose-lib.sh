# shellcheck shell=bash
# Sourced by scripts/deploy/compose-up.sh, compose-down.sh and compose-test.sh:
# the Docker engine, the stand-in base images, the offline inputs of the
# builds, and docker-compose with all of them. (The keys and secrets need
# nothing here: compose.yaml's init_auth and init_secrets make them on the first `up`.)
#
#   engine_ensure          installs docker.io and docker-compose (Debian)
#                          when missing; starts dockerd when none answers,
#                          remembering that it did (engine_stop_ours stops
#                          only that one); makes sure `docker build` has
#                          BuildKit (see docker_cli_with_buildkit)
#   engine_stop_ours       stops the dockerd that engine_ensure started, in
#                          this run or an earlier one (compose-up's, for
#                          compose-down); COMPOSE_ENGINE_STARTED=1 when this
#                          run started it
#   standins_build         builds the local stand-ins of the upstream images
#                          (scripts/deploy/compose-standins.sh) and exports the
#                          *_IMAGE variables that compose.yaml reads
#   offline_sources        `cargo vendor` into .cargo-vendor/ and npm's cache
#                          of the docs page into gateway/.npm-cache/, and
#                          exports CARGO_SOURCE=vendored NPM_SOURCE=offline-cache
#   docker_compose_shim    prints a folder to put first on PATH in which
#                          `docker compose ARGS` runs docker-compose ARGS,
#                          when the docker CLI has no compose plugin (so
#                          that the guide's commands run as written);
#                          prints nothing when it has one
#   dc ARGS...             docker-compose -p "$COMPOSE_PROJECT_NAME" -f compose.yaml
#
# Settings (environment):
#   COMPOSE_STANDINS=1     build and use the stand-ins (default); 0: the
#                          official images, pulled from their registry
#   COMPOSE_OFFLINE=1      build from vendored crates and npm's cache
#                          (default); 0: from crates.io and the npm registry
#   COMPOSE_PROJECT_NAME   compose's project (each script sets its default)
#   GATEWAY_PORT           the gateway's port on the host
COMPOSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COMPOSE_STATE_DIR="$COMPOSE_ROOT/.run/compose"
COMPOSE_FILE_PATH="$COMPOSE_ROOT/compose.yaml"
# BuildKit for the Dockerfile's cache mounts, also when docker-compose 1.29
# builds (it then runs `docker build`).
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# shellcheck source=scripts/setup/apt.sh
source "$COMPOSE_ROOT/scripts/setup/apt.sh"

# docker_cli_with_buildkit: `docker build` must use BuildKit. A docker CLI of
# Engine 23 or later does so only through its buildx plugin; without the
# plugin it refuses (DOCKER_BUILDKIT=1) or falls back to the legacy builder
# (which cannot read `RUN --mount`). Debian's docker.io CLI (20.10) has
# BuildKit built in: when the `docker` on PATH lacks buildx and that one is
# installed, it goes first on PATH, for us and for docker-compose.
docker_cli_with_buildkit() {
    if docker buildx version >/dev/null 2>&1; then
        return 0
    fi
    local major
    major="$(docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
    if [[ -n "$major" ]] && ((major < 23)); then
        return 0
    fi
    if [[ -x /usr/bin/docker ]] && [[ "$(/usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" =~ ^(19|20|21|22)$ ]]; then
        say "docker: $(command -v docker) has no buildx plugin; using Debian's docker CLI (BuildKit built in): /usr/bin/docker"
        mkdir -p "$COMPOSE_STATE_DIR/bin"
        ln -sf /usr/bin/docker "$COMPOSE_STATE_DIR/bin/docker"
        export PATH="$COMPOSE_STATE_DIR/bin:$PATH"
        return 0
    fi
    echo "docker build needs BuildKit: install the buildx plugin, or Debian's docker.io" >&2
    return 1
}

engine_ensure() {
    local missing=()
    [[ -x /usr/bin/dockerd || -n "$(command -v dockerd)" ]] || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    if ((${#missing[@]})); then
        [[ $EUID -eq 0 ]] || { echo "need root to install: ${missing[*]}" >&2; return 1; }
        say "installing ${missing[*]} (apt-get)"
        apt_install "${missing[@]}"
    fi
    if ! docker info >/dev/null 2>&1; then
        [[ $EUID -eq 0 ]] || { echo "no Docker engine answers, and starting one needs root" >&2; return 1; }
        mkdir -p "$COMPOSE_STATE_DIR"
        say "no Docker engine answers: starting dockerd (log: $COMPOSE_STATE_DIR/dockerd.log)"
        setsid dockerd >"$COMPOSE_STATE_DIR/dockerd.log" 2>&1 </dev/null &
        echo $! >"$COMPOSE_STATE_DIR/dockerd.pid"
        export COMPOSE_ENGINE_STARTED=1
        local i
        for ((i = 0; i < 60; i++)); do
            docker info >/dev/null 2>&1 && break
            kill -0 "$(cat "$COMPOSE_STATE_DIR/dockerd.pid")" 2>/dev/null || break
            sleep 1
        done
        if ! docker info >/dev/null 2>&1; then
            echo "dockerd did not come up within 60 s:" >&2
            tail -n 30 "$COMPOSE_STATE_DIR/dockerd.log" >&2
            engine_stop_ours
            return 1
        fi
        say "dockerd is up (pid $(cat "$COMPOSE_STATE_DIR/dockerd.pid"))"
    fi
    docker_cli_with_buildkit
    say "engine: Docker $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
}

# engine_stop_ours: stops the dockerd that engine_ensure started (and only
# that one), gracefully, then by force after 30 s.
engine_stop_ours() {
    local pidfile="$COMPOSE_STATE_DIR/dockerd.pid" pid i
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping the dockerd started here (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

standins_build() {
    if [[ "${COMPOSE_STANDINS:-1}" == 0 ]]; then
        say "COMPOSE_STANDINS=0: the official images (pulled from their registry)"
        return 0
    fi
    local line
    while IFS= read -r line; do
        # shellcheck disable=SC2163
        export "$line"
    done < <("$COMPOSE_ROOT/scripts/deploy/compose-standins.sh")
    say "stand-ins: RUST_IMAGE=$RUST_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE NODE_IMAGE=$NODE_IMAGE NGINX_IMAGE=$NGINX_IMAGE POSTGRES_IMAGE=$POSTGRES_IMAGE PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE NGINX_EXPORTER_IMAGE=$NGINX_EXPORTER_IMAGE"
}

# offline_sources: the crates and npm packages the builds need, fetched here
# (this machine reaches the registries; the containers do not), put in the
# build contexts, and chosen by the build arguments CARGO_SOURCE and
# NPM_SOURCE. Both folders are git-ignored and made again only when the lock
# file changed (so that the build cache holds).
offline_sources() {
    if [[ "${COMPOSE_OFFLINE:-1}" == 0 ]]; then
        say "COMPOSE_OFFLINE=0: crates from crates.io, npm packages from the npm registry"
        return 0
    fi
    local vendor="$COMPOSE_ROOT/.cargo-vendor" want
    want="$(sha256sum "$COMPOSE_ROOT/Cargo.lock" | cut -d' ' -f1)"
    if [[ "$(cat "$vendor/.lock-sha256" 2>/dev/null)" != "$want" ]]; then
        say "cargo vendor into .cargo-vendor/ (Cargo.lock changed or first run)"
        rm -rf "$vendor"
        (cd "$COMPOSE_ROOT" && cargo vendor --locked --quiet .cargo-vendor >/dev/null)
        echo "$want" >"$vendor/.lock-sha256"
    fi
    local cache="$COMPOSE_ROOT/gateway/.npm-cache" docs="$COMPOSE_ROOT/gateway/docs" tmp
    want="$(sha256sum "$docs/package-lock.json" | cut -d' ' -f1)"
    if [[ "$(cat "$cache/.lock-sha256" 2>/dev/null)" != "$want" ]]; then
        command -v npm >/dev/null || apt_install npm
        say "npm's cache of the docs page's packages into gateway/.npm-cache/"
        rm -rf "$cache"
        tmp="$(mktemp -d)"
        cp "$docs/package.json" "$docs/package-lock.json" "$tmp/"
        (cd "$tmp" && npm ci --cache "$cache" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        rm -rf "$tmp"
        echo "$want" >"$cache/.lock-sha256"
    fi
    export CARGO_SOURCE=vendored NPM_SOURCE=offline-cache
    say "offline sources: CARGO_SOURCE=vendored (.cargo-vendor/), NPM_SOURCE=offline-cache (gateway/.npm-cache/)"
}

docker_compose_shim() {
    docker compose version >/dev/null 2>&1 && return 0
    local dir="$COMPOSE_STATE_DIR/compose-shim" real
    real="$(command -v docker)"
    mkdir -p "$dir"
    cat >"$dir/docker" <<SHIM
#!/usr/bin/env bash
# Made by scripts/deploy/compose-lib.sh (docker_compose_shim): \`docker compose ARGS\`
# is docker-compose ARGS (this docker CLI has no compose plugin); anything
# else goes to $real.
if [[ "\${1:-}" == compose ]]; then
    shift
    exec docker-compose "\$@"
fi
exec "$real" "\$@"
SHIM
    chmod +x "$dir/docker"
    echo "$dir"
}

dc() {
    docker-compose --project-directory "$COMPOSE_ROOT" -p "$COMPOSE_PROJECT_NAME" -f "$COMPOSE_FILE_PATH" "$@"
}

# dc_up SECONDS [SERVICE...]: `dc up -d SERVICE...`, which waits for the
# depends_on conditions, given SECONDS at most.
dc_up() {
    local limit="$1"
    shift
    timeout "$limit" docker-compose --project-directory "$COMPOSE_ROOT" -p "$COMPOSE_PROJECT_NAME" \
        -f "$COMPOSE_FILE_PATH" up -d "$@" || {
        echo "docker-compose up failed or took over ${limit}s" >&2
        return 1
    }
}

# prune_builds: what rebuilds leave behind: dangling images (an image's
# previous version) and build cache beyond COMPOSE_BUILD_CACHE_KEEP (10GB),
# least recently used first; the cache of the last builds stays.
prune_builds() {
    docker image prune -f >/dev/null || true
    docker builder prune -f --keep-storage "${COMPOSE_BUILD_CACHE_KEEP:-10GB}" >/dev/null || true
}

# COMPOSE_ONE_SHOT: the services that run once per `up` and exit (0 when
# all went well) instead of staying up.
COMPOSE_ONE_SHOT=(init_auth init_secrets)

# wait_healthy SECONDS SERVICE...: waits until every container of the
# project (or of the services named) is running and healthy, and every
# one-shot one has exited 0, or fails after SECONDS showing the logs of
# those that are not.
wait_healthy() {
    local limit="$1" deadline ids id state bad service
    shift
    deadline=$((SECONDS + limit))
    while :; do
        bad=()
        mapfile -t ids < <(dc ps -q "$@")
        if ((${#ids[@]} == 0)); then
            bad+=("(no containers)")
        fi
        for id in "${ids[@]}"; do
            state="$(docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$id")"
            service="$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")"
            if [[ " ${COMPOSE_ONE_SHOT[*]} " == *" $service "* ]]; then
                [[ "$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id")" == "exited 0" ]] \
                    || bad+=("$state")
                continue
            fi
            [[ "$state" == *" running healthy" || "$state" == *" running no-healthcheck" ]] || bad+=("$state")
        done
        ((${#bad[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            echo "not healthy after ${limit}s: ${bad[*]}" >&2
            for state in "${bad[@]}"; do
                id="${state%% *}"
                id="${id#/}"
                [[ -n "$id" && "$id" != "(no" ]] || continue
                echo "---- docker logs --tail 80 $id" >&2
                docker logs --tail 80 "$id" >&2 2>&1 || true
            done
            return 1
        fi
        sleep 2
    done
}
