#!/usr/bin/env bash
# Builds the docs page into gateway/docs/dist (or $1): Swagger UI's files
# from the npm package swagger-ui-dist (installed with `npm ci` from the
# committed package-lock.json), with our swagger-initializer.js. nginx serves
# that folder at /docs/. Skips the work when dist is already up to date.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/dist}"
if [[ -f "$out/.built" && "$out/.built" -nt "$here/package-lock.json" && "$out/.built" -nt "$here/swagger-initializer.js" ]]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    else
        echo "npm is missing: install Node.js and npm to build the docs page" >&2
        exit 1
    fi
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$out"
mkdir -p "$out"
dist="$here/node_modules/swagger-ui-dist"
cp "$dist"/{index.html,index.css,swagger-ui.css,swagger-ui-bundle.js,swagger-ui-standalone-preset.js,favicon-16x16.png,favicon-32x32.png,oauth2-redirect.html,oauth2-redirect.js} "$out/"
cp "$here/swagger-initializer.js" "$out/"
touch "$out/.built"
