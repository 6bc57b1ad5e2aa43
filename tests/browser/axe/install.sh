#!/usr/bin/env bash
# Installs axe-core (the npm package pinned in package-lock.json here) for
# the browser tests, which inject it into every page of the console: into
# OUT (default: the cargo target folder's axe-core/, i.e.
# ${CARGO_TARGET_DIR:-target}/axe-core), never into the tree, and prints
# the path of axe.min.js. `npm ci` from the committed lock file, as
# gateway/docs/build.sh does for the docs page; skips the work when OUT is
# already up to date. npm is installed with apt-get when missing (as root on
# Debian or Ubuntu), else the script says what to install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target" == /* ]] || target="$root/$target"
out="${1:-$target/axe-core}"
axe="$out/node_modules/axe-core/axe.min.js"
if [[ -f "$out/.built" && "$out/.built" -nt "$here/package-lock.json" && -f "$axe" ]]; then
    echo "$axe"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    else
        echo "npm is missing: install Node.js and npm (Debian/Ubuntu: apt-get install npm) for axe-core" >&2
        exit 1
    fi
fi
mkdir -p "$out"
cp "$here/package.json" "$here/package-lock.json" "$out/"
(cd "$out" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
[[ -f "$axe" ]] || {
    echo "npm ci in $out did not install $axe" >&2
    exit 1
}
touch "$out/.built"
echo "$axe"
