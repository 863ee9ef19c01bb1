"""Project pages: the list, one project's files, yank/delete, its maintainers, its status."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from packaging.utils import canonicalize_name

from privindex.accounts import namespaces, permissions, users
from privindex.api.http import audit_context
from privindex.packages import project_status, projects, withdrawal
from privindex.web.blueprint import bp, me, recent_auth, services, settings, whole_number
from privindex.web.upstream import upstream_known


def _may_browse() -> bool:
    return current_user.is_authenticated or settings().read_access == "public"


@bp.get("/")
def home():
    return redirect(url_for("web.projects"))


@bp.get("/projects", endpoint="projects")
def projects_page():
    if not _may_browse():
        return redirect(url_for("web.login", next=request.path))
    query = request.args.get("q", "").strip()[:200]
    page = whole_number(
        request.args.get("page", "1"), 1, 100_000, _("The page number must be a whole number from 1.")
    )
    # signed-in people start with their own projects; everything is one click away
    show_all = not current_user.is_authenticated or request.args.get("all") == "1" or bool(query)
    listing = projects.browse(services().index, None if show_all else me(), query, page)
    return render_template("projects.html", listing=listing, show_all=show_all, query=query)


@bp.get("/projects/<name>")
def project_page(name: str):
    if not _may_browse():
        return redirect(url_for("web.login", next=request.path))
    normalized = canonicalize_name(name)
    if normalized != name:
        return redirect(url_for("web.project_page", name=normalized), 301)
    page = projects.project_page(services().index, normalized)
    if page is None and upstream_known(normalized):  # served from the upstream only
        page = projects.ProjectPage(
            name=normalized,
            display_name=normalized,
            info=None,
            latest=None,
            latest_version=None,
            releases=[],
            urls=[],
            classifiers=[],
        )
    if page is None:
        abort(404)
    user = me() if current_user.is_authenticated else None
    conf = settings()
    status = project_status.current(normalized)
    return render_template(
        "project.html",
        name=normalized,
        p=page,
        info=page.info,
        can_manage=permissions.can_manage(user, normalized),
        namespaces=namespaces.grants_for(normalized),
        index_url=conf.base_url + "/simple/",
        private=conf.read_access == "token",
        host=urlsplit(conf.base_url).netloc,
        download_base=conf.base_url + "/packages/",
        status=status,
        status_labels=status_labels(),
        status_choices=_status_choices(user, normalized, status) if page.info is not None else [],
        status_reason_max=project_status.REASON_MAX,
    )


def _status_choices(user, name: str, status: project_status.ProjectStatus) -> list[str]:
    """The statuses this user may set here (the current one first among them), none if only it."""
    if user is None:
        return []
    return [
        s.value
        for s in project_status.Status
        if s is status.status or permissions.can_set_status(user, name, status.status.value, s.value)
    ]


def back_to_project(name: str):
    """Where every project action answers: the project's page, with its flash message."""
    return redirect(url_for("web.project_page", name=name))


@bp.post("/projects/<name>/files/<filename>/yank")
@login_required
@recent_auth
def file_yank(name: str, filename: str):
    yank = request.form.get("action") != "unyank"
    try:
        withdrawal.set_yanked(
            services().index,
            me(),
            name,
            filename,
            yank,
            request.form.get("reason", ""),
            audit_context().with_actor(me()),
        )
        flash(
            _("%(file)s was yanked.", file=filename) if yank else _("%(file)s was unyanked.", file=filename),
            "info",
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)


@bp.get("/projects/<name>/files/<filename>/delete")
@login_required
@recent_auth
def file_delete(name: str, filename: str):
    return render_template("confirm_delete.html", name=name, filename=filename)


@bp.post("/projects/<name>/files/<filename>/delete")
@login_required
@recent_auth
def file_delete_submit(name: str, filename: str):
    if request.form.get("confirm") != filename:
        flash(_("Type the file name exactly to confirm."), "error")
        return redirect(url_for("web.file_delete", name=name, filename=filename))
    try:
        withdrawal.delete(
            services().store, services().index, me(), name, filename, audit_context().with_actor(me())
        )
        flash(_("%(file)s was deleted.", file=filename), "info")
    except (users.AccountError, OSError) as exc:
        flash(str(exc), "error")
    return back_to_project(name)


@bp.post("/projects/<name>/roles")
@login_required
@recent_auth
def project_roles(name: str):
    if not permissions.can_manage(me(), name):
        abort(403)
    username = request.form.get("username", "")
    role = request.form.get("role", "maintainer")
    try:
        if request.form.get("action") == "remove":
            projects.remove_role(name, username, audit_context().with_actor(me()))
            flash(_("%(user)s was removed.", user=username), "info")
        else:
            projects.set_role(name, username, role, audit_context().with_actor(me()))
            flash(_("%(user)s is now %(role)s.", user=username, role=role), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)


def status_labels() -> dict[str, str]:
    return {
        "active": _("active"),
        "archived": _("archived"),
        "deprecated": _("deprecated"),
        "quarantined": _("quarantined"),
    }


# Statuses whose consequence the user confirms on a page of its own, naming the project.
_CONFIRMED = ("archived", "quarantined")


@bp.post("/projects/<name>/status", endpoint="project_status")
@login_required
@recent_auth
def project_status_submit(name: str):
    wanted, reason = request.form.get("status", ""), request.form.get("reason", "")
    try:
        new = project_status.parse(wanted, reason)
        if new.status.value in _CONFIRMED and request.form.get("confirm") != name:
            return render_template(
                "confirm_status.html", name=name, status=new.status.value, reason=new.reason
            )
        if project_status.set_status(name, new, audit_context().with_actor(me())):
            services().sources.reload()
        flash(
            _("%(project)s is now %(status)s.", project=name, status=status_labels()[new.status.value]),
            "info",
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
    return back_to_project(name)
