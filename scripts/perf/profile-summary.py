#!/usr/bin/env python3
"""The table `make profile` prints from a folded-stacks file (inferno's
`collapse-perf` output: one line per distinct stack, `frame;frame;... count`,
the outermost frame first).

- self: the functions that were running when sampled (the last frame), the
  25 with the most samples;
- total: the share of samples whose stack passes through each of a few
  families of frames (the log line, metrics, the database driver, …): a
  sample can count in several families, so the shares do not add up to 100.

    scripts/perf/profile-summary.py FOLDED
"""

import re
import sys
from collections import Counter

# (name, pattern of a frame): the families of the "total" table.
FAMILIES = [
    ("kernel (system calls, scheduling)", r"\[k\]|^entry_SYSCALL|_\[k\]$"),
    ("log line (tracing-subscriber fmt)", r"tracing_subscriber::fmt"),
    ("spans (tracing registry, filter)", r"tracing_subscriber::(registry|filter)|sharded_slab"),
    ("metrics", r"metrics_exporter_prometheus|metrics::|kit_observability::metrics"),
    ("SQLite (rusqlite, libsqlite3, sqlx-sqlite)", r"rusqlite|sqlx_sqlite|sqlite3"),
    ("PostgreSQL driver (sqlx-postgres)", r"sqlx_postgres"),
    ("connection pools (sqlx's, deadpool)", r"sqlx_core::pool|deadpool"),
    ("HTTP server (hyper server)", r"hyper::proto::h1::role::Server|hyper::server"),
    ("HTTP client (reqwest, hyper client)", r"reqwest::|hyper_util::client|hyper::client"),
    ("JSON (serde_json)", r"serde_json"),
    ("memory (malloc, free)", r"^(malloc|free|cfree|_int_malloc|_int_free|realloc|_int_realloc|malloc_consolidate|__libc_malloc|__libc_free)"),
    ("tokio scheduler and I/O driver", r"tokio::runtime::(scheduler|io|park|time)"),
]


def main(path):
    self_counts = Counter()
    families = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as folded:
        for line in folded:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            self_counts[frames[-1]] += n
            for name, pattern in FAMILIES:
                if any(re.search(pattern, frame) for frame in frames[1:]):
                    families[name] += n
    if total == 0:
        sys.exit(f"{path}: no samples")
    # inferno weighs each stack by its samples' periods (cpu-clock: ns).
    print(f"\n{total} (the stacks' weight: CPU time sampled, in perf's units)\n")
    print(f"{'self %':>7}  function")
    for frame, n in self_counts.most_common(25):
        print(f"{100 * n / total:7.2f}  {frame[:110]}")
    print(f"\n{'total %':>7}  under")
    for name, _ in FAMILIES:
        print(f"{100 * families[name] / total:7.2f}  {name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
