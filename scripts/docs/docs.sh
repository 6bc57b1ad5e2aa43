#!/usr/bin/env bash
# scripts/docs/docs.sh build|serve: the guide, an mdBook under docs/.
#
#   build   builds it into target/book (offline: the tools and mermaid's
#           script are installed first, by scripts/setup/ensure-mdbook.sh), and
#           fails on any error mdbook reports, also those it only logs (an
#           {{#include}} of a file that does not exist)
#   serve   builds it and serves it on http://localhost:DOCS_PORT (8090),
#           rebuilding on every change; Ctrl-C stops it
#
# `make docs` and `make docs-serve`. Open target/book/index.html in a browser.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup/ensure-mdbook.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
case "${1:-build}" in
    build)
        log="$(mktemp /tmp/rest-microservices-mdbook.XXXXXX)"
        trap 'rm -f "$log"' EXIT
        status=0
        # (mdbook-mermaid warns that it was built against mdbook 0.5.0: its
        # interface is the same in every 0.5 release.)
        mdbook build docs 2>&1 | { grep -v 'mdbook-mermaid preprocessor was built against' || true; } | tee "$log" >&2 || status=$?
        # mdbook exits 0 after an include it could not read (it logs ERROR
        # and leaves the line as it was): that is a broken book here.
        if ((status != 0)) || grep -q 'ERROR' "$log"; then
            echo "docs: mdbook reported an error (above)" >&2
            exit 1
        fi
        echo "docs: built into target/book (open target/book/index.html)"
        ;;
    serve)
        exec mdbook serve docs --port "${DOCS_PORT:-8090}"
        ;;
    *)
        echo "usage: scripts/docs/docs.sh build|serve" >&2
        exit 2
        ;;
esac
