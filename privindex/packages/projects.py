"""Projects and roles: listing them and changing who holds which role.

A project row exists once someone has rights on it. The rules of who may do what are in
accounts/permissions.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from peewee import fn

from privindex.accounts.api_tokens import TokenAuth
from privindex.accounts.permissions import ROLES, first_upload_owns, project_exists
from privindex.accounts.users import AccountError, get_user
from privindex.db.connection import database
from privindex.db.models import DistFile, Project, ProjectRole, Release, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import releases
from privindex.packages.index import Index, IndexedFile


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    owners: list[str]
    maintainers: list[str]
    files: int


def list_projects(user: User | None = None, name: str | None = None) -> list[ProjectInfo]:
    """Every project (with rights or with files), sorted; only the user's when user is
    given, only the named one when name is given."""
    roles: dict[str, dict[str, list[str]]] = {}
    query = (
        ProjectRole.select(ProjectRole, Project, User)
        .join(Project)
        .switch(ProjectRole)
        .join(User)
        .order_by(User.username)
    )
    counts = DistFile.select(DistFile.project, fn.COUNT(DistFile.id)).group_by(DistFile.project)
    names = Project.select(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
        counts = counts.where(DistFile.project == name)
        names = names.where(Project.name == name)
    for role in query:
        roles.setdefault(role.project.name, {"owner": [], "maintainer": []})[role.role].append(
            role.user.username
        )
    file_counts = dict(counts.tuples())
    result = []
    for project in sorted(set(file_counts) | {p.name for p in names}):
        r = roles.get(project, {"owner": [], "maintainer": []})
        if user is not None and user.username not in r["owner"] + r["maintainer"]:
            continue
        result.append(ProjectInfo(project, r["owner"], r["maintainer"], file_counts.get(project, 0)))
    return result


def ensure_project(name: str, ctx: audit.Context) -> Project:
    project = Project.get_or_none(Project.name == name)
    if project is None:
        project = Project.create(name=name, created_at=time.time())
        audit.record(Tag.PROJECT_CREATE, ctx, subject=name, project=name)
    return project


def set_role(project_name: str, username: str, role: str, ctx: audit.Context) -> None:
    """Give username the role on the project (changing a role they already have)."""
    if role not in ROLES:
        raise AccountError(_("a role is one of: %(roles)s", roles=", ".join(ROLES)))
    name = canonicalize_name(project_name)
    if not project_exists(name):
        raise AccountError(_("there is no project '%(project)s' (see: privindex project list)", project=name))
    user = get_user(username)
    with database.atomic():
        project = ensure_project(name, ctx)
        current = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user)
        if current is not None and current.role == role:
            return
        if current is not None:
            if current.role == "owner" and _owner_count(project) == 1:
                raise AccountError(_LAST_OWNER(user, name))
            current.role = role
            current.save()
        else:
            ProjectRole.create(project=project, user=user, role=role)
        audit.record(Tag.ROLE_ADD, ctx, subject=user.username, project=name, role=role)


def remove_role(project_name: str, username: str, ctx: audit.Context, role: str | None = None) -> None:
    name = canonicalize_name(project_name)
    user = get_user(username)
    project = Project.get_or_none(Project.name == name)
    current = (
        ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user) if project else None
    )
    if current is None or (role is not None and current.role != role):
        raise AccountError(
            _(
                "'%(user)s' is not %(role)s of '%(project)s'",
                user=user.username,
                role=_("a maintainer") if role == "maintainer" else _("an owner") if role else _("a member"),
                project=name,
            )
        )
    if current.role == "owner" and _owner_count(project) == 1:
        raise AccountError(_LAST_OWNER(user, name))
    with database.atomic():
        current.delete_instance()
        audit.record(Tag.ROLE_REMOVE, ctx, subject=user.username, project=name, role=current.role)


def _LAST_OWNER(user: User, name: str) -> str:
    return _(
        "'%(user)s' is the last owner of '%(project)s'; add another owner first",
        user=user.username,
        project=name,
    )


def _owner_count(project: Project) -> int:
    return ProjectRole.select().where(ProjectRole.project == project, ProjectRole.role == "owner").count()


def claim_project(auth: TokenAuth, name: str, ctx: audit.Context) -> Project:
    """The project row for an accepted upload; a brand-new project gets the uploader as owner.

    Call inside the (immediate) transaction that publishes the file, so a failed publish
    rolls it back and a project created meanwhile by someone else is checked again.
    """
    auth.check_upload(name)
    project = Project.get_or_none(Project.name == name)
    if project is not None:
        return project
    owns = first_upload_owns(name)
    project = ensure_project(name, ctx)
    if owns:
        ProjectRole.create(project=project, user=auth.user, role="owner")
        audit.record(Tag.ROLE_ADD, ctx, subject=auth.user.username, project=name, role="owner")
    return project


# -- browsing: the project list, search, and one project's page ------------------------------


@dataclass(frozen=True)
class Listed:
    name: str  # normalized
    display_name: str
    summary: str
    latest_version: str | None


@dataclass(frozen=True)
class Listing:
    items: list[Listed]
    total: int
    page: int
    pages: int


def browse(
    index: Index, user: User | None, query: str, page: int, page_size: int = releases.PAGE_SIZE
) -> Listing:
    """A page of projects, sorted by name: every project (user None) or the user's own,
    or those matching query (name and summary, best first)."""
    offset = (page - 1) * page_size
    snapshot = index.snapshot
    if query:
        found, total = releases.search(query, page_size, offset)
        items = [Listed(m.name, m.display_name, m.summary, m.latest_version) for m in found]
        return Listing(items, total, page, max(1, -(-total // page_size)))
    if user is None:
        names = sorted(set(snapshot.projects) | {n for (n,) in Project.select(Project.name).tuples()})
    else:
        names = sorted(
            {
                r.project.name
                for r in ProjectRole.select(ProjectRole, Project)
                .join(Project)
                .where(ProjectRole.user == user)
            }
        )
    chosen = names[offset : offset + page_size]
    meta = releases.summaries(chosen)
    items = []
    for name in chosen:
        m = meta.get(name)
        indexed = snapshot.projects.get(name)
        items.append(
            Listed(
                name,
                indexed.display_name if indexed else name,
                m.summary if m else "",
                m.latest_version if m else (indexed.versions[-1] if indexed else None),
            )
        )
    return Listing(items, len(names), page, max(1, -(-len(names) // page_size)))


@dataclass(frozen=True)
class FileView:
    file: IndexedFile
    upload: releases.Upload | None


@dataclass(frozen=True)
class ReleaseView:
    version: str
    date: float
    yanked: bool  # every file of it is yanked
    yanked_reason: str
    files: list[FileView]


@dataclass(frozen=True)
class ProjectPage:
    name: str
    display_name: str
    info: ProjectInfo | None
    latest: Release | None
    latest_version: str | None
    releases: list[ReleaseView]  # newest first
    urls: list[tuple[str, str]]
    classifiers: list[str]


def project_page(index: Index, name: str) -> ProjectPage | None:
    """Everything a project's page shows, from the index and the rows kept at upload time.
    None when there is no such project."""
    info = next(iter(list_projects(name=name)), None)
    indexed = index.project(name)
    if info is None and indexed is None:
        return None
    kept = releases.releases(name)
    uploads = releases.uploads(name)
    by_version: dict[str, list[IndexedFile]] = {}
    for f in indexed.files if indexed else ():
        by_version.setdefault(f.version, []).append(f)
    views = []
    for version in reversed(indexed.versions if indexed else ()):
        fs = by_version[version]
        views.append(
            ReleaseView(
                version=version,
                date=min(f.upload_time for f in fs),
                yanked=all(f.yanked for f in fs),
                yanked_reason=next((f.yanked_reason for f in fs if f.yanked_reason), ""),
                files=[FileView(f, uploads.get(f.filename)) for f in fs],
            )
        )
    live = [v.version for v in views if not v.yanked] or [v.version for v in views]
    latest_version = max(live, key=releases.rank) if live else None
    latest = kept.get(latest_version) if latest_version else None
    return ProjectPage(
        name=name,
        display_name=indexed.display_name if indexed else name,
        info=info,
        latest=latest,
        latest_version=latest_version,
        releases=views,
        urls=[tuple(u) for u in json.loads(latest.urls)] if latest else [],
        classifiers=json.loads(latest.classifiers) if latest else [],
    )
