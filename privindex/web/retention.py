"""A project's retention overrides on its page, for owners and admins (the `_retention.html`
partial, through a template global); packages/retention.py owns the rule and the audit."""

from __future__ import annotations

from flask import flash, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from privindex.accounts import permissions, users
from privindex.api.http import audit_context
from privindex.packages import retention
from privindex.web.blueprint import bp, me, recent_auth, settings
from privindex.web.projects import back_to_project


@bp.app_context_processor
def _retention_globals():
    return {"retention_form": retention_form}


def retention_form(name: str) -> dict | None:
    """What the partial shows: the project's overrides and the index-wide defaults; None for
    someone who may not change them."""
    if not current_user.is_authenticated or not permissions.can_manage(me(), name):
        return None
    keep, days = retention.overrides(name)
    conf = settings()
    return {
        "keep": keep,
        "days": days,
        "default_keep": conf.retention_keep_prereleases,
        "default_days": conf.retention_dev_max_days,
    }


def _rule(field: str) -> int | None:
    """A form field: empty is the index-wide setting; else a whole number, 0 or more."""
    text = request.form.get(field, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6:  # "²" passes isdigit, not int()
        raise users.AccountError(_("A retention rule is a whole number, 0 (off) or more, or empty."))
    return int(text)


@bp.post("/projects/<name>/retention")
@login_required
@recent_auth
def project_retention(name: str):
    try:
        retention.set_policy(
            me(), name, _rule("keep_prereleases"), _rule("dev_max_days"), audit_context().with_actor(me())
        )
        flash(_("The retention rules of %(name)s were saved.", name=name), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)
