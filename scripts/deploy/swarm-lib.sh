# shellcheck shell=bash
# Sourced by scripts/deploy/swarm-deploy.sh and swarm-test.sh: the steps of a
# deployment on Docker Swarm mode (docs/src/deployment/docker-swarm.md).
#
#   swarm_build_images TAG        compose builds the images of compose.yaml's
#                                 built services, tagged
#                                 rest-microservices/SERVICE:TAG
#   swarm_make_secrets DIR TAG ORIGIN
#                                 a development set in DIR (auth_service
#                                 init, in a container of
#                                 rest-microservices/auth_service:TAG, the
#                                 web client's URIs at ORIGIN) when DIR has
#                                 none; checks a set of yours otherwise
#   swarm_wait_stack STACK SECONDS
#                                 until every service of STACK has all its
#                                 tasks running and healthy, and none is
#                                 being updated (fails after SECONDS,
#                                 showing the tasks that are not)
#   swarm_add_dev_users STACK DIR the users of DIR/dev-users.env added to
#                                 auth_service's database when it lacks them
#   swarm_containers STACK SERVICE
#                                 the ids of the running containers of a
#                                 service of STACK
# Every wait is bounded.

swarm_say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
swarm_die() {
    echo "swarm: $*" >&2
    exit 1
}

# The compose command: `docker compose` (v2) or docker-compose (1.29).
swarm_compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose "$@"
    else
        docker-compose "$@"
    fi
}

swarm_build_images() {
    local tag="$1" override services
    override="$(mktemp /tmp/swarm-images.XXXXXX)"
    scripts/deploy/swarm-stack.py build-override --tag "$tag" >"$override"
    read -r -a services <<<"$(scripts/deploy/swarm-stack.py built-services)"
    swarm_say "building ${services[*]} with compose (compose.yaml's builds), tagged rest-microservices/SERVICE:$tag"
    # --project-directory: the override lives in /tmp, compose.yaml's
    # build contexts are relative to the checkout.
    if ! swarm_compose --project-directory . -f compose.yaml -f "$override" build "${services[@]}"; then
        rm -f "$override"
        swarm_die "the build failed"
    fi
    rm -f "$override"
}

swarm_make_secrets() {
    local dir="$1" tag="$2" origin="$3" file missing=() web
    local -a files=(auth-signing-key.pem auth-clients client_service.secret order_service.secret console.secret)
    if [[ -e "$dir/auth-signing-key.pem" || -e "$dir/auth-clients" ]]; then
        for file in "${files[@]}"; do
            [[ -s "$dir/$file" ]] || missing+=("$file")
        done
        ((${#missing[@]} == 0)) || swarm_die "$dir holds a set of keys, without ${missing[*]}"
        swarm_say "keys and secrets: the set in $dir"
        return 0
    fi
    swarm_say "keys and secrets: a development set in $dir (auth_service init, as compose's init_auth)"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    # auth_service's own image and command, with no network, as this
    # user (the files are then its own); its development users go to a
    # SQLite file here, deleted: they are added to PostgreSQL after the
    # deploy, with their passwords from dev-users.env (swarm_add_dev_users).
    docker run --rm --network none --read-only --cap-drop ALL --security-opt no-new-privileges \
        --user "$(id -u):$(id -g)" -v "$dir:/keys" "rest-microservices/auth_service:$tag" \
        auth_service init /keys --web-origin "$origin" | sed 's/^/    /'
    rm -f "$dir/auth_service.db" "$dir/auth_service.db-shm" "$dir/auth_service.db-wal"
    # The console's: the web client's secret alone, as compose's init_secrets writes it.
    web="$(sed -n 's/^WEB_CLIENT_SECRET=//p' "$dir/dev-clients.env")"
    [[ -n "$web" ]] || swarm_die "$dir/dev-clients.env has no WEB_CLIENT_SECRET"
    (umask 077 && printf '%s' "$web" >"$dir/console.secret")
    for file in "${files[@]}"; do
        [[ -s "$dir/$file" ]] || swarm_die "auth_service init made no $dir/$file"
    done
}

# The services of STACK and their replicas (`running/desired`), one a line.
swarm_services() {
    docker service ls --filter "label=com.docker.stack.namespace=$1" --format '{{.Name}} {{.Replicas}}'
}

swarm_containers() {
    docker ps -q --filter "label=com.docker.swarm.service.name=$1_$2"
}

swarm_wait_stack() {
    local stack="$1" limit="$2" deadline line name replicas running desired state total ps containers bad
    deadline=$((SECONDS + limit))
    while :; do
        bad=()
        total=0
        while read -r name replicas _; do
            [[ -n "$name" ]] || continue
            running="${replicas%%/*}"
            desired="${replicas#*/}"
            total=$((total + desired))
            [[ "$running" == "$desired" && "$desired" -gt 0 ]] || bad+=("$name $replicas")
            state="$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$name")"
            [[ "$state" != updating && "$state" != rollback_started ]] || bad+=("$name $state")
        done < <(swarm_services "$stack")
        ((total > 0)) || bad+=("(no services)")
        # Every container of the stack running and healthy, or running and
        # without a health check (a task stopping in an update is still
        # counted: it must be gone).
        ps="$(docker ps --filter "label=com.docker.stack.namespace=$stack" --format '{{.Names}} {{.Status}}')"
        while read -r line; do
            [[ "$line" != *"(health: starting)" && "$line" != *"(unhealthy)" ]] || bad+=("$line")
        done <<<"$ps"
        # (grep -c counts 0 with status 1: an assignment would end the script.)
        containers="$(grep -c . <<<"$ps" || true)"
        [[ "$containers" == "$total" ]] || bad+=("$containers containers for $total tasks")
        ((${#bad[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            echo "swarm: stack $stack not running and healthy after ${limit}s: ${bad[*]}" >&2
            while read -r name _; do
                [[ -n "$name" ]] || continue
                docker service ps --no-trunc --format '    {{.Name}} {{.Image}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' "$name" | head -n 8 >&2
            done < <(swarm_services "$stack")
            return 1
        fi
        sleep 2
    done
}

swarm_add_dev_users() {
    local stack="$1" dir="$2" id prefix user password role listed
    [[ -f "$dir/dev-users.env" ]] || return 0
    id="$(swarm_containers "$stack" auth_service | head -n 1)"
    [[ -n "$id" ]] || swarm_die "no running auth_service task in $stack"
    listed="$(docker exec "$id" auth_service users list)" || swarm_die "auth_service users list failed"
    for prefix in ADMIN VIEWER; do
        user="$(sed -n "s/^${prefix}_USER=//p" "$dir/dev-users.env")"
        password="$(sed -n "s/^${prefix}_PASSWORD=//p" "$dir/dev-users.env")"
        role="$(tr '[:upper:]' '[:lower:]' <<<"$prefix")"
        [[ -n "$user" && -n "$password" ]] || swarm_die "$dir/dev-users.env lacks ${prefix}_USER or ${prefix}_PASSWORD"
        if grep -qw -- "$user" <<<"$listed"; then
            continue
        fi
        # The password on standard input, never on a command line.
        printf '%s\n' "$password" | docker exec -i "$id" auth_service users add "$user" --role "$role" >/dev/null \
            || swarm_die "auth_service users add $user failed"
        swarm_say "added the development user $user ($role) to auth_service's database"
    done
}
