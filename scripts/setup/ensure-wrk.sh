#!/usr/bin/env bash
# Makes sure wrk (the load generator of make bench and make soak) is
# installed: installs it where it can (root on Debian or Ubuntu), and
# otherwise says what to install.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
else
    echo "wrk is missing: install it (Debian/Ubuntu: apt-get install wrk)" >&2
    exit 1
fi
