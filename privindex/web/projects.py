"""Project pages: the list and its search, one project's page (tabs: description,
release history, files, settings), a version's page, yank and delete (a file or a whole
release), its maintainers, its status."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from packaging.utils import canonicalize_name

from privindex.accounts import namespaces, permissions, users
from privindex.api.http import audit_context
from privindex.ops import audit
from privindex.packages import project_status, projects, releases, withdrawal
from privindex.web.blueprint import bp, me, recent_auth, services, settings, whole_number
from privindex.web.readme import fit_images
from privindex.web.readme import policy as readme_policy
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
    sort = request.args.get("sort") or ("relevance" if query else "name")
    if sort not in (*projects.SORTS, "relevance"):
        abort(400, _("Sort by name, last upload or relevance."))
    # every project first, like the public index; one's own are one click away
    mine = current_user.is_authenticated and request.args.get("mine") == "1" and not query
    srcs = services().sources
    listing = projects.browse(
        services().index,
        me() if mine else None,
        query,
        page,
        sort,
        upstream_names=srcs.upstream_only_names() if query else (),
    )
    return render_template(
        "projects.html",
        listing=listing,
        mine=mine,
        query=query,
        sort=sort,
        highlight=highlight,
        upload_url=request.url_root + "legacy/",
    )


def highlight(text: str, query: str) -> list[tuple[str, bool]]:
    """text cut into (part, whether it matches a word of query), for <mark>: the template
    escapes every part, so no user text is ever marked safe."""
    words = sorted({w for w in re.findall(r"[\w.-]+", query.lower()) if w}, key=len, reverse=True)
    if not words or not text:
        return [(text, False)]
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    parts, done = [], 0
    for m in pattern.finditer(text):
        if m.start() > done:
            parts.append((text[done : m.start()], False))
        parts.append((m.group(), True))
        done = m.end()
    if done < len(text):
        parts.append((text[done:], False))
    return parts


TABS = ("description", "history", "files", "settings")


def _project(name: str) -> projects.ProjectPage:
    """The page's facts: local, else served from the upstream (its cached page), else 404."""
    page = projects.project_page(services().index, name)
    if page is None and upstream_known(name):
        cached = services().sources.cache.cached_entry(name).project
        page = projects.upstream_page(cached.name, cached.display_name, cached.files, cached.versions)
    if page is None:
        abort(404)
    return page


def _install_url(private: bool) -> str:
    """This server's /simple/ as the browser reached it (request.url_root: the scheme and
    host a trusted proxy forwarded); for a private index with the token form pip and uv
    take, a placeholder where the token goes."""
    root = urlsplit(request.url_root)
    userinfo = "__token__:YOUR-TOKEN@" if private else ""
    return f"{root.scheme}://{userinfo}{root.netloc}{root.path}simple/"


def _context(name: str, page: projects.ProjectPage) -> dict:
    """What every view of a project shows: header, install lines, sidebar, who may what."""
    user = me() if current_user.is_authenticated else None
    conf = settings()
    status = project_status.current(name)
    can_manage = permissions.can_manage(user, name) and not page.upstream
    return {
        "name": name,
        "p": page,
        "info": page.info,
        "can_manage": can_manage,
        "may_settings": can_manage or (user is not None and user.is_admin),
        "namespaces": namespaces.grants_for(name),
        "index_url": _install_url(conf.read_access == "token"),
        "private": conf.read_access == "token",
        "download_base": request.script_root + "/packages/",
        "status": status,
        "status_labels": status_labels(),
        "status_choices": _status_choices(user, name, status) if page.info is not None else [],
        "status_reason_max": project_status.REASON_MAX,
        "readme": lambda html: fit_images(html, conf.readme_images),
    }


def _answer(body: str):
    """A project page, with the image policy its README needs."""
    response = make_response(body)
    response.headers["Content-Security-Policy"] = readme_policy(settings().readme_images)
    return response


@bp.get("/projects/<name>")
def project_page(name: str):
    if not _may_browse():
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    normalized = canonicalize_name(name)
    if normalized != name:
        return redirect(url_for("web.project_page", name=normalized, tab=request.args.get("tab")), 301)
    page = _project(normalized)
    context = _context(normalized, page)
    tab = request.args.get("tab", "history" if page.upstream else "description")
    if tab not in TABS or (tab == "description" and page.upstream):  # upstream pages carry none
        abort(404)
    if tab == "settings" and not context["may_settings"]:  # e.g. one who just left the project
        return redirect(url_for("web.project_page", name=normalized))
    return _answer(render_template("project.html", tab=tab, **context))


@bp.get("/projects/<name>/<version>")
def project_version(name: str, version: str):
    if not _may_browse():
        return redirect(url_for("web.login", next=request.path))
    normalized = canonicalize_name(name)
    page = _project(normalized)
    try:
        release = page.release(version)
    except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
        abort(404)
    if release is None:
        abort(404)
    if (normalized, release.version) != (name, version):
        return redirect(url_for("web.project_version", name=normalized, version=release.version), 301)
    described = None if page.upstream else releases.release(normalized, release.version)
    return _answer(
        render_template("project_version.html", r=release, described=described, **_context(normalized, page))
    )


def _back(name: str, version: str):
    """Back where the form was (the project's page, a tab of it, or the version's page),
    at the release acted on; anything else the form says is ignored."""
    back = request.form.get("back", "")
    if not re.fullmatch(rf"/projects/{re.escape(name)}(/[\w.!+-]+)?(\?tab=[a-z]+)?", back):
        back = url_for("web.project_page", name=name, tab="history")
    else:
        back = request.script_root + back
    at = f"#release-{version}" if re.fullmatch(r"[\w.!+-]+", version) else ""
    return redirect(back + at)


@bp.post("/projects/<name>/<version>/yank")
@login_required
@recent_auth
def release_yank(name: str, version: str):
    def act(yank: bool, reason: str, ctx: audit.Context) -> None:
        withdrawal.set_release_yanked(services().index, me(), name, version, yank, reason, ctx)

    return _yank_form(
        name,
        version,
        act,
        _("%(version)s of %(project)s was yanked.", version=version, project=name),
        _("%(version)s of %(project)s was unyanked.", version=version, project=name),
    )


def _yank_form(
    name: str, version: str, act: Callable[[bool, str, audit.Context], None], yanked: str, unyanked: str
):
    """A yank or unyank form (of a file or a release) carried out, said, and answered back
    where it was posted from."""
    yank = request.form.get("action") != "unyank"
    try:
        act(yank, request.form.get("reason", ""), audit_context().with_actor(me()))
        flash(yanked if yank else unyanked, "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return _back(name, version)


@bp.get("/projects/<name>/<version>/delete")
@login_required
@recent_auth
def release_delete(name: str, version: str):
    try:
        withdrawal.filenames(name, version)
    except users.AccountError:
        abort(404)
    return render_template("confirm_delete.html", name=name, version=version, filename=None)


@bp.post("/projects/<name>/<version>/delete")
@login_required
@recent_auth
def release_delete_submit(name: str, version: str):
    if request.form.get("confirm") != f"{name} {version}":
        flash(_("Type the project name and version exactly to confirm."), "error")
        return redirect(url_for("web.release_delete", name=name, version=version))
    try:
        deleted = withdrawal.delete_release(
            services().store, services().index, me(), name, version, audit_context().with_actor(me())
        )
        flash(
            ngettext(
                "%(version)s of %(project)s was deleted (%(num)d file).",
                "%(version)s of %(project)s was deleted (%(num)d files).",
                len(deleted),
                version=version,
                project=name,
            ),
            "info",
        )
    except (users.AccountError, OSError) as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.project_page", name=name, tab="history"))


@bp.get("/projects/<name>/upstream/allow")
@login_required
@recent_auth
def allow_upstream_confirm(name: str):
    """Allowing the upstream's files for a local name reopens dependency confusion for it:
    the admin confirms on a page that names the project and says so."""
    if not me().is_admin:
        abort(403)
    return render_template("confirm_allow_upstream.html", name=canonicalize_name(name))


def _status_choices(user, name: str, status: project_status.ProjectStatus) -> list[str]:
    """The statuses this user may set here (the current one first among them), none if only it."""
    if user is None:
        return []
    return [
        s.value
        for s in project_status.Status
        if s is status.status or permissions.can_set_status(user, name, status.status.value, s.value)
    ]


def back_to_project(name: str, tab: str = "settings"):
    """Where every project action answers: the project's page (the tab its form is on,
    unless the settings are no longer the user's to see), with its flash message."""
    if tab == "settings" and not (me().is_admin or permissions.can_manage(me(), name)):
        tab = "description"
    return redirect(url_for("web.project_page", name=name, tab=tab))


@bp.post("/projects/<name>/files/<filename>/yank")
@login_required
@recent_auth
def file_yank(name: str, filename: str):
    def act(yank: bool, reason: str, ctx: audit.Context) -> None:
        withdrawal.set_yanked(services().index, me(), name, filename, yank, reason, ctx)

    return _yank_form(
        name,
        request.form.get("version", ""),
        act,
        _("%(file)s was yanked.", file=filename),
        _("%(file)s was unyanked.", file=filename),
    )


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
    return back_to_project(name, "history")


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
