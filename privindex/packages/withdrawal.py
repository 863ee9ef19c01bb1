"""What owners do to files already published: yank, unyank, delete. Each is audited.

Yanking keeps the file installable by exact pin (PEP 592) and is the reversible choice;
deleting removes it from the store for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import Version

from privindex.accounts.permissions import can_manage
from privindex.accounts.users import AccountError
from privindex.db.connection import database
from privindex.db.models import DistFile, User
from privindex.i18n import _
from privindex.notify import events
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import digests, releases
from privindex.packages.distfile import SDIST_SUFFIXES, WHEEL_SUFFIX
from privindex.packages.index import Index, forget_facts, save_yank
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX
from privindex.packages.store import Store

REASON_MAX = 200


@dataclass(frozen=True)
class Target:
    path: str
    filename: str
    sha256: str
    project: str


def _file(index: Index | None, user: User | None, project_name: str, filename: str) -> Target:
    """The file to act on. user None is the server's operator (the command line, which
    holds the data folder anyway); index None reads the files on record (no server)."""
    if user is not None and not can_manage(user, project_name):
        raise AccountError(_("only an owner of the project or an admin may do that"))
    if index is not None:
        project = index.project(project_name)
        found = next((f for f in project.files if f.filename == filename), None) if project else None
        if found is not None:
            return Target(found.path, found.filename, found.sha256, found.project)
    else:
        for path, sha256 in (
            DistFile.select(DistFile.path, DistFile.sha256).where(DistFile.project == project_name).tuples()
        ):
            if path.rpartition("/")[2] == filename:
                return Target(path, filename, sha256, project_name)
    raise AccountError(_("there is no file '%(file)s' in '%(project)s'", file=filename, project=project_name))


def filenames(project_name: str, file_or_version: str) -> list[str]:
    """The files a command means: one filename, or every file of a version (as PEP 440
    compares versions, so 1.0 is 1.0.0). Refuses what matches nothing."""
    project = canonicalize_name(project_name)
    named = sorted(
        p.rpartition("/")[2]
        for (p,) in DistFile.select(DistFile.path).where(DistFile.project == project).tuples()
    )
    if file_or_version.endswith((WHEEL_SUFFIX, *SDIST_SUFFIXES)):
        found = [n for n in named if n == file_or_version]
    else:
        try:
            wanted = Version(file_or_version)
        except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
            raise AccountError(
                _("'%(arg)s' is neither a file name nor a version", arg=file_or_version)
            ) from None
        found = [
            p.rpartition("/")[2]
            for (p, v) in DistFile.select(DistFile.path, DistFile.version)
            .where(DistFile.project == project)
            .tuples()
            if Version(v) == wanted
        ]
    if not found:
        raise AccountError(
            _("there is no file '%(file)s' in '%(project)s'", file=file_or_version, project=project)
        )
    return sorted(set(found))


def set_yanked(
    index: Index | None,
    user: User | None,
    project_name: str,
    filename: str,
    yanked: bool,
    reason: str,
    ctx: audit.Context,
) -> None:
    """Yank or unyank; without an index (a command), a running server learns of it through
    the publication's revision, as it does of `privindex file accept`."""
    target = _file(index, user, project_name, filename)
    reason = _reason(reason)
    with database.atomic():
        _record_yank(target, project_name, yanked, reason, ctx)
        if index is None:
            digests.touch(target.filename)
        elif index.set_yanked(target.path, yanked, reason) is None:  # deleted meanwhile: roll back
            raise AccountError(
                _("there is no file '%(file)s' in '%(project)s'", file=filename, project=project_name)
            )


def _reason(reason: str) -> str:
    return " ".join(reason.split())[:REASON_MAX]


def _record_yank(target: Target, project_name: str, yanked: bool, reason: str, ctx: audit.Context) -> None:
    """A yank's rows, audit event and webhook event, in the caller's transaction."""
    save_yank(target.path, yanked, reason)
    audit.record(
        Tag.FILE_YANK if yanked else Tag.FILE_UNYANK,
        ctx,
        subject=target.filename,
        project=project_name,
        reason=reason if yanked else None,
    )
    if yanked:
        events.emit("file.yanked", target.project, ctx, filename=target.filename, reason=reason)


def delete(
    store: Store,
    index: Index | None,
    user: User | None,
    project_name: str,
    filename: str,
    ctx: audit.Context,
    **details: object,
) -> None:
    """Delete a file for good; its filename may then be published anew (docs/architecture.md).
    details go into the audit event (retention says which policy deleted it)."""
    target = _file(index, user, project_name, filename)
    with database.atomic():
        _forget(target, project_name, ctx, **details)
    _remove(store, index, target)


def _forget(target: Target, project_name: str, ctx: audit.Context, **details: object) -> None:
    """A deletion's database part, audit and webhook events, in the caller's transaction."""
    forget_facts(target.path)
    digests.forget(target.filename)
    releases.files_removed(target.project)
    audit.record(
        Tag.FILE_DELETE, ctx, subject=target.filename, project=project_name, sha256=target.sha256, **details
    )
    events.emit("file.deleted", target.project, ctx, filename=target.filename, sha256=target.sha256)


def _remove(store: Store, index: Index | None, target: Target) -> None:
    """A deleted file off the disk, once the database has forgotten it: a failure leaves a
    file no row names (harmless), never a row naming a file that is gone."""
    store.remove(target.path + PROVENANCE_SUFFIX, missing_ok=True)  # its attestations go with it
    store.remove(target.path, missing_ok=True)  # deleted by hand meanwhile: the same end
    if index is not None:  # else a running server sees the file gone from its folder
        index.discard(target.path)


def set_release_yanked(
    index: Index,
    user: User,
    project_name: str,
    version: str,
    yanked: bool,
    reason: str,
    ctx: audit.Context,
) -> list[str]:
    """Yank or unyank every file of a release (as PEP 440 compares versions), one audited
    yank per file, as the public index yanks a release, all in one transaction: a failure
    part-way yanks none. Returns their names."""
    targets = _release(index, user, project_name, version)
    reason = _reason(reason)
    with database.atomic():
        for target in targets:
            _record_yank(target, project_name, yanked, reason, ctx)
    for target in targets:  # the served index, once the database holds it
        index.set_yanked(target.path, yanked, reason)
    return [t.filename for t in targets]


def delete_release(
    store: Store, index: Index, user: User, project_name: str, version: str, ctx: audit.Context
) -> list[str]:
    """Delete every file of a release for good, each audited, in one transaction; the files
    leave the disk after it commits. Returns their names."""
    targets = _release(index, user, project_name, version)
    with database.atomic():
        for target in targets:
            _forget(target, project_name, ctx)
    for target in targets:
        _remove(store, index, target)
    return [t.filename for t in targets]


def _release(index: Index, user: User, project_name: str, version: str) -> list[Target]:
    if not can_manage(user, project_name):
        raise AccountError(_("only an owner of the project or an admin may do that"))
    return [_file(index, user, project_name, name) for name in filenames(project_name, version)]
