"""Delivering a webhook: the outbox's sender for kind 'webhook'.

The JSON body is made at each try from the queued event (the same bytes each time, while
public_url stays the same), signed
with the hook's secret: `X-Privindex-Signature: sha256=<hex HMAC-SHA256 of the body>`, and
`X-Privindex-Delivery` names the delivery (the same on every retry: receivers deduplicate
by it). The POST goes through upstream/client.py's guarded connections: only public
addresses, checked on what the host resolves to inside the connection, unless an admin
allowed the host and port (webhook_allowed_hosts: then only the status of an answer is
logged, never its text); no proxy from the environment (it would connect for us, past
that check); redirects are not followed; the whole try ends within
webhook_timeout and at most MAX_ANSWER bytes of the answer are read. 2xx is delivered;
anything else raises, and the outbox tries again later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from privindex import __version__
from privindex.config import Settings
from privindex.db.models import Webhook
from privindex.notify import outbox
from privindex.notify.webhooks import allowed, shown_url
from privindex.ops.logs import escape_controls
from privindex.upstream.client import RefusedAddress, by_deadline, guarded_adapter

if TYPE_CHECKING:
    import requests

MAX_ANSWER = 64 * 1024
SIGNATURE_HEADER = "X-Privindex-Signature"
DELIVERY_HEADER = "X-Privindex-Delivery"
EVENT_HEADER = "X-Privindex-Event"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict, index_url: str) -> bytes:
    """The JSON a receiver gets: the event, where it happened, and its data."""
    document = {
        "event": payload["event"],
        "delivery": payload["delivery"],
        "occurred_at": payload["occurred_at"],
        "index": index_url,
        "project": payload["project"],
        "project_url": f"{index_url}/projects/{payload['project']}/",
        "actor": payload["actor"],
        "data": payload["data"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class WebhookSender:
    def __init__(self, settings: Settings):
        self.timeout = settings.webhook_timeout
        self.index_url = settings.base_url
        self.allowed = settings.webhook_allowed_host_names
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """Made at the first delivery: requests costs every start 30 ms otherwise."""
        if self._session is None:
            import requests

            session = requests.Session()
            session.trust_env = False  # no proxy: it would connect past the address check
            adapter = guarded_adapter(lambda origin: allowed(*origin, self.allowed))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def send(self, payload: dict) -> str:
        import requests

        hook = Webhook.get_or_none(Webhook.id == payload["hook"])
        if hook is None:
            raise outbox.Undeliverable("the webhook was removed")
        body = body_of(payload, self.index_url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"privindex/{__version__} (webhook)",
            SIGNATURE_HEADER: signature(hook.secret, body),
            DELIVERY_HEADER: payload["delivery"],
            EVENT_HEADER: payload["event"],
        }
        where = shown_url(hook.url)
        deadline = time.monotonic() + self.timeout
        try:
            with by_deadline(deadline):
                resp = self.session.post(
                    hook.url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    stream=True,
                    timeout=self.timeout,
                )
                answer = _start_of(resp, deadline)
        except RefusedAddress as exc:
            raise outbox.Undeliverable(
                f"refused: {exc}; an admin may allow the host (webhook_allowed_hosts)"
            ) from None
        except requests.RequestException as exc:
            if time.monotonic() >= deadline or isinstance(exc, requests.Timeout):
                reason = f"no answer within {self.timeout:g} s"
            elif isinstance(exc, requests.ConnectionError):
                reason = "cannot connect (is it up, and reachable from this server?)"
            else:  # its text would name the whole URL
                reason = type(exc).__name__
            raise RuntimeError(f"{where}: {reason}") from None
        if 200 <= resp.status_code < 300:
            return f"HTTP {resp.status_code}"
        if 300 <= resp.status_code < 400:
            target = urlsplit(resp.headers.get("Location", ""))
            raise RuntimeError(
                f"HTTP {resp.status_code}: redirects are not followed (to {target.netloc or 'nowhere'}); "
                "give the final URL"
            )
        parts = urlsplit(hook.url)
        if allowed(parts.scheme, parts.hostname or "", parts.port, self.allowed):
            # a private service's answer is not for the delivery log: its status only
            raise RuntimeError(f"HTTP {resp.status_code}")
        said = escape_controls(answer[:200].decode("utf-8", "replace")).strip()
        raise RuntimeError(f"HTTP {resp.status_code}" + (f": {said}" if said else ""))


def _start_of(resp: requests.Response, deadline: float) -> bytes:
    """The first MAX_ANSWER bytes of an answer that is not 2xx (for the error), by the
    deadline: the socket is shut then, however slowly the bytes come."""
    if 200 <= resp.status_code < 300:
        resp.close()
        return b""
    timer = threading.Timer(
        max(deadline - time.monotonic(), 0.0), getattr(resp.raw.connection, "_cut", lambda: None)
    )
    timer.daemon = True
    timer.start()
    try:
        return resp.raw.read(MAX_ANSWER, decode_content=False) or b""
    except Exception:  # cut off, or broken: the status is what counts
        return b""
    finally:
        timer.cancel()
        resp.close()


def configure(settings: Settings) -> None:
    """The outbox's webhook sender in this process."""
    outbox.register_sender("webhook", WebhookSender(settings).send)
