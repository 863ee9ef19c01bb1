"""The audit trail: who did what, to what, when, from where. Append-only.

Tags (`docs/audit.md` lists them with their details) are `noun:verb` strings from a fixed
vocabulary, so the trail can be filtered and a typo is an error, not a silent new tag.
Secrets never enter it: record() refuses detail keys that could carry one.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import peewee

from privindex.db.connection import database
from privindex.db.models import AuditEvent, User
from privindex.ops import metrics


class Tag(StrEnum):
    """The audit vocabulary (`noun:verb`), documented with its details in docs/audit.md."""

    USER_CREATE = "user:create"
    USER_DISABLE = "user:disable"
    USER_ENABLE = "user:enable"
    USER_REMOVE = "user:remove"
    USER_ADMIN_GRANT = "user:admin:grant"
    USER_ADMIN_REVOKE = "user:admin:revoke"
    USER_PASSWORD_CHANGE = "user:password:change"
    USER_LOGIN_SUCCESS = "user:login:success"
    USER_LOGIN_FAILURE = "user:login:failure"
    USER_SSO_LINK = "user:sso:link"
    USER_LOGIN_PASSKEY = "user:login:passkey"
    USER_SESSION_REVOKED = "user:session:revoked"
    USER_2FA_ADD = "user:2fa:add"
    USER_2FA_REMOVE = "user:2fa:remove"
    USER_2FA_RESET = "user:2fa:reset"
    USER_RECOVERY_CODES_GENERATE = "user:recovery-codes:generate"
    USER_RECOVERY_CODE_USE = "user:recovery-code:use"
    USER_EMAIL_ADD = "user:email:add"
    USER_EMAIL_VERIFY = "user:email:verify"
    USER_EMAIL_PRIMARY = "user:email:primary"
    USER_EMAIL_REMOVE = "user:email:remove"
    USER_PASSWORD_RESET_REQUEST = "user:password:reset-request"
    USER_PASSWORD_RESET = "user:password:reset"
    WEBAUTHN_SIGN_COUNT_REGRESSION = "webauthn:sign-count-regression"
    TOKEN_CREATE = "token:create"
    TOKEN_REVOKE = "token:revoke"
    TOKEN_MINT = "token:mint"
    TOKEN_NEW_ADDRESS = "token:new-address"
    PUBLISHER_ADD = "publisher:add"
    PUBLISHER_REMOVE = "publisher:remove"
    PROJECT_CREATE = "project:create"
    ROLE_ADD = "role:add"
    ROLE_REMOVE = "role:remove"
    FILE_ADD = "file:add"
    FILE_OVERWRITE = "file:overwrite"
    FILE_REPLACE = "file:replace"
    FILE_CHANGED_ON_DISK = "file:changed-on-disk"
    FILE_YANK = "file:yank"
    FILE_UNYANK = "file:unyank"
    FILE_DELETE = "file:delete"
    UPLOAD_REFUSED = "upload:refused"
    PROJECT_CLAIM = "project:claim"
    PROJECT_UPSTREAM_ALLOW = "project:upstream:allow"
    PROJECT_UPSTREAM_REVOKE = "project:upstream:revoke"
    PROJECT_STATUS = "project:status"
    PROJECT_RETENTION_SET = "project:retention:set"
    UPSTREAM_EXEMPT = "upstream:exempt"
    UPSTREAM_UNEXEMPT = "upstream:unexempt"
    UPSTREAM_SHADOWED = "upstream:shadowed"
    NAMESPACE_GRANT = "namespace:grant"
    NAMESPACE_REVOKE = "namespace:revoke"
    TEAM_CREATE = "team:create"
    TEAM_DELETE = "team:delete"
    TEAM_MEMBER_ADD = "team:member:add"
    TEAM_MEMBER_REMOVE = "team:member:remove"
    TEAM_ROLE_GRANT = "team:role:grant"
    TEAM_ROLE_REVOKE = "team:role:revoke"
    OUTBOX_SEND_AGAIN = "outbox:send-again"
    WEBHOOK_ADD = "webhook:add"
    WEBHOOK_REMOVE = "webhook:remove"


_SECRET_WORDS = ("password", "secret", "token_value", "code", "otp", "totp")


@dataclass(frozen=True)
class Context:
    """Where an action comes from: the acting user (None for the CLI), the request."""

    actor: User | None = None
    ip: str | None = None
    user_agent: str | None = None
    token_id: int | None = None
    via: str = "web"

    def with_actor(self, actor: User | None, token_id: int | None = None) -> Context:
        return Context(actor, self.ip, self.user_agent, token_id, self.via)


CLI = Context(via="cli")


Listener = Callable[[AuditEvent], None]
_listeners: weakref.WeakKeyDictionary[peewee.Database, list[Listener]] = weakref.WeakKeyDictionary()


def listen(db: peewee.Database, listener: Listener) -> None:
    """Call listener with every event recorded in db, inside the transaction that records it
    (so what it writes, such as a notice in the outbox, commits or rolls back with the event).
    Per database, because one process holds many apps (the tests build many)."""
    _listeners.setdefault(db, []).append(listener)


def record(
    tag: Tag, ctx: Context, subject: str | None = None, project: str | None = None, **details: Any
) -> AuditEvent:
    tag = Tag(tag)  # a typo is an error, not a silent new tag
    for key in details:
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit details must not carry secrets ({key!r})")
    details.setdefault("via", ctx.via)
    if tag is Tag.USER_LOGIN_FAILURE or tag is Tag.UPLOAD_REFUSED:
        observed = metrics.current()  # the app answering this request; None in the CLI
        if observed is not None:
            if tag is Tag.USER_LOGIN_FAILURE:
                observed.login_failed(str(details.get("reason", "unknown")))
            else:
                observed.upload_refused(int(details.get("status") or 0))
    event = AuditEvent.create(
        ts=time.time(),
        tag=tag.value,
        actor_id=ctx.actor.id if ctx.actor else None,
        actor=ctx.actor.username if ctx.actor else None,
        subject=subject,
        project=project,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or None) and ctx.user_agent[:300],
        token_id=ctx.token_id,
        details=json.dumps(details, sort_keys=True, default=str),
    )
    bound = database.obj
    for listener in _listeners.get(bound, []) if bound is not None else []:
        listener(event)
    return event


def query(
    username: str | None = None,
    project: str | None = None,
    since: float | None = None,
    tag: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    token_ids: list[int] | None = None,
    before: float | None = None,
) -> peewee.ModelSelect:
    """Newest first. `username` matches events the user did or that were done to them;
    `token_ids` the events done with one of those API tokens ([]: none); `since` and
    `before` bound the time (`before` excluded)."""
    events = AuditEvent.select().order_by(AuditEvent.ts.desc(), AuditEvent.id.desc())
    if username:
        events = events.where((AuditEvent.actor == username) | (AuditEvent.subject == username))
    if project:
        events = events.where(AuditEvent.project == project)
    if since is not None:
        events = events.where(AuditEvent.ts >= since)
    if before is not None:
        events = events.where(AuditEvent.ts < before)
    if tag:
        events = events.where(AuditEvent.tag.startswith(tag))
    if token_ids is not None:
        events = events.where(AuditEvent.token_id.in_(token_ids))
    if limit:
        events = events.limit(limit).offset(offset)
    return events


def count(**filters: Any) -> int:
    """How many events query(**filters) finds."""
    return query(**filters).order_by().count()


def last_id(project: str) -> int:
    """The id of the project's latest event, 0 if none: the JSON API's `last_serial`, which
    grows with every recorded change to the project, as the public index's journal serial does."""
    return AuditEvent.select(peewee.fn.MAX(AuditEvent.id)).where(AuditEvent.project == project).scalar() or 0


def as_dict(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.ts)),
        "tag": event.tag,
        "actor": event.actor,
        "subject": event.subject,
        "project": event.project,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "token_id": event.token_id,
        "details": json.loads(event.details),
    }
