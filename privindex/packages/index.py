"""The in-memory project index: normalized name -> files, kept in step with the store.

Readers see one immutable `Snapshot` (projects, their files by path, the project list and
the withdrawn files), replaced as a whole by a single reference assignment: a file is
listed exactly when it can be downloaded, and no read takes a lock. Writers change a
private working copy under a short lock and publish a new snapshot; that lock is never
held across disk or database I/O, so an upload's `add` never waits for a rescan to hash.

Changes come from our own writes (`add`, `discard`, `set_yanked`, after the service's
transaction) and from `refresh()`, which a background thread calls about once a second to
pick up files dropped in, deleted or rewritten by hand (folder mtimes), publications
changed by a command (`published_file.revision`) and files a download found changed.
A file is served only while its bytes carry its published sha256 (digests.py).
File facts (hash, metadata) are persisted in `dist_file` keyed by path, size and mtime,
so a restart reads only the files that changed and rehashes nothing else.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Generator, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple, TypeAlias, TypeVar

from packaging.version import Version

from privindex.db.connection import data_version, database
from privindex.db.models import DistFile
from privindex.packages import digests, reading, releases
from privindex.packages.archives import DEFAULT_LIMITS, ArchiveLimits
from privindex.packages.distfile import FileFacts, core_metadata_reader, hash_stream, parse_filename
from privindex.packages.store import Store

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Sig = tuple[int, int]  # a file as a stat sees it: (size, mtime_ns)

# A file this recent may still be being copied in; its folder is looked at again.
SETTLE_SECONDS = 0.5
READ_BATCH = 100  # files judged per transaction (~0.1 s): a rescan never holds the database for long
LOAD_BATCH = 500  # files read and listed per step of catch_up: pages fill in as it goes
# A file just published is stat-ed on every pass for this long, even if its folder did not
# change: a rewrite in place right after an upload changes no folder mtime.
WATCH_NEW_SECONDS = 2.0


_NUMBERS = struct.Struct("<qqd")  # size, mtime_ns, upload_time: the head of IndexedFile.facts


class IndexedFile(NamedTuple):
    """One listed file. A named tuple, not a dataclass: a warm start makes 100,000 of
    these, and a tuple is built in a third of the time of a frozen dataclass. Its numbers
    and digests are packed into one bytes object, `facts`: separate int, float and bytes
    objects cost 136 bytes more per file (14 MB at 100,000 files)."""

    path: str  # relative to the store root, POSIX separators
    project: str  # normalized
    name: str  # as the metadata spells it
    version: str
    requires_python: str | None
    yanked: bool
    yanked_reason: str
    facts: bytes  # _NUMBERS, the raw sha256, then the raw sha256 of the metadata if any

    @classmethod
    def make(
        cls,
        path: str,
        project: str,
        name: str,
        version: str,
        size: int,
        mtime_ns: int,
        sha256_digest: bytes,
        requires_python: str | None,
        metadata_digest: bytes | None,
        upload_time: float,
        yanked: bool = False,
        yanked_reason: str = "",
    ) -> IndexedFile:
        return cls(
            path,
            project,
            name,
            version,
            requires_python,
            yanked,
            yanked_reason,
            _NUMBERS.pack(size, mtime_ns, upload_time) + sha256_digest + (metadata_digest or b""),
        )

    def with_facts(
        self,
        size: int | None = None,
        mtime_ns: int | None = None,
        upload_time: float | None = None,
        sha256_digest: bytes | None = None,
    ) -> IndexedFile:
        """This entry with some of its packed facts changed."""
        old_size, old_mtime, old_upload = _NUMBERS.unpack_from(self.facts)
        return self._replace(
            facts=_NUMBERS.pack(
                old_size if size is None else size,
                old_mtime if mtime_ns is None else mtime_ns,
                old_upload if upload_time is None else upload_time,
            )
            + (sha256_digest or self.sha256_digest)
            + self.facts[_DIGESTS_AT + 32 :]
        )

    @property
    def signature(self) -> tuple[int, int]:
        """(size, mtime_ns): what a stat of an unchanged file shows."""
        return _NUMBERS.unpack_from(self.facts)[:2]

    @property
    def size(self) -> int:
        return _NUMBERS.unpack_from(self.facts)[0]

    @property
    def mtime_ns(self) -> int:
        return _NUMBERS.unpack_from(self.facts)[1]

    @property
    def upload_time(self) -> float:  # when its filename was published
        return _NUMBERS.unpack_from(self.facts)[2]

    @property
    def sha256_digest(self) -> bytes:
        return self.facts[_DIGESTS_AT : _DIGESTS_AT + 32]

    @property
    def sha256(self) -> str:
        return self.facts[_DIGESTS_AT : _DIGESTS_AT + 32].hex()

    @property
    def metadata_sha256(self) -> str | None:
        return self.facts[_DIGESTS_AT + 32 :].hex() or None

    @property
    def filename(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def sort_key(self) -> tuple[Version, str]:
        return parse_version(self.version), self.filename


_DIGESTS_AT = _NUMBERS.size


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
    # which files have a provenance object beside them: found on the first page render
    # (pages.attested_project), then kept, as the object is replaced when its files change
    attested: frozenset[str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A file whose bytes no longer carry its published digest: not listed, not served."""

    found: IndexedFile  # what is on disk now
    published_sha256: str


Outcome: TypeAlias = "IndexedFile | Withdrawn | None"  # of judging a file: list it, withhold it, or drop it


@dataclass(frozen=True, slots=True)
class Indexing:
    """How far catch_up() is: files listed so far, files still to read (None: still
    comparing the folders with the record)."""

    indexed: int
    left: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a reader needs, consistent with itself; never changed once made."""

    projects: Mapping[str, Project]
    project_list: tuple[tuple[str, str], ...]  # (normalized, display name), sorted
    files: Mapping[str, IndexedFile]  # every listed file, by path
    withdrawn: Mapping[str, Withdrawn]


V = TypeVar("V")  # what a _FromDatabase maps names to: Project or IndexedFile

EMPTY = Snapshot(MappingProxyType({}), (), MappingProxyType({}), MappingProxyType({}))


class _FromDatabase(Mapping[str, V]):
    """A snapshot's projects or files read from the database when first asked for: what
    readers see between load_recorded() and the index holding every record. Looking a key
    up is one indexed query (then remembered: writers wait for every record, so nothing
    changes meanwhile); counting answers what load_recorded counted; iterating needs every
    key, so it loads every record and goes over the snapshot that then replaces this one."""

    def __init__(self, read: Callable[[str], V | None], size: int, everything: Callable[[], Mapping[str, V]]):
        self._read, self._size, self._everything = read, size, everything  # everything: once loaded
        self._seen: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        found = self._seen.get(key)
        if found is None:
            found = self._read(key)
            if found is None:
                raise KeyError(key)
            self._seen[key] = found
        return found

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    # the views go over the loaded snapshot too: Mapping's own would look each key up here,
    # one query per file
    def keys(self) -> KeysView[str]:
        return self._everything().keys()

    def values(self) -> ValuesView[V]:
        return self._everything().values()

    def items(self) -> ItemsView[str, V]:
        return self._everything().items()


DROP = "drop"  # _read: not a distribution
_Read: TypeAlias = "tuple[str, IndexedFile | None, FileFacts | None] | str | None"


@dataclass
class _Pass:
    """What one refresh found: files to read or judge again, paths gone from disk."""

    to_read: dict[str, Sig] = field(default_factory=dict)
    rejudge: list[IndexedFile] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)


class _ToRead:
    """The files a catch_up reads, in path order (a project's files come together): paths
    in a list, the (size, mtime_ns) each was listed with in arrays, and the entries of the
    few the index knew. Not a tuple and two ints per file, held to the end: at 100,000
    files those small objects (19 MB), freed last among the paths the index keeps, left
    Python's memory pools empty but held, 14-17 MB the process kept after a cold start.
    Made before the survey's own tuples are dropped, their memory is reused for the index."""

    def __init__(self, found: dict[str, Sig], known: dict[str, IndexedFile]):
        self.paths = sorted(found)
        self._sizes = array("q", [found[path][0] for path in self.paths])
        self._mtimes = array("q", [found[path][1] for path in self.paths])
        self._known = known

    def __len__(self) -> int:
        return len(self.paths)

    def sizes(self) -> Iterator[tuple[str, int]]:
        return zip(self.paths, self._sizes)

    def batch(self, start: int, count: int) -> list[tuple[str, Sig, IndexedFile | None]]:
        """(path, (size, mtime_ns), known entry) of up to count files from start."""
        return [
            (path, (self._sizes[i], self._mtimes[i]), self._known.get(path))
            for i, path in enumerate(self.paths[start : start + count], start)
        ]


class Index:
    def __init__(self, store: Store, limits: ArchiveLimits = DEFAULT_LIMITS):
        self.store = store
        self.limits = limits  # what a file read from the store may hold (archives.py)
        self.snapshot: Snapshot = EMPTY  # the one thing readers look at
        self._lock = threading.Lock()  # the working copy below; never held across I/O
        self._files: dict[str, IndexedFile] = {}
        self._withdrawn: dict[str, Withdrawn] = {}
        self._projects: dict[str, Project] = {}
        self._project_list: tuple[tuple[str, str], ...] = ()
        self._shared = False  # whether the snapshot holds _files, _projects and _withdrawn themselves
        self._project_paths: dict[
            str, list[str]
        ] = {}  # listed paths per project (lists: a fifth of a set's memory)
        # listed and withdrawn files per folder; which ones they are is looked up in _files and
        # _withdrawn only when a folder holds fewer than this (a set of paths per folder
        # held every path a second time: 4 MB at 100,000 files)
        self._dir_counts: dict[str, int] = {}
        # the refresher's own state, under _refreshing
        self._refreshing = threading.Lock()
        self._dir_mtimes: dict[str, int] = {}
        self._unsettled: set[str] = set()
        self._warned: set[tuple[str, int, int]] = set()
        self._revision = 0
        self._data_version: int | None = None  # db.data_version when yanks were last read
        self._suspects: set[str] = set()  # added to by any thread (set.add is atomic)
        self._fresh: dict[str, float] = {}  # just published: path -> watch until (under _lock)
        self._unjudged: dict[str, IndexedFile] = {}  # recorded, not listed until catch_up judges them
        self.indexing: Indexing | None = None  # set while catch_up runs
        self._created = time.time()  # upload temp files older than this were left by a crash
        self._loading = threading.Lock()  # _load_records, once
        self._loaded = False  # whether the working copy holds every record (else: read on demand)
        # told the names of the projects each new snapshot changed, under the lock (no I/O):
        # the serving tree (serving_tree.py) takes them to its own thread
        self.listeners: list[Callable[[list[str]], None]] = []

    # -- reading (lock-free: one snapshot per call) ------------------------------------------

    def project(self, name: str) -> Project | None:
        return self.snapshot.projects.get(name)

    def project_list(self) -> tuple[tuple[str, str], ...]:
        """A new tuple is made whenever the list changes, so identity tells a cache it is current."""
        return self.snapshot.project_list

    def file(self, path: str) -> IndexedFile | None:
        return self.snapshot.files.get(path)

    def withdrawn(self, path: str) -> Withdrawn | None:
        return self.snapshot.withdrawn.get(path)

    def file_count(self) -> int:
        return len(self.snapshot.files)

    def core_metadata(self, path: str) -> bytes | None:
        found = DistFile.select(DistFile.metadata).where(DistFile.path == path).scalar()
        return bytes(found) if found is not None else None  # PostgreSQL's driver gives a memoryview

    def suspect(self, path: str) -> None:
        """A reader found the file's size or mtime changed: the next refresh reads it again."""
        self._suspects.add(path)

    # -- loading and refreshing ----------------------------------------------------------

    def load(self, progress: Progress | None = None) -> None:
        """Everything, before returning: what the database recorded, then the disk checked
        against it (the CLI and in-process tests; `serve` runs catch_up in the background)."""
        self.catch_up(progress)

    def load_recorded(self) -> None:
        """Answer at once from what the database recorded, without touching the disk or
        reading every record: the project list comes from one grouped query over two
        covering indexes (0.1 s at 100,000 files, against 1.4 s to hold every record in
        memory), and a project's page or a file from the database when first asked for.
        catch_up() then loads every record (_load_records) and compares the disk. Until it
        has, a download still checks the file's size and mtime against the record, so
        changed bytes are never served (409)."""
        with self._refreshing:
            display: dict[str, str] = {}
            count, mixed = 0, []
            for project, first, last, files in database.execute_sql(_LISTING_SQL):
                count += files
                display[project] = first
                if first != last:  # names spelled differently across files: the latest's wins
                    mixed.append(project)
            projects = _FromDatabase(
                self._recorded_project, len(display), lambda: self._loaded_snapshot().projects
            )
            for project in mixed:
                found = projects.get(project)
                if found is None:
                    del display[project]
                else:
                    display[project] = found.display_name
            files = _FromDatabase(self._recorded_file, count, lambda: self._loaded_snapshot().files)
            with self._lock:
                if not self._loaded:  # a writer may have needed every record already
                    self.snapshot = Snapshot(projects, tuple(sorted(display.items())), files, EMPTY.withdrawn)
                    self.indexing = Indexing(indexed=count)  # until catch_up has compared the disk

    def _recorded_project(self, name: str) -> Project | None:
        listed = [
            entry for entry, served in self._recorded(_LOAD_SQL + " WHERE d.project = ", name) if served
        ]
        return _build_project(name, listed) if listed else None

    def _recorded_file(self, path: str) -> IndexedFile | None:
        return next(
            (entry for entry, served in self._recorded(_LOAD_SQL + " WHERE d.path = ", path) if served), None
        )

    @staticmethod
    def _recorded(query: str, key: str) -> Iterator[tuple[IndexedFile, bool]]:
        for row in database.execute_sql(query + database.param, (key,)).fetchall():
            yield _entry(*row[:-1]), bool(row[-1])

    def _loaded_snapshot(self) -> Snapshot:
        """The snapshot once every record is in memory (loading them if need be)."""
        self._load_records()
        return self.snapshot

    def _load_records(self) -> None:
        """Hold every record in memory, listed as load_recorded() lists them: what catch_up
        compares the disk with and writers change. Once, by whoever needs it first: one
        query joining the records with their publications, rows straight into entries."""
        if self._loaded:
            return
        with self._loading:
            if self._loaded:
                return
            revision = digests.latest_revision()
            files: dict[str, IndexedFile] = {}
            by_project: dict[str, list[IndexedFile]] = {}
            unjudged: dict[str, IndexedFile] = {}
            for *row, listed in database.execute_sql(_LOAD_SQL):
                entry = _entry(*row)
                if listed:
                    files[entry.path] = entry
                    by_project.setdefault(entry.project, []).append(entry)
                else:  # unpublished, withdrawn or changed: catch_up judges it
                    unjudged[entry.path] = entry
            rank = _version_ranks({e.version for e in files.values()})
            projects = {name: _build_project(name, listed, rank) for name, listed in by_project.items()}
            with self._lock:
                self._revision = revision
                self._files = files
                self._unjudged = unjudged
                self._projects = projects
                self._project_paths = {name: [e.path for e in listed] for name, listed in by_project.items()}
                for path in files:
                    reldir = _dirname(path)
                    self._dir_counts[reldir] = self._dir_counts.get(reldir, 0) + 1
                self._project_list = tuple(sorted((name, p.display_name) for name, p in projects.items()))
                self._publish(())
                self._loaded = True

    def catch_up(self, progress: Progress | None = None) -> None:
        """Compare the disk with what load_recorded() listed and index the difference:
        new and changed files are read with every core and listed a batch at a time (a
        project's page is complete for the files read so far), files gone are dropped,
        recorded ones not listed are judged against their publication. `progress` and
        `self.indexing` say how far it is; the watcher's refresh() takes over after."""
        started = time.monotonic()
        with self._refreshing:
            self._load_records()
            self.indexing = Indexing(indexed=len(self._files))
            leftovers = self.store.remove_stale_temp_files(before=self._created)
            if leftovers:
                log.warning("removed %d unfinished upload file(s) left by an earlier crash", leftovers)
            found = _Pass()
            seen_dirs: set[str] = set()
            for reldir, mtime, files in self.store.walk_streamed():
                self._dir_mtimes[reldir] = mtime
                seen_dirs.add(reldir)
                self._compare_folder(reldir, files, found)
            with self._lock:
                found.gone |= self._paths_in({d for d in self._dir_counts if d not in seen_dirs})
                known = {
                    path: entry
                    for path in found.to_read
                    if (entry := self._known(path) or self._unjudged.get(path)) is not None
                }
                to_judge = found.rejudge
                on_disk = found.to_read.keys() | {e.path for e in to_judge}
                stale = [p for p in self._unjudged if p not in on_disk]
                self._unjudged = {}
            to_read = _ToRead(found.to_read, known)  # sorted outside the lock
            gone = found.gone
            del found
            self.indexing = Indexing(indexed=len(self._files), left=len(to_read) + len(to_judge))
            self._settle(self._judge([(e.path, e, None) for e in to_judge]))
            done = 0
            with closing(self._read_all(to_read.sizes(), len(to_read))) as results:
                for start in range(0, len(to_read), LOAD_BATCH):
                    batch = to_read.batch(start, LOAD_BATCH)
                    read = [self._read(p, st, known, next(results)) for p, st, known in batch]
                    self._settle(
                        self._judge([r for r in read if isinstance(r, tuple)]),  # not None or DROP
                        dropped=[p for (p, _st, _k), r in zip(batch, read) if r is DROP],
                    )
                    done += len(batch)
                    self.indexing = Indexing(indexed=len(self._files), left=len(to_read) - done)
                    if progress:
                        progress(done, len(to_read))
            gone = {p for p in gone if not self.store.full_path(p).exists()}
            with self._lock:
                self._publish({name for p in gone if (name := self._drop(p)) is not None})
            stale += gone
            if stale:
                with database.atomic():
                    for chunk in _chunks(sorted(stale), 500):
                        DistFile.delete().where(DistFile.path.in_(chunk)).execute()
            filled = releases.backfill(core_metadata_reader(self.store.root))
            if filled:
                log.info("read the descriptions of %d release(s) indexed by an older version", filled)
            _give_back_freed_memory()
            self.indexing = None
            log.info(
                "indexed the store: %d files listed, %d read, %d gone, in %.1f s",
                len(self._files),
                len(to_read),
                len(gone),
                time.monotonic() - started,
            )

    def _settle(self, outcomes: list[tuple[str, Outcome]], dropped: Iterable[str] = ()) -> None:
        """Apply a batch of catch-up outcomes and publish the projects they touched."""
        with self._lock:
            changed = self._apply(outcomes + [(p, None) for p in dropped], restat=True)
            self._publish(changed)

    def refresh(self) -> None:
        """Catch up with changes made by hand or by another process. Folders are listed and
        files hashed without the index lock; the lock is taken once, briefly, at the end."""
        with self._refreshing:
            self._load_records()
            self._follow_yanks()
            found = self._survey()
            for row in digests.changed_since(self._revision):
                self._revision = max(self._revision, row.revision)
                found.rejudge += [
                    e for e in self._known_named(row.project, row.filename) if e.path not in found.to_read
                ]
            while self._suspects:
                path = self._suspects.pop()
                try:
                    found.to_read[path] = _sig(os.stat(self.store.full_path(path)))
                except OSError:
                    found.gone.add(path)
            if not (found.to_read or found.rejudge or found.gone):
                return
            outcomes: list[tuple[str, Outcome]] = []
            items: list[tuple[str, IndexedFile | None, FileFacts | None]] = [
                (e.path, e, None) for e in found.rejudge
            ]
            with self._lock:
                to_read = [(path, st, self._known(path)) for path, st in found.to_read.items()]
            with closing(self._read_all(((p, seen[0]) for p, seen, _k in to_read), len(to_read))) as results:
                for (path, seen, known), facts in zip(to_read, results):
                    read = self._read(path, seen, known, facts)
                    if read is DROP:
                        outcomes.append((path, None))
                    elif isinstance(read, tuple):  # not None
                        items.append(read)
            for batch in _chunks(items, READ_BATCH):
                outcomes += self._judge(batch)
            with self._lock:
                changed = {
                    name
                    for p in found.gone
                    if not self.store.full_path(p).exists() and (name := self._drop(p)) is not None
                }
                changed |= self._apply(outcomes, restat=True)
                self._publish(changed)

    def _follow_yanks(self) -> None:
        """Yanks and unyanks another process (another server on the same PostgreSQL
        database) recorded: read the yanked rows again when the database changed. Files
        themselves arrive and leave through the folder (the survey sees them)."""
        version = data_version()
        if version == self._data_version:
            return
        self._data_version = version
        with self._lock:  # read under the lock: our own yank commits, then waits for it to apply
            yanked = {
                path: reason
                for path, reason in database.execute_sql(
                    "SELECT path, yanked_reason FROM dist_file WHERE yanked"
                ).fetchall()
            }
            changed = set()
            for path, entry in list(self._files.items()):
                want = (path in yanked, yanked.get(path, ""))
                if (entry.yanked, entry.yanked_reason) != want:
                    self._put(entry._replace(yanked=want[0], yanked_reason=want[1]))
                    changed.add(entry.project)
            if changed:
                self._publish(changed)

    def watch(self, stop: threading.Event, interval: float) -> None:
        """Call refresh() every interval seconds until stop is set (run in a thread)."""
        while not stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # keep watching; the next pass may succeed
                log.exception("refreshing the index failed")

    # -- our own writes (after the service's transaction committed) ------------------------

    def add(self, entry: IndexedFile) -> None:
        """List a file the publishing service has just written and recorded."""
        self._load_records()
        with self._lock:
            self._put(entry)
            self._fresh[entry.path] = time.monotonic() + WATCH_NEW_SECONDS
            self._publish({entry.project})

    def discard(self, path: str) -> None:
        self._load_records()
        with self._lock:
            name = self._drop(path)
            if name:
                self._publish({name})

    def set_yanked(self, path: str, yanked: bool, reason: str = "") -> IndexedFile | None:
        """The updated entry, or None if the file is no longer listed (deleted meanwhile)."""
        self._load_records()
        with self._lock:
            current = self._files.get(path)
            if current is None:
                return None
            updated = current._replace(yanked=yanked, yanked_reason=reason if yanked else "")
            self._put(updated)
            self._publish({updated.project})
            return updated

    # -- internals: finding and reading (no index lock) ----------------------------------

    def _survey(self) -> _Pass:
        """List the folders whose mtime moved (or that are unsettled); compare with the index."""
        found = _Pass()
        forgotten: list[str] = []
        for reldir in list(self._dir_mtimes):
            if reldir not in self._dir_mtimes:
                continue  # forgotten along with its parent in this pass
            mtime = self.store.dir_mtime(reldir)
            if mtime is None:
                prefix = reldir + "/"
                for d in [d for d in self._dir_mtimes if d == reldir or d.startswith(prefix)]:
                    del self._dir_mtimes[d]
                    self._unsettled.discard(d)
                    forgotten.append(d)
            elif mtime != self._dir_mtimes[reldir] or reldir in self._unsettled:
                self._unsettled.discard(reldir)
                self._dir_mtimes[reldir] = mtime
                subdirs: list[str] = []
                self._compare_folder(reldir, _files_only(self.store.entries(reldir), subdirs), found)
                for sub in subdirs:
                    if sub not in self._dir_mtimes:
                        for found_dir, found_mtime, files in self.store.walk_streamed(sub):
                            self._dir_mtimes[found_dir] = found_mtime
                            self._compare_folder(found_dir, files, found)
        with self._lock:
            now = time.monotonic()
            fresh = [p for p, until in self._fresh.items() if until > now]
            self._fresh = {p: self._fresh[p] for p in fresh}
        for path in fresh:
            try:
                st = os.stat(self.store.full_path(path))
            except OSError:
                continue  # a folder listing or the next pass sees it gone
            with self._lock:
                current = self._known(path)
            if current is not None and current.signature != _sig(st):
                found.to_read[path] = _sig(st)
        if forgotten:
            with self._lock:
                found.gone |= self._paths_in(set(forgotten))
        return found

    def _compare_folder(self, reldir: str, files: Iterable[tuple[str, os.stat_result]], found: _Pass) -> None:
        """Compare a folder's files, as they are listed, with the index: new or changed ones
        go to found.to_read, recorded ones not yet judged (at start) to found.rejudge, and
        what the index has there that the folder no longer holds to found.gone. Only
        signatures are kept, never stat results: a flat folder may hold 100,000 files.
        Entries are looked up without the lock (one dict read each); a file published
        meanwhile is stat-ed again when its outcome is applied."""
        here: set[str] = set()
        listed_here = 0  # listed or withdrawn: what _dir_counts counts
        for path, st in files:
            seen = _sig(st)
            known = self._known(path)
            listed_here += known is not None
            known = known or self._unjudged.get(path)
            if known is None or known.signature != seen:
                found.to_read[path] = seen
            else:
                path = known.path  # the index's own string: `here` holds no copies
                if path in self._unjudged:
                    found.rejudge.append(known)
            here.add(path)
        if listed_here < self._dir_counts.get(reldir, 0):  # some are gone: which?
            with self._lock:
                found.gone |= self._paths_in({reldir}) - here

    def _read_all(self, files: Iterable[tuple[str, int]], count: int) -> Generator[FileFacts | str]:
        """What reading each of `count` (path, size) finds, in order, with every core."""
        paths = ((self.store.os_path(path), size) for path, size in files)
        return reading.read_in_order(paths, count, self.limits)

    def _read(self, path: str, seen: Sig, known: IndexedFile | None, facts: FileFacts | str) -> _Read:
        """Judge what reading a file found on disk gave (`examine`: its facts, or why it is
        not a distribution): (path, None, facts) to judge; for a file we knew that is no
        longer a readable distribution (corrupted in place), (path, its entry with the new
        digest, None), to be judged as changed; DROP if it is not a distribution (one
        warning); None if it is still being written (its folder is looked at again)."""
        settled = time.time() - seen[1] / 1e9 >= SETTLE_SECONDS
        if not settled:
            self._unsettled.add(_dirname(path))
        full = self.store.full_path(path)
        if isinstance(facts, str):
            if known is not None:
                try:
                    with open(full, "rb") as fh:
                        digest = bytes.fromhex(hash_stream(fh))
                        now = os.fstat(fh.fileno())
                except OSError:
                    return DROP
                return (
                    path,
                    known.with_facts(size=now.st_size, mtime_ns=now.st_mtime_ns, sha256_digest=digest),
                    None,
                )
            key = (path, *seen)
            if settled and key not in self._warned:
                self._warned.add(key)
                log.warning("skipping %s: %s", path, facts)
            return DROP
        if (facts.size, facts.mtime_ns) != seen:
            self._unsettled.add(_dirname(path))  # changed while we read it
            return None
        return path, None, facts

    def _judge(
        self, items: list[tuple[str, IndexedFile | None, FileFacts | None]], restat: bool = True
    ) -> list[tuple[str, Outcome]]:
        """Record facts read and decide, against the publications, what each file is:
        (path, IndexedFile) to list, or (path, Withdrawn).

        Publishers replace a file inside their transaction, so once this one has begun a
        stat shows the file as it now is: a file that changed since it was read (an
        upload or `privindex file replace` meanwhile) is not judged on stale bytes but
        looked at again on the next pass."""
        outcomes: list[tuple[str, Outcome]] = []
        if not items:
            return outcomes
        digests.publishers.give_way()
        latest = releases.LatestVersions()
        with database.atomic():
            for path, entry, facts in items:
                if restat:
                    if facts is not None:
                        size, mtime_ns = facts.size, facts.mtime_ns
                    else:
                        assert entry is not None  # _read gives facts, a known entry or both
                        size, mtime_ns = entry.signature
                    try:
                        st = os.stat(self.store.os_path(path))
                    except OSError:
                        continue  # gone: the next pass drops it
                    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                        self._unsettled.add(_dirname(path))
                        continue
                if facts is not None:
                    entry = save_facts(path, facts, latest=latest)
                else:  # rejudged: a command may have yanked it meanwhile
                    row = database.execute_sql(
                        f"SELECT yanked, yanked_reason FROM dist_file WHERE path = {database.param}", (path,)
                    ).fetchone()
                    if row is not None and entry is not None:
                        entry = entry._replace(yanked=bool(row[0]), yanked_reason=row[1])
                assert entry is not None
                verdict = digests.judge(entry.filename, entry.project, path, entry.sha256, entry.upload_time)
                entry = entry.with_facts(upload_time=verdict.published_at)
                outcomes.append(
                    (path, entry if verdict.served else Withdrawn(entry, verdict.published_sha256))
                )
            latest.save()
        return outcomes

    # -- internals: the working copy (under _lock) --------------------------------------

    def _apply(self, outcomes: list[tuple[str, Outcome]], restat: bool) -> set[str]:
        """Put outcomes into the working copy. With restat, an outcome whose file changed
        since it was read (an upload replaced it meanwhile) is skipped and looked at again."""
        changed: set[str | None] = set()
        for path, outcome in outcomes:
            if outcome is None:
                changed.add(self._drop(path))
                continue
            entry = outcome.found if isinstance(outcome, Withdrawn) else outcome
            if restat:
                try:
                    st = os.stat(self.store.os_path(path))
                except OSError:
                    changed.add(self._drop(path))
                    continue
                if (st.st_size, st.st_mtime_ns) != entry.signature:
                    self._unsettled.add(_dirname(path))
                    continue
            if isinstance(outcome, Withdrawn):
                changed.add(self._drop(path))
                self._own()
                self._withdrawn[path] = outcome
                self._count(path, 1)
            else:
                changed.add(self._put(outcome))
        return {name for name in changed if name is not None}

    def _known(self, path: str) -> IndexedFile | None:
        withdrawn = self._withdrawn.get(path)
        return self._files.get(path) or (withdrawn.found if withdrawn else None)

    def _known_named(self, project: str, filename: str) -> list[IndexedFile]:
        with self._lock:
            paths = set(self._project_paths.get(project, ())) | set(self._withdrawn)
            return [e for p in paths if (e := self._known(p)) is not None and e.filename == filename]

    def _put(self, indexed: IndexedFile) -> str:
        self._own()
        withdrawn = self._withdrawn.pop(indexed.path, None)
        old = self._files.get(indexed.path)
        if old is None and withdrawn is None:
            self._count(indexed.path, 1)
        if old is not None and old.project != indexed.project:
            _remove(self._project_paths.get(old.project), indexed.path)
        self._files[indexed.path] = indexed
        paths = self._project_paths.setdefault(indexed.project, [])
        if indexed.path not in paths:
            paths.append(indexed.path)
        return indexed.project

    def _drop(self, path: str) -> str | None:
        self._own()
        withdrawn = self._withdrawn.pop(path, None)
        indexed = self._files.pop(path, None)
        if indexed is None and withdrawn is None:
            return None
        self._count(path, -1)
        if indexed is None:
            return None
        _remove(self._project_paths.get(indexed.project), path)
        return indexed.project

    def _count(self, path: str, change: int) -> None:
        reldir = _dirname(path)
        count = self._dir_counts.get(reldir, 0) + change
        if count > 0:
            self._dir_counts[reldir] = count
        else:
            self._dir_counts.pop(reldir, None)

    def _paths_in(self, folders: set[str]) -> set[str]:
        """The listed and withdrawn paths in these folders (under _lock): one pass over the
        index, made only when files went missing from a folder or a folder went away."""
        if not folders:
            return set()
        return {p for paths in (self._files, self._withdrawn) for p in paths if _dirname(p) in folders}

    def _publish(self, names: Iterable[str]) -> None:
        """Rebuild the named projects and swap in a new snapshot (one assignment).

        Project objects are replaced, never mutated: a Project that is still in the
        snapshot is still current, which is all the page cache needs to know.
        """
        listing: dict[str, str | None] = {}  # the list's changes: name -> display name, None: gone
        names = list(names)
        if names:
            self._own()
        for name in names:
            paths = self._project_paths.get(name)
            if not paths:
                self._project_paths.pop(name, None)
                if self._projects.pop(name, None) is not None:
                    listing[name] = None
                continue
            project = _build_project(name, [self._files[p] for p in paths])
            old = self._projects.get(name)
            if old is None or old.display_name != project.display_name:
                listing[name] = project.display_name
            self._projects[name] = project
        if listing:
            self._project_list = _relisted(self._project_list, listing)
        self.snapshot = Snapshot(
            projects=MappingProxyType(self._projects),
            project_list=self._project_list,
            files=MappingProxyType(self._files),
            withdrawn=MappingProxyType(self._withdrawn),
        )
        self._shared = True
        if names:
            for listener in self.listeners:
                listener(names)

    def _own(self) -> None:
        """Copy the working dicts the snapshot shares before changing them: copy on write,
        so a resting index holds each dict once (100,000 files: 5 MB less)."""
        if self._shared:
            self._files, self._projects, self._withdrawn = (
                dict(self._files),
                dict(self._projects),
                dict(self._withdrawn),
            )
            self._shared = False


# -- the dist_file table: facts per path (the index's persistent cache) ---------------------


def save_facts(
    path: str, facts: FileFacts, unyank: bool = False, latest: releases.LatestVersions | None = None
) -> IndexedFile:
    """Persist a file's facts, keeping its yank state unless unyank (a new publication
    starts unyanked); call in a transaction. `latest`: see releases.record.

    The entry's upload_time is a placeholder: the publication's time replaces it. Plain
    SQL: a cold start calls this once per file, and building peewee queries cost more
    than running them."""
    filename = path.rpartition("/")[2]
    project, version = parse_filename(filename)
    values = (
        path,
        filename,
        project,
        facts.name,
        str(version),
        facts.size,
        facts.mtime_ns,
        facts.sha256,
        facts.requires_python,
        facts.metadata,
        facts.metadata_sha256,
        time.time(),
    )
    row = database.execute_sql(
        "INSERT INTO dist_file (path, filename, project, name, version, size, mtime_ns, sha256, "
        "requires_python, metadata, metadata_sha256, upload_time) VALUES ("
        + ", ".join([database.param] * 12)
        + ") "
        "ON CONFLICT (path) DO UPDATE SET project = excluded.project, name = excluded.name, "
        "version = excluded.version, size = excluded.size, mtime_ns = excluded.mtime_ns, "
        "sha256 = excluded.sha256, requires_python = excluded.requires_python, "
        "metadata = excluded.metadata, metadata_sha256 = excluded.metadata_sha256"
        + (", yanked = FALSE, yanked_reason = ''" if unyank else "")
        + " RETURNING yanked, yanked_reason, upload_time",
        values,
    ).fetchone()
    if facts.core is not None:
        releases.record(project, str(version), facts.name, facts.core, facts.release, latest)
    return _entry(
        path,
        project,
        facts.name,
        str(version),
        facts.size,
        facts.mtime_ns,
        facts.sha256,
        facts.requires_python,
        facts.metadata_sha256,
        row[2],
        row[0],
        row[1],
    )


def save_yank(path: str, yanked: bool, reason: str) -> None:
    DistFile.update(yanked=yanked, yanked_reason=reason if yanked else "").where(
        DistFile.path == path
    ).execute()


def forget_facts(path: str) -> None:
    DistFile.delete().where(DistFile.path == path).execute()


def _build_project(name: str, files: Iterable[IndexedFile], rank: Mapping[str, int] | None = None) -> Project:
    """Files in version order; of two paths with one filename the first in path order is
    served. rank (version -> position, from _version_ranks) spares comparing Versions."""
    by_filename: dict[str, IndexedFile] = {}
    for f in files:
        filename = f.path.rpartition("/")[2]
        other = by_filename.get(filename)
        if other is not None:
            f, other = (f, other) if f.path < other.path else (other, f)
            log.warning("%s is in the store twice; serving %s", filename, f.path)
        by_filename[filename] = f
    if rank is None:
        rank = _version_ranks({f.version for f in by_filename.values()})
    ordered = tuple(
        f
        for _rank, _filename, f in sorted(
            (rank[f.version], filename, f) for filename, f in by_filename.items()
        )
    )
    versions = tuple(sorted({f.version for f in ordered}, key=rank.__getitem__))
    return Project(name=name, display_name=ordered[-1].name, files=ordered, versions=versions)


def _relisted(
    listed: tuple[tuple[str, str], ...], changes: dict[str, str | None]
) -> tuple[tuple[str, str], ...]:
    """The sorted project list with a few names added, renamed or (None) removed, each put
    in place by bisection: re-sorting the whole list for every batch of a cold start made
    indexing quadratic in the number of projects."""
    entries = list(listed)
    for name, display in changes.items():
        at = bisect_left(entries, (name,))
        present = at < len(entries) and entries[at][0] == name
        if display is None:
            if present:
                del entries[at]
        elif present:
            entries[at] = (name, display)
        else:
            entries.insert(at, (name, display))
    return tuple(entries)


def _version_ranks(versions: Iterable[str]) -> dict[str, int]:
    """Each version string's position in PEP 440 order."""
    return {v: i for i, v in enumerate(sorted(versions, key=parse_version))}


_ROW_FIELDS = [f for f in DistFile._meta.sorted_fields if f.name not in ("id", "filename", "metadata")]
# every file record as an index entry (with its publication's time), and whether it is
# listed at once: it carries its publication's digest, and that is not withdrawn
_LOAD_SQL = (
    "SELECT "
    + ", ".join(
        "COALESCE(p.published_at, d.upload_time)" if f.name == "upload_time" else f"d.{f.column_name}"
        for f in _ROW_FIELDS
    )
    + ", (p.sha256 = d.sha256 AND p.withdrawn_sha256 IS NULL)"
    " FROM dist_file d LEFT JOIN published_file p ON p.filename = d.filename"
)
# per listed project: its name as its files spell it (alphabetically first and last) and how
# many files it lists; read from the indexes dist_file_listing and published_file_listing alone
_LISTING_SQL = (
    "SELECT d.project, MIN(d.name), MAX(d.name), COUNT(*) FROM dist_file d"
    " JOIN published_file p ON p.filename = d.filename"
    " WHERE p.sha256 = d.sha256 AND p.withdrawn_sha256 IS NULL GROUP BY d.project"
)


def _entry(
    path: str,
    project: str,
    name: str,
    version: str,
    size: int,
    mtime_ns: int,
    sha256: str,
    requires_python: str | None,
    metadata_sha256: str | None,
    upload_time: float,
    yanked: int,
    yanked_reason: str | None,
) -> IndexedFile:
    """An index entry from a dist_file row (columns in _ROW_FIELDS order). Names, versions
    and Requires-Python repeat across files: interning keeps one copy of each."""
    intern = sys.intern
    return IndexedFile.make(
        path,
        intern(project),
        intern(name),
        intern(version),
        size,
        mtime_ns,
        bytes.fromhex(sha256),
        intern(requires_python) if requires_python else requires_python,
        bytes.fromhex(metadata_sha256) if metadata_sha256 else None,
        upload_time,
        bool(yanked),
        yanked_reason or "",
    )


def _files_only(
    entries: Iterable[tuple[str, os.stat_result | None]], subdirs: list[str]
) -> Iterator[tuple[str, os.stat_result]]:
    """Store.entries' files; its subfolders are appended to subdirs."""
    for path, st in entries:
        if st is None:
            subdirs.append(path)
        else:
            yield path, st


def _sig(st: os.stat_result) -> Sig:
    return st.st_size, st.st_mtime_ns


def _remove(paths: list[str] | None, path: str) -> None:
    if paths is not None and path in paths:
        paths.remove(path)


def _give_back_freed_memory() -> None:
    """Return to the system the heap a catch_up freed, before /readyz says it is done.
    glibc keeps freed memory for reuse unless asked: after a cold index of 100,000 files,
    13 MB (the index's dicts copied per batch, SQLite's pages, the workers' results, in
    the watcher thread's own malloc arena); other C libraries have no such call."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # this process's symbols, libc's among them
    if trim is not None:
        trim(0)


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
