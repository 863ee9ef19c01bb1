"""Where a name comes from: this index, the upstream, or (by an admin's allowance) both.

One answer per normalized name, decided here and nowhere else; the read path and the
upload path both ask. A name this index knows (files in the index, or a `project` row:
claimed by an upload, a token scope or an admin, kept when its last file goes) hides the
upstream completely, unless an admin allowed the upstream for it (`project.allow_upstream`),
then local files come first. A name under a granted PEP 752 namespace (`acme`, `acme-*`) is
local by rule, before any upload: its upstream files are never served, which closes
dependency confusion by prefix (an admin's allowance for one name still merges it). Any
other name is served from the upstream.

The read path must not query the database: `Sources` keeps the claimed and allowed names
and the namespace grants in memory, reloaded after our own changes and by the store
watcher (for the CLI's).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee
from packaging.utils import canonicalize_name

from privindex.accounts import namespaces
from privindex.accounts.permissions import UploadDenied
from privindex.db.connection import data_version, database
from privindex.db.models import AuditEvent, DistFile, Project, ProjectRole, User
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.ops.logs import redact_url
from privindex.packages import project_status
from privindex.packages.index import Index
from privindex.packages.project_status import ProjectStatus
from privindex.upstream import cooldown
from privindex.upstream.cache import NotCached, UpstreamCache
from privindex.upstream.client import UpstreamError

log = logging.getLogger(__name__)


REFUSED_RULE = "upstream"  # the upload:refused detail `rule` of the upload guard


class Source(enum.Enum):
    LOCAL = "local"  # this index only; the upstream is hidden
    UPSTREAM = "upstream"  # not known here: the upstream's page
    MERGED = "merged"  # an admin allowed the upstream: local files first, then the upstream's


class UpstreamClaimed(UploadDenied):
    """A first upload to a name the upstream serves; the message says what to do. Its
    `upload:refused` event carries `rule: upstream`, which `refused_names` lists."""


def claimed_names() -> tuple[frozenset[str], frozenset[str]]:
    """(names with a project row, names whose upstream an admin allowed)."""
    rows = list(Project.select(Project.name, Project.allow_upstream).tuples())
    return frozenset(n for n, _a in rows), frozenset(n for n, a in rows if a)


@dataclass(frozen=True)
class NamespaceRules:
    """The granted namespaces, and which (namespace, project) pairs have a project owner
    among the grant's owners (PEP 752's `owned`), as one immutable value: replaced, never
    changed, so a page rendered with it stays valid while it is the current one."""

    granted: frozenset[str] = frozenset()
    owned: frozenset[tuple[str, str]] = frozenset()
    owners: dict[str, str] = field(default_factory=dict, hash=False)  # namespace -> "alice, bob"

    def covers(self, name: str) -> bool:
        """Whether a name is under a grant: on the read path, so it stops at the first."""
        granted = self.granted
        if not granted:
            return False
        end = name.find("-")
        while end != -1:  # namespaces.prefixes, inlined: no generator per request
            if name[:end] in granted:
                return True
            end = name.find("-", end + 1)
        return name in granted

    def api_entries(self, name: str) -> list[dict] | None:
        """PEP 752's `namespaces` value for a project detail page: null outside every grant."""
        found = namespaces.covering(name, self.granted) if self.granted else []
        return [{"name": n, "owned": (n, name) in self.owned} for n in found] or None

    def api_list(self) -> list[dict]:
        """PEP 752's namespace list."""
        return [{"name": n} for n in sorted(self.granted)]

    def api_detail(self, name: str) -> dict | None:
        """PEP 752's namespace detail: the nearest granted parent, the direct children, and
        the optional `owner`: the grant's owner users as the project page names them."""
        if name not in self.granted:
            return None

        def parent(n: str) -> str | None:
            above = namespaces.covering(n, self.granted)[:-1]
            return above[-1] if above else None

        children = sorted(n for n in self.granted if n != name and parent(n) == name)
        detail: dict = {"name": name, "parent": parent(name), "children": children}
        if self.owners.get(name):
            detail["owner"] = self.owners[name]
        return detail


def namespace_rules() -> NamespaceRules:
    grants = namespaces.list_grants()
    if not grants:
        return NamespaceRules()
    granted = {g.name: g for g in grants}
    owners = (
        Project.select(Project.name, User.username)
        .join(ProjectRole)
        .join(User)
        .where(ProjectRole.role == "owner")
        .tuples()
    )
    owned = {
        (n, project)
        for project, username in owners
        for n in namespaces.covering(project, granted)
        if username in granted[n].owners
    }
    return NamespaceRules(frozenset(granted), frozenset(owned), {g.name: ", ".join(g.owners) for g in grants})


class Sources:
    def __init__(self, index: Index, cache: UpstreamCache | None):
        self.index = index
        self.cache = cache
        # told the names whose source a reload changed (a claim, an allowance), or None when
        # the namespace grants did (they are on the JSON page of every name under them)
        self.rule_listeners: list[Callable[[set[str] | None], None]] = []
        self.claimed: frozenset[str] = frozenset()
        self.allowed: frozenset[str] = frozenset()
        self.statuses: dict[str, ProjectStatus] = {}  # local names not plainly active (PEP 792)
        self.namespaces = NamespaceRules()
        self._data_version: int | None = None
        self.status_listeners: list[Callable[[list[str]], None]] = []  # told the names whose status changed

    @property
    def upstream_on(self) -> bool:
        return self.cache is not None

    def reload(self, force: bool = True) -> None:
        """Read the claimed and allowed names again (cheap: one small query). The watcher
        calls it every pass with force=False: skipped unless another connection committed."""
        version = None
        if not force:
            version = data_version()
            if version is not None and version == self._data_version:
                return
        before = (self.claimed, self.allowed, self.namespaces)
        self.claimed, self.allowed = claimed_names()
        statuses = project_status.non_active()
        old = self.statuses
        # an unchanged status keeps its object: cached pages are valid while it is theirs
        self.statuses = {n: s if old.get(n) != s else old[n] for n, s in statuses.items()}
        moved = [n for n in old.keys() | statuses.keys() if old.get(n) != statuses.get(n)]
        if moved:
            for listener in self.status_listeners:
                listener(moved)
        rules = namespace_rules()
        if rules != self.namespaces:  # a new value only when it changed: pages stay cached
            self.namespaces = rules
        if self.cache is not None:  # the cooldown's exemptions change as rarely, by the same hands
            self.cache.exemptions = cooldown.load()
        if version is not None:  # only once everything was read: a failed pass is tried again
            self._data_version = version
        self._tell_rule_listeners(*before)

    def _tell_rule_listeners(
        self, claimed: frozenset[str], allowed: frozenset[str], rules: NamespaceRules
    ) -> None:
        changed = (
            None if rules is not self.namespaces else set(claimed ^ self.claimed) | (allowed ^ self.allowed)
        )
        if changed is None or changed:
            for listener in self.rule_listeners:
                listener(changed)

    def status(self, name: str) -> ProjectStatus:
        """A local name's status, from memory (upstream names carry theirs on their page)."""
        return self.statuses.get(name, project_status.ACTIVE)

    def source(self, name: str) -> Source:
        """From memory only: the hot path of every page and download."""
        if self.cache is None:
            return Source.LOCAL
        if name in self.allowed:
            return Source.MERGED
        if self.known_locally(name):
            return Source.LOCAL
        return Source.UPSTREAM

    def known_locally(self, name: str) -> bool:
        """Claimed, listed, or under a granted namespace (local by rule)."""
        return (
            name in self.claimed
            or self.index.snapshot.projects.get(name) is not None
            or self.namespaces.covers(name)
        )

    def upstream_only_names(self) -> list[tuple[str, str]]:
        """(normalized, display name) of the cached upstream projects that are served from
        the upstream here (not local, not merged): what the project search adds to the
        local names, from memory."""
        if self.cache is None:
            return []
        return [(n, d) for n, d in self.cache.names if self.source(n) is Source.UPSTREAM]

    # -- the upload guard ------------------------------------------------------------------

    def check_first_upload(self, name: str) -> None:
        """Refuse the first upload to a name the upstream serves (outside any transaction:
        it may ask the upstream). A name known here, or claimed by an admin, passes. When the
        upstream cannot be asked, refuse (fail closed): a retry or an admin's claim helps."""
        if (
            self.cache is None
            or self.known_locally(name)
            or _has_row_or_files(name)
            or namespaces.grants_for(name)  # granted a moment ago, not yet in memory
        ):
            return
        try:
            on_upstream = self.cache.has_project(name)
        except UpstreamError as exc:
            raise UpstreamClaimed(
                f"{name} cannot be checked against the upstream index ({exc}); try "
                "again later, or an admin can claim it: privindex project claim "
                f"{name}"
            ) from None
        if on_upstream:
            raise UpstreamClaimed(
                f"{name} exists on the upstream index; an admin must claim it first "
                f"(privindex project claim {name})"
            )

    # -- shadowing: the upstream starts publishing a name we own ------------------------------

    def watch_shadowing(self, stop: threading.Event, interval: float) -> None:
        """Every interval seconds, ask the upstream about each local name not yet recorded
        as shadowed; record `upstream:shadowed` once per name. Nothing changes for clients."""
        while True:
            try:
                self.check_shadowing(stop)
            except Exception:  # keep watching; the upstream may come back
                log.exception("checking local names against the upstream failed")
            if stop.wait(interval):
                return

    def check_shadowing(self, stop: threading.Event | None = None) -> list[str]:
        if self.cache is None or self.cache.offline:
            return []
        recorded = {
            p
            for (p,) in AuditEvent.select(AuditEvent.project)
            .where(AuditEvent.tag == Tag.UPSTREAM_SHADOWED.value)
            .tuples()
        }
        names = (set(self.index.snapshot.projects) | self.claimed) - recorded
        found = []
        for name in sorted(names):
            if stop is not None and stop.is_set():
                break
            try:
                project = self.cache.upstream.fetch_project(name)
            except UpstreamError:
                continue
            if project is not None and project.files:
                with database.atomic():
                    audit.record(
                        Tag.UPSTREAM_SHADOWED,
                        audit.Context(via="server"),
                        subject=name,
                        project=name,
                        upstream=redact_url(self.cache.upstream.project_url(name)),
                        upstream_files=len(project.files),
                        allowed=name in self.allowed,
                    )
                log.warning(
                    "the upstream now publishes %s, which this index owns: clients still get only "
                    "the local files (an admin may allow the upstream for it)",
                    name,
                )
                found.append(name)
        return found


def _has_row_or_files(name: str) -> bool:
    """The database's word, for a name claimed by another process a moment ago."""
    return (
        Project.select().where(Project.name == name).exists()
        or DistFile.select().where(DistFile.project == name).exists()
    )


def refused_names() -> list[tuple[str, float, int]]:
    """(name, last time, how many) of first uploads the upstream guard refused, for admins:
    the names a team tried to publish that the public index already has (an admin may claim
    them). A name that is local by now is left out."""
    last = peewee.fn.MAX(AuditEvent.ts)
    rows = (
        AuditEvent.select(AuditEvent.project, last, peewee.fn.COUNT(AuditEvent.id))
        .where(
            (AuditEvent.tag == Tag.UPLOAD_REFUSED.value)
            & AuditEvent.details.contains(f'"rule": "{REFUSED_RULE}"')
            & AuditEvent.project.is_null(False)
        )
        .group_by(AuditEvent.project)
        .order_by(last.desc())
        .tuples()
    )
    return [(name, ts, n) for name, ts, n in rows if not _has_row_or_files(name)]


def shadowed_names() -> list[tuple[str, float]]:
    """(name, when) of local names the upstream publishes too, for admins."""
    rows = (
        AuditEvent.select(AuditEvent.project, AuditEvent.ts)
        .where(AuditEvent.tag == Tag.UPSTREAM_SHADOWED.value)
        .order_by(AuditEvent.project)
        .tuples()
    )
    return list(rows)


# -- admin acts (CLI and web UI), audited -------------------------------------------------------


def claim(name: str, ctx: audit.Context) -> bool:
    """Make name local (hide the upstream for it). False if it already was."""
    from privindex.packages.projects import ensure_project

    name = canonicalize_name(name)
    with database.atomic():
        existed = Project.get_or_none(Project.name == name) is not None
        ensure_project(name, ctx)
        if not existed:
            audit.record(Tag.PROJECT_CLAIM, ctx, subject=name, project=name)
    return not existed


def set_upstream_allowed(name: str, allowed: bool, ctx: audit.Context) -> bool:
    """Allow (or stop allowing) the upstream's files for a local name; claims it if needed.
    False if nothing changed."""
    from privindex.packages.projects import ensure_project

    name = canonicalize_name(name)
    with database.atomic():
        project = ensure_project(name, ctx)
        if bool(project.allow_upstream) == allowed:
            return False
        Project.update(allow_upstream=allowed, upstream_changed_at=time.time()).where(
            Project.id == project.id
        ).execute()
        audit.record(
            Tag.PROJECT_UPSTREAM_ALLOW if allowed else Tag.PROJECT_UPSTREAM_REVOKE,
            ctx,
            subject=name,
            project=name,
        )
    return True


__all__ = [
    "NamespaceRules",
    "Source",
    "Sources",
    "UpstreamClaimed",
    "NotCached",
    "claim",
    "set_upstream_allowed",
    "refused_names",
    "shadowed_names",
]
