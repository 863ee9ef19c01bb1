"""A synthetic package store: real, small, valid distributions, built once and cached.

Every file is what a build backend would make (a wheel with METADATA, WHEEL and a RECORD
that matches; an sdist with PKG-INFO), so each server indexes it exactly as it would a
real upload and pip accepts it. Projects are named `syn-00001`..; the big files hold random
bytes stored uncompressed, so no layer can cheat by compressing them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEPS_PROJECT = "syn-deps"  # one wheel that needs ten other synthetic projects
DEPS_COUNT = 10
FILE_100K = "syn-file-100k"
FILE_20M = "syn-file-20m"


@dataclass
class SynthStore:
    folder: Path  # flat: every file directly in it (the layout all servers understand)
    projects: list[str]  # the N plain synthetic projects, normalized names
    file_100k: str  # filenames inside folder
    file_20m: str
    deps_project: str
    manifest: dict

    @property
    def file_count(self) -> int:
        return self.manifest["files"]

    def files(self) -> list[Path]:
        """The package files, sorted; not what a server under test leaves in the folder
        (privindex's hidden `.privindex-ready/` probe folder, say)."""
        return dist_files(self.folder)


def dist_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if not f.name.startswith(".") and f.is_file())


def project_name(i: int) -> str:
    return f"syn-{i:05d}"


def _metadata(name: str, version: str, requires: list[str] = ()) -> bytes:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: Synthetic benchmark project {name}",
        "Requires-Python: >=3.8",
        *[f"Requires-Dist: {r}" for r in requires],
    ]
    return ("\n".join(lines) + "\n\n").encode()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(name: str, version: str, payload: bytes = b"", requires: list[str] = ()) -> bytes:
    """A py3-none-any wheel. A non-empty payload is stored uncompressed as a data file."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    members = [
        (f"{module}/__init__.py", f'"""{name} {version}"""\nVERSION = "{version}"\n'.encode()),
        (f"{dist_info}/METADATA", _metadata(name, version, requires)),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: privindex-benchmarks\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    if payload:
        members.insert(1, (f"{module}/blob.bin", payload))
    record = "\n".join([_record_line(p, d) for p, d in members] + [f"{dist_info}/RECORD,,"]) + "\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in members:
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if path.endswith(".bin") else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


def sdist_bytes(name: str, version: str) -> bytes:
    module = name.replace("-", "_")
    top = f"{module}-{version}"
    members = [
        (f"{top}/PKG-INFO", _metadata(name, version)),
        (f"{top}/pyproject.toml", f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode()),
        (f"{top}/{module}/__init__.py", f'VERSION = "{version}"\n'.encode()),
    ]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, data in members:
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1704067200
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _versions(m: int) -> list[str]:
    return [f"1.{j}.0" for j in range(m)]


def build_store(cache: Path, n: int, m: int, log=print) -> SynthStore:
    """The store for N projects x M versions, built under cache/ unless already there."""
    root = cache / f"store-N{n}-M{m}"
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        started = time.monotonic()
        log(f"building the synthetic store ({n} projects x {m} versions) in {root} ...")
        if root.exists():
            shutil.rmtree(root)  # an interrupted build
        folder = root / "packages"
        folder.mkdir(parents=True)
        versions = _versions(m)
        count = 0
        for i in range(1, n + 1):
            name = project_name(i)
            module = name.replace("-", "_")
            for version in versions:
                (folder / f"{module}-{version}-py3-none-any.whl").write_bytes(wheel_bytes(name, version))
                count += 1
            (folder / f"{module}-{versions[-1]}.tar.gz").write_bytes(sdist_bytes(name, versions[-1]))
            count += 1
        rng = random.Random(42)
        extras = {
            FILE_100K: rng.randbytes(100 * 1024),
            FILE_20M: rng.randbytes(20 * 1024 * 1024),
        }
        for name, payload in extras.items():
            (folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl").write_bytes(
                wheel_bytes(name, "1.0", payload)
            )
            count += 1
        deps = [project_name(i) for i in range(1, min(DEPS_COUNT, n) + 1)]
        (folder / f"{DEPS_PROJECT.replace('-', '_')}-1.0-py3-none-any.whl").write_bytes(
            wheel_bytes(DEPS_PROJECT, "1.0", requires=deps)
        )
        count += 1
        old = time.time() - 3600  # long settled: no server should think a copy is under way
        for entry in os.scandir(folder):
            os.utime(entry.path, (old, old))
        manifest = {
            "projects": n,
            "versions": m,
            "files": count,
            "deps": deps,
            "built_seconds": round(time.monotonic() - started, 1),
        }
        manifest_path.write_text(json.dumps(manifest, indent=1))  # written last: marks completion
        log(f"built {count} files in {manifest['built_seconds']} s")
    manifest = json.loads(manifest_path.read_text())
    return SynthStore(
        folder=root / "packages",
        projects=[project_name(i) for i in range(1, n + 1)],
        file_100k=f"{FILE_100K.replace('-', '_')}-1.0-py3-none-any.whl",
        file_20m=f"{FILE_20M.replace('-', '_')}-1.0-py3-none-any.whl",
        deps_project=DEPS_PROJECT,
        manifest=manifest,
    )


def upload_wheel(cache: Path, megabytes: int = 200) -> Path:
    """A ~200 MB wheel of random bytes for the upload test (built once)."""
    name = f"syn-upload-{megabytes}m"
    path = cache / "upload" / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = os.urandom(megabytes * 1024 * 1024)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(wheel_bytes(name, "1.0", payload))
        tmp.rename(path)
    return path
