"""Hostile distribution files, built fast (shared by tests/security/ and benchmarks/): sdists
with a flood of members or a gzip bomb, sdists with members that escape the archive, and
wheels that show a streaming reader other files than a central-directory reader.
Each one names a real project and carries valid core metadata, so only its archive is wrong."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path

from wheels import make_wheel

MiB = 1024 * 1024


def pkg_info(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def _tar_entry(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    info.size = len(data) if info.isreg() else 0
    padding = -len(data) % tarfile.BLOCKSIZE
    return info.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * padding


def _file(name: str, data: bytes) -> bytes:
    return _tar_entry(tarfile.TarInfo(name), data)


_END_OF_TAR = b"\0" * (2 * tarfile.BLOCKSIZE)


def sdist(folder: Path, name: str, version: str, *members: tarfile.TarInfo) -> Path:
    """name-version.tar.gz holding PKG-INFO and the given (empty) members."""
    top = f"{name}-{version}"
    body = b"".join(_tar_entry(m) for m in members) + _file(f"{top}/PKG-INFO", pkg_info(name, version))
    return _write(folder / f"{top}.tar.gz", gzip.compress(body + _END_OF_TAR))


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def many_members_sdist(folder: Path, name: str, version: str, count: int) -> Path:
    """An sdist whose PKG-INFO comes after `count` empty files. The headers are stamped from
    one template (tarfile takes ~40 us a member: 600,000 would take half a minute)."""
    top = f"{name}-{version}"
    template = bytearray(tarfile.TarInfo(f"{top}/e0000000").tobuf(tarfile.USTAR_FORMAT))
    digits_at = len(top) + 2
    template[148:156] = b" " * 8  # the checksum counts its own field as spaces
    base = sum(template) - sum(template[digits_at : digits_at + 7])
    compressor = gzip.GzipFile(fileobj=(out := io.BytesIO()), mode="wb", compresslevel=6, mtime=0)
    chunk = bytearray()
    for i in range(count):
        digits = b"%07d" % i
        template[digits_at : digits_at + 7] = digits
        template[148:156] = b"%06o\0 " % (base + sum(digits))
        chunk += template
        if len(chunk) >= MiB:
            compressor.write(chunk)
            chunk.clear()
    compressor.write(bytes(chunk) + _file(f"{top}/PKG-INFO", pkg_info(name, version)) + _END_OF_TAR)
    compressor.close()
    return _write(folder / f"{top}.tar.gz", out.getvalue())


def gzip_bomb_sdist(folder: Path, name: str, version: str, unpacked: int) -> Path:
    """An sdist whose first member is `unpacked` bytes of zeros (a multiple of 1 MiB), then
    PKG-INFO. The gzip stream is one member per MiB (gzip readers join members), so a 1 GiB
    bomb is a 1 MB file built in well under a second."""
    top = f"{name}-{version}"
    header = tarfile.TarInfo(f"{top}/bomb.bin")
    header.size = unpacked
    zeros = gzip.compress(b"\0" * MiB, compresslevel=9, mtime=0)
    parts = [
        gzip.compress(header.tobuf(tarfile.USTAR_FORMAT), mtime=0),
        zeros * (unpacked // MiB),
        gzip.compress(_file(f"{top}/PKG-INFO", pkg_info(name, version)) + _END_OF_TAR, mtime=0),
    ]
    return _write(folder / f"{top}.tar.gz", b"".join(parts))


def tar_gz_that_is_a_zip(folder: Path, name: str, version: str) -> Path:
    """A valid sdist with a zip archive appended: gzip readers stop at the tar's end, zip
    readers find the zip's end record."""
    path = sdist(folder, name, version)
    wheel = make_wheel(folder / "zip-part", name, version)
    return _write(path, path.read_bytes() + wheel.read_bytes())


def wheel_that_is_a_tar(folder: Path, name: str, version: str) -> Path:
    """A valid wheel whose first local header (an empty member `a` with a 481-byte extra
    field) fills a 512-byte block that is also a valid tar header: tar readers see a
    member where zip readers see the wheel."""
    wheel = make_wheel(folder / "zip-part", name, version)
    out = io.BytesIO()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w") as archive:
        first = zipfile.ZipInfo("a", date_time=(2024, 1, 1, 0, 0, 0))
        first.extra = struct.pack("<HH", 0xCAFE, 477) + bytes(477)  # 30 + 1 + 481 = 512 bytes
        archive.writestr(first, b"")
        for info in source.infolist():
            archive.writestr(info, source.read(info))
    data = bytearray(out.getvalue())
    data[148:156] = b" " * 8  # the tar checksum: the block's bytes summed with its field as spaces
    data[148:156] = b"%06o\0 " % sum(data[:512])
    return _write(folder / wheel.name, bytes(data))


def zip_bomb_wheel(folder: Path, name: str, version: str, unpacked: int) -> Path:
    """A valid wheel plus a member of `unpacked` zeros, deflated."""
    path = make_wheel(folder, name, version)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open(f"{name}/bomb.bin", "w", force_zip64=unpacked >= 2**31) as bomb,
    ):
        for _ in range(unpacked // MiB):
            bomb.write(b"\0" * MiB)
    return path


def wheel_with_a_name_twice(folder: Path, name: str, version: str) -> Path:
    """A wheel holding a second, different METADATA: which one a tool sees depends on how it reads."""
    path = make_wheel(folder, name, version)
    with zipfile.ZipFile(path, "a") as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/METADATA"))
        with_evil = pkg_info(name, version) + b"Requires-Dist: evil\n"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
            archive.writestr(info.filename, with_evil)
    return path


def wheel_with_another_local_name(folder: Path, name: str, version: str) -> Path:
    """A wheel whose module's local file header names another file than the central
    directory does (same length, so every offset stays right)."""
    path = make_wheel(folder, name, version)
    data = path.read_bytes()
    listed = f"{name}/__init__.py".encode()
    first = data.index(listed)  # the local header comes before the central directory's entry
    data = data[:first] + f"{name}/__init__.pz".encode() + data[first + len(listed) :]
    return _write(path, data)


def wheel_needing_a_newer_zip(folder: Path, name: str, version: str) -> Path:
    """A wheel whose central directory says METADATA needs zip version 7.9 to extract
    (Python's zipfile stops at 6.3)."""
    path = make_wheel(folder, name, version)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")  # the central directory's first entry
    while not data[at + 46 : at + 46 + int.from_bytes(data[at + 28 : at + 30], "little")].endswith(
        b"/METADATA"
    ):
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 6 : at + 8] = (79).to_bytes(2, "little")  # "version needed to extract"
    return _write(path, bytes(data))


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
