"""The outbox: deliveries (mail, webhooks) written in the transaction of the action they
announce, sent later by a background thread of each server process, with retries.

Why a table: a slow or down mail server or webhook target must never delay a request, a
delivery must survive a restart, and an action that is rolled back must send nothing.
`enqueue` is one INSERT in the caller's transaction. The sender (`deliver_due`) claims one
due row with a single UPDATE (on PostgreSQL its row is picked `FOR UPDATE SKIP LOCKED`, so
several processes share the work; SQLite's single writer makes the same statement a claim),
which moves the row's next attempt a lease ahead; the kind's sender then runs outside any
transaction, and the outcome is recorded: sent, or tried again after an exponential
back-off, or failed after `outbox_max_attempts` (an admin may send it again). A malformed
row (a kind this version does not know, a payload that is not a JSON object) fails at once
with the reason, and the sender goes on with the next. A process that
dies mid-send leaves the row to be claimed again when the lease ends: delivery is at least
once (webhook receivers deduplicate by `X-Privindex-Delivery`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from privindex.config import Settings
from privindex.db.connection import database, is_postgres
from privindex.db.models import OutboxItem
from privindex.ops import audit, logs

log = logging.getLogger(__name__)

KINDS = ("mail", "webhook")
LEASE_SECONDS = 300.0  # a claimed row is left alone this long: longer than any send may take
KEEP_SENT_SECONDS = 30 * 86400  # sent rows are the webhooks' delivery log for this long
MAX_ERROR_CHARS = 500

Send = Callable[[dict], str | None]  # raises to retry; may return what the target answered


class Undeliverable(Exception):
    """A delivery that can never succeed (its webhook was removed, its row is malformed):
    failed at once."""


class OutboxError(Exception):
    """An admin's request about a delivery that cannot be done (message says why)."""


@dataclass(frozen=True)
class _Sender:
    send: Send
    forget_after_send: tuple[str, ...]


_senders: dict[str, _Sender] = {}


def register_sender(kind: str, send: Send, *, forget_after_send: tuple[str, ...] = ()) -> None:
    """The function that delivers `kind` in this process (one per kind; the last wins). A
    row of a kind without a sender waits. forget_after_send: payload keys dropped once
    sent or failed for good (a mail's text may carry a single-use link; only the recipient
    should ever hold it, and a failed one is not kept for an admin to read either)."""
    _check_kind(kind)
    _senders[kind] = _Sender(send, forget_after_send)


def unregister_sender(kind: str) -> None:
    _senders.pop(kind, None)


def enqueue(kind: str, payload: dict, *, key: str | None = None, ref: str | None = None) -> None:
    """Queue a delivery, in the caller's transaction if there is one. key: a delivery with
    the same key is queued once (later ones are dropped); ref: what it belongs to
    ('webhook:<id>'), so its log can be listed."""
    _check_kind(kind)
    now = time.time()
    query = OutboxItem.insert(
        kind=kind,
        payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
        dedupe_key=key,
        ref=ref,
        next_attempt_at=now,
        created_at=now,
    )
    if key is not None:
        query = query.on_conflict_ignore()
    query.execute()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}; one of {', '.join(KINDS)}")


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling, capped."""
    base, cap = settings.outbox_retry_base_seconds, settings.outbox_retry_max_seconds
    return float(min(cap, base * 2 ** min(attempts - 1, 60)))


def claim(kinds: tuple[str, ...], now: float | None = None) -> OutboxItem | None:
    """The next due row of one of kinds, or of a kind this version does not know (so it
    can be failed, not left waiting forever), claimed for LEASE_SECONDS (attempts
    counted), or None."""
    now = time.time() if now is None else now
    p = database.param
    skip_locked = " FOR UPDATE SKIP LOCKED" if is_postgres(database) else ""
    wanted = f"kind NOT IN ({', '.join([p] * len(KINDS))})"
    if kinds:
        wanted = f"(kind IN ({', '.join([p] * len(kinds))}) OR {wanted})"
    rows = database.execute_sql(
        f"UPDATE outbox SET attempts = attempts + 1, next_attempt_at = {p} WHERE id = ("
        f"SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= {p} AND {wanted} "
        f"ORDER BY next_attempt_at, id LIMIT 1{skip_locked}) RETURNING id",
        (now + LEASE_SECONDS, now, *kinds, *KINDS),
    ).fetchall()
    return OutboxItem.get_or_none(OutboxItem.id == rows[0][0]) if rows else None


def deliver_due(settings: Settings) -> bool:
    """Claim and send one due delivery; whether there was one."""
    item = claim(tuple(_senders))
    if item is None:
        return False
    sender = _senders.get(item.kind)
    started = time.monotonic()
    try:
        if sender is None:
            raise Undeliverable(f"unknown kind {item.kind!r}: this version sends {', '.join(KINDS)}")
        outcome = sender.send(_payload(item))
    except Exception as exc:  # any failure is recorded; the next try may succeed
        duration = time.monotonic() - started
        error = logs.redact(str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]
        final = isinstance(exc, Undeliverable) or item.attempts >= settings.outbox_max_attempts
        log.warning(
            "outbox: %s %d attempt %d failed%s: %s",
            item.kind,
            item.id,
            item.attempts,
            "" if not final else ", giving up",
            error,
        )
        OutboxItem.update(
            status="failed" if final else "pending",
            next_attempt_at=time.time() + backoff(settings, item.attempts),
            last_error=error,
            outcome=None,
            duration=duration,
            payload=_forget(sender, item.payload) if final else item.payload,
        ).where(OutboxItem.id == item.id).execute()
        return True
    OutboxItem.update(
        status="sent",
        sent_at=time.time(),
        last_error=None,
        outcome=outcome,
        duration=time.monotonic() - started,
        payload=_forget(sender, item.payload),
    ).where(OutboxItem.id == item.id).execute()
    return True


def _payload(item: OutboxItem) -> dict:
    """The row's payload; a malformed one (a row not written by `enqueue`) is undeliverable."""
    try:
        payload = json.loads(item.payload)
    except ValueError as exc:
        raise Undeliverable(f"the payload is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise Undeliverable("the payload is not a JSON object")
    return payload


def _forget(sender: _Sender | None, payload: str) -> str:
    """The payload without the keys its sender forgets once done with a row (a malformed
    row, or one of an unknown kind, is kept as it came, for the admin to read)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if sender is None or not isinstance(data, dict):
        return payload
    kept = {k: v for k, v in data.items() if k not in sender.forget_after_send}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def prune(now: float | None = None) -> int:
    """Forget deliveries sent more than KEEP_SENT_SECONDS ago; how many."""
    now = time.time() if now is None else now
    return (
        OutboxItem.delete()
        .where((OutboxItem.status == "sent") & (OutboxItem.sent_at < now - KEEP_SENT_SECONDS))
        .execute()
    )


def run_sender(settings: Settings, stop: threading.Event) -> None:
    """The server's sender thread: deliver what is due, one at a time, until stop is set."""
    pruned_at = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() - pruned_at > 3600:
                prune()
                pruned_at = time.monotonic()
            if deliver_due(settings):
                continue
        except Exception:  # keep sending; the database may be back at the next poll
            log.exception("the outbox sender failed")
        stop.wait(settings.outbox_poll_seconds)


def send_again(item_id: int, ctx: audit.Context) -> OutboxItem:
    """An admin's (or a hook owner's) "send again": the delivery is due now, with a fresh
    series of attempts. A mail sent or failed for good cannot be (its text was forgotten)."""
    with database.atomic():
        item = OutboxItem.get_or_none(OutboxItem.id == item_id)
        if item is None:
            raise OutboxError(f"no delivery {item_id}")
        if item.kind == "mail" and "text" not in json.loads(item.payload):
            raise OutboxError(
                f"delivery {item_id} was {item.status}, and a {item.status} mail's text is not kept"
            )
        OutboxItem.update(status="pending", attempts=0, next_attempt_at=time.time()).where(
            OutboxItem.id == item_id
        ).execute()
        audit.record(audit.Tag.OUTBOX_SEND_AGAIN, ctx, subject=str(item_id), kind=item.kind, ref=item.ref)
    return item


def listing(statuses: tuple[str, ...] = ("pending", "failed"), ref: str | None = None, limit: int = 200):
    """Deliveries, newest first: by status, or everything of one ref (a webhook's log)."""
    rows = OutboxItem.select().order_by(OutboxItem.created_at.desc(), OutboxItem.id.desc()).limit(limit)
    if ref is not None:
        return rows.where(OutboxItem.ref == ref)
    return rows.where(OutboxItem.status.in_(statuses))
