"""Admin pages (users, namespaces) and the audit log (everyone sees their own events,
admins all; in words, with the API token that acted, filtered by the URL's arguments)."""

from __future__ import annotations

import csv
import datetime
import functools
import io
import json
from types import SimpleNamespace

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required
from packaging.utils import canonicalize_name

from privindex.accounts import api_tokens, namespaces, removal, second_factors, sessions, users
from privindex.api.http import audit_context
from privindex.ops import audit, audit_words
from privindex.web import confirm, shown_once
from privindex.web.blueprint import bp, me, recent_auth, services, settings, whole_number

SETUP_LINK_DAYS = 7


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not me().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return login_required(wrapper)


@bp.get("/admin/users")
@admin_required
def admin_users():
    everyone = users.list_users()
    return render_template(
        "admin_users.html", users=everyone, two_factor={u.id: users.has_second_factor(u) for u in everyone}
    )


@bp.post("/admin/users")
@admin_required
@recent_auth
def admin_user_create():
    ctx = audit_context().with_actor(me())
    try:
        user = users.create_user(
            request.form.get("username", ""), None, ctx, is_admin=bool(request.form.get("admin"))
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("web.admin_users"))
    return _setup_link(user)


def _setup_link(user):
    """A one-time link for user, shown to the admin on the next GET, once (a reload makes none)."""
    key = second_factors.create_pending(user, "password-setup", seconds=SETUP_LINK_DAYS * 86400)
    link = settings().base_url + url_for("web.setup_password", key=key)
    return shown_once.keep("setup-link", {"username": user.username, "link": link}, "web.admin_setup_link")


@bp.get("/admin/users/setup-link")
@admin_required
def admin_setup_link():
    kept = shown_once.take("setup-link")
    if kept is None:
        return shown_once.gone(
            _("A password link is shown only once. Make a new one if it was not handed over."),
            "web.admin_users",
        )
    return render_template(
        "setup_link.html", username=kept["username"], link=kept["link"], days=SETUP_LINK_DAYS
    )


# action -> (button naming the user, consequence); each is confirmed on a page of its own
DANGEROUS = {
    "disable": (
        lambda name: _("Disable %(user)s", user=name),
        lambda: _("They are signed out everywhere and every API token of theirs is revoked, for good."),
    ),
    "reset-2fa": (
        lambda name: _("Reset second factors of %(user)s", user=name),
        lambda: _(
            "Their security keys, authenticator app and recovery codes are removed and their "
            "sessions end; they set up a new second factor at their next sign-in."
        ),
    ),
    "remove": (
        lambda name: _("Remove %(user)s", user=name),
        lambda: _(
            "For good: their project roles go, their API tokens are revoked, their sessions end "
            "and their second factors and password are deleted. Their audit events stay, and "
            "the name cannot be taken again."
        ),
    ),
    "end-sessions": (
        lambda name: _("End sessions of %(user)s", user=name),
        lambda: _("Every browser they are signed in on is signed out at once."),
    ),
    "make-admin": (
        lambda name: _("Grant admin rights to %(user)s", user=name),
        lambda: _("They may then manage every user and every project."),
    ),
    "revoke-admin": (
        lambda name: _("Revoke admin rights of %(user)s", user=name),
        lambda: _("They keep their own projects, but can no longer manage users or other projects."),
    ),
}
NOT_ON_ONESELF = {"disable", "reset-2fa", "remove", "end-sessions", "make-admin", "revoke-admin"}


@bp.post("/admin/users/<username>")
@admin_required
@recent_auth
def admin_user_action(username: str):
    ctx = audit_context().with_actor(me())
    action = request.form.get("action", "")
    if action not in DANGEROUS and action not in ("enable", "password-link"):
        abort(400, _("Unknown action."))
    try:
        user = users.get_user(username)
        if user.id == me().id and action in NOT_ON_ONESELF:
            raise users.AccountError(_("You cannot do that to your own account here."))
        if action in DANGEROUS:
            button, consequence = DANGEROUS[action]
            page = confirm.ask(button(user.username), consequence(), url_for("web.admin_users"))
            if page is not None:
                return page
        if action == "password-link":
            return _setup_link(user)
        flash(_do(action, user, ctx), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.admin_users"))


def _do(action: str, user, ctx) -> str:
    """Carry out a confirmed action on user; what to tell the admin."""
    name = user.username
    if action == "disable":
        revoked = users.set_disabled(user, True, ctx)
        return (
            _("%(user)s is disabled.", user=name)
            + " "
            + ngettext(
                "Their web sessions ended and %(num)d API token was revoked.",
                "Their web sessions ended and %(num)d API tokens were revoked.",
                revoked,
            )
        )
    if action == "enable":
        revoked = users.set_disabled(user, False, ctx)
        return _("%(user)s is enabled.", user=name) + (" " + _enable_note(revoked) if revoked else "")
    if action == "reset-2fa":
        second_factors.reset(user, ctx)
        return _("Every second factor of %(user)s was removed.", user=name)
    if action == "remove":
        revoked, roles = removal.remove_user(user, ctx)
        return _("%(user)s is removed.", user=name) + " " + _removed_note(revoked, roles)
    if action == "end-sessions":
        ended = sessions.end_all(user, ctx, reason="admin")
        return ngettext(
            "%(num)d session of %(user)s was ended.",
            "%(num)d sessions of %(user)s were ended.",
            ended,
            user=name,
        )
    users.set_admin(user, action == "make-admin", ctx)
    return (
        _("%(user)s is an admin now.", user=name)
        if action == "make-admin"
        else _("%(user)s is no longer an admin.", user=name)
    )


def _removed_note(revoked: int, roles: int) -> str:
    return ngettext("%(num)d API token was revoked", "%(num)d API tokens were revoked", revoked) + ngettext(
        ", %(num)d project role removed.", ", %(num)d project roles removed.", roles
    )


def _enable_note(revoked: int) -> str:
    return ngettext(
        "Its %(num)d API token was revoked; issue new ones.",
        "Its %(num)d API tokens were revoked; issue new ones.",
        revoked,
    )


@bp.get("/admin/namespaces")
@admin_required
def admin_namespaces():
    return render_template("admin_namespaces.html", grants=namespaces.list_grants())


@bp.post("/admin/namespaces")
@admin_required
@recent_auth
def admin_namespace_grant():
    owners = request.form.get("owners", "").replace(",", " ").split()
    try:
        grant = namespaces.grant(
            request.form.get("name", "").strip(),
            owners,
            bool(request.form.get("open")),
            audit_context().with_actor(me()),
            services().settings.namespace_max_depth,
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
    else:
        services().sources.reload()  # local by rule from the next request on
        flash(_("The namespace %(name)s is granted: names under it are local now.", name=grant.name), "info")
    return redirect(url_for("web.admin_namespaces"))


@bp.post("/admin/namespaces/<name>/revoke")
@admin_required
@recent_auth
def admin_namespace_revoke(name: str):
    try:
        namespaces.revoke(name, audit_context().with_actor(me()))
    except users.AccountError as exc:
        flash(str(exc), "error")
    else:
        services().sources.reload()
        flash(_("The namespace %(name)s is revoked.", name=name), "info")
    return redirect(url_for("web.admin_namespaces"))


AUDIT_PAGE = 50
# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FIELDS = (
    "id",
    "time",
    "tag",
    "actor",
    "subject",
    "project",
    "ip",
    "user_agent",
    "token_id",
    "details",
)


def _audit_filters() -> dict:
    """The filters of the audit pages, from the URL; everyone but an admin sees only their
    own events. Dates are whole UTC days, both ends included."""
    args = request.args
    username = (args.get("user") or None) if me().is_admin else me().username
    token = args.get("token", "").strip()
    since = _day(args.get("from", ""), _("The start date must be a date like 2026-12-31."))
    until = _day(args.get("to", ""), _("The end date must be a date like 2026-12-31."))
    return dict(
        username=username.lower() if username else None,
        project=canonicalize_name(args["project"]) if args.get("project") else None,
        tag=args.get("tag") or None,
        token_ids=api_tokens.matching_ids(token) if token else None,
        since=since,
        before=until + 86400 if until is not None else None,
    )


def _day(text: str, message: str) -> float | None:
    """A YYYY-MM-DD date (an <input type=date>'s value) as the UTC midnight that starts it."""
    if not text.strip():
        return None
    try:
        day = datetime.date.fromisoformat(text.strip())
    except ValueError:
        abort(400, message)
    return datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp()


@bp.get("/audit")
@login_required
def audit_log():
    page = whole_number(
        request.args.get("page", "1"), 1, 1_000_000, _("The page number must be a whole number from 1.")
    )
    filters = _audit_filters()
    total = audit.count(**filters)
    rows = [
        audit.as_dict(e) for e in audit.query(**filters, limit=AUDIT_PAGE, offset=(page - 1) * AUDIT_PAGE)
    ]
    tokens = api_tokens.descriptions({r["token_id"] for r in rows if r["token_id"]})
    for r in rows:
        r["sentence"] = audit_words.sentence(r["tag"], r["subject"], r["project"], r["details"])
        if r["token_id"]:
            r["token"] = r["details"].get("token_description") or tokens.get(r["token_id"], "")
    listing = SimpleNamespace(page=page, pages=max(1, -(-total // AUDIT_PAGE)), total=total)
    return render_template(
        "audit.html",
        events=rows,
        listing=listing,
        tags=[(tag.value, audit_words.tag_name(tag)) for tag in audit.Tag],
        filters=request.args,
        filtered=any(value for key, value in request.args.items() if key != "page"),
    )


@bp.get("/audit/export.<fmt>")
@admin_required
def audit_export(fmt: str):
    """Every event matching the filters, as CSV or JSON lines, for an admin's own tools."""
    if fmt not in ("csv", "json"):
        abort(404)
    rows = [audit.as_dict(e) for e in audit.query(**_audit_filters())]
    if fmt == "json":
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        mimetype = "application/x-ndjson"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for r in rows:
            row = {**r, "details": json.dumps(r["details"], sort_keys=True)}
            writer.writerow({key: _as_text_cell(value) for key, value in row.items()})
        body, mimetype = out.getvalue(), "text/csv"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename=privindex-audit.{fmt}"},
    )


def _as_text_cell(value):
    """A CSV cell a spreadsheet shows as text, never runs: clients choose user agents, names
    and details, and the admin opens the export (OWASP: a leading ' makes it text)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
