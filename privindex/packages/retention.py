"""Retention: which files a policy lets go, and the run that deletes them to free disk.

A policy only ever takes pre-releases and dev releases (as `packaging` reads versions:
1.0rc1, 1.0.dev3), never a project's latest final release, nor, in a project without one,
its latest release. Index-wide settings give the policy; a project's row in
`retention_policy` overrides either rule. Deletions go through `withdrawal.delete`, the
path the web and the CLI use (audited as file:delete with the policy that made them), so a
running server follows a command's run as it follows `privindex project delete`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import Version
from peewee import JOIN, fn

from privindex.accounts.permissions import can_manage
from privindex.accounts.users import AccountError
from privindex.config import Settings
from privindex.db.connection import database
from privindex.db.models import (
    DistFile,
    PublishedFile,
    RetentionPolicy,
    RetentionRun,
    RetentionSchedule,
    User,
)
from privindex.i18n import _
from privindex.ops import audit
from privindex.packages import withdrawal
from privindex.packages.index import Index, Progress
from privindex.packages.store import Store

DAY = 86400.0


@dataclass(frozen=True)
class Policy:
    keep_prereleases: int = 0  # keep the newest N pre-/dev releases; 0: all
    dev_max_days: int = 0  # delete dev releases uploaded more than D days ago; 0: never

    def __str__(self) -> str:
        rules = []
        if self.keep_prereleases:
            rules.append(f"keep the newest {self.keep_prereleases} pre-releases")
        if self.dev_max_days:
            rules.append(f"dev releases for {self.dev_max_days} days")
        return "; ".join(rules) or "keep everything"


@dataclass(frozen=True)
class Doomed:
    """A file a policy deletes, and why."""

    project: str
    filename: str
    version: str
    size: int
    reason: str


@dataclass(frozen=True)
class Report:
    files: list[Doomed]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def policy_for(settings: Settings, project: str) -> Policy:
    """The index-wide settings with the project's overrides."""
    return _with_overrides(settings, overrides(project))


def _with_overrides(settings: Settings, own: tuple[int | None, int | None]) -> Policy:
    keep, days = own
    return Policy(
        settings.retention_keep_prereleases if keep is None else keep,
        settings.retention_dev_max_days if days is None else days,
    )


def overrides(project: str) -> tuple[int | None, int | None]:
    """The project's own (keep_prereleases, dev_max_days); None: the index-wide setting."""
    row = RetentionPolicy.get_or_none(RetentionPolicy.project == canonicalize_name(project))
    return (row.keep_prereleases, row.dev_max_days) if row is not None else (None, None)


def set_policy(
    user: User | None,
    project: str,
    keep_prereleases: int | None,
    dev_max_days: int | None,
    ctx: audit.Context,
) -> None:
    """A project's overrides (None: the index-wide setting), by an owner or an admin (user
    None: the operator at the command line); audited."""
    name = canonicalize_name(project)
    if user is not None and not can_manage(user, name):
        raise AccountError(_("only an owner of the project or an admin may do that"))
    for value in (keep_prereleases, dev_max_days):
        if value is not None and value < 0:
            raise AccountError(_("a retention rule is 0 (off) or more"))
    if not DistFile.select().where(DistFile.project == name).exists():
        raise AccountError(_("there is no project '%(project)s' (see: privindex project list)", project=name))
    with database.atomic():
        RetentionPolicy.delete().where(RetentionPolicy.project == name).execute()
        if keep_prereleases is not None or dev_max_days is not None:
            RetentionPolicy.create(project=name, keep_prereleases=keep_prereleases, dev_max_days=dev_max_days)
        audit.record(
            audit.Tag.PROJECT_RETENTION_SET,
            ctx,
            project=name,
            keep_prereleases=keep_prereleases,
            dev_max_days=dev_max_days,
        )


def doomed(
    files: list[tuple[str, str, int, float]], project: str, policy: Policy, now: float
) -> list[Doomed]:
    """Of one project's files (filename, version, size, upload time), those the policy deletes."""
    by_version: dict[Version, list[tuple[str, int, float]]] = {}
    for filename, text, size, uploaded in files:
        try:
            by_version.setdefault(Version(text), []).append((filename, size, uploaded))
        except ValueError:  # not PEP 440 (or past int()'s digit limit): no rule places it, it stays
            continue
    if not by_version:
        return []
    finals = [v for v in by_version if not v.is_prerelease]
    protected = max(finals) if finals else max(by_version)
    reasons: dict[Version, str] = {}
    if policy.dev_max_days:
        cutoff = now - policy.dev_max_days * DAY
        for version, entries in by_version.items():
            if version.is_devrelease and max(uploaded for _f, _s, uploaded in entries) < cutoff:
                reasons[version] = f"dev release older than {policy.dev_max_days} days"
    if policy.keep_prereleases:
        pre = sorted((v for v in by_version if v.is_prerelease), reverse=True)
        for version in pre[policy.keep_prereleases :]:
            reasons.setdefault(version, f"beyond the newest {policy.keep_prereleases} pre-releases")
    reasons.pop(protected, None)
    return [
        Doomed(project, filename, str(version), size, reason)
        for version, reason in sorted(reasons.items())
        for filename, size, _uploaded in sorted(by_version[version])
    ]


def plan(settings: Settings, now: float | None = None) -> list[Doomed]:
    """Every file the policies delete now, project by project."""
    now = time.time() if now is None else now
    files: dict[str, list[tuple[str, str, int, float]]] = {}
    rows = (
        DistFile.select(
            DistFile.project,
            DistFile.filename,
            DistFile.version,
            DistFile.size,
            fn.COALESCE(PublishedFile.published_at, DistFile.upload_time),  # when it was published
        )
        .join(PublishedFile, JOIN.LEFT_OUTER, on=PublishedFile.filename == DistFile.filename)
        .tuples()
    )
    for project, filename, version, size, uploaded in rows:
        files.setdefault(project, []).append((filename, version, size, uploaded))
    own = {
        name: (keep, days)
        for name, keep, days in RetentionPolicy.select(
            RetentionPolicy.project, RetentionPolicy.keep_prereleases, RetentionPolicy.dev_max_days
        ).tuples()
    }  # one query, not one per project
    return [
        file
        for project in sorted(files)
        for file in doomed(
            files[project], project, _with_overrides(settings, own.get(project, (None, None))), now
        )
    ]


def run(settings: Settings, store: Store, index: Index | None, via: str) -> Report:
    """Delete what the policies let go now (the server's schedule)."""
    return delete(plan(settings), store, index, via)


def delete(
    files: list[Doomed], store: Store, index: Index | None, via: str, progress: Progress | None = None
) -> Report:
    """Delete the files a plan named and say what went. index None: a command, which a
    running server follows through its folder. A file deleted meanwhile is skipped."""
    ctx = audit.Context(via=via)
    gone: list[Doomed] = []
    for done, file in enumerate(files, 1):
        try:
            withdrawal.delete(
                store, index, None, file.project, file.filename, ctx, policy="retention", reason=file.reason
            )
            gone.append(file)
        except AccountError:  # no longer there
            pass
        if progress is not None:
            progress(done, len(files))
    report = Report(gone)
    if gone:
        RetentionRun.create(at=time.time(), files=len(gone), bytes=report.bytes, via=via)
    return report


def take_scheduled_round(interval: float, now: float | None = None) -> bool:
    """Whether this process runs the round due now: one conditional UPDATE (or, the first
    time, one INSERT) moves the next round on, so of several processes sharing the database
    exactly one gets True."""
    now = time.time() if now is None else now
    taken = (
        RetentionSchedule.update(next_run=now + interval)
        .where((RetentionSchedule.id == 1) & (RetentionSchedule.next_run <= now))
        .execute()
    )
    if taken:
        return True
    first = database.execute_sql(  # the very first round: whoever inserts the row takes it
        f"INSERT INTO retention_schedule (id, next_run) VALUES (1, {database.param}) "
        "ON CONFLICT (id) DO NOTHING",
        (now + interval,),
    )
    return first.rowcount == 1
