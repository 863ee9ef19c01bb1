"""The events webhooks hear of, queued by the services where they happen.

`emit` runs inside the service's transaction and queues one outbox delivery per hook that
wants the event (the project's and the index-wide ones), so an action rolled back announces
nothing. Kept apart from notify/webhooks.py (hooks and their address rules), so the
packages services that emit import no HTTP client.
"""

from __future__ import annotations

import time
import uuid

from privindex.db.models import Webhook
from privindex.notify import outbox
from privindex.ops import audit

EVENTS = (
    "release.published",
    "file.uploaded",
    "file.yanked",
    "file.deleted",
    "project.status_changed",
)


def ref(hook_id: int) -> str:
    """The outbox ref of a hook's deliveries: its delivery log."""
    return f"webhook:{hook_id}"


def emit(event: str, project: str, ctx: audit.Context, **data: object) -> None:
    """Queue `event` about project for every hook that wants it, in the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = Webhook.select().where(Webhook.project.is_null() | (Webhook.project == project))
    for hook in hooks:
        if event not in hook.events.split():
            continue
        payload = {
            "hook": hook.id,
            "delivery": str(uuid.uuid4()),
            "event": event,
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "project": project,
            "actor": ctx.actor.username if ctx.actor else None,
            "data": data,
        }
        outbox.enqueue("webhook", payload, ref=ref(hook.id))
