#!/usr/bin/env bash
# scripts/docs/console-screenshots.sh: regenerates the console's screenshots
# that the README shows, docs/src/images/console-*.png, from a run of the
# browser tests (tests/browser), which write a screenshot of every page
# they visit to ${CARGO_TARGET_DIR:-target}/console-screenshots/. Runs the
# journeys that reach the pages below (Chromium and chromedriver as for
# `make test`: scripts/setup/prerequisites.sh test installs them), then
# copies those pages; fails if one is missing. Commit the images it writes.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
shots="$target/console-screenshots"

# screenshot name in the tests -> docs/src/images/console-<name>.png
pages=(
    home-signed-in
    clients
    client
    order-created
    client-conflict
    system
)

rm -rf "$shots"
cargo test -p browser --locked --test sign_in --test journeys -- --test-threads=1 \
    admin_signs_in_and_out \
    admin_creates_a_client \
    the_system_page_shows

mkdir -p docs/src/images
for page in "${pages[@]}"; do
    [[ -f "$shots/$page.png" ]] || {
        echo "console-screenshots: no $shots/$page.png: did its test reach the page?" >&2
        exit 1
    }
    cp "$shots/$page.png" "docs/src/images/console-$page.png"
    echo "docs/src/images/console-$page.png"
done
