"""Webhooks on a project's page (the `_webhooks.html` partial) and index-wide ones on
/admin/webhooks, each with its delivery log and "send again"; /admin/outbox lists what is
waiting or failed, mail included. The rules are notify/webhooks.py's and notify/outbox.py's.
"""

from __future__ import annotations

import json

from flask import abort, redirect, render_template, request, url_for
from flask import flash as flash_message
from flask_babel import gettext as _
from flask_login import login_required
from packaging.utils import canonicalize_name

from privindex.accounts import permissions, users
from privindex.api.http import audit_context
from privindex.db.models import OutboxItem, Webhook
from privindex.notify import outbox, webhooks
from privindex.notify.events import EVENTS
from privindex.web.admin import admin_required
from privindex.web.blueprint import bp, format_time, me, recent_auth, settings
from privindex.web.projects import back_to_project

LOG_ROWS = 10


@bp.app_template_global()
def webhooks_of(name: str | None) -> list[Webhook]:
    return list(webhooks.hooks_of(name))


@bp.app_template_global()
def webhook_deliveries(hook_id: int) -> list[OutboxItem]:
    return webhooks.deliveries(hook_id, limit=LOG_ROWS)


@bp.app_template_global()
def webhook_url(hook: Webhook) -> str:
    return webhooks.shown_url(hook.url)


@bp.app_template_global()
def delivery_event(item: OutboxItem) -> str:
    return str(json.loads(item.payload).get("event", ""))


@bp.app_template_global()
def outbox_status(item: OutboxItem) -> str:
    if item.status == "sent":
        return _("delivered")
    if item.status == "failed":
        return _("failed")
    return _("waiting (next try %(when)s)", when=format_time(item.next_attempt_at))


@bp.app_template_global()
def webhook_events() -> tuple[str, ...]:
    return EVENTS


def _back(hook_project: str | None):
    return back_to_project(hook_project) if hook_project else redirect(url_for("web.admin_webhooks"))


def _add(project: str | None):
    form = request.form
    try:
        hook, secret = webhooks.add(
            project,
            form.get("url", ""),
            form.getlist("events"),
            settings().webhook_allowed_host_names,
            audit_context().with_actor(me()),
        )
    except users.AccountError as exc:
        flash_message(str(exc), "error")
        return _back(project)
    return render_template("webhook_created.html", hook=hook, secret=secret, project=project)


@bp.post("/projects/<name>/webhooks")
@login_required
@recent_auth
def webhook_add(name: str):
    name = canonicalize_name(name)
    if not permissions.can_manage(me(), name):
        abort(403)
    return _add(name)


@bp.get("/admin/webhooks")
@admin_required
def admin_webhooks():
    return render_template("admin_webhooks.html")


@bp.post("/admin/webhooks")
@admin_required
@recent_auth
def admin_webhook_add():
    return _add(None)


@bp.post("/webhooks/<int:hook_id>/remove")
@login_required
@recent_auth
def webhook_remove(hook_id: int):
    try:
        hook = webhooks.remove(hook_id, audit_context().with_actor(me()))
    except users.AccountError as exc:
        flash_message(str(exc), "error")
        return redirect(url_for("web.projects"))
    flash_message(_("The webhook to %(url)s is removed.", url=webhooks.shown_url(hook.url)), "info")
    return _back(hook.project)


@bp.post("/webhooks/<int:hook_id>/deliveries/<int:delivery_id>/send-again")
@login_required
def webhook_send_again(hook_id: int, delivery_id: int):
    try:
        hook = webhooks.hook_for(hook_id, me())
        webhooks.send_again(hook_id, delivery_id, audit_context().with_actor(me()))
    except (users.AccountError, outbox.OutboxError) as exc:
        flash_message(str(exc), "error")
        return redirect(url_for("web.projects"))
    flash_message(_("Delivery %(id)d will be sent again in a moment.", id=delivery_id), "info")
    return _back(hook.project)


@bp.get("/admin/outbox")
@admin_required
def admin_outbox():
    rows = list(outbox.listing())
    return render_template("admin_outbox.html", rows=rows, what={row.id: _what(row) for row in rows})


def _what(row: OutboxItem) -> str:
    """One line about a delivery, without its content: a mail's recipient, a webhook's event."""
    payload = json.loads(row.payload)
    if row.kind == "mail":
        return str(payload.get("to", ""))
    hook = Webhook.get_or_none(Webhook.id == payload.get("hook"))
    where = webhooks.shown_url(hook.url) if hook else _("a removed webhook")
    return f"{payload.get('event', '')} ({payload.get('project', '')}) → {where}"


@bp.post("/admin/outbox/<int:item_id>/send-again")
@admin_required
def admin_outbox_send_again(item_id: int):
    try:
        outbox.send_again(item_id, audit_context().with_actor(me()))
        flash_message(_("Delivery %(id)d will be sent again in a moment.", id=item_id), "info")
    except outbox.OutboxError as exc:
        flash_message(str(exc), "error")
    return redirect(url_for("web.admin_outbox"))
