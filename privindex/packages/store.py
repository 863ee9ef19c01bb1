"""The package folder on disk: which files count, streamed uploads, atomic writes and
removals. No Flask and no database here; what a file says about itself is `distfile.py`.

Paths handed out are POSIX paths relative to the store root; nothing outside the root
(through `..` or a symlink) is ever listed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import stat
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX

log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")
UPLOAD_TEMP_PREFIX = ".privindex-upload-"
CLAIM_PREFIX = ".privindex-claim-"  # an upload temp file before its lock is taken
UPLOAD_PREFIXES = (UPLOAD_TEMP_PREFIX, CLAIM_PREFIX)  # what a crashed upload can leave behind


def abandoned_upload(path: Path | str) -> bool:
    """Whether an upload temp file was left by a process that is gone: no process holds its
    lock (an upload in flight keeps an flock on it from before it has its name; the kernel
    releases it when the process dies). Servers sharing a store must not delete each
    other's."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # BlockingIOError: an upload still holds it
        return False
    finally:
        os.close(fd)  # releases our lock, if we took it


def is_ignored(name: str) -> bool:
    """Hidden files, temporary files, READMEs and the provenance objects beside their files
    are passed over without a warning.

    Anything else that is not a valid distribution gets one warning when it is scanned.
    """
    return (
        name.startswith(".")
        or name.endswith(TEMP_SUFFIXES)
        or name.endswith(PROVENANCE_SUFFIX)
        or name.upper().startswith("README")
    )


class UploadTooLarge(ValueError):
    """More bytes arrived than the upload limit allows."""


class _Digest(Protocol):
    """What an upload's hashes share (hashlib's and blake2b's types differ)."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class IncomingFile:
    """A temporary file inside the store that hashes what is written to it.

    Werkzeug streams an uploaded file part straight into it, so the upload is never held
    in memory and is hashed on the way in. It is hidden (ignored by the index), deleted
    on close, and any copy left by a crash is removed at start-up. It is flock()ed while
    it lives, so a server starting on a shared store tells a crashed upload's file from
    one another server is still receiving.
    """

    def __init__(self, folder: Path, limit: int):
        # made under another name, locked, then renamed: a file under the upload prefix is
        # never unlocked while its upload lives (a crash in between leaves an empty claim file)
        fd, claimed = tempfile.mkstemp(dir=folder, prefix=CLAIM_PREFIX, suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._path = Path(folder) / (UPLOAD_TEMP_PREFIX + claimed.rpartition(CLAIM_PREFIX)[2])
        os.rename(claimed, self._path)
        self._file = os.fdopen(fd, "w+b")
        self._discard = weakref.finalize(self, _discard, self._file, self._path)  # deleted on close or GC
        self.limit = limit
        self.size = 0
        self._hashes: dict[str, _Digest] = {
            "sha256": hashlib.sha256(),
            "blake2_256": hashlib.blake2b(digest_size=32),
            "md5": hashlib.md5(usedforsecurity=False),
        }

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge(f"the file is larger than the {self.limit // (1024 * 1024)} MiB limit")
        for digest in self._hashes.values():
            digest.update(data)
        return self._file.write(data)

    def digests(self) -> dict[str, str]:
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        self._discard()

    def __getattr__(self, name: str) -> Any:  # read, seek, tell, flush, fileno, close ...
        return getattr(self._file, name)


def _discard(file: IO[bytes], path: Path) -> None:
    file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Store:
    """The package folder. Relative paths are POSIX strings; '' is the root."""

    def __init__(self, root: Path):
        self.root = Path(root).absolute()
        self._root_str = str(self.root)
        self._real_root = os.path.realpath(self.root)

    def full_path(self, relpath: str) -> Path:
        return self.root / relpath

    def os_path(self, relpath: str) -> str:
        """full_path as a str, at a fifth of its cost: for paths made by the thousand."""
        return os.path.join(self._root_str, relpath)

    def inside(self, path: str) -> bool:
        """Whether path (after resolving symlinks) stays inside the store."""
        real = os.path.realpath(path)
        return real == self._real_root or real.startswith(self._real_root + os.sep)

    def entries(self, reldir: str) -> Iterator[tuple[str, os.stat_result | None]]:
        """One folder's distribution files (relpath, stat) and subfolders (relpath, None),
        one at a time as the folder is read."""
        base = self.full_path(reldir) if reldir else self.root
        try:
            listing = os.scandir(base)
        except (FileNotFoundError, NotADirectoryError):
            return
        with listing:
            for entry in listing:
                if entry.name.startswith("."):
                    continue
                rel = f"{reldir}/{entry.name}" if reldir else entry.name
                try:
                    if entry.is_symlink() and not self.inside(entry.path):
                        log.warning("ignoring %s: the symlink leads outside the store", rel)
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    yield rel, None
                elif stat.S_ISREG(st.st_mode) and not is_ignored(entry.name):
                    yield rel, st

    def walk(self, start: str = "") -> Iterator[tuple[str, int, dict[str, os.stat_result]]]:
        """Every folder below start: (reldir, its mtime before listing, its files)."""
        for reldir, mtime, files in self.walk_streamed(start):
            yield reldir, mtime, dict(files)

    def walk_streamed(
        self, start: str = ""
    ) -> Iterator[tuple[str, int, Iterator[tuple[str, os.stat_result]]]]:
        """walk(), each folder's files coming one at a time (read them before the next
        folder): a folder of 100,000 files is never held as 100,000 stat results.

        Each real folder is visited once, so symlink loops inside the store end.
        """
        seen: set[str] = set()
        pending = [start]
        while pending:
            reldir = pending.pop()
            real = os.path.realpath(self.full_path(reldir))
            mtime = self.dir_mtime(reldir)
            if real in seen or mtime is None:
                continue
            seen.add(real)
            subdirs: list[str] = []

            def files(
                reldir: str = reldir, subdirs: list[str] = subdirs
            ) -> Iterator[tuple[str, os.stat_result]]:
                for rel, st in self.entries(reldir):
                    if st is None:
                        subdirs.append(rel)
                    else:
                        yield rel, st

            yield reldir, mtime, files()
            pending.extend(subdirs)

    def dir_mtime(self, reldir: str) -> int | None:
        try:
            return os.stat(self.full_path(reldir) if reldir else self.root).st_mtime_ns
        except OSError:
            return None

    def incoming(self, limit: int) -> IncomingFile:
        self.root.mkdir(parents=True, exist_ok=True)
        return IncomingFile(self.root, limit)

    def publish(self, incoming: IncomingFile, relpath: str, replace: bool = False) -> None:
        """Make a complete incoming file visible at relpath, atomically and durably.

        The data is fsynced before the new name appears. Without replace, a hard link
        creates the name only if it does not exist (FileExistsError otherwise), so of two
        concurrent uploads of one filename exactly one wins.
        """
        incoming.flush()
        os.fchmod(incoming.fileno(), 0o644)
        os.fsync(incoming.fileno())
        target = self.full_path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            staging = target.parent / f"{UPLOAD_TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
            os.link(incoming.path, staging)
            os.replace(staging, target)
        else:
            os.link(incoming.path, target)
        _fsync_dir(target.parent)

    def write(self, relpath: str, data: bytes, mtime_ns: int | None = None) -> None:
        """Put small data at relpath atomically and durably (temp file, fsync, rename),
        with mtime_ns as its modification time if given (before it appears)."""
        target = self.full_path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f"{UPLOAD_TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
        try:
            with open(staging, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), 0o644)
                if mtime_ns is not None:
                    os.utime(fh.fileno(), ns=(mtime_ns, mtime_ns))
                os.fsync(fh.fileno())
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def remove(self, relpath: str, missing_ok: bool = False) -> None:
        try:
            os.unlink(self.full_path(relpath))
        except FileNotFoundError:
            if not missing_ok:
                raise
            return
        _fsync_dir(self.full_path(relpath).parent)

    def remove_stale_temp_files(self, before: float) -> int:
        """Delete upload temp files left by a crash, those last written before `before`
        (this process's start: its own uploads are newer) whose lock no process holds
        (another process sharing the store may be receiving one); returns how many."""
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(UPLOAD_PREFIXES):
                    path = os.path.join(dirpath, name)
                    with contextlib.suppress(OSError):
                        if os.stat(path).st_mtime < before and abandoned_upload(path):
                            os.unlink(path)
                            removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
