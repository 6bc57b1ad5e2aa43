#!/usr/bin/env bash
# The PostgreSQL stand-in's entrypoint: what the official image's does, in
# short (see postgres.Dockerfile).
set -Eeo pipefail

if [[ "$1" != postgres ]]; then
    exec "$@"
fi

# As root: own the directories, then run again as the postgres user.
if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set, the password of the superuser}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --locale=C.UTF-8 --encoding=UTF8 -D "$PGDATA"
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

    # A server on the Unix socket only, for the init scripts.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    export PGUSER="$user" PGDATABASE=postgres PGPASSWORD="$POSTGRES_PASSWORD"
    if [[ "$db" != postgres ]]; then
        psql --no-psqlrc -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\""
    fi
    export PGDATABASE="$db"
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                if [[ -x "$f" ]]; then
                    echo "$0: running $f"
                    "$f"
                else
                    echo "$0: sourcing $f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql)
                echo "$0: running $f"
                psql --no-psqlrc -v ON_ERROR_STOP=1 -f "$f"
                ;;
            *) [[ -e "$f" ]] && echo "$0: ignoring $f" ;;
        esac
    done
    unset PGPASSWORD
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo "$0: PostgreSQL init process complete; ready for start up."
fi

exec "$@" -c listen_addresses='*'
