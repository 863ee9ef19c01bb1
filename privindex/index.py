"""The in-memory project index: normalized name -> files, kept in step with the store.

Requests only read immutable snapshots (Project, IndexedFile) from dicts, so the read path
costs O(1) in the size of the store and takes no lock. Changes come from three places:
our own writes (`add`, `discard`, `set_yanked`), and `refresh()`, which a background
thread calls about once a second to pick up files dropped in or deleted by hand by
comparing folder mtimes. File facts (hash, metadata) are persisted in the database keyed
by path, size and mtime, so a restart reads only the files that changed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Iterable

import peewee
from packaging.version import Version

from privindex.db import database
from privindex.models import DistFile
from privindex.store import FileFacts, InvalidDistribution, Store, parse_filename, read_facts

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# A file this recent may still be being copied in; its folder is looked at again.
SETTLE_SECONDS = 0.5
READ_BATCH = 500  # files read per transaction on a cold start


@dataclass(frozen=True, slots=True)
class IndexedFile:
    path: str  # relative to the store root, POSIX separators
    project: str  # normalized
    name: str  # as the metadata spells it
    version: str
    size: int
    mtime_ns: int
    sha256_digest: bytes  # raw digests: half the memory of hex strings, times 100,000 files
    requires_python: str | None
    metadata_digest: bytes | None
    upload_time: float
    yanked: bool
    yanked_reason: str

    @property
    def sha256(self) -> str:
        return self.sha256_digest.hex()

    @property
    def metadata_sha256(self) -> str | None:
        return self.metadata_digest.hex() if self.metadata_digest else None

    @property
    def filename(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def sort_key(self) -> tuple[Version, str]:
        return parse_version(self.version), self.filename


@lru_cache(maxsize=8192)
def parse_version(text: str) -> Version:
    """Stores repeat the same few version strings across thousands of projects."""
    return Version(text)


@dataclass(frozen=True, slots=True)
class Project:
    name: str  # normalized
    display_name: str
    files: tuple[IndexedFile, ...]  # oldest version first
    versions: tuple[str, ...]


class Index:
    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.RLock()
        self._projects: dict[str, Project] = {}
        self._project_list: tuple[tuple[str, str], ...] = ()
        self._by_path: dict[str, IndexedFile] = {}
        self._project_paths: dict[str, set[str]] = {}
        self._dir_paths: dict[str, set[str]] = {}
        self._dir_mtimes: dict[str, int] = {}
        self._unsettled: set[str] = set()
        self._warned: set[tuple[str, int, int]] = set()

    # -- reading (lock-free) -------------------------------------------------------------

    def project(self, name: str) -> Project | None:
        return self._projects.get(name)

    def project_list(self) -> tuple[tuple[str, str], ...]:
        """(normalized name, display name) of every project, sorted by normalized name.

        A new tuple is made whenever the list changes, so identity tells a cache it is current.
        """
        return self._project_list

    def file(self, path: str) -> IndexedFile | None:
        return self._by_path.get(path)

    def file_count(self) -> int:
        return len(self._by_path)

    def core_metadata(self, path: str) -> bytes | None:
        return DistFile.select(DistFile.metadata).where(DistFile.path == path).scalar()

    # -- loading and refreshing ----------------------------------------------------------

    def load(self, progress: Progress | None = None) -> None:
        """Scan the whole store; read only files whose size or mtime changed since last time.

        Rows come from a raw cursor straight into index entries (strings shared across
        rows), and each entry found unchanged on disk is moved into the index at once, so
        a warm start holds one copy of the index, not rows, stats and index together.
        """
        with self._lock:
            columns = ", ".join(f.column_name for f in _ROW_FIELDS)
            known = {}
            for row in database.execute_sql(f"SELECT {columns} FROM dist_file"):
                entry = _entry(*row)
                known[entry.path] = entry
            to_read: list[tuple[str, os.stat_result]] = []
            for reldir, mtime, files in self.store.walk():
                self._dir_mtimes[reldir] = mtime
                for p, st in files.items():
                    entry = known.pop(p, None)
                    if entry is not None and (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns):
                        self._put(entry)
                    else:
                        to_read.append((p, st))
            changed = set(self._project_paths)
            for start, batch in enumerate(_chunks(to_read, READ_BATCH)):
                with database.atomic():  # one commit per batch, not per file
                    for done, (p, st) in enumerate(batch, start=start * READ_BATCH + 1):
                        changed.update(self._consider(p, st))
                        if progress:
                            progress(done, len(to_read))
            stale = sorted(set(known) - {p for p, _st in to_read})
            if stale:
                with database.atomic():
                    for chunk in _chunks(stale, 500):
                        DistFile.delete().where(DistFile.path.in_(chunk)).execute()
            self._publish(changed)

    def refresh(self) -> None:
        """Catch up with changes made by hand: folders whose mtime moved are re-listed."""
        with self._lock:
            changed: set[str] = set()
            for reldir in list(self._dir_mtimes):
                if reldir not in self._dir_mtimes:
                    continue  # forgotten along with its parent in this pass
                mtime = self.store.dir_mtime(reldir)
                if mtime is None:
                    changed |= self._forget_dir(reldir)
                elif mtime != self._dir_mtimes[reldir] or reldir in self._unsettled:
                    changed |= self._rescan_dir(reldir)
            if changed:
                self._publish(changed)

    def watch(self, stop: threading.Event, interval: float) -> None:
        """Call refresh() every interval seconds until stop is set (run in a thread)."""
        while not stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # keep watching; the next pass may succeed
                log.exception("refreshing the index failed")

    # -- our own writes ------------------------------------------------------------------

    def add(self, path: str, facts: FileFacts | None = None, upload_time: float | None = None) -> IndexedFile:
        """Index a file privindex has just written (facts given if already computed)."""
        with self._lock:
            full = self.store.full_path(path)
            facts = facts or read_facts(full)
            indexed = self._record(path, facts, upload_time or time.time())
            self._publish({self._put(indexed)})
            return indexed

    def discard(self, path: str) -> None:
        with self._lock:
            name = self._drop(path)
            DistFile.delete().where(DistFile.path == path).execute()
            if name:
                self._publish({name})

    def set_yanked(self, path: str, yanked: bool, reason: str = "") -> None:
        with self._lock:
            current = self._by_path[path]
            DistFile.update(yanked=yanked, yanked_reason=reason if yanked else "").where(
                DistFile.path == path
            ).execute()
            updated = replace(current, yanked=yanked, yanked_reason=reason if yanked else "")
            self._publish({self._put(updated)})

    # -- internals -------------------------------------------------------------------------

    def _consider(self, path: str, st: os.stat_result) -> set[str]:
        """Index a file found on disk; skip it, with one warning, if it is not a distribution.

        A file modified in the last moments may still be being copied in: its folder is
        re-listed on the next pass, so the entry is corrected (or appears) once it settles.
        """
        if time.time() - st.st_mtime < SETTLE_SECONDS:
            self._unsettled.add(_dirname(path))
            settled = False
        else:
            settled = True
        try:
            facts = read_facts(self.store.full_path(path))
        except (InvalidDistribution, ValueError, OSError) as exc:
            key = (path, st.st_size, st.st_mtime_ns)
            if settled and key not in self._warned:
                self._warned.add(key)
                log.warning("skipping %s: %s", path, exc)
            return {self._drop(path)} - {None}
        if (facts.size, facts.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._unsettled.add(_dirname(path))  # changed while we read it
            return set()
        return {self._put(self._record(path, facts, st.st_mtime))}

    def _record(self, path: str, facts: FileFacts, upload_time: float) -> IndexedFile:
        """Persist a file's facts (keeping its yank state) and return its index entry."""
        filename = path.rpartition("/")[2]
        project, version = parse_filename(filename)
        row = dict(
            path=path, project=project, name=facts.name, version=str(version),
            size=facts.size, mtime_ns=facts.mtime_ns, sha256=facts.sha256,
            requires_python=facts.requires_python, metadata=facts.metadata,
            metadata_sha256=facts.metadata_sha256, upload_time=upload_time,
        )
        update = {getattr(DistFile, k): v for k, v in row.items() if k not in ("path", "upload_time")}
        # the same content read again (a touched file, a restored backup) keeps its upload time
        update[DistFile.upload_time] = peewee.Case(
            None, [(DistFile.sha256 == facts.sha256, DistFile.upload_time)], upload_time)
        DistFile.insert(**row).on_conflict(conflict_target=[DistFile.path], update=update).execute()
        previous = DistFile.select(DistFile.yanked, DistFile.yanked_reason, DistFile.upload_time).where(
            DistFile.path == path
        ).get()
        return _entry(path, project, facts.name, str(version), facts.size, facts.mtime_ns, facts.sha256,
                      facts.requires_python, facts.metadata_sha256, previous.upload_time, previous.yanked,
                      previous.yanked_reason)

    def _rescan_dir(self, reldir: str) -> set[str]:
        self._unsettled.discard(reldir)
        mtime = self.store.dir_mtime(reldir)
        files, subdirs = self.store.scan_dir(reldir)
        if mtime is not None:
            self._dir_mtimes[reldir] = mtime
        changed: set[str] = set()
        for path in self._dir_paths.get(reldir, set()) - files.keys():
            changed.add(self._drop(path))
        for sub in subdirs:
            if sub not in self._dir_mtimes:
                for found_dir, found_mtime, found_files in self.store.walk(sub):
                    self._dir_mtimes[found_dir] = found_mtime
                    files.update(found_files)
        for path, st in files.items():
            current = self._by_path.get(path)
            if current is None or (current.size, current.mtime_ns) != (st.st_size, st.st_mtime_ns):
                changed |= self._consider(path, st)
        return changed - {None}

    def _forget_dir(self, reldir: str) -> set[str]:
        prefix = reldir + "/"
        changed: set[str] = set()
        for d in [d for d in self._dir_mtimes if d == reldir or d.startswith(prefix)]:
            del self._dir_mtimes[d]
            self._unsettled.discard(d)
            changed |= {self._drop(p) for p in list(self._dir_paths.get(d, ()))}
        return changed - {None}

    def _put(self, indexed: IndexedFile) -> str:
        self._by_path[indexed.path] = indexed
        self._project_paths.setdefault(indexed.project, set()).add(indexed.path)
        self._dir_paths.setdefault(_dirname(indexed.path), set()).add(indexed.path)
        return indexed.project

    def _drop(self, path: str) -> str | None:
        indexed = self._by_path.pop(path, None)
        if indexed is None:
            return None
        self._project_paths.get(indexed.project, set()).discard(path)
        self._dir_paths.get(_dirname(path), set()).discard(path)
        return indexed.project

    def _publish(self, names: Iterable[str]) -> None:
        """Rebuild the snapshots of the named projects and, if needed, the project list.

        Snapshots are replaced, never mutated: a Project object that is still in the index
        is still current, which is all the page cache needs to know.
        """
        list_changed = False
        for name in names:
            paths = self._project_paths.get(name)
            if not paths:
                self._project_paths.pop(name, None)
                list_changed |= self._projects.pop(name, None) is not None
                continue
            project = _build_project(name, [self._by_path[p] for p in paths])
            old = self._projects.get(name)
            list_changed |= old is None or old.display_name != project.display_name
            self._projects[name] = project
        if list_changed:
            self._project_list = tuple(
                sorted((name, p.display_name) for name, p in self._projects.items())
            )


def _build_project(name: str, files: list[IndexedFile]) -> Project:
    by_filename: dict[str, IndexedFile] = {}
    for f in sorted(files, key=lambda f: f.path):
        if f.filename in by_filename:
            log.warning("%s is in the store twice; serving %s", f.filename, by_filename[f.filename].path)
            continue
        by_filename[f.filename] = f
    ordered = tuple(sorted(by_filename.values(), key=lambda f: f.sort_key))
    versions = tuple(sorted({f.version for f in ordered}, key=parse_version))
    return Project(name=name, display_name=ordered[-1].name, files=ordered, versions=versions)


_ROW_FIELDS = [f for f in DistFile._meta.sorted_fields if f.name not in ("id", "metadata")]


def _entry(path, project, name, version, size, mtime_ns, sha256, requires_python, metadata_sha256,
           upload_time, yanked, yanked_reason) -> IndexedFile:
    """An index entry from a dist_file row (columns in _ROW_FIELDS order). Names, versions
    and Requires-Python repeat across files: interning keeps one copy of each."""
    intern = sys.intern
    return IndexedFile(
        path=path, project=intern(project), name=intern(name), version=intern(version), size=size,
        mtime_ns=mtime_ns, sha256_digest=bytes.fromhex(sha256),
        requires_python=intern(requires_python) if requires_python else requires_python,
        metadata_digest=bytes.fromhex(metadata_sha256) if metadata_sha256 else None,
        upload_time=upload_time, yanked=bool(yanked),
        yanked_reason=yanked_reason,
    )


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
