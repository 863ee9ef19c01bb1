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

from privindex.accounts import api_tokens, namespaces, second_factors, users
from privindex.api.http import audit_context
from privindex.ops import audit, audit_words
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
    key = second_factors.create_pending(user, "password-setup", seconds=SETUP_LINK_DAYS * 86400)
    link = settings().base_url + url_for("web.setup_password", key=key)
    return render_template("setup_link.html", user=user, link=link, days=SETUP_LINK_DAYS)


@bp.post("/admin/users/<username>")
@admin_required
@recent_auth
def admin_user_action(username: str):
    ctx = audit_context().with_actor(me())
    action = request.form.get("action")
    try:
        user = users.get_user(username)
        if user.id == me().id and action in ("disable", "reset-2fa"):
            raise users.AccountError(_("You cannot do that to your own account here."))
        if action == "disable":
            revoked = users.set_disabled(user, True, ctx)
            flash(
                _("%(user)s is disabled.", user=username)
                + " "
                + ngettext(
                    "Their web sessions ended and %(num)d API token was revoked.",
                    "Their web sessions ended and %(num)d API tokens were revoked.",
                    revoked,
                ),
                "info",
            )
        elif action == "enable":
            revoked = users.set_disabled(user, False, ctx)
            flash(
                _("%(user)s is enabled.", user=username) + (" " + _enable_note(revoked) if revoked else ""),
                "info",
            )
        elif action == "reset-2fa":
            second_factors.reset(user, ctx)
            flash(_("Every second factor of %(user)s was removed.", user=username), "info")
        elif action == "password-link":
            return _setup_link(user)
        else:
            abort(400)
    except users.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.admin_users"))


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
