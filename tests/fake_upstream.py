"""A fake upstream index on loopback (never the internet), for pull-through cache tests.

A stdlib HTTP server in a thread: a PEP 691 JSON index that serves what a test puts in it,
counts every request by path, records request headers, and can be stopped (connection
refused) and started again. `routes` lets a test answer a path any way it likes (hostile
pages, slow or endless bodies, redirects), as the red-team suite does; `rate` sends files slowly
and `finished` counts the ones sent to the end.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers import V1_JSON


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.projects: dict[str, list[dict]] = {}
        self.statuses: dict[str, dict] = {}  # project -> its PEP 792 "project-status" object
        self.blobs: dict[str, bytes] = {}
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}  # path -> answer
        self.requests: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []  # of every request, in order
        self.file_delay = 0.0
        self.rate = 0  # bytes per second of each file download; 0: as fast as it goes
        self.finished: Counter[str] = Counter()  # files sent to the end, by path
        self.server: ThreadingHTTPServer | None = None

    def add(self, project: str, path: Path, sha256: str | None = None, uploaded: datetime | None = None):
        data = path.read_bytes()
        self.blobs[path.name] = data
        self.projects.setdefault(project, []).append(
            {
                "filename": path.name,
                "url": f"/files/{path.name}",
                "hashes": {"sha256": sha256 or hashlib.sha256(data).hexdigest()},
                "size": len(data),
                "upload-time": (uploaded or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        )

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.origin}/simple/"

    def start(self) -> FakeUpstream:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests[self.path] += 1
                fake.headers.append(dict(self.headers))
                if self.path in fake.routes:
                    fake.routes[self.path](self)
                    return
                parts = self.path.strip("/").split("/")
                if parts[0] == "simple" and len(parts) == 2 and parts[1] in fake.projects:
                    doc = {"meta": {"api-version": "1.1"}, "name": parts[1], "files": fake.projects[parts[1]]}
                    if parts[1] in fake.statuses:
                        doc["meta"]["api-version"] = "1.4"
                        doc["project-status"] = fake.statuses[parts[1]]
                    body = json.dumps(doc).encode()
                    kind = V1_JSON
                elif parts[0] == "files" and len(parts) == 2 and parts[1] in fake.blobs:
                    time.sleep(fake.file_delay)  # lets concurrent clients overlap
                    body, kind = fake.blobs[parts[1]], "application/octet-stream"
                elif self.path == "/simple/":
                    body, kind = b"<html></html>", "text/html"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                paced = fake.rate and kind == "application/octet-stream"
                step = fake.rate // 20 if paced else max(len(body), 1)
                for start in range(0, len(body), step):
                    if step < len(body):
                        time.sleep(step / fake.rate)
                    self.wfile.write(body[start : start + step])
                fake.finished[self.path] += 1

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
