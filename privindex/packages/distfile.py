"""What a distribution file says about itself: its name and version (from the filename,
parsed by `packaging`), its sha256, and its core metadata. No folder, no database here.

Kept apart from `store.py` (the folder) so uploads, the index and the checks share one
reading of a file without knowing where it lives.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from privindex.packages import archives, releases
from privindex.packages.archives import DEFAULT_LIMITS, ArchiveLimits
from privindex.packages.releases import ReleaseInfo

WHEEL_SUFFIX = ".whl"
SDIST_SUFFIXES = (".tar.gz", ".zip")

# Core metadata is a few KB; anything past this is hostile or broken.
MAX_METADATA_BYTES = 4 * 1024 * 1024
# Files up to this size are read into memory once (hash + metadata from one read); bigger
# ones are hashed a chunk at a time, so a process reading a 200 MB wheel holds 1 MiB of it.
READ_ONCE_LIMIT = 1024 * 1024
CHUNK = 1024 * 1024


class InvalidDistribution(ValueError):
    """The file is not a distribution privindex can serve; the message says why."""


def parse_filename(filename: str) -> tuple[NormalizedName, Version]:
    """(normalized project name, version) from a wheel or sdist filename."""
    try:
        if filename.endswith(WHEEL_SUFFIX):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith(SDIST_SUFFIXES):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise InvalidDistribution(str(exc)) from None
    raise InvalidDistribution(f"{filename!r} is not a wheel (.whl) or an sdist (.tar.gz, .zip)")


@dataclass(frozen=True)
class FileFacts:
    """What reading a distribution file once tells us."""

    size: int
    mtime_ns: int
    sha256: str
    name: str  # project name as the metadata spells it
    version: str | None  # as the metadata gives it
    requires_python: str | None
    metadata: bytes | None  # a wheel's METADATA, served for PEP 658
    metadata_sha256: str | None
    core: bytes | None = None  # the core metadata of any kind of file, for releases.record
    release: ReleaseInfo | None = None  # what the core metadata says for pages, parsed with it


def read_facts(
    path: Path,
    filename: str | None = None,
    sha256: str | None = None,
    strict: bool = False,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> FileFacts:
    """Hash the file (unless the hash is known) and extract its core metadata, reading
    the file once where it is small. strict (for uploads) also requires the metadata to
    be UTF-8, as the core metadata spec says; files already in the store are served
    even if an old tool wrote them in another encoding. An archive that breaks one of
    `limits` or archives.py's rules is an InvalidDistribution saying which."""
    filename = filename or path.name
    name, _version = parse_filename(filename)
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_size <= READ_ONCE_LIMIT:
            data = fh.read()
            sha256 = sha256 or hashlib.sha256(data).hexdigest()
            source: BinaryIO = io.BytesIO(data)
        else:
            sha256 = sha256 or hash_stream(fh)
            fh.seek(0)
            source = fh
        raw = _core_metadata(source, filename, limits)
    if strict:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidDistribution(
                f"{filename}: the core metadata is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
    fields, _unparsed = parse_email(raw)  # once: the release's page is read from the same fields
    is_wheel = filename.endswith(WHEEL_SUFFIX)
    return FileFacts(
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        sha256=sha256,
        name=fields.get("name") or name,
        version=fields.get("version"),
        requires_python=fields.get("requires_python") or None,
        metadata=raw if is_wheel else None,
        metadata_sha256=hashlib.sha256(raw).hexdigest() if is_wheel else None,
        core=raw,
        release=releases.from_fields(fields),
    )


def examine(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> FileFacts | str:
    """read_facts, or why the file is not a readable distribution: what the index's worker
    processes return (a message crosses a process boundary where an exception may not)."""
    try:
        return read_facts(path, limits=limits)
    except (InvalidDistribution, ValueError, OSError) as exc:
        return str(exc)


def read_core_metadata(
    path: Path, filename: str | None = None, limits: ArchiveLimits = DEFAULT_LIMITS
) -> bytes:
    """Just the core metadata of a file (to fill in what an older version did not keep)."""
    with open(path, "rb") as fh:
        return _core_metadata(fh, filename or path.name, limits)


def core_metadata_reader(store_root: Path) -> Callable[[str], bytes | None]:
    """A function giving the core metadata of a file in the store by its path, None when
    it cannot be read (releases.backfill, the JSON API for files indexed before)."""

    def read(path: str) -> bytes | None:
        try:
            return read_core_metadata(store_root / path)
        except (InvalidDistribution, OSError):
            return None

    return read


def hash_stream(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _core_metadata(source: BinaryIO, filename: str, limits: ArchiveLimits) -> bytes:
    """The METADATA of a wheel or the PKG-INFO of an sdist, as bytes, once every member of
    the archive passed archives.py's rules."""
    try:
        if filename.endswith(".tar.gz"):
            found = archives.tar_members(
                source, limits, lambda name: _is_top_level(name, "PKG-INFO"), _bounded
            )
            if found is None:
                raise InvalidDistribution(f"{filename}: no PKG-INFO at the top of the sdist")
            return found
        with archives.open_zip(source, limits) as archive:
            wanted = "METADATA" if filename.endswith(WHEEL_SUFFIX) else "PKG-INFO"
            for info in archive.infolist():
                parts = info.filename.split("/")
                if filename.endswith(WHEEL_SUFFIX):
                    hit = len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == wanted
                else:
                    hit = _is_top_level(info.filename, wanted)
                if hit:
                    return _bounded(archive.open(info), info.file_size)
            raise InvalidDistribution(f"{filename}: no {wanted} in the archive")
    except archives.UnsafeArchive as exc:
        raise InvalidDistribution(f"{filename}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise InvalidDistribution(f"{filename}: not a readable archive ({exc})") from None


def _is_top_level(member: str, basename: str) -> bool:
    parts = member.strip("/").split("/")
    return len(parts) == 2 and parts[1] == basename


def _bounded(fh: IO[bytes] | None, declared: int) -> bytes:
    if fh is None or declared > MAX_METADATA_BYTES:
        raise InvalidDistribution("core metadata is missing or larger than 4 MiB")
    data = fh.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise InvalidDistribution("core metadata is larger than 4 MiB")
    return data
