"""The serving tree (`static_files = true`): hard links to the files privindex serves, under
`<data_dir>/static/packages/<path in the store>`, so nginx sends a published file without
asking privindex (README: "Serving a LAN").

It holds exactly what a download from privindex would send: files the index lists (hashed,
carrying their published sha256; yanked ones too, PEP 592) of projects that offer files
(not quarantined, PEP 792). Anything else is not in the tree, so nginx falls through to
privindex, which answers as it always did (404, 409, the upstream's files, metadata).

The index announces which projects changed (`changed`, under its lock: no I/O there); this
module's own thread links and unlinks outside it. A link is made under a temp name in the
same folder and renamed into place, so nginx never sees a half-made entry; no fsync, as the
tree is rebuilt from the index at every start. A store file is linked only if it is a
regular file reached through no symlink and still has the size and mtime the index hashed
(otherwise the index is asked to read it again, and the tree leaves it to privindex).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from privindex.packages.index import Index, IndexedFile, Project

log = logging.getLogger(__name__)

TEMP_PREFIX = ".privindex-link-"
# Idle, the tree thread stats this many links every SWEEP_EVERY seconds (100,000 files: a
# sweep every 100 s, at a few ms of CPU a second)
SWEEP_FILES = 500
SWEEP_EVERY = 0.5


def tree_folder(data_dir: Path) -> Path:
    """Where the tree lives: nginx's `root` is its parent, `<data_dir>/static`."""
    return Path(data_dir) / "static" / "packages"


def filesystem_problem(store_root: Path, data_dir: Path) -> str | None:
    """Why hard links from the store into the data dir cannot work, or None."""
    try:
        same = os.stat(store_root).st_dev == os.stat(data_dir).st_dev
    except OSError as exc:
        return f"cannot compare the store and the data dir: {exc.strerror or exc}"
    if same:
        return None
    return (
        f"static_files: the store {store_root} and the data dir {data_dir} are on different "
        "filesystems, so files cannot be hard-linked into the serving tree; nginx falls through "
        "to privindex for every file. Put both on one filesystem to use it"
    )


def remove_tree(data_dir: Path) -> None:
    """static_files is off: a tree left from when it was on must not keep serving files
    privindex would now refuse (a private index, a quarantine, a deletion since)."""
    folder = tree_folder(data_dir)
    if folder.is_dir():
        shutil.rmtree(folder)  # never follows symlinks
        log.info("static_files is off: removed the serving tree %s", folder)


def forget(data_dir: Path, paths: Iterable[str]) -> None:
    """Remove the links at these store paths (the CLI withdrew them, with privindex stopped
    or elsewhere): nginx falls through to privindex, and a server links them anew if it may."""
    folder = tree_folder(data_dir)
    for path in paths:
        try:
            os.unlink(folder / path)
        except FileNotFoundError:
            pass


class ServingTree:
    """The tree of one index. `offers_files(project)` is the PEP 792 answer from memory."""

    def __init__(self, index: Index, folder: Path, offers_files: Callable[[str], bool]):
        self.index = index
        self.folder = Path(folder)
        self.offers_files = offers_files
        self._real_root = os.path.realpath(index.store.root)
        self._wake = threading.Condition()
        self._pending: set[str] = set()
        self._shown: dict[str, Project] = {}  # what the tree holds, per project (the tree thread's)
        self._sweeping: list[str] = []  # paths of links still to stat in this sweep
        self.enabled = True

    # -- told by the index and the statuses (cheap: under their locks) ---------------------

    def changed(self, names: Iterable[str]) -> None:
        with self._wake:
            self._pending.update(names)
            self._wake.notify()

    # -- the tree's own thread ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Prune links the index does not vouch for at once, rebuild the tree once the index
        has caught up with the store, then follow the changes announced."""
        self._tried(self.reconcile, False)
        while self.index.indexing is not None and not stop.wait(0.1):
            pass
        while not self._tried(self.reconcile, True) and not stop.wait(SWEEP_EVERY):
            pass
        failed: set[str] = set()
        while not stop.is_set():
            with self._wake:
                if not self._pending:
                    self._wake.wait(SWEEP_EVERY)
                names, self._pending = self._pending | failed, set()
            if not names:
                self._tried(self._sweep)
            failed = {name for name in names if not self._tried(self.sync, name)}  # again in a while

    @staticmethod
    def _tried(step: Callable[..., None], *args: object) -> bool:
        """Run a step of the tree's work; a failure is logged and tried again later (a link
        left in place would go on serving a file privindex withdrew)."""
        try:
            step(*args)
            return True
        except Exception:
            log.exception("serving tree: %s%r failed; trying again", step.__name__, args)
            return False

    def prune(self) -> None:
        """Before the server listens: remove at once every link the index does not list as
        served (deleted, withdrawn or quarantined while privindex was stopped). No store
        file is looked at: the thread's first pass checks the links that stay."""
        _shown, wanted = self._wanted()
        removed = self._remove_links(lambda full, entry: entry is not None, wanted)
        if removed:
            log.info("serving tree: removed %d links to files no longer served", removed)

    def reconcile(self, link: bool) -> None:
        """Remove every link the index does not list as served (or whose file changed); with
        link, also link every served file. The start-up pass: the index's own record
        replaces what an earlier run left."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._wake:
            self._pending.clear()  # this pass covers them
        shown, wanted = self._wanted()
        removed = self._remove_links(
            lambda full, entry: entry is not None and self._current(full, entry), wanted
        )
        linked = 0
        if link:
            self._shown = shown
            for entry in wanted.values():
                linked += self._link(entry)
        log.info("serving tree: %d links removed, %d made", removed, linked)

    def _wanted(self) -> tuple[dict[str, Project], dict[str, IndexedFile]]:
        """The projects whose files the tree holds, and those files by path."""
        shown = {name: p for name, p in self.index.snapshot.projects.items() if self.offers_files(name)}
        return shown, {f.path: f for project in shown.values() for f in project.files}

    def _remove_links(
        self, keep: Callable[[str, IndexedFile | None], bool], wanted: dict[str, IndexedFile]
    ) -> int:
        """Unlink every entry of the tree (temp links and symlinks included) that keep
        refuses, given its full path and the listed file at its path; the number removed."""
        removed = 0
        for dirpath, dirs, names in os.walk(self.folder):  # never into a symlinked folder
            names += [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
            for name in names:
                full = os.path.join(dirpath, name)
                if not keep(full, wanted.get(os.path.relpath(full, self.folder))):
                    os.unlink(full)
                    removed += 1
        return removed

    def sync(self, name: str) -> None:
        """Bring one project's links in line with the index's current snapshot."""
        project = self.index.snapshot.projects.get(name)
        if project is not None and not self.offers_files(name):
            project = None
        old = self._shown.pop(name, None)
        keep = {f.path for f in project.files} if project else set()
        for f in old.files if old else ():
            if f.path not in keep:
                self._unlink(f.path)
        if project is not None:
            self._shown[name] = project
            for f in project.files:
                self._link(f)

    def _sweep(self) -> None:
        """Stat the next SWEEP_FILES links: a file rewritten in place changes the tree's
        bytes too (one inode), and nginx never tells privindex of the download that would
        have found it. A link whose size or mtime moved is removed and the index reads the
        file again (withdrawn: privindex answers 409 from then on)."""
        if not self._sweeping:
            self._sweeping = [f.path for project in self._shown.values() for f in project.files]
        batch, self._sweeping = self._sweeping[-SWEEP_FILES:], self._sweeping[:-SWEEP_FILES]
        files = self.index.snapshot.files
        for path in batch:
            entry = files.get(path)
            try:
                st = os.lstat(self.folder / path)
            except FileNotFoundError:
                continue
            if entry is None or (st.st_size, st.st_mtime_ns) != entry.signature:
                self._unlink(path)
                self.index.suspect(path)

    # -- one file -------------------------------------------------------------------------

    def _link(self, entry: IndexedFile) -> int:
        """Link a listed file into the tree (1 if a link was made). Not linked: a symlink
        or anything reached through one, and a file whose size or mtime moved since it was
        hashed (the index reads it again; privindex answers meanwhile)."""
        if not self.enabled:
            return 0
        source = os.path.join(self._real_root, entry.path)
        target = self.folder / entry.path
        try:
            st = os.lstat(source)
        except OSError:
            self._unlink(entry.path)
            return 0
        if (
            not stat.S_ISREG(st.st_mode)
            or os.path.realpath(source) != source
            or (st.st_size, st.st_mtime_ns) != entry.signature
        ):
            self._unlink(entry.path)
            if stat.S_ISREG(st.st_mode):
                self.index.suspect(entry.path)
            return 0
        try:
            here = os.lstat(target)
            if (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino):
                return 0
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            os.link(source, temp, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # one device, two mounts (a bind mount): no link works
                self.enabled = False
                shutil.rmtree(self.folder, ignore_errors=True)
                log.error(
                    "static_files: cannot hard-link %s into %s (%s): the serving tree is off and "
                    "removed, privindex sends every file. Put the store and the data dir on one mount",
                    entry.path,
                    self.folder,
                    exc.strerror,
                )
                return 0
            if exc.errno == errno.EPERM:  # fs.protected_hardlinks: a file another user owns
                log.warning("serving tree: may not hard-link %s (%s); privindex sends it", entry.path, exc)
                return 0
            raise
        made = os.lstat(temp)
        if (made.st_dev, made.st_ino) != (st.st_dev, st.st_ino):  # swapped under us: not ours
            os.unlink(temp)
            return 0
        os.replace(temp, target)
        return 1

    def _unlink(self, path: str) -> None:
        try:
            os.unlink(self.folder / path)
        except FileNotFoundError:
            pass

    def _current(self, full: str, entry: IndexedFile) -> bool:
        """Whether a link in the tree is the store file the index hashed, unchanged."""
        try:
            here = os.lstat(full)
            there = os.lstat(os.path.join(self._real_root, entry.path))
        except OSError:
            return False
        return (
            stat.S_ISREG(here.st_mode)
            and (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
            and (here.st_size, here.st_mtime_ns) == entry.signature
        )
