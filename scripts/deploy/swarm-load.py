#!/usr/bin/env python3
"""The steady load of `make swarm-test` (scripts/deploy/swarm-test.sh), through
the gateway's published port on 127.0.0.1 only. Standard library only.

    swarm-load.py PORT SECRETS_DIR LABEL STOP_FILE MAX_SECONDS [THREADS] [--gate reads]

First makes a client and an order of its own (retried until the system
answers, at most 60 s); then THREADS workers (default 4), each in a loop
until STOP_FILE exists or MAX_SECONDS have passed: a read of the client, a
read of the order, a keyed create (POST /order/ with an Idempotency-Key
and an item named after it), in turn, about 40 requests a second in all.
Every request gets 20 s, and one that does not answer 2xx is a failure
(a failed create is sent again with the same key, as a client should, until
it is answered, so that what is stored can be checked). At the end, the
client's orders are listed: each key must be stored exactly once.

Prints one line, `LABEL: sent N, failed F (reads R, of which failed FR;
creates C, of which failed FC), creates stored S (exactly once: yes|no)`
(N counts the creates sent again), the first failures, and exits 1 when a
request failed or a create is not stored exactly once. With `--gate reads`
only a failed read counts (a create may fail, it is sent again, and must
then be stored once): the gate of a task killed with SIGKILL, whose
creates in flight fail as they must (the gateway never sends a POST twice).
The requests carry X-Request-ID `LABEL-…` (the gateway keeps it; the
services log it): swarm-test.sh counts them in each task's log.
"""

import json
import os
import sys
import threading
import time

import gateway_client


class Api(gateway_client.Api):
    def call(self, method, path, body=None, headers=None):
        """(status, body): with the token, the body as JSON, 20 s."""
        h = {"Authorization": "Bearer " + self.bearer()}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        status, _, answer = self.raw(method, path, data, h, timeout=20)
        return status, answer


def setup(api, label):
    """A client and an order of this run; retried until the system answers."""
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        try:
            status, body = api.call(
                "POST", "/client/",
                {"name": "Load", "card_number": f"L-{label}", "card_issued_on": "2021-06-15"},
                {"Idempotency-Key": f"{label}-client"},
            )
            if status == 201:
                client = json.loads(body)["id"]
                status, body = api.call(
                    "POST", "/order/", {"client_id": client, "item": f"{label}-first", "price": "1.00"},
                    {"Idempotency-Key": f"{label}-first"},
                )
                if status == 201:
                    return client, json.loads(body)["id"]
            last = f"{status} {body[:200]!r}"
        except Exception as error:  # the system is not answering yet
            last = repr(error)
        time.sleep(1)
    sys.exit(f"{label}: no client and order to read after 60 s: {last}")


def main():
    args = sys.argv[1:]
    gate = "all"
    if "--gate" in args:
        at = args.index("--gate")
        gate = args[at + 1]
        del args[at:at + 2]
    port, secrets_dir, label, stop_file, max_seconds = args[:5]
    threads = int(args[5]) if len(args) > 5 else 4
    api = Api(port, secrets_dir)
    client, order = setup(api, label)
    deadline = time.monotonic() + float(max_seconds)
    lock = threading.Lock()
    counts = {"sent": 0, "failed": 0, "reads": 0, "creates": 0, "failed_reads": 0, "failed_creates": 0}
    failures = []
    keys = []

    def failed(kind, what):
        with lock:
            counts["failed"] += 1
            counts[kind] += 1
            if len(failures) < 10:
                failures.append(f"{time.strftime('%H:%M:%S')} {what}")

    def send(method, path, body=None, key=None, rid=None):
        with lock:
            counts["sent"] += 1
        headers = {"X-Request-ID": rid}
        if key:
            headers["Idempotency-Key"] = key
        try:
            return api.call(method, path, body, headers)
        except Exception as error:  # a connection that failed, a timeout
            return repr(error), b""

    def worker(n):
        i = 0
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            rid = f"{label}-{n}-{i}"
            kind = i % 3
            if kind < 2:
                path = f"/client/{client}" if kind == 0 else f"/order/{order}"
                status, body = send("GET", path, rid=rid)
                with lock:
                    counts["reads"] += 1
                if status != 200:
                    failed("failed_reads", f"GET {path} ({rid}): {status} {body[:160]!r}")
            else:
                key = f"{label}-k{n}-{i}"
                order_body = {"client_id": client, "item": key, "quantity": 1, "price": "1.00"}
                with lock:
                    counts["creates"] += 1
                    keys.append(key)
                status, body = send("POST", "/order/", order_body, key, rid)
                if status != 201:
                    failed("failed_creates", f"POST /order/ ({rid}, key {key}): {status} {body[:160]!r}")
                    # Sent again with its key, as a client does, until it is
                    # answered (at most 10 times): then it must be stored once.
                    for attempt in range(10):
                        time.sleep(1)
                        status, body = send("POST", "/order/", order_body, key, f"{rid}-retry{attempt}")
                        if status == 201:
                            break
            i += 1
            time.sleep(0.1)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    sent = (
        f"{label}: sent {counts['sent']}, failed {counts['failed']} (reads {counts['reads']}, of which failed"
        f" {counts['failed_reads']}; creates {counts['creates']}, of which failed {counts['failed_creates']})"
    )
    # What is stored: the client's orders, every page.
    items = {}
    after = 0
    for _ in range(1000):
        status, body = api.call("GET", f"/order/?client_id={client}&limit=1000&after={after}")
        if status != 200:
            print(f"{sent}, creates stored: unknown")
            for f in failures:
                print(f"    {f}", file=sys.stderr)
            sys.exit(f"{label}: listing the orders answered {status}: {body[:300]!r}")
        page = json.loads(body)
        for o in page:
            items[o["item"]] = items.get(o["item"], 0) + 1
        if len(page) < 1000:
            break
        after = page[-1]["id"]
    stored = sum(1 for k in keys if items.get(k) == 1)
    twice = [k for k in keys if items.get(k, 0) > 1]
    missing = [k for k in keys if k not in items]
    once = stored == len(keys) and not twice
    print(f"{sent}, creates stored {stored} (exactly once: {'yes' if once else 'no'})")
    for f in failures:
        print(f"    {f}", file=sys.stderr)
    if twice:
        print(f"    stored more than once: {twice[:10]}", file=sys.stderr)
    if missing:
        print(f"    not stored: {missing[:10]}", file=sys.stderr)
    counted = counts["failed_reads"] if gate == "reads" else counts["failed"]
    ok = counted == 0 and once and counts["reads"] > 0 and counts["creates"] > 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
