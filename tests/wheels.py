"""Tiny valid wheels written directly with zipfile, for tests that need many or odd ones."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    payload: bytes = b"",
    metadata_name: str | None = None,
    requires_python: str | None = ">=3.8",
    headers: str = "",
    description: str = "",
) -> Path:
    """A pure-Python wheel pip can install, written directly into folder: a module,
    METADATA (naming metadata_name if given, to make a lying wheel; more header lines and a
    long description if given), WHEEL and RECORD."""
    dist = name.replace("-", "_").replace(".", "_")
    module = dist.lower()
    dist_info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {metadata_name or name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += headers
    if description:
        metadata += "\n" + description
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: privindex-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    if payload:
        files[f"{module}/payload.bin"] = payload
    record = []
    for member, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            # random payloads do not compress; storing them keeps big test wheels quick to make
            archive.writestr(member, data, zipfile.ZIP_STORED if member.endswith(".bin") else None)
    return path


def upload_form(
    path: Path, content: bytes | None = None, filename: str | None = None, **fields
) -> tuple[dict, tuple[str, bytes]]:
    """The multipart form twine sends for path, and its file part (filename, content).

    content and filename replace the file's own; fields override the form (None drops a field).
    """
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    content = path.read_bytes() if content is None else content
    filename = filename or path.name
    if path.name.endswith(".whl"):
        name, version, _build, _tags = parse_wheel_filename(path.name)
    else:
        name, version = parse_sdist_filename(path.name)
    form = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": str(version),
        "filetype": "bdist_wheel" if filename.endswith(".whl") else "sdist",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
        **fields,
    }
    return {k: v for k, v in form.items() if v is not None}, (filename, content)


def upload(
    url: str,
    token: str | None,
    path: Path,
    *,
    content: bytes | None = None,
    filename: str | None = None,
    auth=None,
    timeout: float = 300,
    **fields,
):
    """POST a distribution to a live server the way twine does (legacy API, Basic __token__);
    auth replaces the token's credentials."""
    import requests

    form, part = upload_form(path, content, filename, **fields)
    if auth is None and token is not None:
        auth = ("__token__", token)
    return requests.post(f"{url}/legacy/", data=form, files={"content": part}, auth=auth, timeout=timeout)
