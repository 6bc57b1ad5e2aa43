#!/usr/bin/env bash
# make test: every test, on a fresh machine. Checks its prerequisites first
# (scripts/setup/prerequisites.sh). Installs what is missing (nginx, mdbook;
# docker-compose and hadolint for the deployment checks; kubernetes-validate,
# cel-python, checkov and, when none is installed, kubectl for the Kubernetes
# checks), starts a throwaway PostgreSQL cluster, and runs:
#   1. formatting, clippy (warnings are errors) and the module layers
#      then the docs (scripts/docs/check-docs.py): the README's and the guide's
#      links, names, settings and includes against the tree, the guide built
#      (make docs), and their examples run against `make run`
#   2. the contracts between the services (Pact, tests/contracts): first
#      the consumer tests, which write the pact files to target/pacts/, then
#      each provider, started for real, verified against them
#   3. unit and in-process tests, the end-to-end tests on SQLite, and the
#      test kit's own (tests/kit: the binaries are built from the code)
#   4. the web console in a real browser (tests/browser): Debian's Chromium,
#      headless, driven by chromedriver, one test at a time; axe-core
#      (npm, pinned in tests/browser/axe) installed into the target folder;
#      screenshots of every page in target/console-screenshots/
#   5. a 20-second soak through the gateway on SQLite (scripts/perf/soak.sh): no
#      request may fail, and the WAL must stay under its bound
#   6. schemathesis against both OpenAPI documents, through the gateway
#   7. the end-to-end tests again on PostgreSQL, and compose's PostgreSQL
#      init script run against the same cluster
#   8. `make bench` on PostgreSQL, one short round (it works; no figures),
#      and `make profile`'s table on a small folded-stacks file
#   9. the offline checks of the Docker deployment's files
#  10. the containerised system for real (scripts/deploy/compose-test.sh, `make
#      compose-test`): docker.io and docker-compose installed and dockerd
#      started when missing, stand-ins for the upstream images built from
#      Debian's packages, the images built with the shipped Dockerfiles, the
#      shipped compose.yaml run and checked through the gateway's port
#  11. the system on Docker Swarm mode (scripts/deploy/swarm-test.sh, `make
#      swarm-test`): the same engine, stand-ins and builds, a single-node
#      swarm, the stack deployed from compose.yaml and deploy/swarm/stack.yaml;
#      a rolling update, a task killed, an update that never becomes healthy
#      (rolled back by Swarm) and scaling, each under steady load through
#      the gateway with zero failed requests; the swarm left at the end
#  12. the offline checks of the Kubernetes manifests
#  13. the supply chain: cargo deny check (licences, sources, duplicate
#      versions, advisories), installing cargo-deny when it is missing
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n== %s\n' "$*"; }

step "prerequisites"
scripts/setup/prerequisites.sh test

step "format, lints, and the modules' dependencies (no cycle, layers downwards)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/ci/check-structure.py

step "build the binaries the end-to-end tests start, and the gateway's docs page"
cargo build --workspace --bins --locked
gateway/docs/build.sh

step "the README and the guide against the tree: links, names, settings, includes; the checker's self-test; the guide built"
scripts/docs/check-docs.py check --bin-dir "${CARGO_TARGET_DIR:-target}/debug"
scripts/docs/check-docs.py self-test
scripts/docs/docs.sh build

step "the README's and the guide's examples, run as written against make run (the debug binaries)"
RUN_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" scripts/docs/check-docs.py examples --kind make-run

step "contracts (Pact): the consumers' tests write the pact files, then each provider is verified against them"
# Consumers first: the provider verification reads what they wrote (target/pacts/).
cargo test -p contracts --locked --test consumer_order_service --test consumer_client_service
cargo test -p contracts --locked --test provider_client_service --test provider_order_service

step "unit, in-process and end-to-end tests (SQLite), and the test kit's own"
# --workspace: a plain `cargo test` takes the default members only (the unit
# and in-process tests, see Cargo.toml), not tests/e2e and tests/kit.
# The contracts ran above, in their order (and with the Pact crates' own
# features, which would otherwise change those of the services' test builds).
# The browser tests run next, on their own.
E2E_BACKEND=sqlite cargo test --workspace --exclude contracts --exclude browser --locked

step "the web console in a real browser (Chromium headless, chromedriver, axe-core), one test at a time"
# One Chromium and one whole system per test: not in parallel. axe-core is
# installed from npm into the target folder (tests/browser/axe/install.sh).
tests/browser/axe/install.sh >/dev/null
E2E_BACKEND=sqlite cargo test -p browser --locked -- --test-threads=1

step "a short soak through the gateway (SQLite, 20 s): no request fails, the WAL stays bounded"
SOAK_SECONDS=20 SOAK_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" scripts/perf/soak.sh

step "the API against its OpenAPI documents: schemathesis, through the gateway"
scripts/ci/schemathesis.sh

step "end-to-end tests (PostgreSQL)"
pg_dir="$(mktemp -d /tmp/rest-microservices-pg.XXXXXX)"
trap 'scripts/dev/pg-cluster.sh stop "$pg_dir"' EXIT
pg_url="$(scripts/dev/pg-cluster.sh start "$pg_dir" "${PG_TEST_PORT:-54329}")"
E2E_BACKEND=postgres E2E_PG_URL="$pg_url" cargo test -p e2e --locked

step "compose's PostgreSQL init script: the three roles and databases, idle_in_transaction_session_timeout set"
port="$(cat "$pg_dir/port")"
PGHOST=127.0.0.1 PGPORT="$port" POSTGRES_USER=postgres POSTGRES_DB=postgres \
    CLIENT_DB_PASSWORD=test ORDER_DB_PASSWORD=test AUTH_DB_PASSWORD=test \
    deploy/postgres/init-databases.sh >/dev/null
for role_db in client_service:clients order_service:orders auth_service:auth; do
    timeout="$(psql -qtAX "postgres://${role_db%%:*}@127.0.0.1:$port/${role_db##*:}" -c 'SHOW idle_in_transaction_session_timeout')"
    if [[ "$timeout" != 30s ]]; then
        echo "${role_db%%:*}: idle_in_transaction_session_timeout is '$timeout', not 30s" >&2
        exit 1
    fi
done
echo "ok: client_service, order_service and auth_service sessions end after 30 s idle in a transaction"

step "make bench on PostgreSQL: one round of 1 s per target, with the debug binaries (it works; no figures)"
BENCH_DATABASE=postgres BENCH_SECONDS=1 BENCH_PROFILE=debug scripts/perf/bench.sh

step "make profile's table: self and family shares from folded stacks"
folded="$(mktemp /tmp/rest-microservices-folded.XXXXXX)"
printf '%s\n' \
    'order_service;tokio::runtime::scheduler::multi_thread::worker::run;tracing_subscriber::fmt::fmt_layer::format_event;write_all 30' \
    'order_service;tokio::runtime::scheduler::multi_thread::worker::run;sqlite3_step;sqlite3VdbeExec 50' \
    'order_service;tokio::runtime::scheduler::multi_thread::worker::run;serde_json::ser::to_string 20' >"$folded"
summary="$(scripts/perf/profile-summary.py "$folded")"
rm -f "$folded"
for want in '50.00  sqlite3VdbeExec' '30.00  log line' '50.00  SQLite' '20.00  JSON' '100.00  tokio scheduler'; do
    grep -qF "$want" <<<"$summary" || { echo "profile-summary.py: no '$want' in:"; echo "$summary"; exit 1; } >&2
done
echo "ok: profile-summary.py"

step "deployment files (compose, Dockerfiles, gateway template)"
scripts/deploy/check-deploy.sh

step "the containerised system, built with the shipped Dockerfiles and run from compose.yaml (make compose-test)"
scripts/deploy/compose-test.sh

step "the system on Docker Swarm mode: rolling updates, a killed task, a rollback, scaling, under load (make swarm-test)"
scripts/deploy/swarm-test.sh

step "Kubernetes manifests (rendered, validated, checked against the binaries and compose; no cluster)"
scripts/deploy/check-k8s.sh

step "supply chain: cargo deny check (licences, sources, duplicate versions, advisories)"
scripts/ci/deny.sh

step "all tests passed"
