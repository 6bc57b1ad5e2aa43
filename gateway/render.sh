#!/usr/bin/env bash
# Renders the gateway for a plain nginx process (no Docker) into
# GATEWAY_RUN_DIR:
#   gateway.conf  from templates/gateway.conf.template: THE gateway, the same
#                 file the Docker image renders;
#   nginx.conf    from local/nginx.conf.template: the process's own settings
#                 (pid file, error log, temp folders), all under GATEWAY_RUN_DIR.
# Then start nginx with:
#   nginx -p "$GATEWAY_RUN_DIR" -c "$GATEWAY_RUN_DIR/nginx.conf"
# and stop it with SIGTERM (or SIGQUIT to let requests in flight finish) to
# its master process, never SIGKILL: the workers would be left running.
#
# Used by `make run` and `make bench` (scripts/dev/stack.sh) and by the end-to-end
# tests. It needs only bash, envsubst (Debian: gettext-base) and coreutils,
# and works from any current directory.
#
# Inputs (environment variables):
#
#   required
#     GATEWAY_RUN_DIR        folder for the rendered files and everything nginx
#                            writes; created if missing, made absolute
#     GATEWAY_LISTEN         the gateway's `listen`, e.g. 127.0.0.1:8080
#     CLIENT_SERVICE_ADDRS   client_service instances, space-separated host:port,
#                            e.g. "127.0.0.1:8000 127.0.0.1:8002"
#     ORDER_SERVICE_ADDRS    order_service instances, the same way,
#                            e.g. "127.0.0.1:8001 127.0.0.1:8003"
#     AUTH_SERVICE_ADDRS     auth_service instances, the same way,
#                            e.g. "127.0.0.1:8020"
#     CONSOLE_ADDRS          the web console's instances (services/console,
#                            served at / and /console/), the same way,
#                            e.g. "127.0.0.1:8030". Required like the others:
#                            the console is part of the system. A run without
#                            a console process still gives its address; `/`
#                            then answers 502 (problem+json) until one listens.
#   optional
#     GATEWAY_ACCESS_LOG     where the JSON access log goes
#                            (default: $GATEWAY_RUN_DIR/access.log)
#     GATEWAY_DOCS_DIR       the built docs page served at /docs/
#                            (default: gateway/docs/dist, made by docs/build.sh)
#     GATEWAY_AUTH_RATE     limit_req rate of POST /auth/token per client
#                            address (default 10r/s), GATEWAY_AUTH_BURST its
#                            burst (default 20)
#     GATEWAY_SIGN_IN_RATE   limit_req rate of POST /auth/sign-in (the
#                            sign-in form) per client address (default
#                            10r/m), GATEWAY_SIGN_IN_BURST its burst (5)
#     GATEWAY_ADDRESS_RATE   limit_req rate of every request per client
#                            address (default 1000r/s), GATEWAY_ADDRESS_BURST
#                            its burst (2000)
#     GATEWAY_ANONYMOUS_RATE limit_req rate of API requests without an access
#                            token, per client address (default 10r/s),
#                            GATEWAY_ANONYMOUS_BURST its burst (50)
#     GATEWAY_STATUS_LISTEN  `listen` of the internal stub_status server, e.g.
#                            127.0.0.1:8081 (default: the Unix socket
#                            unix:$GATEWAY_RUN_DIR/status.sock, which needs no
#                            free port:  curl --unix-socket DIR/status.sock
#                            http://localhost/stub_status)
#
# The template itself reads GATEWAY_CLIENT_SERVERS, GATEWAY_ORDER_SERVERS,
# GATEWAY_AUTH_SERVERS and GATEWAY_CONSOLE_SERVERS: complete nginx `server`
# lines. This script builds them from the *_ADDRS lists, one line per
# address, with the failover parameters below; values of those variables in
# the caller's environment are ignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "gateway/render.sh: $*" >&2
    exit 2
}

# The parameters of every upstream server line (see "Passive health checks" in
# templates/gateway.conf.template): after 2 failed attempts within 2 s an
# instance gets no requests for 2 s, then one request tries it again.
# KEEP IN SYNC with `params` in gateway/follow-upstreams.sh, which writes the
# image's lines (scripts/deploy/check-deploy.sh fails when the two differ).
server_params="max_fails=2 fail_timeout=2s"

command -v envsubst >/dev/null 2>&1 \
    || die "envsubst is missing (Debian/Ubuntu: apt-get install gettext-base)"

# ---- required inputs -------------------------------------------------------
for name in CLIENT_SERVICE_ADDRS ORDER_SERVICE_ADDRS AUTH_SERVICE_ADDRS CONSOLE_ADDRS; do
    if [[ -z "${!name:-}" ]]; then
        example="127.0.0.1:8000 127.0.0.1:8002"
        [[ "$name" != ORDER_* ]] || example="127.0.0.1:8001 127.0.0.1:8003"
        [[ "$name" != AUTH_* ]] || example="127.0.0.1:8020"
        [[ "$name" != CONSOLE_* ]] || example="127.0.0.1:8030"
        # The variables of the former interface get a pointed hint.
        old="GATEWAY_${name%%_ADDRS}_SERVERS"
        old="${old/_SERVICE_SERVERS/_SERVERS}"
        hint=""
        [[ -z "${!old:-}" ]] || hint=" ($old is no longer read: give the addresses, and render.sh writes the server lines)"
        die "set $name to the service's instances as space-separated host:port, e.g. $name='$example'$hint"
    fi
done
[[ -n "${GATEWAY_RUN_DIR:-}" ]] || die "set GATEWAY_RUN_DIR (the folder to render into)"
[[ -n "${GATEWAY_LISTEN:-}" ]] || die "set GATEWAY_LISTEN, e.g. 127.0.0.1:8080"

# Values end up inside nginx directives: characters that would end or
# change a directive (`;`, braces, quotes, `$`, `#`, `\`) are refused rather
# than escaped. safe_value also refuses blanks (a path or an address is one
# word); safe_words allows them between words (`127.0.0.1:8080 reuseport`).
# (The patterns sit in variables, the reliable way to write a bash regex;
# `]` first and `-` last is how a bracket expression includes them.)
value_re='^[][A-Za-z0-9_./:@=+,-]+$'
words_re='^[][A-Za-z0-9_./:@=+, -]+$'
safe_value() { [[ "$1" =~ $value_re ]]; }
safe_words() { [[ "$1" =~ $words_re ]]; }

# ---- the run folder: made absolute, so that the paths in the rendered files
# mean the same whatever nginx's prefix (-p) or current directory
[[ "$GATEWAY_RUN_DIR" == /* ]] || GATEWAY_RUN_DIR="$PWD/$GATEWAY_RUN_DIR"
GATEWAY_RUN_DIR="${GATEWAY_RUN_DIR%/}"
safe_value "$GATEWAY_RUN_DIR" \
    || die "GATEWAY_RUN_DIR=$GATEWAY_RUN_DIR: use a path of letters, digits and . _ - / only (no blanks)"
safe_words "$GATEWAY_LISTEN" || die "GATEWAY_LISTEN=$GATEWAY_LISTEN is not a valid listen address"

# ---- optional inputs and their defaults -------------------------------------
GATEWAY_DOCS_DIR="${GATEWAY_DOCS_DIR:-$here/docs/dist}"
safe_value "$GATEWAY_DOCS_DIR" || die "GATEWAY_DOCS_DIR=$GATEWAY_DOCS_DIR: give a folder path"
GATEWAY_ACCESS_LOG="${GATEWAY_ACCESS_LOG:-$GATEWAY_RUN_DIR/access.log}"
safe_value "$GATEWAY_ACCESS_LOG" \
    || die "GATEWAY_ACCESS_LOG=$GATEWAY_ACCESS_LOG: give a file path (or /dev/stdout)"

GATEWAY_STATUS_LISTEN="${GATEWAY_STATUS_LISTEN:-unix:$GATEWAY_RUN_DIR/status.sock}"
safe_words "$GATEWAY_STATUS_LISTEN" \
    || die "GATEWAY_STATUS_LISTEN=$GATEWAY_STATUS_LISTEN is not a valid listen address"
if [[ "$GATEWAY_STATUS_LISTEN" == unix:* ]]; then
    # A Unix socket path must fit in struct sockaddr_un (108 bytes with the
    # final NUL on Linux); nginx would refuse a longer one with a less clear message.
    socket_path="${GATEWAY_STATUS_LISTEN#unix:}"
    socket_path="${socket_path%% *}"
    ((${#socket_path} <= 107)) \
        || die "the status socket path $socket_path is longer than 107 bytes: use a shorter GATEWAY_RUN_DIR or set GATEWAY_STATUS_LISTEN=127.0.0.1:PORT"
fi
[[ "$GATEWAY_STATUS_LISTEN" != "$GATEWAY_LISTEN" ]] \
    || die "GATEWAY_STATUS_LISTEN must differ from GATEWAY_LISTEN ($GATEWAY_LISTEN)"

# ---- rate limits (docs/src/how-it-works/security.md#rate-limits) --------------
GATEWAY_AUTH_RATE="${GATEWAY_AUTH_RATE:-10r/s}"
GATEWAY_AUTH_BURST="${GATEWAY_AUTH_BURST:-20}"
GATEWAY_SIGN_IN_RATE="${GATEWAY_SIGN_IN_RATE:-10r/m}"
GATEWAY_SIGN_IN_BURST="${GATEWAY_SIGN_IN_BURST:-5}"
GATEWAY_ADDRESS_RATE="${GATEWAY_ADDRESS_RATE:-1000r/s}"
GATEWAY_ADDRESS_BURST="${GATEWAY_ADDRESS_BURST:-2000}"
GATEWAY_ANONYMOUS_RATE="${GATEWAY_ANONYMOUS_RATE:-10r/s}"
GATEWAY_ANONYMOUS_BURST="${GATEWAY_ANONYMOUS_BURST:-50}"
for name in GATEWAY_AUTH_RATE GATEWAY_SIGN_IN_RATE GATEWAY_ADDRESS_RATE GATEWAY_ANONYMOUS_RATE; do
    [[ "${!name}" =~ ^[1-9][0-9]{0,6}r/[sm]$ ]] \
        || die "$name=${!name}: give a rate like 10r/s or 600r/m"
done
for name in GATEWAY_AUTH_BURST GATEWAY_SIGN_IN_BURST GATEWAY_ADDRESS_BURST GATEWAY_ANONYMOUS_BURST; do
    [[ "${!name}" =~ ^(0|[1-9][0-9]{0,6})$ ]] \
        || die "$name=${!name}: give a whole number of requests, 0 to 9999999"
done

# ---- server lines from the address lists ------------------------------------
# server_lines NAME "ADDR ADDR ...": prints one `server ADDR PARAMS;` per
# address, joined by a newline and the template's indentation (4 spaces), so
# that the rendered upstream block reads like a hand-written one.
addr_re='^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$'
server_lines() {
    local name="$1" list="$2" addr port out="" seen=" "
    local -a addrs
    # Split on any blanks, newlines included (-d '': read up to the end; read
    # then reports end-of-input with status 1, hence `|| true`).
    read -r -d '' -a addrs <<<"$list" || true
    ((${#addrs[@]} > 0)) || die "$name is empty: give at least one host:port"
    for addr in "${addrs[@]}"; do
        # host:port, where host is a name or IPv4 address, or [IPv6].
        [[ "$addr" =~ $addr_re ]] \
            || die "$name: '$addr' is not host:port (e.g. 127.0.0.1:8000, [::1]:8000)"
        port="${BASH_REMATCH[2]}"
        ((10#$port >= 1 && 10#$port <= 65535)) || die "$name: port $port of '$addr' is out of range"
        # Listed twice, nginx would send that instance twice the share.
        [[ "$seen" != *" $addr "* ]] || die "$name lists $addr twice"
        seen+="$addr "
        [[ -z "$out" ]] || out+=$'\n    '
        out+="server $addr $server_params;"
    done
    printf '%s' "$out"
}
GATEWAY_CLIENT_SERVERS="$(server_lines CLIENT_SERVICE_ADDRS "$CLIENT_SERVICE_ADDRS")"
GATEWAY_ORDER_SERVERS="$(server_lines ORDER_SERVICE_ADDRS "$ORDER_SERVICE_ADDRS")"
GATEWAY_AUTH_SERVERS="$(server_lines AUTH_SERVICE_ADDRS "$AUTH_SERVICE_ADDRS")"
GATEWAY_CONSOLE_SERVERS="$(server_lines CONSOLE_ADDRS "$CONSOLE_ADDRS")"

# ---- render ------------------------------------------------------------------
# Every input is checked: only now is anything written.
mkdir -p "$GATEWAY_RUN_DIR/tmp" || die "cannot create $GATEWAY_RUN_DIR/tmp"

# envsubst replaces ONLY the variables listed here: nginx's own variables
# ($host, $request_id, ...) look the same and must reach nginx untouched.
export GATEWAY_RUN_DIR GATEWAY_LISTEN GATEWAY_CLIENT_SERVERS GATEWAY_ORDER_SERVERS \
    GATEWAY_AUTH_SERVERS GATEWAY_CONSOLE_SERVERS GATEWAY_ACCESS_LOG GATEWAY_STATUS_LISTEN GATEWAY_DOCS_DIR \
    GATEWAY_AUTH_RATE GATEWAY_AUTH_BURST GATEWAY_ADDRESS_RATE GATEWAY_ADDRESS_BURST \
    GATEWAY_ANONYMOUS_RATE GATEWAY_ANONYMOUS_BURST GATEWAY_SIGN_IN_RATE GATEWAY_SIGN_IN_BURST
# shellcheck disable=SC2016 # single quotes on purpose: envsubst expands these
vars='${GATEWAY_RUN_DIR} ${GATEWAY_LISTEN} ${GATEWAY_CLIENT_SERVERS} ${GATEWAY_ORDER_SERVERS} ${GATEWAY_AUTH_SERVERS} ${GATEWAY_CONSOLE_SERVERS} ${GATEWAY_ACCESS_LOG} ${GATEWAY_STATUS_LISTEN} ${GATEWAY_DOCS_DIR} ${GATEWAY_AUTH_RATE} ${GATEWAY_AUTH_BURST} ${GATEWAY_ADDRESS_RATE} ${GATEWAY_ADDRESS_BURST} ${GATEWAY_ANONYMOUS_RATE} ${GATEWAY_ANONYMOUS_BURST} ${GATEWAY_SIGN_IN_RATE} ${GATEWAY_SIGN_IN_BURST}'

# Each file is written next to its final name, then renamed: a reader (or a
# `nginx -s reload`) never sees half a file.
render() {
    local template="$1" out="$2"
    envsubst "$vars" <"$here/$template" >"$out.tmp"
    mv -f "$out.tmp" "$out"
}
render templates/gateway.conf.template "$GATEWAY_RUN_DIR/gateway.conf"
render local/nginx.conf.template "$GATEWAY_RUN_DIR/nginx.conf"
