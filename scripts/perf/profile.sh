#!/usr/bin/env bash
# make profile: where the services' CPU time goes for one target of
# `make bench`, as a flame graph (SVG) and a table of the busiest functions.
#
# It builds the services with the `profiling` profile (release, plus line
# tables) and frame pointers (so that perf can walk the stacks cheaply), in a
# target folder of its own so the release build is left alone; runs the
# target with scripts/perf/bench.sh while `perf record -e cpu-clock -g` samples
# both services' processes (every thread); then folds the stacks with
# inferno and draws them.
#
#   PROFILE_TARGET   client | order | post   (default: order, which
#                    crosses both services)
#   PROFILE_SECONDS  how long the target runs (default 10)
#   PROFILE_OUT      where the results go (default: target/profile)
#   BENCH_DATABASE, REPLICAS, BENCH_CONNECTIONS: as for make bench
#
# Writes PROFILE_OUT/<target>.svg (open it in a browser: click to zoom) and
# PROFILE_OUT/<target>.folded (the folded stacks), and prints the 25
# functions with the most samples of their own ("self") and the share of
# samples under each of the service's own layers ("total").
#
# Needs perf (Debian's linux-perf, installed when missing) and inferno
# (crates.io, `cargo install inferno` when missing). perf needs
# kernel.perf_event_paranoid <= 1 or root.
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${PROFILE_TARGET:-order}"
case "$target" in
    client | order | post) ;;
    *)
        echo "PROFILE_TARGET=$target: give client, order or post" >&2
        exit 1
        ;;
esac
out="${PROFILE_OUT:-$PWD/target/profile}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if ! command -v perf >/dev/null 2>&1; then
    echo "perf is missing: installing Debian's linux-perf" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >&2
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    echo "inferno is missing: cargo install --locked inferno" >&2
    cargo install --locked inferno
fi

# Frame pointers in every crate (the standard library is Debian's/rustup's
# build, without them: its frames are found from the caller's).
export RUSTFLAGS="${RUSTFLAGS:-} -C force-frame-pointers=yes"
export CARGO_TARGET_DIR="$PWD/target/frame-pointers"

BENCH_PROFILE=profiling BENCH_TARGETS="limit $target" BENCH_SECONDS="${PROFILE_SECONDS:-10}" \
    BENCH_PERF_DIR="$out" scripts/perf/bench.sh

data="$out/$target.perf.data"
perf script -i "$data" 2>/dev/null | inferno-collapse-perf >"$out/$target.folded"
inferno-flamegraph --title "make profile: $target ($(git rev-parse --short=12 HEAD 2>/dev/null || echo '?'))" \
    <"$out/$target.folded" >"$out/$target.svg"

scripts/perf/profile-summary.py "$out/$target.folded"
printf '\nflame graph: %s\n' "$out/$target.svg"
