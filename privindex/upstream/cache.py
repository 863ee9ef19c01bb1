"""The pull-through cache of the upstream: project pages and files, in the data dir.

Pages: on disk (`pages/<name>.json`, our own form), fresh for `upstream_page_ttl`; an
older page is served (and logged) when the upstream fails, so installs keep working while
it is down; a name never fetched then gives 502/504. Anyone may ask for any name the
upstream has, so only the most recently used pages are held in memory (`PageMemory`, an
LRU bounded by `upstream_page_memory_mb` and `PAGES_IN_MEMORY`); another is read back from
disk, checked like a fresh one, when asked for. The names and display names of all cached
pages stay in memory for /simple/ (`names`), a few dozen bytes each.

Files: content-addressed, `files/<sha256>/<filename>` (and `<filename>.metadata` under the
metadata's digest), so `privindex check` can verify each one by its folder name. A PEP 740
provenance object has no digest of its own on the page: it lies beside its file as
`<filename>.provenance`, checked on the way in and by `check` to be about that file. A cold
file is fetched once, by a background thread (never a waitress worker), into a temp file
in its folder; every client of it follows that growing file (the last piece waits for the
digest). The file is renamed into place (after fsync) only if its sha256 is the one the
page published. Least recently used files go when the cache outgrows
`upstream_cache_max_gb` (use is kept in memory and as the file's mtime, touched at most
once a minute; no database).

Single flight: one fetch per page at a time, however many clients ask; the others wait
for it and read its result.

Path safety: pages and files come from the upstream, validated by upstream.py; still,
every path built here is resolved and checked to lie inside its folder (`_inside`) before
it is read, written or deleted, so a bad digest or filename, or a symlink planted in the
cache, can never reach outside it. "No such project" answers are kept in a bounded LRU
(`NEGATIVE_MAX`), apart from the pages, and never listed.

Workers: at most `upstream_workers` waitress workers wait on the upstream at once (page
fetches and clients following a download alike); past that a request is refused at once
with Busy (503), so local pages and /healthz always find a free worker. A follower that
may (`stop_when_landed`) stops once its file landed and leaves the rest to the server's
file wrapper (`take_rest`), so a slow client holds its worker only while the file comes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from privindex.ops.logs import redact_url
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX
from privindex.packages.provenance import check_provenance
from privindex.upstream import cooldown
from privindex.upstream.client import (
    Upstream,
    UpstreamError,
    UpstreamFile,
    UpstreamProject,
    age_filter,
    valid_digest,
    valid_name,
)
from privindex.upstream.reachability import Reachability

log = logging.getLogger(__name__)

TOUCH_EVERY = 60.0  # seconds between mtime updates of a cached file in use
NEGATIVE_TTL_MAX = 600.0
NEGATIVE_MAX = 4096  # "no such project" answers remembered (any name may be asked for)
PAGES_IN_MEMORY = 2048  # upstream pages held in memory at most, however small
READ = 256 * 1024  # bytes a follower reads from the growing file at a time


class NotCached(Exception):
    """Offline, and the page or file is not in the cache."""


class OutsideCache(UpstreamError):
    """A path that would leave the cache's folder: refused like a bad upstream answer."""

    def __init__(self, rel: str):
        super().__init__(f"refused: {rel!r} is outside the upstream cache", 502, "refused")


def _inside(folder: Path, rel: str) -> Path:
    """folder/rel, resolved (symlinks too), if it lies inside folder (itself resolved);
    else OutsideCache. Every read, write and delete in the cache goes through here."""
    path = (folder / rel).resolve()
    if path == folder or not path.is_relative_to(folder):
        raise OutsideCache(rel)
    return path


RETRY_AFTER = (2, 30)  # seconds a refused client is told to wait: at least, at most


class Busy(UpstreamError):
    """Every worker the upstream may hold is taken: answered 503 at once. pip waits
    Retry-After between its five retries, so it says when the file should be cached."""

    def __init__(self, retry_after: float | None = None) -> None:
        low, high = RETRY_AFTER
        self.retry_after = low if retry_after is None else round(min(max(retry_after, low), high))
        super().__init__(f"busy fetching files from the upstream; try again in {self.retry_after} s", 503)


class WorkerShare:
    """The waitress workers that may wait on the upstream at once; the rest stay free for
    local pages, local files and health checks. take() never blocks: a full share is Busy."""

    def __init__(self, size: int):
        self._free = threading.BoundedSemaphore(size)

    def take(self) -> None:
        if not self._free.acquire(blocking=False):
            raise Busy()

    def give(self) -> None:
        self._free.release()


class _Flights:
    """Per-key single flight: the first caller leads, later ones wait for it to land."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[object, threading.Event] = {}

    def lead(self, key: object) -> threading.Event | None:
        """An event to set when done if the caller leads; None if someone else does."""
        with self._lock:
            if key in self._running:
                return None
            event = self._running[key] = threading.Event()
            return event

    def waiter(self, key: object) -> threading.Event | None:
        with self._lock:
            return self._running.get(key)

    def land(self, key: object) -> None:
        with self._lock:
            event = self._running.pop(key, None)
        if event is not None:
            event.set()


@dataclass(frozen=True)
class Entry:
    project: UpstreamProject | None  # None: the upstream has no such project
    fetched_at: float  # time.time()


@dataclass
class _Held:
    """A page held in memory: its entry, its size on disk (what the bound counts), and the
    page as clients see it, made once per fetch (pages are cached by identity)."""

    entry: Entry
    size: int
    shown: UpstreamProject | None = None


class PageMemory:
    """The upstream pages held in memory: least recently used first out, past max_entries
    or max_bytes (the newest page always stays, however big)."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, name: str) -> _Held | None:
        with self._lock:
            held = self._held.get(name)
            if held is not None:
                self._held.move_to_end(name)
            return held

    def put(self, name: str, held: _Held) -> None:
        with self._lock:
            old = self._held.pop(name, None)
            self._bytes += held.size - (old.size if old else 0)
            self._held[name] = held
            while len(self._held) > 1 and (
                len(self._held) > self.max_entries or self._bytes > self.max_bytes
            ):
                self._bytes -= self._held.popitem(last=False)[1].size

    def pop(self, name: str) -> None:
        with self._lock:
            old = self._held.pop(name, None)
            if old is not None:
                self._bytes -= old.size


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Transfer:
    """One cold file coming from the upstream into a temp file, written by its own thread.
    `ready` bytes of it may be sent: all but the newest piece until the digest checks."""

    def __init__(self, tmp: Path):
        self.changed = threading.Condition()
        self.path: Path | None = tmp  # the temp file, its final name once verified, None if failed
        self.length: int | None = None  # the upstream's Content-Length
        self.ready = 0
        self.written = 0  # bytes in the temp file
        self.started = time.monotonic()
        self.done = False  # verified and in place: `ready` is the whole file
        self.error: UpstreamError | None = None

    def seconds_left(self) -> float | None:
        """At the speed so far, when the file should be complete; None if unknown."""
        elapsed = time.monotonic() - self.started
        if self.length is None or not self.written or elapsed <= 0:
            return None
        return (self.length - self.written) * elapsed / self.written

    def update(self, **state: Any) -> None:
        with self.changed:
            for name, value in state.items():
                setattr(self, name, value)
            self.changed.notify_all()


class Follower:
    """One client's answer while its file downloads: the bytes on disk as they arrive, as
    a WSGI body. It holds a worker of the share until close() (the server calls it, also
    when the client goes away; the download goes on for the others)."""

    def __init__(self, transfer: _Transfer, give_back: Callable[[], None], fh: BinaryIO):
        self._transfer = transfer
        self._give_back: Callable[[], None] | None = give_back
        self._file: BinaryIO | None = fh  # opened while the download was registered (_transfer)
        self.size: int | None = None  # the Content-Length announced, if any
        # stop once the download landed, leaving the rest to whoever takes take_rest()
        self.stop_when_landed = False

    def prime(self) -> None:
        """Wait for the first bytes, so that a download failing that early is a clean error."""
        t = self._transfer
        with t.changed:
            t.changed.wait_for(lambda: t.ready or t.done or t.error)
            if t.error is not None:
                raise t.error

    def __iter__(self) -> Iterator[bytes]:
        """The ready bytes as they come. A failed download ends the stream short: quietly
        under a Content-Length (the server closes the connection, too few bytes), by an
        exception without one, so that a chunked answer never looks complete."""
        t, fh, sent = self._transfer, self._file, 0
        assert fh is not None, "prime() first"
        while True:
            with t.changed:
                t.changed.wait_for(lambda: t.ready > sent or t.done or t.error)  # noqa: B023 (called here, not later)
                ready, done, error = t.ready, t.done, t.error
            while sent < ready:  # first, so the headers go out with bytes even if it failed
                if self.stop_when_landed and t.done:  # checked each piece: a slow client's
                    return  # writes wait for it to read, while the download may land
                data = fh.read(min(READ, ready - sent))
                if not data:
                    raise UpstreamError("the cached file was cut short on disk")
                sent += len(data)
                yield data
            if error is not None:
                if self.size is None:
                    raise error
                return
            if done:
                return

    def take_rest(self) -> BinaryIO | None:
        """Once the download landed (verified, in place), the file positioned after the
        bytes sent so far, now the caller's to send and close; None before that."""
        if not self._transfer.done:
            return None
        fh, self._file = self._file, None
        return fh

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._give_back is not None:
            self._give_back()
            self._give_back = None


class UpstreamCache:
    def __init__(
        self,
        upstream: Upstream,
        root: Path,
        ttl: float,
        min_age: float,
        max_bytes: int,
        offline: bool = False,
        workers: int = 1,
        page_memory_bytes: int = 16 * 1024**2,
    ):
        self.upstream = upstream
        self.root = root
        self.pages_dir = (root / "pages").resolve()
        self.files_dir = (root / "files").resolve()
        self.ttl, self.min_age, self.max_bytes, self.offline = ttl, min_age, max_bytes, offline
        self._pages = PageMemory(PAGES_IN_MEMORY, page_memory_bytes)  # projects the upstream has
        self._on_disk: dict[str, str] = {}  # name -> display name of every page cached on disk
        self._on_disk_lock = threading.Lock()
        self._missing: OrderedDict[str, Entry] = OrderedDict()  # names it has not: an LRU
        self._missing_lock = threading.Lock()
        self.exemptions: cooldown.Exemptions = {}  # past the cooldown: kept by Sources.reload
        self._page_flights = _Flights()
        self._provenance_flights = _Flights()
        self.share = WorkerShare(workers)
        # Downloads go on without their clients (a retry finds them further along), so a
        # few abandoned ones must not block new files; twice the share still bounds the
        # upstream connections a flood of cold URLs can open.
        self._downloads_max = 2 * workers
        self._transfers: dict[str, _Transfer] = {}  # relpath -> its download under way
        self._transfers_lock = threading.Lock()
        self._lru: OrderedDict[str, tuple[int, float]] = OrderedDict()  # relpath -> (size, last touch)
        self._lru_lock = threading.Lock()
        self.names: tuple[tuple[str, str], ...] = ()  # cached upstream projects, for /simple/
        # (kind "page"/"file", outcome) of each fetch from the upstream, for metrics
        self.on_fetch: Callable[[str, str], None] = lambda kind, outcome: None
        self.reachability = Reachability(root / "reachability.json", _write_atomic)
        self._load()

    # -- start ---------------------------------------------------------------------------

    def _load(self) -> None:
        """Pages and files already cached (a restart keeps serving them, offline too)."""
        for folder in (self.pages_dir, self.files_dir):
            folder.mkdir(parents=True, exist_ok=True)
        pages = sorted(self.pages_dir.glob("*.json"), key=lambda p: p.lstat().st_mtime)
        for page in pages:  # the newest stay in memory
            held = self._read_page(page.stem)
            if held is not None and held.entry.project is not None:
                self._pages.put(page.stem, held)
                self._on_disk[page.stem] = held.entry.project.display_name
        found = []
        for path, st in self._cached_files():
            found.append((st.st_mtime, path.relative_to(self.files_dir).as_posix(), st.st_size))
        with self._lru_lock:
            for mtime, rel, size in sorted(found):
                self._lru[rel] = (size, mtime)
        self._update_names()

    def _cached_files(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Files filed under a digest folder, inside the cache (anything else is skipped)."""
        for folder in self.files_dir.iterdir() if self.files_dir.exists() else ():
            if not valid_digest(folder.name) or not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith("."):
                    continue
                try:
                    path = _inside(self.files_dir, f"{folder.name}/{entry.name}")
                    if path.is_file() and path.parent.name == folder.name:
                        yield path, path.stat()
                        continue
                except (OutsideCache, OSError):
                    pass
                log.warning(
                    "upstream cache: skipping %s/%s (not a file inside the cache)", folder.name, entry.name
                )

    # -- pages ---------------------------------------------------------------------------

    def _read_page(self, name: str) -> _Held | None:
        """A page cached on disk, checked like a fresh one; None (logged) if unreadable."""
        try:
            path = _inside(self.pages_dir, f"{name}.json")
            text = path.read_text()
            project = UpstreamProject.from_json(text)
            if project.name != name:
                raise ValueError(f"it holds the page of {project.name}")
            return _Held(Entry(project, path.stat().st_mtime), len(text))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, OutsideCache) as exc:
            log.warning("ignoring unreadable cached upstream page %s.json: %s", name, exc)
            return None

    def _held(self, name: str) -> _Held | None:
        """The page in memory, else read back from disk (and held again)."""
        held = self._pages.get(name)
        if held is None and name in self._on_disk:
            held = self._read_page(name)
            if held is None:
                self._set_on_disk(name, None)
            else:
                self._pages.put(name, held)
        return held

    def cached_entry(self, name: str) -> Entry | None:
        held = self._held(name)
        return held.entry if held is not None else self._missing.get(name)

    def project(self, name: str) -> UpstreamProject | None:
        """The upstream's page for name as clients see it (min-age applied unless exempted), fetched if
        not fresh; None if the upstream has no such project, or name is no valid project
        name (then nothing is asked). Raises UpstreamError when the upstream fails and
        nothing is cached, NotCached when offline and nothing is cached."""
        if not valid_name(name):
            return None
        entry = self._fresh_entry(name)
        if entry.project is None:
            return None
        if cooldown.is_exempt(self.exemptions, name, time.time()):
            return entry.project  # let past the cooldown: the page as fetched (one object per fetch)
        held = self._pages.get(name)
        if held is None or held.entry is not entry:  # pushed out meanwhile: filter this once
            return age_filter(entry.project, self.min_age)
        if held.shown is None:  # one filtered object per fetch: pages cache by identity
            held.shown = age_filter(entry.project, self.min_age)
        return held.shown

    def hidden_by_cooldown(self, name: str) -> list[cooldown.Hidden]:
        """What the cooldown hides of the cached page for name now (never fetches)."""
        entry = self.cached_entry(name)
        now = time.time()
        if entry is None or entry.project is None or cooldown.is_exempt(self.exemptions, name, now):
            return []
        return cooldown.hidden(entry.project, self.min_age, now)

    def _fresh_entry(self, name: str) -> Entry:
        entry = self.cached_entry(name)
        if self.offline:
            if entry is None:
                raise NotCached(f"{name} is not in the upstream cache, and the upstream is offline")
            return entry
        if entry is not None and time.time() - entry.fetched_at < self._ttl(entry):
            return entry
        try:
            self.share.take()
        except Busy:
            if entry is None:
                raise
            log.warning("too busy to refresh the upstream's page for %s; serving the cached one", name)
            return entry
        try:
            return self._refresh(name, entry)
        finally:
            self.share.give()

    def _refresh(self, name: str, entry: Entry | None) -> Entry:
        """A fetched page (one fetch at a time per name: followers wait for it), else the
        cached one when the upstream fails."""
        flight = self._page_flights.lead(name)
        if flight is None:  # someone is fetching it: wait for theirs
            event = self._page_flights.waiter(name)
            if event is not None:
                event.wait(self.upstream.limits.page_deadline + self.upstream.timeout)
            landed = self.cached_entry(name)
            if landed is not None and landed is not entry:
                return landed
            if entry is not None:
                return entry
            raise UpstreamError(f"the upstream's page for {name} could not be fetched", 502)
        try:
            try:
                project = self.upstream.fetch_project(name)
            except UpstreamError as exc:
                self.on_fetch("page", exc.outcome)
                self.reachability.failed(str(exc))
                if entry is not None and entry.project is not None:
                    log.warning(
                        "upstream failed (%s); serving %s from a page cached %d s ago",
                        exc,
                        name,
                        time.time() - entry.fetched_at,
                    )
                    return entry
                raise
            self.on_fetch("page", "ok" if project is not None else "not_found")
            self.reachability.succeeded()
            entry = Entry(project, time.time())
            if project is None:  # gone (or never there): forget any page, remember the answer
                self._pages.pop(name)
                self._set_on_disk(name, None)
                self._remember_missing(name, entry)
                return entry
            page = project.to_json().encode()
            _write_atomic(_inside(self.pages_dir, f"{name}.json"), page)
            self._pages.put(name, _Held(entry, len(page)))
            self._set_on_disk(name, project.display_name)
            with self._missing_lock:
                self._missing.pop(name, None)
            return entry
        finally:
            self._page_flights.land(name)

    def _remember_missing(self, name: str, entry: Entry) -> None:
        with self._missing_lock:
            self._missing[name] = entry
            self._missing.move_to_end(name)
            while len(self._missing) > NEGATIVE_MAX:
                self._missing.popitem(last=False)

    def _ttl(self, entry: Entry) -> float:
        return self.ttl if entry.project is not None else min(self.ttl, NEGATIVE_TTL_MAX)

    def has_project(self, name: str) -> bool:
        """Whether the upstream serves name (for the upload guard). Raises like project()."""
        try:
            return self.project(name) is not None
        except NotCached:
            return False

    def _set_on_disk(self, name: str, display_name: str | None) -> None:
        """Record that name's page is on disk (None: no longer), and list the names again
        for /simple/ if that changed them."""
        with self._on_disk_lock:
            if self._on_disk.get(name) == display_name:
                return
            if display_name is None:
                del self._on_disk[name]
            else:
                self._on_disk[name] = display_name
            self._update_names()

    def _update_names(self) -> None:
        self.names = tuple(sorted(self._on_disk.items()))

    # -- files ---------------------------------------------------------------------------

    def relpath(self, f: UpstreamFile, metadata: bool = False) -> str:
        return f"{f.metadata_sha256}/{f.filename}.metadata" if metadata else f"{f.sha256}/{f.filename}"

    def path(self, rel: str) -> Path:
        """Where a cached file lives: files/<rel>, or OutsideCache."""
        return _inside(self.files_dir, rel)

    def cached(self, f: UpstreamFile, metadata: bool = False) -> Path | None:
        rel = self.relpath(f, metadata)
        try:
            path = self.path(rel)
        except OutsideCache:
            return None
        return path if self._present(rel, path) else None

    def provenance(self, f: UpstreamFile) -> Path:
        """f's provenance object (PEP 740), cached beside f under f's digest (the page gives
        none for it; check() checks it is about that file again); fetched and checked by
        client.py when missing, one fetch at a time, within the workers' share."""
        rel = f"{f.sha256}/{f.filename}{PROVENANCE_SUFFIX}"
        path = self.path(rel)
        if self._present(rel, path):
            return path
        if self.offline:
            raise NotCached(f"the provenance of {f.filename} is not cached, and the upstream is offline")
        self.share.take()
        try:
            if self._provenance_flights.lead(rel) is None:  # someone is fetching it: wait for theirs
                event = self._provenance_flights.waiter(rel)
                if event is not None:
                    event.wait(self.upstream.limits.page_deadline + self.upstream.timeout)
                if self._present(rel, path):
                    return path
                raise UpstreamError(f"the provenance of {f.filename} could not be fetched", 502)
            try:
                data = self.upstream.fetch_provenance(f)
                self.on_fetch("provenance", "ok")
                _write_atomic(path, data)
            except UpstreamError as exc:
                self.on_fetch("provenance", exc.outcome)
                raise
            except OSError as exc:  # the data dir: full, read-only
                log.error("could not cache the upstream provenance %s: %s", rel, exc)
                raise UpstreamError(f"the provenance of {f.filename} could not be cached here") from None
            finally:
                self._provenance_flights.land(rel)
            with self._lru_lock:
                self._lru[rel] = (len(data), time.time())
            log.info("cached upstream provenance %s (%d bytes)", rel, len(data))
            return path
        finally:
            self.share.give()

    def _present(self, rel: str, path: Path) -> bool:
        """Whether the cached file is there; its use is noted for the LRU if so."""
        if not path.is_file():
            return False
        self._touch(rel, path)
        return True

    def open_or_fetch(
        self, f: UpstreamFile, metadata: bool = False
    ) -> tuple[Path | None, int | None, Follower | None]:
        """(cached path, None, None) when cached; else (None, size if known, a primed
        Follower) of the file's one download, started here if none is under way. Raises
        Busy when the share of workers is taken (the download is started all the same,
        so the client's retry finds it further along) or too many files are downloading,
        UpstreamError if the download fails before any byte could be sent (bytes that do
        not match the page included)."""
        path = self.cached(f, metadata)
        if path is not None:
            return path, None, None
        if self.offline:
            raise NotCached(f"{f.filename} is not cached, and the upstream is offline")
        joined = self._transfer(f, metadata)
        if isinstance(joined, Path):  # it landed meanwhile
            return joined, None, None
        transfer, fh = joined
        try:
            self.share.take()
        except Busy:
            fh.close()
            raise Busy(transfer.seconds_left()) from None  # the retry then finds it cached
        follower = Follower(transfer, self.share.give, fh)
        try:
            follower.prime()
        except BaseException:
            follower.close()
            raise
        follower.size = transfer.length if transfer.length is not None else (None if metadata else f.size)
        return None, follower.size, follower

    def _transfer(self, f: UpstreamFile, metadata: bool) -> tuple[_Transfer, BinaryIO] | Path:
        """The download of f under way, or a new one, with its file opened for this client;
        the cached path if it just landed. The file is opened while the download is still
        registered: a download prunes the cache only after it unregisters, so a client that
        joined it can never find its file pruned before it opened it."""
        key = self.relpath(f, metadata)
        with self._transfers_lock:
            transfer = self._transfers.get(key)
            if transfer is not None:
                with transfer.changed:  # the temp file, or its final name once renamed
                    if transfer.error is not None or transfer.path is None:
                        raise transfer.error or UpstreamError(f"{f.filename} could not be fetched")
                    return transfer, open(transfer.path, "rb")
            path = self.cached(f, metadata)  # a download removes itself only after the rename
            if path is not None:
                return path
            if len(self._transfers) >= self._downloads_max:
                raise Busy()
            target = self.path(key)  # OutsideCache: refused before anything is asked or written
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            except OSError as exc:  # our disk, not the upstream: a clear 503, never a 500
                log.error("cannot write to the upstream cache at %s: %s", target.parent, exc)
                raise UpstreamError("the upstream cache cannot be written to; try again later", 503) from None
            transfer = self._transfers[key] = _Transfer(Path(tmp))
            fh = open(tmp, "rb")
        try:
            threading.Thread(
                target=self._download,
                args=(f, metadata, key, fd, transfer),
                name=f"upstream-download {f.filename}",
                daemon=True,
            ).start()
        except RuntimeError:  # no thread to be had: no follower may wait for one that never runs
            os.close(fd)
            fh.close()
            os.unlink(tmp)
            with self._transfers_lock:
                self._transfers.pop(key, None)
            error = UpstreamError("too busy to start a download; try again", 503)
            transfer.update(path=None, error=error)
            raise error from None
        return transfer, fh

    def _download(self, f: UpstreamFile, metadata: bool, key: str, fd: int, transfer: _Transfer) -> None:
        """The download thread: the upstream's bytes into the temp file, each piece made
        visible to followers once the next one arrives; fsync, check the sha256, rename.
        On any failure the temp file goes and every follower's stream ends short."""
        expected = f.metadata_sha256 if metadata else f.sha256
        target = self.path(key)
        tmp = transfer.path
        assert tmp is not None  # a new transfer's temp file
        done = mismatch = False
        try:
            with os.fdopen(fd, "wb") as out:
                length, chunks, response = self.upstream.stream(
                    f.metadata_url if metadata else f.url, None if metadata else f.size
                )
                transfer.update(length=length)
                with response:
                    digest = hashlib.sha256()
                    size = 0
                    for chunk in chunks:
                        if not chunk:
                            continue
                        out.write(chunk)
                        out.flush()  # to the OS, where followers read it
                        digest.update(chunk)
                        transfer.update(ready=size, written=size + len(chunk))  # all but the newest piece
                        size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != expected:
                mismatch = True
                log.error(
                    "upstream file %s has sha256 %s, but its page published %s: refused, not cached",
                    redact_url(f.url),
                    digest.hexdigest(),
                    expected,
                )
                raise UpstreamError(
                    f"{f.filename}: the upstream's bytes do not match its published sha256; refused"
                )
            with transfer.changed:
                os.replace(tmp, target)
                transfer.update(path=target, ready=size, done=True)
            done = True
            self.on_fetch("file", "ok")
            self.reachability.succeeded()
            with self._lru_lock:
                self._lru[key] = (size, time.time())
            log.info("cached upstream file %s (%d bytes)", key, size)
        except BaseException as exc:
            self.on_fetch("file", "mismatch" if mismatch else getattr(exc, "outcome", "error"))
            if not isinstance(exc, UpstreamError):
                log.exception("fetching %s from the upstream failed", redact_url(f.url))
                exc = UpstreamError(f"{f.filename} could not be fetched from the upstream")
            elif not mismatch:  # its clients' streams end short: the reason is said here, once
                log.warning("upstream file %s not cached: %s", key, exc)
            self.reachability.failed(str(exc))
            with transfer.changed:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                transfer.update(path=None, error=exc)
        finally:
            with self._transfers_lock:
                self._transfers.pop(key, None)
        if done:
            self.prune()

    def _touch(self, rel: str, path: Path) -> None:
        now = time.time()
        with self._lru_lock:
            size, last = self._lru.get(rel, (0, 0.0))
            if now - last < TOUCH_EVERY and rel in self._lru:
                return
            if not size:
                try:
                    size = path.stat().st_size
                except OSError:
                    return
            self._lru[rel] = (size, now)
            self._lru.move_to_end(rel)
        try:
            os.utime(path, (now, now))
        except OSError:
            pass

    def total_bytes(self) -> int:
        with self._lru_lock:
            return sum(size for size, _t in self._lru.values())

    def size(self) -> tuple[int, int]:
        """(files, bytes) of the cached files, as the LRU holds them (kept in step with the disk)."""
        with self._lru_lock:
            return len(self._lru), sum(size for size, _t in self._lru.values())

    def prune(self, max_bytes: int | None = None, report: Callable[[str], None] | None = None) -> int:
        """Remove least recently used files until the cache fits; how many were removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        removed = 0
        while True:
            with self._lru_lock:
                total = sum(size for size, _t in self._lru.values())
                if total <= limit or not self._lru:
                    return removed
                rel, (size, _t) = self._lru.popitem(last=False)
            try:
                path = self.path(rel)
            except OutsideCache:
                log.error("upstream cache: not removing %s: it is outside the cache", rel)
                continue
            try:
                path.unlink()
                removed += 1
                log.info("upstream cache: removed %s (least recently used, %d bytes)", rel, size)
                if report:
                    report(f"removed {rel} ({size} bytes)")
            except FileNotFoundError:
                pass
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def listing(self) -> list[tuple[str, int, float]]:
        """(relpath, size, last use) of every cached file, most recently used first."""
        with self._lru_lock:
            return [(rel, size, t) for rel, (size, t) in reversed(self._lru.items())]

    def check(self, report: Callable[[str], None] | None = None) -> tuple[int, list[str]]:
        """Rehash every cached file against the digest it is filed under: (checked, problems)."""
        problems, checked = [], 0
        for path, _st in self._cached_files():
            checked += 1
            if path.name.endswith(PROVENANCE_SUFFIX):  # filed under its file's digest
                try:
                    check_provenance(
                        path.read_bytes(), path.name[: -len(PROVENANCE_SUFFIX)], path.parent.name
                    )
                except ValueError as exc:
                    problems.append(
                        f"upstream cache: {path.parent.name}/{path.name} is not that file's provenance "
                        f"({exc}); remove it (privindex cache prune --all)"
                    )
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    digest.update(chunk)
            if digest.hexdigest() != path.parent.name:
                problems.append(
                    f"upstream cache: {path.parent.name}/{path.name} has sha256 "
                    f"{digest.hexdigest()}; remove it (privindex cache prune --all)"
                )
            if report:
                report(f"checked upstream cache file {path.name}")
        return checked, problems
