#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks: its own folder,
# its own port on 127.0.0.1, trust authentication, fsync off. initdb refuses
# to run as root, so as root it runs as the `postgres` user.
# PG_CLUSTER_SETTINGS adds server settings (`-c name=value ...`), e.g. the
# bench's pg_stat_statements.
#
#   scripts/dev/pg-cluster.sh start DIR PORT   start it; prints the admin URL
#   scripts/dev/pg-cluster.sh pause DIR        stop the server, keep the data
#   scripts/dev/pg-cluster.sh resume DIR       start it again on the same port
#   scripts/dev/pg-cluster.sh stop DIR         stop it and remove DIR
set -euo pipefail

find_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && { echo "$dir"; return; }
    done
    return 1
}

as_owner() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    local bindir="$1" dir="$2" port="$3"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 ${PG_CLUSTER_SETTINGS:-}" >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
}

case "${1:-}" in
start)
    dir="${2:?usage: pg-cluster.sh start DIR PORT}"
    port="${3:?usage: pg-cluster.sh start DIR PORT}"
    if ! bindir="$(find_bindir)"; then
        if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "PostgreSQL server not found: installing it with apt-get" >&2
            apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
            bindir="$(find_bindir)"
        else
            echo "PostgreSQL server not found: install it (Debian: apt-get install postgresql)" >&2
            exit 1
        fi
    fi
    mkdir -p "$dir"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$dir"
        # The server runs as `postgres`, which must reach DIR through every
        # folder above it: one made by `mktemp -d` (private to root) will not do.
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pg-cluster.sh: the postgres user cannot reach $dir (a folder above it is private," \
                "e.g. made by mktemp -d): give a folder of its own, e.g. \$(mktemp -d)" >&2
            exit 1
        fi
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    pg_start "$bindir" "$dir" "$port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
pause)
    dir="${2:?usage: pg-cluster.sh pause DIR}"
    bindir="$(find_bindir)"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    dir="${2:?usage: pg-cluster.sh resume DIR}"
    bindir="$(find_bindir)"
    pg_start "$bindir" "$dir" "$(cat "$dir/port")"
    ;;
stop)
    dir="${2:?usage: pg-cluster.sh stop DIR}"
    if [[ -d "$dir/data" ]] && bindir="$(find_bindir)"; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg-cluster.sh start DIR PORT | pause DIR | resume DIR | stop DIR" >&2
    exit 2
    ;;
esac
