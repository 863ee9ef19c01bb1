"""A webhook receiver on loopback: a stdlib HTTP server in a thread that checks each POST's
X-Privindex-Signature with the hook's secret (as a receiver should: HMAC-SHA256 of the raw
body, compared in constant time), keeps what it received, and answers the statuses a test
queues in `answers` (then 204)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    genuine: bool  # the signature matched the secret
    status: int  # what the receiver answered

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class FakeReceiver:
    def __init__(self, secret: str = "", port: int = 0):
        self.secret = secret
        self.answers: list[int | tuple] = []  # status, or (status, headers[, body])
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                genuine = hmac.compare_digest(expected, self.headers.get("X-Privindex-Signature", ""))
                answer = receiver.answers.pop(0) if receiver.answers else 204
                status, headers, text = (*answer, b"")[:3] if isinstance(answer, tuple) else (answer, {}, b"")
                with receiver.arrived:  # before answering: the next delivery comes after it
                    receiver.received.append(Received(dict(self.headers), body, genuine, status))
                    receiver.arrived.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/privindex"

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} deliveries arrived, expected {count}")
            return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
