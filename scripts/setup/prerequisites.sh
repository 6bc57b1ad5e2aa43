#!/usr/bin/env bash
# scripts/setup/prerequisites.sh run|test: checks, before anything slow starts,
# what `make run` (run) or `make test` (test) needs, installs what it can
# (as root, or through sudo, on Debian or Ubuntu: nginx, envsubst, npm,
# curl, python3's venv; chromium and chromium-driver on Debian), and otherwise stops with one line per missing
# thing, naming what to install.
#
#   run    Rust (cargo and rustc, at least the workspace's rust-version in
#          Cargo.toml; not needed when RUN_BIN_DIR names binaries built
#          elsewhere), curl, npm (the /docs/ page), envsubst and nginx
#   test   the same, Rust always, python3 with its venv module (the
#          schemathesis and Kubernetes checks install their tools into
#          virtual environments), and Chromium with its WebDriver server
#          (Debian's chromium and chromium-driver: the console's browser
#          tests, tests/browser)
#
# What `make test` installs later by itself (docker-compose, hadolint,
# PostgreSQL, kubectl, cargo-deny, mdbook, ...) is left to the step that
# needs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
what="${1:-}"
[[ "$what" == run || "$what" == test ]] || {
    echo "usage: scripts/setup/prerequisites.sh run|test" >&2
    exit 2
}
# shellcheck source=scripts/setup/apt.sh
source scripts/setup/apt.sh

missing=()
# can_apt: Debian's packages can be installed here (root, or sudo).
can_apt() { command -v apt-get >/dev/null && { [[ "$(id -u)" -eq 0 ]] || command -v sudo >/dev/null; }; }

# need COMMAND PACKAGE MESSAGE: COMMAND, installed from PACKAGE where it can be.
need() {
    local command="$1" package="$2" message="$3"
    command -v "$command" >/dev/null && return 0
    if can_apt; then
        echo "prerequisites: $command is missing: installing $package with apt-get" >&2
        apt_install "$package" && command -v "$command" >/dev/null && return 0
    fi
    missing+=("$message")
}

# The Rust toolchain, at least the workspace's rust-version (edition 2024).
rust_version="$(sed -n 's/^rust-version = "\([0-9.]*\)"/\1/p' Cargo.toml)"
if [[ "$what" == test || -z "${RUN_BIN_DIR:-}" ]]; then
    if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
        missing+=("Rust is missing: install Rust $rust_version or later (https://rustup.rs)")
    else
        have="$(rustc --version | awk '{ print $2 }')"
        if [[ "$(printf '%s\n%s\n' "$rust_version" "$have" | sort -V | head -n 1)" != "$rust_version" ]]; then
            missing+=("Rust $have is older than this workspace's rust-version $rust_version: update it (rustup update)")
        fi
    fi
fi

need curl curl "curl is missing: install curl (Debian/Ubuntu: apt-get install curl)"
need npm npm "npm is missing: install Node.js with npm, for the /docs/ page (Debian/Ubuntu: apt-get install npm)"

if [[ "$what" == test ]]; then
    # python3 -m venv needs ensurepip, which Debian ships apart (python3-venv).
    venv_ok() { python3 -c 'import ensurepip, venv' 2>/dev/null; }
    if ! venv_ok && can_apt; then
        echo "prerequisites: python3's venv module is missing: installing python3-venv with apt-get" >&2
        apt_install python3 python3-venv || true
    fi
    venv_ok || missing+=("python3 with its venv module is missing: install python3 and python3-venv (Debian/Ubuntu: apt-get install python3-venv)")
    # The browser tests (tests/browser) drive Chromium headless through
    # chromedriver; both from Debian (no browser download).
    need chromium chromium "chromium is missing: install it, for the browser tests (Debian: apt-get install chromium)"
    need chromedriver chromium-driver "chromedriver is missing: install it, for the browser tests (Debian: apt-get install chromium-driver)"
fi

# nginx and envsubst (the gateway): installed where it can, or one line each.
if ! nginx_message="$(scripts/setup/ensure-nginx.sh 2>&1)"; then
    while IFS= read -r line; do missing+=("$line"); done <<<"$nginx_message"
elif [[ -n "$nginx_message" ]]; then
    echo "$nginx_message" >&2
fi

if ((${#missing[@]})); then
    for line in "${missing[@]}"; do echo "make $what: $line" >&2; done
    exit 1
fi
