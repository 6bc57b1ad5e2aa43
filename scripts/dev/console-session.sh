#!/usr/bin/env bash
# scripts/dev/console-session.sh [USER]
#
# Signs USER (default admin) in to the web console of the running system,
# with curl, as a browser does: the console's "Sign in" (which sends the
# browser to auth_service with PKCE), auth_service's form, and the
# console's callback. Prints the session cookie (`console_session=…`) on
# standard output, for curl or wrk:
#
#   cookie="$(scripts/dev/console-session.sh viewer)"
#   curl -H "Cookie: $cookie" http://localhost:8080/console/clients
#
#   DATA_DIR     the folder of dev-users.env (default ./data, make run's)
#   CONSOLE_URL  where people open the console (default http://localhost:8080,
#                the console's CONSOLE_PUBLIC_URL under make run and compose)
#   PASSWORD     USER's password; default: from dev-users.env, for admin
#                and viewer
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in -h | --help) sed -n '2,/^set -euo pipefail$/{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
user="${1:-admin}"
data_dir="${DATA_DIR:-./data}"
console="${CONSOLE_URL:-http://localhost:8080}"
console="${console%/}"
fail() { echo "console-session: $*" >&2; exit 1; }

upper="$(tr '[:lower:]' '[:upper:]' <<<"$user")"
password="${PASSWORD:-$(sed -n "s/^${upper}_PASSWORD=//p" "$data_dir/dev-users.env" 2>/dev/null | head -n 1)}"
[[ -n "$password" ]] || fail "no password for $user: set PASSWORD (dev-users.env has admin's and viewer's)"

jar="$(mktemp)"
trap 'rm -f "$jar"' EXIT
# 1. "Sign in": the console keeps PKCE's verifier and a state, and sends the
#    browser to the authorization endpoint.
authorize="$(curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$console/console/sign-in")"
[[ -n "$authorize" ]] || fail "no redirect from $console/console/sign-in: is the console running there?"
origin="$(sed -E -n 's#^([a-z][a-z0-9+.-]*://[^/]+).*#\1#p' <<<"$authorize")"
# 2. auth_service's form, then 3. sent back with the user's name and password.
form="$(curl -fsS -c "$jar" -b "$jar" "$authorize")"
fields=()
while IFS=$'\t' read -r name value; do
    fields+=(--data-urlencode "$name=$value")
done < <(sed -n 's/.*<input type="hidden" name="\([^"]*\)" value="\([^"]*\)">.*/\1\t\2/p' <<<"$form" \
    | sed -e 's/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g')
((${#fields[@]})) || fail "no sign-in form at $authorize"
callback="$(printf %s "$password" | curl -sS -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' \
    -H "Origin: $origin" "${fields[@]}" \
    --data-urlencode "username=$user" --data-urlencode "password@-" "$origin/auth/sign-in")"
[[ "$callback" == */console/callback\?* ]] || fail "sign-in refused (wrong password?): ${callback:-no redirect}"
# 4. The console's callback: it exchanges the code and opens a session.
curl -fsS -c "$jar" -b "$jar" -o /dev/null "$callback"
session="$(awk '$6 ~ /console_session$/ && $7 != "" {print $6 "=" $7}' "$jar" | tail -n 1)"
[[ -n "$session" ]] || fail "the console opened no session (its log says why)"
echo "$session"
