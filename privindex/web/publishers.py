"""Trusted publishers on a project's page: list, add, remove, and recent CI publications.

The page itself (project.html) only includes `_publishers.html`; what the partial shows
comes from two template globals defined here, so the project view needs no change.
"""

from __future__ import annotations

from flask import abort, current_app, flash, request
from flask_babel import gettext as _
from flask_login import login_required

from privindex.accounts import permissions, users
from privindex.api.http import audit_context
from privindex.oidc import publishers
from privindex.web.blueprint import bp, me, recent_auth, settings
from privindex.web.projects import back_to_project


@bp.app_template_global()
def trusted_publishers(name: str) -> list:
    return publishers.list_publishers(name)


@bp.app_template_global()
def ci_publications(name: str) -> list[dict]:
    return publishers.recent_ci_publications(name)


@bp.app_template_global()
def oidc_issuers() -> tuple:
    return current_app.extensions["privindex"].settings.oidc_issuers


@bp.post("/projects/<name>/publishers")
@login_required
@recent_auth
def publisher_add(name: str):
    if not permissions.can_manage(me(), name):
        abort(403)
    form = request.form
    issuer = next((i for i in settings().oidc_issuers if i.url == form.get("issuer")), None)
    if issuer is None:
        flash(_("Choose one of the trusted issuers."), "error")
        return back_to_project(name)
    try:
        row = publishers.add_publisher(
            settings(),
            name,
            issuer.kind,
            form.get("repository", ""),
            form.get("workflow", ""),
            me(),
            audit_context().with_actor(me()),
            environment=form.get("environment"),
            repository_owner_id=form.get("owner_id", "").strip() or None,
            issuer_url=issuer.url,
        )
        flash(_("%(publisher)s may now publish this project.", publisher=publishers.describe(row)), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)


@bp.post("/projects/<name>/publishers/<int:publisher_id>/remove")
@login_required
@recent_auth
def publisher_remove(name: str, publisher_id: int):
    try:
        row = publishers.remove_publisher(publisher_id, audit_context().with_actor(me()), by=me())
        flash(_("%(publisher)s may no longer publish.", publisher=publishers.describe(row)), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)
