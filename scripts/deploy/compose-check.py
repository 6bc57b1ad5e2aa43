#!/usr/bin/env python3
"""The HTTP side of `make compose-test` (scripts/deploy/compose-test.sh), through
the gateway's published port on 127.0.0.1 only. Standard library only.

  compose-check.py api PORT SECRETS_DIR
      the API end to end: clients and orders CRUD, an order showing its
      client, 409 on deleting a client with orders, the cascade, 422 and
      415, the docs page, the services' own endpoints not routed, and an
      X-Request-ID on every response. Prints `CLIENT=id ORDER=id` of a
      client and an order left in place for the persistence check.
  compose-check.py reads PORT SECRETS_DIR CLIENT ORDER SECONDS STOP_FILE
      steady reads of that client and order (4 threads) for SECONDS, or
      until STOP_FILE exists; fails when a single read failed.
  compose-check.py get PORT SECRETS_DIR PATH STATUS
      one GET, which must answer STATUS.
  compose-check.py prometheus PORT JOB=COUNT... TIMEOUT
      waits until Prometheus's `up` has COUNT targets of each JOB, all 1.
  compose-check.py console PORT SECRETS_DIR
      the web console at the gateway's `/`, as a browser reaches it
      (http://localhost:PORT): its page; "Sign in" sends the browser to the
      issuer's /auth/authorize; then a whole sign-in as admin (the password
      from SECRETS_DIR/dev-users.env): auth_service's form, the callback,
      where the console exchanges the code (its back channel through the
      gateway's inner address), and `/` signed in, with "Sign out".
"""

import html
import re

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gateway_client

failures = []


def check(cond, what):
    if cond:
        print(f"    ok: {what}")
    else:
        print(f"    FAILED: {what}", file=sys.stderr)
        failures.append(what)


class Api(gateway_client.Api):
    """The gateway's client (gateway_client.py), each call checked for its
    X-Request-ID."""

    def call(self, method, path, body=None, content_type="application/json", auth=True):
        headers = {}
        if auth:
            headers["Authorization"] = "Bearer " + self.bearer()
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        status, head, raw = self.raw(method, path, data, headers)
        rid = {k.lower(): v for k, v in head.items()}.get("x-request-id", "")
        check(rid != "", f"{method} {path}: {status} with X-Request-ID {rid}")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return status, parsed


def api(port, secrets_dir):
    a = Api(port, secrets_dir)
    tag = str(int(time.time() * 1000) % 10**9)
    status, client = a.call("POST", "/client/", {"name": "Ada", "card_number": f"C-{tag}", "card_issued_on": "2021-06-15"})
    check(status == 201, f"create a client: 201 (got {status})")
    cid = client["id"]
    status, got = a.call("GET", f"/client/{cid}")
    check(status == 200 and got == client, "read the client back")
    status, got = a.call("PUT", f"/client/{cid}", {"name": "Ada King", "card_number": f"K-{tag}", "card_issued_on": "2021-06-15"})
    check(status == 200 and got["name"] == "Ada King", f"replace the client: 200 (got {status})")
    status, listed = a.call("GET", "/client/")
    check(status == 200 and any(c["id"] == cid for c in listed), "the client is listed")

    status, order = a.call("POST", "/order/", {"client_id": cid, "item": "Tea", "quantity": 2, "price": "3.50", "status": "new"})
    check(status == 201, f"create an order: 201 (got {status})")
    oid = order["id"]
    status, got = a.call("GET", f"/order/{oid}")
    check(status == 200 and got["client"]["id"] == cid and got["client"]["name"] == "Ada King",
          "the order shows its client (client_service called by order_service)")
    status, got = a.call("PUT", f"/order/{oid}", {"client_id": cid, "item": "Scone", "quantity": 1, "price": "2.00", "status": "paid"})
    check(status == 200 and got["item"] == "Scone", f"replace the order: 200 (got {status})")
    status, listed = a.call("GET", f"/order/?client_id={cid}")
    check(status == 200 and [o["id"] for o in listed] == [oid], "the client's orders are listed")
    status, _ = a.call("POST", "/order/", {"client_id": 999999999, "item": "Tea", "price": "1.00"})
    check(status == 422, f"an order of a missing client: 422 (got {status})")

    status, _ = a.call("DELETE", f"/client/{cid}")
    check(status == 409, f"delete a client with orders: 409 (got {status})")
    status, _ = a.call("DELETE", f"/client/{cid}?cascade=true")
    check(status == 204, f"delete it with cascade=true: 204 (got {status})")
    status, _ = a.call("GET", f"/client/{cid}")
    check(status == 404, f"the client is gone: 404 (got {status})")
    status, _ = a.call("GET", f"/order/{oid}")
    check(status == 404, f"its order is gone too: 404 (got {status})")

    status, _ = a.call("POST", "/client/", {"name": "", "card_number": f"E-{tag}", "card_issued_on": "2021-06-15"})
    check(status == 422, f"an invalid client: 422 (got {status})")
    status, _ = a.call("POST", "/client/", b'{"name":"a"}', content_type="text/plain")
    check(status == 415, f"a body that is not JSON: 415 (got {status})")
    status, _ = a.call("GET", "/client/", auth=False)
    check(status == 401, f"no token: 401 (got {status})")

    status, page = a.call("GET", "/docs/", auth=False)
    check(status == 200 and b"swagger" in page.lower(), f"the docs page: 200 (got {status})")
    status, _ = a.call("GET", "/healthz", auth=False)
    check(status == 200, f"the gateway's /healthz: 200 (got {status})")
    for path in ("/metrics", "/readyz", "/client/metrics", "/order/metrics", "/stub_status"):
        status, body = a.call("GET", path)
        text = body if isinstance(body, bytes) else json.dumps(body).encode()
        check(status >= 400 and b"http_requests_total" not in text and b"Active connections" not in text,
              f"{path} through the gateway is no service's /metrics nor nginx's stub_status ({status})")

    # Left in place for the persistence check.
    status, keep = a.call("POST", "/client/", {"name": "Kept", "card_number": f"P-{tag}", "card_issued_on": "2021-06-15"})
    status2, kept_order = a.call("POST", "/order/", {"client_id": keep["id"], "item": "Kept", "price": "1.00"})
    check(status == 201 and status2 == 201, "a client and an order to keep")
    if failures:
        sys.exit(1)
    print(f"CLIENT={keep['id']} ORDER={kept_order['id']}")


def reads(port, secrets_dir, client, order, seconds, stop_file):
    a = Api(port, secrets_dir)
    a.bearer()
    deadline = time.monotonic() + float(seconds)
    counts = {"ok": 0, "failed": 0}
    errors = []
    lock = threading.Lock()

    def worker(n):
        paths = [f"/client/{client}", f"/order/{order}"]
        i = n
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            path = paths[i % 2]
            i += 1
            try:
                status, _, _ = a.raw("GET", path, headers={"Authorization": "Bearer " + a.bearer()}, timeout=20)
            except Exception as error:  # a connection that failed
                status = repr(error)
            with lock:
                if status == 200:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    if len(errors) < 10:
                        errors.append(f"{time.strftime('%H:%M:%S')} GET {path}: {status}")
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"    reads: {counts['ok']} answered 200, {counts['failed']} failed")
    for e in errors:
        print(f"    {e}", file=sys.stderr)
    if counts["failed"] or counts["ok"] == 0:
        sys.exit(1)


def get(port, secrets_dir, path, want):
    status, _ = Api(port, secrets_dir).call("GET", path)
    check(status == int(want), f"GET {path}: {want} (got {status})")
    sys.exit(1 if failures else 0)


def prometheus(port, specs, timeout):
    want = {}
    for spec in specs:
        job, count = spec.split("=")
        want[job] = int(count)
    deadline = time.monotonic() + float(timeout)
    seen = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=up", timeout=5) as reply:
                result = json.loads(reply.read())["data"]["result"]
            seen = {}
            for r in result:
                seen.setdefault(r["metric"]["job"], []).append((r["metric"]["instance"], r["value"][1]))
            if all(len(seen.get(j, [])) == n and all(v == "1" for _, v in seen[j]) for j, n in want.items()):
                for j in sorted(seen):
                    print(f"    ok: job {j}: " + ", ".join(f"{i} up={v}" for i, v in sorted(seen[j])))
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(3)
    print(f"    FAILED: Prometheus's up after {timeout}s: {seen} (wanted {want}, all 1)", file=sys.stderr)
    sys.exit(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Requests as a browser sends them, redirects not followed, cookies kept
    by name (every one is for the one host, localhost:PORT)."""

    def __init__(self):
        self.opener = urllib.request.build_opener(NoRedirect)
        self.cookies = {}

    def send(self, method, url, data=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=15) as reply:
                status, hdrs, body = reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as error:
            status, hdrs, body = error.code, error.headers, error.read()
        for line in hdrs.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in line.lower() or not value:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return status, hdrs, body.decode("utf-8", "replace")


def console(port, secrets_dir):
    origin = f"http://localhost:{port}"
    users = {}
    with open(os.path.join(secrets_dir, "dev-users.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                users[k] = v
    b = Browser()
    status, headers, page = b.send("GET", origin + "/")
    check(status == 200 and headers.get("Content-Type", "").startswith("text/html") and "Sign in" in page,
          f"GET / through the gateway: the console's page, signed out ({status}, {headers.get('Content-Type')})")
    status, headers, _ = b.send("GET", origin + "/console/sign-in")
    authorize = headers.get("Location") or ""
    check(status in (302, 303, 307) and authorize.startswith(origin + "/auth/authorize?"),
          f"GET /console/sign-in: a redirect to the issuer's {origin}/auth/authorize ({status}, {authorize[:80]})")
    if failures:
        sys.exit(1)
    status, _, form = b.send("GET", authorize)
    fields = {html.unescape(n): html.unescape(v)
              for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', form)}
    check(status == 200 and fields, f"the issuer's sign-in form ({status})")
    fields.update(username=users.get("ADMIN_USER", "admin"), password=users.get("ADMIN_PASSWORD", ""))
    status, headers, _ = b.send("POST", origin + "/auth/sign-in", urllib.parse.urlencode(fields).encode(),
                                {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"})
    callback = headers.get("Location") or ""
    check(status in (302, 303) and callback.startswith(origin + "/console/callback?"),
          f"signed in as admin: back to the console's /console/callback ({status})")
    if failures:
        sys.exit(1)
    status, headers, body = b.send("GET", callback)
    check(status in (302, 303) and headers.get("Location") == "/",
          f"the callback: the code exchanged by the console, a session, back to / ({status}, {headers.get('Location')}{body[:200]})")
    status, _, page = b.send("GET", origin + "/")
    check(status == 200 and "Sign out" in page, f"GET / signed in: the page offers \"Sign out\" ({status})")
    sys.exit(1 if failures else 0)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "api":
        api(*args)
    elif cmd == "reads":
        reads(*args)
    elif cmd == "get":
        get(*args)
    elif cmd == "prometheus":
        prometheus(args[0], args[1:-1], args[-1])
    elif cmd == "console":
        console(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
