#!/usr/bin/env bash
# Makes sure nginx (and envsubst, which renders the gateway's template) is
# installed: installs it where it can (root on Debian or Ubuntu), and
# otherwise says, in one line each, what to install
# (scripts/setup/prerequisites.sh runs it for make run and make test).
set -euo pipefail
status=0
if ! command -v envsubst >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gettext-base >/dev/null
    else
        echo "envsubst is missing: install it (Debian/Ubuntu: apt-get install gettext-base)" >&2
        status=1
    fi
fi
if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
    exit "$status"
fi
if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "nginx is missing: installing it with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
    # The package starts a system nginx on port 80; this project runs its own.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    exit "$status"
fi
echo "nginx is missing: install it (Debian/Ubuntu: apt-get install nginx; Fedora: dnf install nginx; macOS: brew install nginx)" >&2
exit 1
