"""Publishing a file: the one path by which bytes become a listed, hashed distribution.

Each operation claims what it needs, writes the file into the store, records its facts
and its publication and the audit event in one immediate transaction (the filesystem step
comes last, so a refusal or a failure rolls everything back), and only then lists the file
in the index. Uploads (`publish_upload`) and an admin's deliberate replacements
(`replace`: new bytes from a file; `accept`: the bytes now on disk) all go through here.
The HTTP layer and the CLI parse and answer; they own no transaction.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version
from peewee import fn

from privindex.accounts import permissions, users
from privindex.accounts.api_tokens import TokenAuth
from privindex.db.connection import database
from privindex.db.models import DistFile, PublishedFile
from privindex.notify import events
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import digests, project_status, projects
from privindex.packages.archives import DEFAULT_LIMITS, ArchiveLimits
from privindex.packages.distfile import FileFacts, InvalidDistribution, parse_filename, read_facts
from privindex.packages.index import Index, IndexedFile, save_facts
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX
from privindex.packages.store import IncomingFile, Store
from privindex.upstream.source_rules import Sources


class PublishError(Exception):
    """A publication refused; the message says why and what to do."""


class AlreadyExists(PublishError):
    """The filename is published with other content (or another upload was first)."""


class QuotaExceeded(PublishError):
    """The file would take the project past max_project_mb."""


@dataclass(frozen=True)
class Published:
    outcome: str  # "added", "overwritten", "restored" or "identical"
    entry: IndexedFile | None = None


def check_upload(
    auth: TokenAuth, project: str, require_2fa: bool, account_url: str, sources: Sources | None = None
) -> None:
    """May this token upload to the project? Raises permissions.UploadDenied saying why.

    The permission rules read the project and its files in one read transaction, so they
    never straddle a concurrent first upload's commit, which writes both. With require_2fa
    the token's user must have a second factor (checked after the permission, as PyPI
    does, so someone without permission sees that first), unless the token was minted by
    Trusted Publishing: its trust comes from the CI identity (SECURITY.md). With an upstream,
    the first upload to a name the upstream serves is refused until an admin claims it
    (upstream/source_rules.py)."""
    with database.atomic(lock_type="DEFERRED"):
        auth.check_upload(project)
        project_status.check_takes_uploads(project)  # archived, quarantined: PEP 792
        if require_2fa and auth.token.publisher_id is None and not users.has_second_factor(auth.user):
            raise permissions.UploadDenied(
                f"The account {auth.user.username!r} has no second factor, which this server requires "
                f"for uploads: sign in at {account_url} and add a security key or an authenticator app"
            )
    if sources is not None:  # after the transaction: it may ask the upstream
        sources.check_first_upload(project)  # UpstreamClaimed is an UploadDenied


def publish_upload(
    store: Store,
    index: Index,
    auth: TokenAuth,
    ctx: audit.Context,
    project: str,
    version: Version,
    filename: str,
    incoming: IncomingFile,
    facts: FileFacts,
    overwrite: bool,
    max_project_bytes: int = 0,
    provenance: bytes | None = None,
) -> Published:
    """Publish an uploaded file (already validated) under its filename, with its PEP 740
    provenance object if the upload carried attestations (packages/provenance.py).

    A filename keeps its first publication: the identical bytes again change nothing (or
    put a file deleted by hand back); other bytes are refused unless `overwrite` is on,
    when they become a new publication, audited as file:overwrite with both digests.
    Raises permissions.UploadDenied, AlreadyExists or QuotaExceeded (max_project_bytes:
    the project's files may not add up to more; 0: no quota).
    """
    listed = _listed(index, project, filename)
    if listed is not None and listed.sha256 == facts.sha256:
        return Published("identical", listed)
    now = time.time()
    linked = wrote = False
    try:
        with digests.publishers.writing(), database.atomic():
            project_status.check_takes_uploads(project)  # again: a status set since check_upload
            projects.claim_project(auth, project, ctx)
            published = digests.get(filename)
            if published is None:
                outcome, tag, path, old = "added", Tag.FILE_ADD, f"{project}/{filename}", None
            elif published.sha256 == facts.sha256:
                outcome, tag, old = "restored", Tag.FILE_ADD, None
                path = _path_of(index, project, filename)
            elif overwrite:
                outcome, tag, old = "overwritten", Tag.FILE_OVERWRITE, published.sha256
                path = _path_of(index, project, filename)
            else:
                raise AlreadyExists(
                    f"File already exists: {filename}, with other content. A file cannot be "
                    "replaced: bump the version (uploading identical files again is fine)"
                )
            if max_project_bytes:  # in the writers' transaction: two uploads cannot both fit
                _check_quota(project, path, facts.size, max_project_bytes)
            new_release = outcome == "added" and not _has_release(project, version)
            entry = save_facts(path, facts, unyank=outcome != "restored")
            if outcome != "restored":
                published = digests.publish(filename, project, facts.sha256, now, row=published)
            assert published is not None  # restored: the publication it had
            details: dict[str, object] = (
                {"old_sha256": old} if old else {"restored": True} if outcome == "restored" else {}
            )
            details["token_description"] = auth.token.description  # which token (its id: token_id)
            if auth.ci_claims is not None:  # uploaded from CI with a minted token: say from where
                details["ci"] = {**auth.ci_claims, "publisher": auth.token.publisher_id}
            if provenance is not None:
                details["provenance"] = True
            audit.record(
                tag,
                ctx,
                subject=filename,
                project=project,
                version=str(version),
                sha256=published.sha256,
                size=facts.size,
                **details,
            )
            about = dict(filename=filename, version=str(version), sha256=published.sha256, size=facts.size)
            if new_release:
                events.emit("release.published", project, ctx, version=str(version))
            events.emit("file.uploaded", project, ctx, **about)
            if provenance is not None:
                store.write(path + PROVENANCE_SUFFIX, provenance)
                wrote = outcome == "added"
            elif outcome == "overwritten":  # the old bytes' attestations are not about the new ones
                store.remove(path + PROVENANCE_SUFFIX, missing_ok=True)
            try:
                store.publish(incoming, path, replace=outcome != "added")
            except FileExistsError:
                raise AlreadyExists(f"File already exists: {filename} (another upload was first)") from None
            linked = outcome == "added"
    except BaseException:
        if wrote:  # nothing of a refused or failed upload stays behind
            store.remove(path + PROVENANCE_SUFFIX, missing_ok=True)
        if linked:  # the commit failed after the file appeared: take it back
            store.remove(path)
        raise
    entry = entry.with_facts(upload_time=published.published_at)
    index.add(entry)
    return Published(outcome, entry)


def accept(
    store: Store, filename: str, ctx: audit.Context, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[str, str]:
    """Publish the bytes now on disk under filename (after a deliberate change by hand).
    Returns (old, new) sha256; audited as file:replace."""
    published = _published(filename)
    path = _stored_path(store, filename)
    assert path is not None  # without missing_ok, it raises instead
    try:
        facts = read_facts(store.full_path(path), limits=limits)
    except (InvalidDistribution, OSError) as exc:
        raise PublishError(f"{path} is not a distribution privindex can serve: {exc}") from None
    with database.atomic():
        save_facts(path, facts)
        digests.publish(filename, published.project, facts.sha256)
        audit.record(
            Tag.FILE_REPLACE,
            ctx,
            subject=filename,
            project=published.project,
            path=path,
            old_sha256=published.sha256,
            sha256=facts.sha256,
            size=facts.size,
            how="accept",
        )
        store.remove(path + PROVENANCE_SUFFIX, missing_ok=True)
    return published.sha256, facts.sha256


def replace(
    store: Store, filename: str, source: Path, ctx: audit.Context, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[str, str]:
    """Publish the file at source as the new content of filename, written atomically where
    the old one lies. Returns (old, new) sha256; audited as file:replace."""
    published = _published(filename)
    project, version = parse_filename(filename)  # a published filename always parses
    path = _stored_path(store, filename, missing_ok=True) or f"{project}/{filename}"
    incoming = store.incoming(limit=2**62)
    try:
        with open(source, "rb") as src:
            while chunk := src.read(1024 * 1024):
                incoming.write(chunk)
        incoming.flush()
        try:
            facts = read_facts(
                incoming.path, filename, sha256=incoming.digests()["sha256"], strict=True, limits=limits
            )
        except InvalidDistribution as exc:
            raise PublishError(f"{source} is not a valid distribution: {exc}") from None
        try:
            same = Version(facts.version or "") == version
        except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
            same = False
        if canonicalize_name(facts.name) != project or not same:
            raise PublishError(f"{source} holds {facts.name} {facts.version}, not what {filename} names")
        with database.atomic():
            save_facts(path, facts, unyank=True)
            digests.publish(filename, project, facts.sha256)
            audit.record(
                Tag.FILE_REPLACE,
                ctx,
                subject=filename,
                project=project,
                path=path,
                old_sha256=published.sha256,
                sha256=facts.sha256,
                size=facts.size,
                how="replace",
            )
            store.remove(path + PROVENANCE_SUFFIX, missing_ok=True)
            store.publish(incoming, path, replace=True)
    finally:
        incoming.close()
    return published.sha256, facts.sha256


def _has_release(project: str, version: Version) -> bool:
    """Whether the project has a file of this version already (a first one publishes the release)."""
    recorded = DistFile.select(DistFile.version).where(DistFile.project == project).distinct()
    for (text,) in recorded.tuples():
        try:
            if Version(text) == version:
                return True
        except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
            continue
    return False


def _check_quota(project: str, path: str, size: int, limit: int) -> None:
    used = (
        DistFile.select(fn.COALESCE(fn.SUM(DistFile.size), 0))
        .where((DistFile.project == project) & (DistFile.path != path))  # an overwrite frees its own
        .scalar()
    )
    if used + size > limit:
        mib = 1024 * 1024
        raise QuotaExceeded(
            f"Project size too large: {project!r} may hold {limit / mib:.1f} MiB (setting "
            f"max_project_mb), {max(limit - used, 0) / mib:.1f} MiB is left and this file is "
            f"{size / mib:.1f} MiB. Delete old releases (privindex retention) or ask an admin"
        )


def _listed(index: Index, project: str, filename: str) -> IndexedFile | None:
    snapshot = index.snapshot.projects.get(project)
    return next((f for f in snapshot.files if f.filename == filename), None) if snapshot else None


def _path_of(index: Index, project: str, filename: str) -> str:
    """Where the file lies now (listed or withdrawn), else where an upload puts it."""
    snapshot = index.snapshot
    listed = _listed(index, project, filename)
    if listed is not None:
        return listed.path
    withdrawn = next((p for p, w in snapshot.withdrawn.items() if w.found.filename == filename), None)
    return withdrawn or f"{project}/{filename}"


def _published(filename: str) -> PublishedFile:
    published = digests.get(filename)
    if published is None:
        raise PublishError(f"no file named {filename!r} is published (see the project's page)")
    return published


def _stored_path(store: Store, filename: str, missing_ok: bool = False) -> str | None:
    """The file's path in the store, from the facts on record, else the usual places."""
    if "/" in filename or filename.startswith("."):
        raise PublishError(f"{filename!r} is not a bare filename")
    try:
        project, _version = parse_filename(filename)
    except InvalidDistribution as exc:
        raise PublishError(str(exc)) from None
    recorded = [
        p
        for (p,) in DistFile.select(DistFile.path)
        .where((DistFile.path == filename) | DistFile.path.endswith("/" + filename))
        .tuples()
        if p.rpartition("/")[2] == filename
    ]
    for path in [*sorted(recorded), f"{project}/{filename}", filename]:
        if os.path.isfile(store.full_path(path)):
            return path
    if missing_ok:
        return None
    raise PublishError(f"{filename} is not in the store (is --store right?)")
