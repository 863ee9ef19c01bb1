"""Pre-rendered Simple API pages (`static_pages = true`, `privindex export-pages DIR`).

nginx serves a page as a file faster than privindex can answer it, so every change to a
project's listing rewrites that project's page files and `/simple/`'s under
`<data_dir>/static/simple/`: `index.html`, `index.v1html` and `index.v1json`, each the bytes
privindex itself answers (packages/pages.py renders both). The Index and Sources tell
`changed` which names changed; a background thread writes outside the index lock, names
coalesced, so an upload never waits for a page and a failed write is retried after a bounded
back-off. A file is rewritten only when its bytes change (temp, fsync, rename), so nginx's
ETag (mtime and size) changes exactly when the page does.

A page that needs a decision per request has no files, so nginx falls through to
privindex: a quarantined project (PEP 792), a name whose page mixes in the upstream (merged,
upstream-only, and `/simple/` itself with an upstream), and everything on a private index
whose nginx does not ask the read check first (`static_pages_auth_request`).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

from privindex.config import Settings
from privindex.packages import pages
from privindex.packages.index import Project
from privindex.packages.store import Store
from privindex.upstream.source_rules import Source, Sources

log = logging.getLogger(__name__)

# file name -> page format; the two HTML files hold the same bytes, nginx sends each with
# its own Content-Type
FILES = (("index.html", "html"), ("index.v1html", "html"), ("index.v1json", "json"))
ROOT = "simple"  # the folder under the tree; a project's pages are in ROOT/<name>/
WAIT = 0.5  # seconds between looks at the stop event while nothing changes
RETRY_FIRST, RETRY_MOST = 2.0, 30.0  # seconds before a failed pass is tried again: doubling, bounded

Progress = Callable[[int, int], None]


class StaticPages:
    def __init__(self, folder: Path, sources: Sources, private: bool = False):
        self.tree = Store(folder)  # atomic writes and removals, relative to the static tree
        self.sources = sources
        self.index = sources.index
        self.private = private  # a private index without nginx's read check: no page is written
        self._store_root = os.fspath(self.index.store.root)
        self._pending: set[str] = set()
        self._everything = True  # the first pass brings the whole tree in line with the index
        self._lock = threading.Lock()
        self._wake = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings, sources: Sources, folder: Path | None = None) -> StaticPages:
        """Into folder, or the data dir's static tree; nothing on a private index unless
        nginx asks the read check first."""
        private = settings.read_access == "token" and not settings.static_pages_auth_request
        return cls(folder if folder is not None else settings.static_dir, sources, private)

    def follow(self) -> None:
        """Hear of every change to the index's listings, the names' statuses and sources."""
        self.index.listeners.append(self.changed)
        self.sources.status_listeners.append(self.changed)
        self.sources.rule_listeners.append(self.changed)

    def changed(self, names: Collection[str] | None) -> None:
        """Take note (cheap: called under the index lock); None means every name."""
        with self._lock:
            if names is None:
                self._everything = True
            else:
                self._pending.update(names)
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """The writer thread: write what changed until stop is set. A failed pass is tried
        again after RETRY_FIRST seconds, doubling up to RETRY_MOST (a page must not stay
        stale until an unrelated change); logged once per streak of failures."""
        self._wake.set()
        failures, retry_at = 0, 0.0
        while not stop.is_set():
            woken = self._wake.wait(WAIT)
            if not woken and not (failures and time.monotonic() >= retry_at):
                continue
            self._wake.clear()
            try:
                self.write_pending()
            except Exception:  # never the uploader's problem; kept for the next pass
                if not failures:
                    log.exception("writing the static pages failed; trying again in a few seconds")
                failures += 1
                retry_at = time.monotonic() + min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MOST)
                continue
            if failures:
                log.info("the static pages are written again, after %d failed passes", failures)
            failures = 0

    def write_pending(self) -> None:
        """Write what changed; on a failure what was pending stays pending, and it raises."""
        with self._lock:
            names, everything = self._pending, self._everything
            self._pending, self._everything = set(), False
        try:
            if everything:
                self.write_all()
            else:
                for name in names:
                    self.write_project(name)
                self.write_root()
        except Exception:
            with self._lock:
                self._pending |= names
                self._everything |= everything
            raise

    def write_all(self, progress: Progress | None = None) -> int:
        """Bring the whole tree in line with the index; returns the projects written."""
        names = [name for name, _display in self.index.project_list()]
        listed = set(names)
        folder = self.tree.full_path(ROOT)
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.is_dir() and entry.name not in listed:
                    self._remove(f"{ROOT}/{entry.name}")
        written = 0
        for done, name in enumerate(names, 1):
            written += self.write_project(name)
            if progress is not None:
                progress(done, len(names))
        self.write_root()
        return written

    def write_project(self, name: str) -> bool:
        """Write a project's page files, or remove them if it must not be served from files."""
        bodies = self._project_bodies(name)
        if bodies is None:
            self._remove(f"{ROOT}/{name}")
            return False
        self._put(f"{ROOT}/{name}", bodies)
        return True

    def write_root(self) -> None:
        if self.private or self.sources.upstream_on:  # the root lists cached upstream names too
            self._remove(ROOT)
            return
        listed = self.index.project_list()
        self._put(ROOT, {fmt: pages.render_root(listed, fmt) for fmt in ("html", "json")})

    def prune(self) -> None:
        """Before the server listens: remove at once, without rendering, the pages that must
        not be served now (all of a private index's; those of names quarantined, not local
        or no longer listed, changed while privindex was stopped; the root beside an
        upstream). The writer thread renders the rest."""
        folder = self.tree.full_path(ROOT)
        if self.private:
            if remove_all(self.tree.root):
                log.info("static pages: a private index without the read check: removed every page")
            return
        if not folder.is_dir():
            return
        if self.sources.upstream_on:
            self._remove(ROOT)
        stale = [e.name for e in os.scandir(folder) if e.is_dir() and self._servable(e.name) is None]
        for name in stale:
            self._remove(f"{ROOT}/{name}")
        if stale:
            log.info("static pages: removed the pages of %d names no longer served as files", len(stale))

    def _servable(self, name: str) -> Project | None:
        """The project whose pages may be files, or None (privindex answers for it)."""
        if self.private or self.sources.source(name) is not Source.LOCAL:
            return None
        project = self.index.project(name)
        if project is None or not self.sources.status(name).offers_files:
            return None
        return project

    def _project_bodies(self, name: str) -> dict[str, bytes] | None:
        project = self._servable(name)
        if project is None:
            return None
        status = self.sources.status(name)
        namespaces = self.sources.namespaces.api_entries(name)
        attested = pages.attested_project(self._store_root, project)
        return {
            fmt: pages.render_project(project, fmt, status, namespaces, attested) for fmt in ("html", "json")
        }

    def _put(self, folder: str, bodies: dict[str, bytes]) -> None:
        for filename, fmt in FILES:
            self._write(f"{folder}/{filename}", bodies[fmt])

    def _write(self, relpath: str, data: bytes) -> None:
        """Write data unless the file holds it already. nginx's ETag is the mtime in seconds
        and the size: a replaced page always gets a later second than the one it replaces
        (sizes X, Y, X within one second would otherwise give the first and third one ETag)."""
        mtime_ns = time.time_ns()
        try:
            with open(self.tree.full_path(relpath), "rb") as fh:
                if fh.read() == data:
                    return
                st = os.fstat(fh.fileno())
            mtime_ns = max(mtime_ns, (st.st_mtime_ns // 10**9 + 1) * 10**9)
        except FileNotFoundError:
            pass
        self.tree.write(relpath, data, mtime_ns)

    def _remove(self, folder: str) -> None:
        _remove_pages(self.tree, folder)


def remove_all(folder: Path) -> bool:
    """Remove the pages a former run wrote (static_pages is off now: nginx must not serve
    pages no one updates any more); whether there were any."""
    pages_folder = Path(folder) / ROOT
    if not pages_folder.is_dir():
        return False
    shutil.rmtree(pages_folder)
    return True


def forget(folder: Path, name: str) -> None:
    """Remove a project's page files (the CLI changed it, with privindex stopped or
    elsewhere): nginx falls through to privindex until a server writes them anew. The
    root's stay: a name they still list leads to privindex's answer, and their ETag holds."""
    _remove_pages(Store(folder), f"{ROOT}/{name}")


def _remove_pages(tree: Store, folder: str) -> None:
    """A page folder's files, and the folder (not the root's) if nothing else is in it."""
    for filename, _fmt in FILES:
        tree.remove(f"{folder}/{filename}", missing_ok=True)
    if folder != ROOT:
        try:
            os.rmdir(tree.full_path(folder))
        except OSError:  # gone already, or holds something that is not ours
            pass
