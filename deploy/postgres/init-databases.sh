#!/usr/bin/env bash
# Creates one database per service, each owned by its own role:
#
#   database  owner (login role)  password from
#   clients   client_service      CLIENT_DB_PASSWORD
#   orders    order_service       ORDER_DB_PASSWORD
#   auth      auth_service        AUTH_DB_PASSWORD
#
# and revokes CONNECT (and TEMPORARY) on every one of them from PUBLIC, so each
# service's role can connect only to its own database (the owner keeps its
# privileges; the superuser can always connect).
#
# Every role gets idle_in_transaction_session_timeout = 30s: a service's
# transactions are a few statements that take milliseconds, and none waits
# for anything else (a call to the other service) while open. A session idle
# in a transaction for 30 s belongs to a stuck or dead request; PostgreSQL
# then ends it, which releases its locks and lets VACUUM reclaim what it kept
# alive, and the pool opens a new connection.
#
# compose.yaml mounts this file into /docker-entrypoint-initdb.d/. The
# postgres image's entrypoint runs the scripts there ONCE, when it
# initializes an empty data directory (the first start with a fresh `pgdata`
# volume). Changing a password later therefore needs ALTER ROLE, or
# `docker compose down -v` to start from scratch (which deletes all data).
# No `set -u`: should this file ever lose its executable bit, the entrypoint
# SOURCES it instead of running it, and `-u` would then leak into the
# entrypoint's own script. The variables are checked explicitly below.
set -eo pipefail

# Fail loudly rather than create a role without a password.
: "${CLIENT_DB_PASSWORD:?CLIENT_DB_PASSWORD must be set for the postgres container}"
: "${ORDER_DB_PASSWORD:?ORDER_DB_PASSWORD must be set for the postgres container}"
: "${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD must be set for the postgres container}"

# The passwords are passed as psql variables and written as :'name', which
# psql replaces by a correctly quoted SQL literal: a password containing a
# quote cannot break (or inject into) the SQL. The heredoc delimiter is
# quoted ('EOSQL') so that the shell does not expand anything inside it.
# ON_ERROR_STOP makes psql exit non-zero at the first failing statement, and
# the entrypoint then aborts the initialization.
psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    --set client_password="${CLIENT_DB_PASSWORD}" \
    --set order_password="${ORDER_DB_PASSWORD}" \
    --set auth_password="${AUTH_DB_PASSWORD}" <<-'EOSQL'
	CREATE ROLE client_service LOGIN PASSWORD :'client_password';
	ALTER ROLE client_service SET idle_in_transaction_session_timeout = '30s';
	CREATE DATABASE clients OWNER client_service;
	REVOKE CONNECT, TEMPORARY ON DATABASE clients FROM PUBLIC;

	CREATE ROLE order_service LOGIN PASSWORD :'order_password';
	ALTER ROLE order_service SET idle_in_transaction_session_timeout = '30s';
	CREATE DATABASE orders OWNER order_service;
	REVOKE CONNECT, TEMPORARY ON DATABASE orders FROM PUBLIC;

	CREATE ROLE auth_service LOGIN PASSWORD :'auth_password';
	ALTER ROLE auth_service SET idle_in_transaction_session_timeout = '30s';
	CREATE DATABASE auth OWNER auth_service;
	REVOKE CONNECT, TEMPORARY ON DATABASE auth FROM PUBLIC;
EOSQL

echo "init-databases.sh: created databases clients (owner client_service), orders (owner order_service) and auth (owner auth_service)"
