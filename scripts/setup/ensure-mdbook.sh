#!/usr/bin/env bash
# Makes sure the guide's tools are installed: mdbook and its mdbook-mermaid
# preprocessor (the diagrams), at the pinned versions, both from crates.io
# with `cargo install --locked` (into cargo's own bin folder, $CARGO_HOME/bin,
# where they stay for the next run). Then puts mermaid's script, which
# mdbook-mermaid carries inside its binary, beside docs/book.toml
# (git-ignored), so that the book renders its diagrams with nothing fetched
# at build or read time. Used by scripts/docs/docs.sh (make docs, make docs-serve).
set -euo pipefail
cd "$(dirname "$0")/../.."

mdbook_version="0.5.4"
mermaid_version="0.17.1"
bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$bin:$PATH"

command -v cargo >/dev/null || {
    echo "cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
}
if ! mdbook --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
    echo "docs: installing mdbook $mdbook_version from crates.io (cargo install --locked, a few minutes once)" >&2
    cargo install --locked --quiet mdbook --version "$mdbook_version"
fi
if ! mdbook-mermaid --version 2>/dev/null | grep -qx "mdbook-mermaid $mermaid_version"; then
    echo "docs: installing mdbook-mermaid $mermaid_version from crates.io (cargo install --locked)" >&2
    cargo install --locked --quiet mdbook-mermaid --version "$mermaid_version"
fi
# Writes mermaid.min.js and mermaid-init.js into docs/ when they are missing
# (book.toml already names them and the preprocessor, so it changes nothing
# else). A new mdbook-mermaid brings a new mermaid: remove the two files.
mdbook-mermaid install docs >/dev/null 2>&1 || {
    echo "docs: mdbook-mermaid could not write its files into docs/" >&2
    exit 1
}
