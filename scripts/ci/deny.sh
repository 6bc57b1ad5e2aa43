#!/usr/bin/env bash
# scripts/ci/deny.sh: the supply-chain check of `make test`, `cargo deny check`
# with deny.toml: licences on an allow-list, crates from crates.io only,
# duplicate versions reported, and the RustSec advisories.
#
# cargo-deny comes from crates.io: when the pinned version is missing it is
# installed with `cargo install --locked` (into cargo's own bin folder,
# $CARGO_HOME/bin, where it stays for the next run).
#
# The advisories: when ../shared/data/advisory-db/ exists (a snapshot of the
# RustSec database, ADVISORY_DB_SNAPSHOT overrides the path), the check runs
# offline against it: cargo-deny reads a database that it has cloned with
# git, so the snapshot's files are committed into a temporary git repository
# (outside the project, removed afterwards) dated as the snapshot, and the
# staleness limit is raised ON PURPOSE (a snapshot is old by nature; its
# date is printed, so a reader knows how old). Elsewhere cargo-deny fetches
# the database as usual, with its own staleness limit.
set -euo pipefail
cd "$(dirname "$0")/../.."

version="0.20.2"
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $version"; then
    echo "deny: installing cargo-deny $version from crates.io (cargo install --locked)"
    cargo install --locked "cargo-deny@$version"
fi

snapshot="${ADVISORY_DB_SNAPSHOT:-../shared/data/advisory-db}"
if [[ ! -d "$snapshot/crates" ]]; then
    echo "deny: no advisory database snapshot at $snapshot: cargo-deny fetches the database"
    exec cargo deny --locked check --hide-inclusion-graph
fi

tmp="$(mktemp -d /tmp/rest-microservices-deny.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
# Where cargo-deny looks for the database of deny.toml's db-urls under
# db-path: "advisory-db-" and the XXH64 hash (seed 0xca80de71) of the URL in
# lower case (cargo-deny's url_to_db_path; fixed for the version above).
db="$tmp/advisory-db-3157b0e258782691"
mkdir -p "$db"
cp -R "$snapshot"/. "$db"/
chmod -R u+w "$db"
# The snapshot's date, from its SNAPSHOT file: "... at COMMIT (YYYY-MM-DD)".
stamp="$(cat "$snapshot/SNAPSHOT" 2>/dev/null || echo unknown)"
date="$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' <<<"$stamp" | tail -n 1 || true)"
date="${date:-1970-01-01}"
(
    cd "$db"
    git init -q
    git add -A
    GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
        git -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m "snapshot $stamp"
    # As old as the snapshot to cargo-deny (it takes the newer of the commit
    # and .git/HEAD's modification time).
    touch -d "${date}T00:00:00Z" .git/HEAD
)
age_days=$((($(date +%s) - $(date -d "$date" +%s)) / 86400))
echo "deny: advisories from the snapshot $snapshot: $stamp, $age_days days old"
echo "deny: offline (--offline), the staleness limit raised on purpose to the snapshot's age + 1 day"

# deny.toml as it is, with the staleness limit of this run added.
sed '/^\[advisories\]/a maximum-db-staleness = "P'"$((age_days + 1))"'D"' deny.toml >"$tmp/deny.toml"
# --offline covers cargo's metadata too, which needs the sources of every
# crate in the lock file, those of other platforms included (a build
# downloads only this platform's): fetch them first, from crates.io.
cargo fetch --locked
DENY_ADVISORY_DB_ROOT="$tmp" cargo deny --locked --offline --config "$tmp/deny.toml" check --hide-inclusion-graph
