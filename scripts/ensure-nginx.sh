#!/usr/bin/env bash
# Makes sure nginx (and envsubst, which renders the gateway's template) is
# installed: installs it where it can (root on Debian or Ubuntu), and
# otherwise says exactly what to install.
set -euo pipefail
if ! command -v envsubst >/dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gettext-base >/dev/null
    else
        echo "envsubst is missing: install it (Debian/Ubuntu: apt-get install gettext-base)" >&2
        exit 1
    fi
fi
if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
    exit 0
fi
if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "nginx is missing: installing it with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
    # The package starts a system nginx on port 80; this project runs its own.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    exit 0
fi
cat >&2 <<'MSG'
nginx is not installed, and this script cannot install it (it needs root and apt-get).
Install it, then try again:
    Debian/Ubuntu:  sudo apt-get install nginx
    Fedora/RHEL:    sudo dnf install nginx
    macOS:          brew install nginx
MSG
exit 1
