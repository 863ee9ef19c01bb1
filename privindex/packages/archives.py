"""Bounded reading of the archives distributions come in (zip, .whl, .tar.gz): every
member is looked at, with limits checked before anything is unpacked, and reading stops at
the first member that breaks a rule.

The ratio and the ZIP checks are the public index's upload rules (Warehouse's forklift and
its zipfiles module); the count, the size and the path rules are ours:
- at most `members` members and `total_bytes` unpacked; past 64 MiB unpacked, at most
  `ratio` times the file's size (the public index: 64 MiB, 50x);
- no absolute paths, no `..`, no link pointing out of the archive, no device files;
- a zip's local file headers match its central directory (name, compression method, sizes),
  no name twice, no data descriptors, nothing hidden between or after its records (the
  ZIP-confusion checks: installers that stream local headers and installers that read the
  central directory must see the same files);
- a .tar.gz is not also a zip, nor a zip a tar (a polyglot shows each tool other files).

Nothing here knows distributions; distfile.py says what to look for inside.
"""

from __future__ import annotations

import gzip
import posixpath
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol, cast

if TYPE_CHECKING:
    from privindex.config import Settings

MiB = 1024 * 1024
# Below this many unpacked bytes the compression ratio is not checked (the public index's
# COMPRESSION_RATIO_MIN_SIZE): small text-heavy archives compress very well.
RATIO_FREE_BYTES = 64 * MiB

_LOCAL_HEADER = struct.Struct("<4s2xHHxxxxxxxxLLHH")  # signature, flags, method, sizes, name/extra lengths
_LOCAL_SIGNATURE = b"PK\x03\x04"
_ZIP64_EXTRA = 0x0001
_DATA_DESCRIPTOR_FLAG = 0x08
_ENCRYPTED_FLAG = 0x01
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class UnsafeArchive(ValueError):
    """The archive breaks one of the rules above; the message says which, in one line."""


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may hold (settings max_archive_members, max_archive_size_mb,
    max_compression_ratio)."""

    members: int = 50_000
    total_bytes: int = 2048 * MiB
    ratio: float = 50.0

    def budget(self, file_size: int) -> tuple[int, str]:
        """The unpacked bytes a file of file_size may hold, and the rule that sets it."""
        by_ratio = max(RATIO_FREE_BYTES, int(self.ratio * file_size))
        if by_ratio < self.total_bytes:
            return by_ratio, (
                f"unpacks to more than {self.ratio:g} times its size (setting max_compression_ratio)"
            )
        return self.total_bytes, (
            f"unpacks to more than {self.total_bytes // MiB} MiB (setting max_archive_size_mb)"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveLimits:
        return cls(
            settings.max_archive_members, settings.max_archive_size_mb * MiB, settings.max_compression_ratio
        )


DEFAULT_LIMITS = ArchiveLimits()


def size_of(source: BinaryIO) -> int:
    source.seek(0, 2)
    size = source.tell()
    source.seek(0)
    return size


# -- tar --------------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Budgeted:
    """A file object whose reads count the bytes they return and fail past a budget, so a
    gzip bomb costs at most the budget's worth of inflating."""

    def __init__(self, fileobj: _Readable, budget: int, why: str):
        self._fileobj, self._left, self._why = fileobj, budget, why

    def read(self, size: int = -1) -> bytes:
        data = self._fileobj.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise UnsafeArchive(f"the archive {self._why}")
        return data


def tar_members(
    source: BinaryIO,
    limits: ArchiveLimits,
    wanted: Callable[[str], bool],
    read: Callable[[IO[bytes] | None, int], bytes],
) -> bytes | None:
    """Check every member of the .tar.gz in source; returns what `read` (given the member's
    file object and its size) makes of the first regular file whose name `wanted` accepts,
    read while the stream is there; None if there is none.

    The archive is streamed (tarfile's "r|" mode): no member list is built and nothing is
    inflated beyond the budget."""
    if zipfile.is_zipfile(source):
        raise UnsafeArchive("the file is both a .tar.gz and a zip archive")
    budget, why = limits.budget(size_of(source))
    stream = _Budgeted(gzip.GzipFile(fileobj=source, mode="rb"), budget, why)
    found = None
    try:
        # stream mode only ever reads: a file object needs no more than read()
        with tarfile.open(fileobj=cast(BinaryIO, stream), mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.members:
                    raise UnsafeArchive(
                        f"the archive has more than {limits.members} members (setting max_archive_members)"
                    )
                _check_tar_member(member)
                if found is None and member.isfile() and wanted(member.name):
                    found = read(tar.extractfile(member), member.size)
                # a stream keeps every TarInfo it read otherwise (an attribute the stubs omit)
                tar.members.clear()  # type: ignore[attr-defined]
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UnsafeArchive(f"not a readable archive ({exc})") from None
    return found


def _check_tar_member(member: tarfile.TarInfo) -> None:
    name = member.name
    _check_path(name)
    if member.isdev():
        raise UnsafeArchive(f"member {name!r} is a device file or a pipe")
    if member.issym() or member.islnk():
        # a symlink's target is relative to its folder, a hard link's to the archive's root
        base = posixpath.dirname(name) if member.issym() else ""
        target = member.linkname
        if target.startswith("/") or _climbs_out(posixpath.join(base, target)):
            raise UnsafeArchive(f"member {name!r} links outside the archive (to {target!r})")


def _check_path(name: str) -> None:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchive(f"member {name!r} has '..' in its path")


def _climbs_out(path: str) -> bool:
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../")


# -- zip --------------------------------------------------------------------------------------


def open_zip(source: BinaryIO, limits: ArchiveLimits) -> zipfile.ZipFile:
    """The zip archive in source, once its directory and records passed every rule."""
    size = size_of(source)
    try:
        if _is_tar(source):
            raise UnsafeArchive("the file is both a zip and a tar archive")
        source.seek(0)
        # zipfile's own end-record reader (private, so not in its type stubs): the count
        # before the directory is parsed
        end = zipfile._EndRecData(source)  # type: ignore[attr-defined]
        if end and end[zipfile._ECD_ENTRIES_TOTAL] > limits.members:  # type: ignore[attr-defined]
            raise UnsafeArchive(
                f"the archive has more than {limits.members} members (setting max_archive_members)"
            )
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsafeArchive(f"not a readable archive ({exc})") from None
    try:
        record_end = end[zipfile._ECD_LOCATION] + zipfile.sizeEndCentDir  # type: ignore[attr-defined]
        if record_end + len(end[zipfile._ECD_COMMENT]) != size:  # type: ignore[attr-defined]
            raise UnsafeArchive("data after the end of the zip archive")
        _check_zip(archive, source, size, limits)
    except BaseException:
        archive.close()
        raise
    return archive


def _is_tar(source: BinaryIO) -> bool:
    """tarfile.is_tarfile, at a seventh of its cost for a file that starts with a zip local
    header (every zip open_zip accepts): gzip, bzip2 and xz streams start with magic bytes
    of their own, so only an uncompressed tar can hide there, and only that is tried."""
    zip_first = source.read(len(_LOCAL_SIGNATURE)) == _LOCAL_SIGNATURE
    source.seek(0)
    if not zip_first:
        return tarfile.is_tarfile(source)
    try:
        tarfile.open(fileobj=source, mode="r:").close()
    except tarfile.TarError:
        return False
    return True


def _check_zip(archive: zipfile.ZipFile, source: BinaryIO, size: int, limits: ArchiveLimits) -> None:
    infos = archive.infolist()
    if len(infos) > limits.members:
        raise UnsafeArchive(
            f"the archive has more than {limits.members} members (setting max_archive_members)"
        )
    budget, why = limits.budget(size)
    if sum(info.file_size for info in infos) > budget:
        raise UnsafeArchive(f"the archive {why}")
    seen: set[str] = set()
    for info in infos:
        _check_path(info.filename)
        if info.filename in seen:
            raise UnsafeArchive(f"member {info.filename!r} is in the archive twice")
        seen.add(info.filename)
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise UnsafeArchive(f"member {info.filename!r} is encrypted")
        if info.compress_type not in _ZIP_METHODS:
            raise UnsafeArchive(
                f"member {info.filename!r} uses compression method {info.compress_type}; "
                "only stored and deflated are accepted"
            )
    _check_local_headers(source, infos, archive.start_dir)


def _check_local_headers(source: BinaryIO, infos: list[zipfile.ZipInfo], directory_at: int) -> None:
    """Each local file header says what the central directory says, and the records follow
    one another from the first byte to the directory with nothing in between: a reader
    that streams local headers finds exactly the files the directory lists."""
    expected = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        name = info.filename
        if info.header_offset != expected:
            raise UnsafeArchive(
                f"unlisted data before member {name!r} (local headers and central directory disagree)"
            )
        source.seek(expected)
        header = source.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise UnsafeArchive(f"member {name!r}: truncated local file header")
        signature, flags, method, compressed, unpacked, name_len, extra_len = _LOCAL_HEADER.unpack(header)
        raw_name = source.read(name_len)
        extra = source.read(extra_len)
        if signature != _LOCAL_SIGNATURE:
            raise UnsafeArchive(f"member {name!r}: no local file header where the directory points")
        if flags & _DATA_DESCRIPTOR_FLAG:
            raise UnsafeArchive(f"member {name!r} uses a data descriptor (sizes after the data)")
        if raw_name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"):
            raise UnsafeArchive(f"member {name!r} has another name in its local file header")
        compressed, unpacked = _zip64_sizes(extra, compressed, unpacked)
        if method != info.compress_type:
            raise UnsafeArchive(f"member {name!r} has another compression method in its local file header")
        if (compressed, unpacked) != (info.compress_size, info.file_size):
            raise UnsafeArchive(f"member {name!r} has other sizes in its local file header")
        expected = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + compressed
    if expected != directory_at:
        raise UnsafeArchive("unlisted data before the central directory")


def _zip64_sizes(extra: bytes, compressed: int, unpacked: int) -> tuple[int, int]:
    """The sizes a local header means, where a ZIP64 extra field replaces 0xFFFFFFFF."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if 4 + length > len(extra):
            raise UnsafeArchive("a local file header has a malformed extra field")
        if kind == _ZIP64_EXTRA:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, 4))
            if unpacked == 0xFFFFFFFF and values:
                unpacked = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
        extra = extra[4 + length :]
    return compressed, unpacked
