"""A client of the system through the gateway's published port on
127.0.0.1, as a test sees it: the development client's token, and raw
HTTP requests. Standard library only. Shared by compose-check.py and
swarm-load.py (both in this folder, which Python puts on the module path
of a script it runs)."""

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


class Api:
    def __init__(self, port, secrets_dir):
        self.base = f"http://127.0.0.1:{port}"
        self.secrets_dir = secrets_dir
        self.token = None
        self.token_at = 0.0
        # Threads share the token (the steady reads and the load).
        self.lock = threading.Lock()

    def bearer(self):
        """A token of the development client (SECRETS_DIR/dev-clients.env).
        A token lives 5 minutes: a new one after 4."""
        with self.lock:
            if self.token is None or time.monotonic() - self.token_at > 240:
                env = {}
                with open(os.path.join(self.secrets_dir, "dev-clients.env")) as f:
                    for line in f:
                        if "=" in line:
                            k, v = line.strip().split("=", 1)
                            env[k] = v
                basic = base64.b64encode(f"{env['CLIENT_ID']}:{env['CLIENT_SECRET']}".encode()).decode()
                status, _, body = self.raw(
                    "POST",
                    "/auth/token",
                    urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
                    {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + basic},
                )
                if status != 200:
                    raise RuntimeError(f"POST /auth/token answered {status}: {body[:300]!r}")
                self.token = json.loads(body)["access_token"]
                self.token_at = time.monotonic()
            return self.token

    def raw(self, method, path, data=None, headers=None, timeout=15):
        """(status, headers, body); an HTTP error status is an answer too."""
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()
