"""Published digests: the sha256 a filename was published with is the truth.

A filename is published once: by an upload, by an admin (`privindex file replace|accept`),
or when a file dropped into the folder by hand is indexed for the first time. From then
on, bytes on disk that hash differently are never served under a new hash: the file is
withdrawn (logged as an error, audited once as `file:changed-on-disk`) until its
published bytes come back or an admin publishes the new ones. Every function here runs
inside the caller's transaction; the rules about who may publish are publishing.py's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from peewee import fn

from privindex.db.connection import database
from privindex.db.models import PublishedFile
from privindex.ops import audit
from privindex.ops.audit import Tag

log = logging.getLogger(__name__)

# What the server itself does (the folder watcher) is audited as coming from it.
SERVER = audit.Context(via="server")


@dataclass(frozen=True)
class Verdict:
    served: bool
    published_sha256: str
    published_at: float


class _Waiting:
    """How many publishers (uploads, admin acts) of this process wait for or hold a write
    transaction. SQLite does not queue writers fairly: a watcher committing batch after
    batch can starve an upload's busy-wait, so the watcher gives way while this is above 0."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    def give_way(self, patience: float = 30.0) -> None:
        """Wait (up to patience seconds) until no publisher is waiting."""
        deadline = time.monotonic() + patience
        while self._count and time.monotonic() < deadline:
            time.sleep(0.002)


publishers = _Waiting()


def get(filename: str) -> PublishedFile | None:
    return PublishedFile.get_or_none(PublishedFile.filename == filename)


def publish(
    filename: str, project: str, sha256: str, when: float | None = None, row: PublishedFile | None = None
) -> PublishedFile:
    """Record a (new or replacing) publication; clears any withdrawal, bumps the revision.
    row: the current publication, if the caller has just read it."""
    when = time.time() if when is None else when
    revision = latest_revision() + 1
    row = row or get(filename)
    if row is None:
        return PublishedFile.create(
            filename=filename, project=project, sha256=sha256, published_at=when, revision=revision
        )
    row.project, row.sha256, row.published_at, row.revision = project, sha256, when, revision
    row.withdrawn_sha256 = row.withdrawn_at = None
    row.save()
    return row


def touch(filename: str) -> None:
    """Something about the file changed in the database (a yank by a command): bump its
    revision, so a running server reads it again."""
    PublishedFile.update(revision=latest_revision() + 1).where(PublishedFile.filename == filename).execute()


def forget(filename: str) -> None:
    """A file deleted through privindex: its filename may be published anew."""
    PublishedFile.delete().where(PublishedFile.filename == filename).execute()


def latest_revision() -> int:
    return PublishedFile.select(fn.COALESCE(fn.MAX(PublishedFile.revision), 0)).scalar()


def changed_since(revision: int) -> list[PublishedFile]:
    return list(PublishedFile.select().where(PublishedFile.revision > revision))


def judge(filename: str, project: str, path: str, found_sha256: str, when: float) -> Verdict:
    """Whether a file found on disk may be served: yes if it carries its published digest
    (or is published now, being new); otherwise it is withdrawn, audited once per
    distinct content found. Plain SQL: a cold start calls this once per file."""
    row = database.execute_sql(
        "SELECT sha256, published_at, withdrawn_sha256 FROM published_file "
        f"WHERE filename = {database.param}",
        (filename,),
    ).fetchone()
    if row is None:
        # revision 0: only this server indexes the folder, so no other process needs to follow
        p = database.param
        database.execute_sql(
            "INSERT INTO published_file (filename, project, sha256, published_at, revision) "
            f"VALUES ({p}, {p}, {p}, {p}, 0)",
            (filename, project, found_sha256, when),
        )
        return Verdict(True, found_sha256, when)
    sha256, published_at, withdrawn = row
    if sha256 == found_sha256:
        if withdrawn is not None:
            log.warning("%s carries its published sha256 again; serving it", path)
            _set_withdrawn(filename, None, None)
        return Verdict(True, sha256, published_at)
    if withdrawn != found_sha256:
        log.error(
            "%s changed on disk after it was published (sha256 %s, now %s): withdrawn until an "
            "admin restores it or accepts the new bytes (privindex file accept %s)",
            path,
            sha256,
            found_sha256,
            filename,
        )
        _set_withdrawn(filename, found_sha256, time.time())
        audit.record(
            Tag.FILE_CHANGED_ON_DISK,
            SERVER,
            subject=filename,
            project=project,
            path=path,
            published_sha256=sha256,
            found_sha256=found_sha256,
        )
    else:
        log.warning("%s is still withdrawn: its content differs from the published sha256 %s", path, sha256)
    return Verdict(False, sha256, published_at)


def _set_withdrawn(filename: str, sha256: str | None, when: float | None) -> None:
    PublishedFile.update(withdrawn_sha256=sha256, withdrawn_at=when).where(
        PublishedFile.filename == filename
    ).execute()
