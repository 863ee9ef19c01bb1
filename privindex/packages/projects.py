"""Projects and roles: listing them and changing who holds which role.

A project row exists once someone has rights on it. The rules of who may do what are in
accounts/permissions.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from packaging.utils import canonicalize_name
from peewee import fn
from rapidfuzz import process
from rapidfuzz.distance import OSA

from privindex.accounts.api_tokens import TokenAuth
from privindex.accounts.permissions import (
    ROLES,
    first_upload_owns,
    keeping_an_owner,
    project_exists,
    projects_with_role,
)
from privindex.accounts.users import AccountError, get_user
from privindex.db.connection import database
from privindex.db.models import DistFile, Project, ProjectRole, Release, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import releases
from privindex.packages.index import Index, Snapshot, parse_version


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
    with database.atomic(), keeping_an_owner([name], lambda _lost: _LAST_OWNER(user, name)):
        project = ensure_project(name, ctx)
        current = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user)
        if current is not None and current.role == role:
            return
        if current is not None:
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
    with database.atomic(), keeping_an_owner([name], lambda _lost: _LAST_OWNER(user, name)):
        current.delete_instance()
        audit.record(Tag.ROLE_REMOVE, ctx, subject=user.username, project=name, role=current.role)


def _LAST_OWNER(user: User, name: str) -> str:
    return _(
        "'%(user)s' is the last owner of '%(project)s'; add another owner first",
        user=user.username,
        project=name,
    )


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
    last_upload: float | None  # None: no file here (a row only, or an upstream name)
    upstream: bool = False  # served from the upstream index, cached here


@dataclass(frozen=True)
class Listing:
    items: list[Listed]
    total: int
    page: int
    pages: int


SORTS = ("name", "updated")  # and, for a search, "relevance" (best match first)
# A search word this long or longer also finds names one typo away ('widgts', 'wigdets': 'widgets').
FUZZY_MIN = 4


def browse(
    index: Index,
    user: User | None,
    query: str,
    page: int,
    sort: str = "name",
    upstream_names: Iterable[tuple[str, str]] = (),
    page_size: int = releases.PAGE_SIZE,
) -> Listing:
    """A page of projects: every project (user None) or the user's own, or those matching
    query (local names and summaries by word prefix, best first, then names one typo away
    and the upstream's cached names), sorted by name, by last upload, or by relevance."""
    snapshot = index.snapshot
    if query:
        names = _search(snapshot, query, dict(upstream_names))
    elif user is None:
        names = {
            n: "" for n in set(snapshot.projects) | {n for (n,) in Project.select(Project.name).tuples()}
        }
    else:
        names = dict.fromkeys(projects_with_role(user), "")
    last = {n: max((f.upload_time for f in p.files), default=None) for n, p in snapshot.projects.items()}
    order = list(names)  # a search's names come best first
    if sort == "updated":
        order.sort(key=lambda n: (-(last.get(n) or 0), n))
    elif sort == "name" or not query:
        order.sort()
    offset = (page - 1) * page_size
    chosen = order[offset : offset + page_size]
    meta = releases.summaries(chosen)
    items = []
    for name in chosen:
        m = meta.get(name)
        indexed = snapshot.projects.get(name)
        upstream_display = names[name]
        items.append(
            Listed(
                name,
                indexed.display_name if indexed else (m.display_name if m else upstream_display or name),
                m.summary if m else "",
                m.latest_version if m else (indexed.versions[-1] if indexed else None),
                last.get(name),
                upstream=bool(upstream_display) and indexed is None,
            )
        )
    return Listing(items, len(order), page, max(1, -(-len(order) // page_size)))


def _search(snapshot: Snapshot, query: str, upstream: dict[str, str]) -> dict[str, str]:
    """Matching names, best first, each with its display name if the upstream serves it
    ("" for a local one): local word-prefix matches (releases.search), then names one
    typo from the search words (`typo_matches`), then upstream names holding the query."""
    found, _total = releases.search(query, limit=1000)
    names: dict[str, str] = {m.name: "" for m in found}
    words = [canonicalize_name(w) for w in re.findall(r"[\w.-]+", query.lower())[:10]]
    pool = tuple(n for n, _display in snapshot.project_list) + tuple(upstream)
    for name in sorted(typo_matches(words, pool)):
        names.setdefault(name, upstream.get(name, ""))
    needle = canonicalize_name(query)
    for name, display in upstream.items():
        if needle in name:
            names.setdefault(name, display)
    return names


def typo_matches(words: Sequence[str], pool: tuple[str, ...]) -> set[str]:
    """The names of pool for which every search word of FUZZY_MIN letters or more is one
    typo (a letter missing, extra or wrong, or two swapped: rapidfuzz's optimal string
    alignment distance) from the name or from one of its dash-separated parts; none when
    no word is that long. rapidfuzz compares a word with every part at once, in C++."""
    long_words = [w for w in words if len(w) >= FUZZY_MIN]
    if not long_words:
        return set()
    by_length = _parts(pool)
    found: set[str] | None = None
    for word in long_words:
        hits = set()
        for length in (len(word) - 1, len(word), len(word) + 1):  # one typo changes it by one at most
            parts, owners = by_length.get(length, ((), ()))
            for _part, _distance, i in process.extract(
                word, parts, scorer=OSA.distance, score_cutoff=1, limit=None
            ):
                hits.update(owners[i])
        found = hits if found is None else found & hits
    return found or set()


@lru_cache(maxsize=4)  # the names change only when a project or a cached page comes or goes
def _parts(pool: tuple[str, ...]) -> dict[int, tuple[list[str], list[list[str]]]]:
    """Every name and every dash-separated part of one, each with the names that have it,
    by length."""
    owners: dict[str, list[str]] = {}
    for name in pool:
        for part in {name, *name.split("-")}:
            owners.setdefault(part, []).append(name)
    by_length: dict[int, tuple[list[str], list[list[str]]]] = {}
    for part, names in owners.items():
        parts, their = by_length.setdefault(len(part), ([], []))
        parts.append(part)
        their.append(names)
    return by_length


class ReleaseFile(Protocol):
    """What a release's file view reads: an index.IndexedFile, or an upstream/client.py
    UpstreamFile for a name served from the upstream (not imported: it imports us)."""

    @property
    def filename(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def upload_time(self) -> float | None: ...
    @property
    def yanked(self) -> bool: ...
    @property
    def yanked_reason(self) -> str: ...


@dataclass(frozen=True)
class FileView:
    file: ReleaseFile
    upload: releases.Upload | None


@dataclass(frozen=True)
class ReleaseView:
    version: str
    date: float | None  # None: an upstream page that gives no upload times
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
    upstream: bool = False  # served from the upstream index, cached here: no rows of ours

    def release(self, version: str) -> ReleaseView | None:
        """The release of that version, as PEP 440 compares them (1.0 is 1.0.0)."""
        wanted = parse_version(version)
        return next((r for r in self.releases if parse_version(r.version) == wanted), None)


def release_views(
    files: Iterable[ReleaseFile],
    versions: Iterable[str],
    uploads: dict[str, releases.Upload],
) -> list[ReleaseView]:
    """Files grouped by release, newest first (versions come oldest first)."""
    by_version: dict[str, list[ReleaseFile]] = {}
    for f in files:
        by_version.setdefault(f.version, []).append(f)
    views = []
    for version in reversed(tuple(versions)):
        fs = by_version.get(version, [])
        if not fs:
            continue
        times = [f.upload_time for f in fs if f.upload_time is not None]
        views.append(
            ReleaseView(
                version=version,
                date=min(times) if times else None,
                yanked=all(f.yanked for f in fs),
                yanked_reason=next((f.yanked_reason for f in fs if f.yanked_reason), ""),
                files=[FileView(f, uploads.get(f.filename)) for f in fs],
            )
        )
    return views


def _latest(views: list[ReleaseView]) -> str | None:
    """The newest final release not yanked (as the public index shows it)."""
    live = [v.version for v in views if not v.yanked] or [v.version for v in views]
    return max(live, key=releases.rank) if live else None


def project_page(index: Index, name: str) -> ProjectPage | None:
    """Everything a project's page shows, from the index and the rows kept at upload time.
    None when there is no such project."""
    info = next(iter(list_projects(name=name)), None)
    indexed = index.project(name)
    if info is None and indexed is None:
        return None
    kept = releases.releases(name)
    views = release_views(
        indexed.files if indexed else (), indexed.versions if indexed else (), releases.uploads(name)
    )
    latest_version = _latest(views)
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


def upstream_page(
    name: str, display_name: str, files: Iterable[ReleaseFile], versions: Iterable[str]
) -> ProjectPage:
    """The page of a name served from the upstream index, from its cached page: versions
    and files only (the upstream's pages carry no descriptions, and nobody here owns it)."""
    views = release_views(files, versions, {})
    return ProjectPage(
        name=name,
        display_name=display_name,
        info=None,
        latest=None,
        latest_version=_latest(views),
        releases=views,
        urls=[],
        classifiers=[],
        upstream=True,
    )
