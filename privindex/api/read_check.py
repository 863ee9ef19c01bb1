"""`/_privindex/read-check`: the read check nginx asks (`auth_request`) before it serves a
pre-rendered page of a private index (`read_access = "token"`, static_pages.py).

204 when the request carries a token that may read, 401 otherwise. A token that passed is
remembered for TTL seconds, keyed by an HMAC of its Authorization header and the client's
address under a key made at start (neither the token nor a plain hash of it is kept), so a
page costs one dict lookup instead of a database query; a revoked or disabled token is
refused again within TTL seconds. Failures are never remembered: they are the rare case.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.types import StartResponse

PATH = "/_privindex/read-check"
TTL = 1.0  # seconds a passed token stays passed: how long a revoked one still reads
MAX_REMEMBERED = 4096  # tokens x addresses; past that the memory starts afresh

ReadGuard = Callable[[dict], bool]


class ReadCheck:
    def __init__(self, guard: ReadGuard | None, ttl: float = TTL):
        self.guard = guard  # None: a public index, every read passes
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._passed: dict[bytes, float] = {}  # HMAC -> monotonic time it expires
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if self.may_read(environ):
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        body = b"This index is private: use an API token as the password (user __token__).\n"
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("WWW-Authenticate", 'Basic realm="privindex"'),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    def may_read(self, environ: dict) -> bool:
        if self.guard is None:
            return True
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not authorization:
            return False
        seen = f"{authorization}\0{environ.get('REMOTE_ADDR', '')}".encode("utf-8", "surrogateescape")
        key = hmac.digest(self._key, seen, hashlib.sha256)
        now = time.monotonic()
        if self._passed.get(key, 0.0) > now:
            return True
        if not self.guard(environ):
            return False
        with self._lock:
            if len(self._passed) >= MAX_REMEMBERED:
                self._passed = {k: t for k, t in self._passed.items() if t > now}
                if len(self._passed) >= MAX_REMEMBERED:
                    self._passed.clear()
            self._passed[key] = now + self.ttl
        return True
