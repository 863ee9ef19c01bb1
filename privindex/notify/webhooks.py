"""Webhooks: a project's (its owners') or index-wide (admins'), for some of the events
(notify/events.py queues them; notify/webhook_sender.py delivers). A hook's secret signs
its deliveries, so it is kept, in clear (SECURITY.md, "Webhooks"); it is shown once, when
the hook is made. A hook's URL may carry a credential in its path (chat services put one
there), so pages, logs and the audit trail show only its origin (`shown_url`).
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from privindex.accounts.permissions import can_manage
from privindex.accounts.users import AccountError
from privindex.db.connection import database
from privindex.db.models import OutboxItem, User, Webhook
from privindex.i18n import _
from privindex.notify import outbox
from privindex.notify.events import EVENTS, ref
from privindex.ops import audit
from privindex.upstream.client import public_address

MAX_URL = 2000
MAX_HOOKS = 20  # per project, and index-wide


def shown_url(url: str) -> str:
    """What pages, logs and the audit trail show of a hook's URL: its origin, the rest elided."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


def allowed(
    scheme: str, host: str, port: int | None, allowed_hosts: Iterable[tuple[str, int | None]]
) -> bool:
    """Whether webhook_allowed_hosts names this origin: its host with its port, or the host
    alone when the port is the scheme's default."""
    default = 443 if scheme == "https" else 80
    port = port or default
    host = host.lower().strip("[]")
    return any(h == host and (p or default) == port for h, p in allowed_hosts)


def check_target(url: str, allowed_hosts: Iterable[tuple[str, int | None]]) -> str:
    """The URL if a webhook may go there: http(s), no user:password, a host that resolves
    to public addresses only, unless an admin allowed the host (webhook_allowed_hosts).
    The same rule holds at each delivery, inside the connection (upstream/client.py)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise AccountError(_("a webhook URL must be http:// or https:// with a host name"))
    if parts.username is not None or parts.password is not None:
        raise AccountError(_("a webhook URL must not carry a user name or password"))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AccountError(_("a webhook URL must be http:// or https:// with a host name")) from None
    if allowed(parts.scheme, parts.hostname, port, allowed_hosts):
        return url
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        raise AccountError(
            _("the host %(host)s of the webhook URL cannot be resolved", host=parts.hostname)
        ) from None
    for address in sorted(addresses):
        if not _public(str(address)):
            raise AccountError(
                _(
                    "%(host)s is at %(address)s, not a public address; an admin may allow the host "
                    "with the webhook_allowed_hosts setting",
                    host=parts.hostname,
                    address=address,
                )
            )
    return url


def _public(address: str) -> bool:
    try:
        return public_address(address)
    except ValueError:
        return False


def parse_events(names: Iterable[str]) -> str:
    chosen = [name for name in EVENTS if name in set(names)]
    unknown = set(names) - set(EVENTS)
    if unknown or not chosen:
        raise AccountError(_("choose one or more events of: %(events)s", events=", ".join(EVENTS)))
    return " ".join(chosen)


def _may_manage(user: User | None, project: str | None) -> bool:
    """The operator (CLI, no user) and admins may manage every hook; owners their project's."""
    if user is None:
        return True
    return user.is_admin if project is None else can_manage(user, project)


def add(
    project: str | None,
    url: str,
    events: Iterable[str],
    allowed_hosts: Iterable[tuple[str, int | None]],
    ctx: audit.Context,
) -> tuple[Webhook, str]:
    """A new hook and its secret (shown once). project None: index-wide (admins only)."""
    project = canonicalize_name(project) if project else None
    if not _may_manage(ctx.actor, project):
        raise AccountError(
            _("only an admin may add an index-wide webhook")
            if project is None
            else _("only an owner of the project or an admin may do that")
        )
    chosen = parse_events(events)
    url = check_target(url, allowed_hosts)
    secret = secrets.token_urlsafe(32)
    with database.atomic():
        if hooks_of(project).count() >= MAX_HOOKS:
            raise AccountError(_("at most %(n)d webhooks each; remove one first", n=MAX_HOOKS))
        hook = Webhook.create(project=project, url=url, secret=secret, events=chosen, created_at=time.time())
        audit.record(
            audit.Tag.WEBHOOK_ADD,
            ctx,
            subject=str(hook.id),
            project=project,
            url=shown_url(url),
            events=chosen,
        )
    return hook, secret


def remove(hook_id: int, ctx: audit.Context) -> Webhook:
    """Remove a hook with its deliveries, pending ones included (its log goes with it)."""
    with database.atomic():
        hook = Webhook.get_or_none(Webhook.id == hook_id)
        if hook is None or not _may_manage(ctx.actor, hook.project):
            raise AccountError(_("there is no such webhook"))
        OutboxItem.delete().where(OutboxItem.ref == ref(hook_id)).execute()
        hook.delete_instance()
        audit.record(
            audit.Tag.WEBHOOK_REMOVE, ctx, subject=str(hook_id), project=hook.project, url=shown_url(hook.url)
        )
    return hook


def hooks_of(project: str | None):
    """A project's hooks, or (None) the index-wide ones, oldest first."""
    where = Webhook.project.is_null() if project is None else Webhook.project == canonicalize_name(project)
    return Webhook.select().where(where).order_by(Webhook.id)


def hook_for(hook_id: int, user: User | None) -> Webhook:
    hook = Webhook.get_or_none(Webhook.id == hook_id)
    if hook is None or not _may_manage(user, hook.project):
        raise AccountError(_("there is no such webhook"))
    return hook


def deliveries(hook_id: int, limit: int = 50) -> list[OutboxItem]:
    """The hook's delivery log, newest first."""
    return list(outbox.listing(ref=ref(hook_id), limit=limit))


def send_again(hook_id: int, delivery_id: int, ctx: audit.Context) -> None:
    hook_for(hook_id, ctx.actor)
    item = OutboxItem.get_or_none(OutboxItem.id == delivery_id)
    if item is None or item.ref != ref(hook_id):
        raise AccountError(_("there is no such delivery"))
    outbox.send_again(delivery_id, ctx)
