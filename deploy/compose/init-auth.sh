#!/usr/bin/env bash
# compose.yaml's one-shot service init_auth runs this, in the auth_service
# image, as its user (10001), at every `up`, once PostgreSQL is healthy and
# before init_secrets (which waits for its exit 0), with auth_service's
# volume alone:
#
#   /run/secrets/auth   the volume auth-keys, or your folder AUTH_KEYS_DIR
#
# Whether the set is yours is decided by whether you named a folder:
# compose passes AUTH_KEYS_DIR (empty when unset) on as
# AUTH_KEYS_DIR_FROM_HOST. Not by the files: `auth_service init my-keys`
# makes a set with the same files as a development set (client_service.secret
# and the rest), and a production set made that way must not get
# development users.
#
#   AUTH_KEYS_DIR set: your set. Left alone: no development user is made
#     (add yours: docker compose exec auth_service auth_service users add
#     NAME --role admin); init_secrets checks the files.
#   the volume auth-keys, empty (a new volume: the first `up`): a
#     development set is made there with `auth_service init`: the signing
#     key, the clients file, dev-clients.env (yours, and the web client's
#     for the sign-in), service-clients.env, each service's secret alone
#     (init_secrets hands them out), and dev-users.env; the development
#     users admin and viewer go to auth_service's database (DATABASE_URL:
#     PostgreSQL's database auth), their passwords to dev-users.env.
#   the volume auth-keys with a development set (it has
#     client_service.secret): run through `auth_service init` again:
#     nothing in the folder is replaced, and the users of dev-users.env
#     that the database lacks (a new pgdata volume) are added with their
#     passwords.
#   the volume auth-keys with anything else: left alone, as your own.
#
# It needs the network (PostgreSQL), so it is not init_secrets, which has
# none: the services' secrets never share a container with the network.
set -euo pipefail
auth=/run/secrets/auth
: "${DATABASE_URL:?DATABASE_URL must name the database of auth_service}"
: "${WEB_ORIGIN:?WEB_ORIGIN must be the origin of the gateway as callers see it}"

own="${AUTH_KEYS_DIR_FROM_HOST:-}"

if [[ -n "$own" ]]; then
    echo "init_auth: AUTH_KEYS_DIR=$own is a set of your own: nothing to do (no development user is made;" \
        "add a user with: docker compose exec auth_service auth_service users add NAME --role admin)"
    exit 0
elif [[ ! -e "$auth/auth-signing-key.pem" && ! -e "$auth/auth-clients" ]]; then
    echo "init_auth: $auth is empty: making a development set (auth_service init)"
elif [[ -e "$auth/client_service.secret" ]]; then
    echo "init_auth: a development set in $auth: its users in the database (auth_service init)"
else
    echo "init_auth: $auth is a set of your own: nothing to do (no development user)"
    exit 0
fi
# (auth_service init reads DATABASE_URL, with its password, from the
# environment: never on a command line, where the process list shows it.)
auth_service init "$auth" --web-origin "$WEB_ORIGIN" | sed 's/^/init_auth: /'
echo "init_auth: ready (the development users' passwords: $auth/dev-users.env)"
