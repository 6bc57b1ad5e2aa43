#!/usr/bin/env bash
# scripts/dev/sign-in.sh [USER]
#
# Signs USER (default admin) in to the running system, with curl alone, as
# a browser and a web application would: the authorization code grant with
# PKCE (RFC 6749 4.1, RFC 7636) at auth_service, through the gateway.
# Prints the token response (JSON: access_token, refresh_token, expires_in,
# scope) on standard output; each step on standard error.
#
#   DATA_DIR      the folder of dev-clients.env (the web client:
#                 WEB_CLIENT_ID, WEB_CLIENT_SECRET, WEB_REDIRECT_URI) and
#                 dev-users.env (the users admin and viewer); default ./data,
#                 where `make run` keeps them (a relative path is taken from
#                 the checkout's root)
#   GATEWAY_URL   the gateway; default http://127.0.0.1:GATEWAY_PORT
#   GATEWAY_PORT  the gateway's port on 127.0.0.1 (default 8080), when
#                 GATEWAY_URL is unset
#   PASSWORD      USER's password; default: from dev-users.env, for admin
#                 and viewer
#
# The sign-in form must be posted from the issuer's own origin (its Origin
# header): the script reads the issuer from the gateway's metadata
# (/.well-known/oauth-authorization-server/auth) and sends that origin, so
# it works whatever the issuer's host is called: http://127.0.0.1:8080 with
# `make run`, http://localhost:8080 with compose and the Kubernetes dev
# overlay (port-forwarded to 8080).
#
# With `make run`:
#
#   scripts/dev/sign-in.sh viewer
#   TOKEN="$(scripts/dev/sign-in.sh | sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
#   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/client/
#
# With compose, the two files are in auth_service's container: copy them
# to a folder of your own and name it DATA_DIR:
#
#   dir="$(mktemp -d)"
#   docker compose exec -T auth_service cat /run/secrets/auth/dev-clients.env >"$dir/dev-clients.env"
#   docker compose exec -T auth_service cat /run/secrets/auth/dev-users.env >"$dir/dev-users.env"
#   DATA_DIR="$dir" scripts/dev/sign-in.sh viewer
#
# The redirect URI of the development web client (/console/callback) is
# the web console's; this script reads the code from the redirect's
# Location header and never follows it (the console would take the code
# for a sign-in of its own).
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in -h | --help) sed -n '2,/^set -euo pipefail$/{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
user="${1:-admin}"
data_dir="${DATA_DIR:-./data}"
gateway="${GATEWAY_URL:-http://127.0.0.1:${GATEWAY_PORT:-8080}}"
gateway="${gateway%/}"
say() { echo "sign-in: $*" >&2; }
fail() { echo "sign-in: $*" >&2; exit 1; }

# env_value NAME FILE: NAME's value in the env-file FILE.
env_value() { sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1; }
clients="$data_dir/dev-clients.env"
[[ -f "$clients" ]] || fail "no $clients: start the system with \`make run\` first, or name the folder" \
    "of your dev-clients.env and dev-users.env with DATA_DIR (see --help for compose)"
client_id="$(env_value WEB_CLIENT_ID "$clients")"
client_secret="$(env_value WEB_CLIENT_SECRET "$clients")"
redirect_uri="$(env_value WEB_REDIRECT_URI "$clients")"
[[ -n "$client_id" && -n "$redirect_uri" ]] || fail "no web client (WEB_CLIENT_ID, WEB_REDIRECT_URI) in $clients:" \
    "a set made before the sign-in came has none; start afresh (make run: stop it, then" \
    "rm $data_dir/auth-clients $data_dir/*clients.env $data_dir/*.secret and start it again;" \
    "compose: docker compose down -v, which deletes the data too)"
# The development web client is confidential: its secret is needed for
# the tokens, at the last step. Said now rather than after the sign-in.
[[ -n "$client_secret" ]] || fail "no WEB_CLIENT_SECRET in $clients (the web client $client_id is confidential)"
upper="$(tr '[:lower:]' '[:upper:]' <<<"$user")"
password="${PASSWORD:-$(env_value "${upper}_PASSWORD" "$data_dir/dev-users.env")}"
[[ -n "$password" ]] || fail "no password for $user: set PASSWORD (dev-users.env has admin's and viewer's)"

# 0. The issuer, from its metadata (RFC 8414) at the gateway, and its
#    origin (scheme://host[:port]): a browser on the sign-in form sends it
#    as the Origin of the post.
metadata_url="$gateway/.well-known/oauth-authorization-server/auth"
metadata="$(curl -fsS "$metadata_url")" \
    || fail "no answer from $metadata_url: is the system running there? (GATEWAY_URL, GATEWAY_PORT)"
issuer="$(sed -E -n 's/.*"issuer"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/p' <<<"$metadata" | head -n 1)"
origin="$(sed -E -n 's#^([a-z][a-z0-9+.-]*://[^/]+).*#\1#p' <<<"$issuer")"
[[ -n "$origin" ]] || fail "no issuer in $metadata_url"
say "issuer $issuer (at $gateway)"

jar="$(mktemp)"
trap 'rm -f "$jar"' EXIT
# base64url without padding, of standard input.
b64url() { base64 | tr '+/' '-_' | tr -d '=\n'; }

# 1. PKCE: a random secret (the verifier) kept by the client, and its SHA-256
#    (the challenge, S256) sent with the authorization request. Only who
#    holds the verifier can turn the code into tokens. The state ties the
#    answer to this request (the client's CSRF defence).
verifier="$(head -c 32 /dev/urandom | b64url)"
# (The digest's hex as \x escapes, turned into its 32 bytes by printf.)
# shellcheck disable=SC2059
challenge="$(printf "$(printf %s "$verifier" | sha256sum | cut -c1-64 | sed 's/../\\x&/g')" | b64url)"
state="$(head -c 12 /dev/urandom | b64url)"

# 2. The authorization request: auth_service answers with its sign-in form
#    (and a CSRF cookie, kept in the cookie jar as a browser keeps it).
say "GET $gateway/auth/authorize (client $client_id, PKCE S256)"
form="$(curl -fsS -c "$jar" -G "$gateway/auth/authorize" \
    --data-urlencode response_type=code \
    --data-urlencode "client_id=$client_id" \
    --data-urlencode "redirect_uri=$redirect_uri" \
    --data-urlencode "state=$state" \
    --data-urlencode "code_challenge=$challenge" \
    --data-urlencode code_challenge_method=S256)"

# 3. The form sent back as a browser sends it: its hidden fields (the
#    request, the CSRF token) unescaped, the user name and the password,
#    the cookie, and the Origin of the page. The password goes to curl on
#    its standard input, never on a command line.
fields=()
while IFS=$'\t' read -r name value; do
    fields+=(--data-urlencode "$name=$value")
done < <(sed -n 's/.*<input type="hidden" name="\([^"]*\)" value="\([^"]*\)">.*/\1\t\2/p' <<<"$form" \
    | sed -e 's/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g')
((${#fields[@]})) || fail "no sign-in form at $gateway/auth/authorize"
say "POST $gateway/auth/sign-in (user $user)"
location="$(printf %s "$password" | curl -sS -b "$jar" -o /dev/null -w '%{redirect_url}' \
    -H "Origin: $origin" "${fields[@]}" \
    --data-urlencode "username=$user" --data-urlencode "password@-" \
    "$gateway/auth/sign-in")"

# 4. Signed in: the redirect back to the client's redirect URI carries the
#    code (single use, 60 s) and the state, which must be ours.
query="${location#*\?}"
param() { tr '&' '\n' <<<"$query" | sed -n "s/^$1=//p" | head -n 1; }
[[ "$location" == "$redirect_uri?"* && -n "$(param code)" ]] \
    || fail "sign-in refused (wrong password, or the form's answer): ${location:-no redirect}"
[[ "$(param state)" == "$state" ]] || fail "the state that came back is not ours"
say "redirected to $redirect_uri with a code"

# 5. The code and the verifier, with the client's credentials, for tokens.
say "POST $gateway/auth/token (grant_type=authorization_code)"
printf 'user = "%s:%s"\n' "$client_id" "$client_secret" \
    | curl -sS --fail-with-body -K - "$gateway/auth/token" \
        --data-urlencode grant_type=authorization_code \
        --data-urlencode "code=$(param code)" \
        --data-urlencode "redirect_uri=$redirect_uri" \
        --data-urlencode "code_verifier=$verifier"
echo
