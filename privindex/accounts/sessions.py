"""Web sessions that live on the server: signing out, a password change or a disable ends
them at once, whatever copy of the cookie is still around.

The cookie holds a random key; the `web_session` row holds only its SHA-256 (like tokens), so
a copy of the database signs nobody in. A session ends after `Lifetime.idle` seconds without a
request and, in any case, `Lifetime.maximum` seconds after sign-in (the settings
`session_idle_minutes` and `session_max_hours`). `last_seen_at` is rewritten at most once per
TOUCH_SECONDS, so page views do not queue on database writes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import peewee

from privindex.db.connection import database
from privindex.db.models import User, WebSession
from privindex.ops import audit
from privindex.ops.audit import Tag

TOUCH_SECONDS = 60.0
USER_AGENT_MAX = 300


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: idle seconds without a request, maximum seconds after sign-in."""

    idle: float
    maximum: float

    def expired(self, now: float) -> peewee.Expression:
        """The peewee condition for rows past either limit at time now."""
        return (WebSession.created_at <= now - self.maximum) | (WebSession.last_seen_at <= now - self.idle)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start(user: User, ip: str | None, user_agent: str | None, method: str, lifetime: Lifetime) -> str:
    """Record a new sign-in; returns the key for the cookie (never stored, never logged)."""
    now = time.time()
    _sweep(now, lifetime)
    key = secrets.token_urlsafe(32)
    WebSession.create(
        key_hash=_hash(key),
        user=user,
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
        method=method,
    )
    return key


def current(key: str | None, lifetime: Lifetime) -> WebSession | None:
    """The live session (with its user) a cookie key names, or None; notes that it was seen."""
    if not key or len(key) > 100:
        return None
    row = WebSession.select(WebSession, User).join(User).where(WebSession.key_hash == _hash(key)).first()
    if row is None:
        return None
    now = time.time()
    if row.created_at <= now - lifetime.maximum or row.last_seen_at <= now - lifetime.idle:
        WebSession.delete().where(WebSession.id == row.id).execute()
        return None
    if row.user.is_disabled:
        return None
    if now - row.last_seen_at >= TOUCH_SECONDS:
        try:
            WebSession.update(last_seen_at=now).where(WebSession.id == row.id).execute()
            row.last_seen_at = now
        except peewee.OperationalError:  # a busy database must not fail the page view
            pass
    return row


def rotate(key: str) -> str:
    """A new key for the same session (after the password was typed again): the old cookie
    stops working, so a key seen before the re-authentication is worth nothing after it."""
    new = secrets.token_urlsafe(32)
    WebSession.update(key_hash=_hash(new)).where(WebSession.key_hash == _hash(key)).execute()
    return new


def end(key: str | None) -> None:
    """Sign-out: the row goes, so every copy of the cookie stops working."""
    if key:
        WebSession.delete().where(WebSession.key_hash == _hash(key)).execute()


def end_one(user: User, session_id: int, ctx: audit.Context) -> bool:
    """End one of the user's sessions (from the account page); audited."""
    with database.atomic():
        row = WebSession.get_or_none(WebSession.id == session_id, WebSession.user == user)
        if row is None:
            return False
        row.delete_instance()
        audit.record(
            Tag.USER_SESSION_REVOKED,
            ctx,
            subject=user.username,
            sessions=1,
            reason="revoked",
            session_ip=row.ip,
        )
    return True


def end_all(user: User, ctx: audit.Context, reason: str, keep_id: int | None = None) -> int:
    """End every session of the user (but keep_id's); audited when any ended."""
    query = WebSession.delete().where(WebSession.user == user)
    if keep_id is not None:
        query = query.where(WebSession.id != keep_id)
    with database.atomic():
        ended = query.execute()
        if ended:
            audit.record(Tag.USER_SESSION_REVOKED, ctx, subject=user.username, sessions=ended, reason=reason)
    return ended


def list_for(user: User, lifetime: Lifetime) -> list[WebSession]:
    """The user's live sessions, most recently seen first."""
    return list(
        WebSession.select()
        .where(WebSession.user == user, ~lifetime.expired(time.time()))
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
    )


def count() -> int:
    return WebSession.select().count()


def _sweep(now: float, lifetime: Lifetime) -> None:
    """Expired rows are useless; drop them when someone signs in (cheap, indexed by nothing
    but small: one row per signed-in browser)."""
    WebSession.delete().where(lifetime.expired(now)).execute()
