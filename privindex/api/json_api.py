"""The JSON API that tools read (`/pypi/<name>/json`, `/pypi/<name>/<version>/json`), as
plain WSGI in the shape the public index answers with: `info`, `releases` (the project's
answer only, as the public index now does), `urls`, each file with its digests, size,
upload times, yanked and its reason, requires_python.

It answers for the names the Simple API answers for, from the same sources (local, the
cached upstream page, or both for a merged name) under the same read access rule, and
never asks the upstream more than the Simple API would. A local release's `info` comes
from its core metadata; `last_serial` is the project's latest audit event id. An
upstream-only name's `info` holds what its page says (name, version, requires_python,
yanked) and empty metadata fields, with `last_serial` 0: pages carry neither. No
`vulnerabilities`: privindex knows of none, and an empty list would say "none known".
Answers are rendered once per change of their source and cached like pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote
from wsgiref.types import StartResponse
from wsgiref.util import application_uri

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)

from privindex.api.simple import (
    Page,
    PageCache,
    SimpleAPI,
    _not_found,
    _redirect,
    held_lightly,
    readable_path,
    resolve,
    send_page,
)
from privindex.ops import audit
from privindex.packages import releases
from privindex.packages.distfile import core_metadata_reader
from privindex.packages.index import IndexedFile, Project
from privindex.upstream.client import UpstreamProject, valid_name

PREFIX = "/pypi/"
CONTENT_TYPE = "application/json"


class JsonAPI:
    """WSGI app for /pypi/...; reads through the SimpleAPI it is given (its sources, read
    guard and cache size). public_url, when set, is the base of the file URLs; otherwise
    the request's own address is (and is part of the cache key)."""

    def __init__(self, simple: SimpleAPI, page_cache_size: int = 4096, public_url: str = ""):
        self.simple = simple
        self.public_url = public_url.rstrip("/")
        self._answers = PageCache(page_cache_size)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = readable_path(environ, self.simple.read_guard)
        if not isinstance(path, str):
            return path(start_response)
        parts = path[len(PREFIX) :].removesuffix("/").split("/")  # .../json/ too, as some clients ask
        if len(parts) not in (2, 3) or parts[-1] != "json" or not valid_name(parts[0]):
            return _not_found(start_response)
        name, version = parts[0], (parts[1] if len(parts) == 3 else None)
        normalized = canonicalize_name(name)
        if name != normalized:
            rest = "/".join(quote(p) for p in parts[1:])
            return _redirect(
                start_response, f"{environ.get('SCRIPT_NAME', '')}{PREFIX}{quote(normalized)}/{rest}"
            )
        base = self.public_url or application_uri(environ).rstrip("/")
        return send_page(
            environ,
            start_response,
            lambda: self._answer(base, normalized, version),
            [("Content-Type", CONTENT_TYPE)],
        )

    def _answer(self, base: str, name: str, version: str | None) -> Page | None:
        source = self.simple.project_source(name)
        if source is None or not self.simple.status_of(name, source).offers_files:
            return None  # a quarantined project (PEP 792) has no JSON answer, as on the public index
        key = (base, name, version)
        answer = self._answers.get(key, source)
        if answer is not None:
            return answer
        project = resolve(source)
        if project is None:
            return None
        doc = self._render(base, project, version)
        if doc is None:
            return None
        body = json.dumps(doc, separators=(",", ":")).encode()
        answer = Page(held_lightly(source), body, f'"{hashlib.sha256(body).hexdigest()[:32]}-pypi"')
        self._answers.put(key, answer)
        return answer

    def _render(self, base: str, project: Project | UpstreamProject, asked: str | None) -> dict | None:
        by_version: dict[str, list] = {v: [] for v in project.versions}
        for f in project.files:
            by_version.setdefault(f.version, []).append(f)
        if asked is None:
            version = _latest(by_version)
            if version is None:
                return None
        else:
            version = next((v for v in by_version if _same_version(v, asked)), None)
            if version is None or not by_version[version]:
                return None
        files = by_version[version]
        info = releases.json_info(self._core_metadata(files))
        yanked = bool(files) and all(f.yanked for f in files)
        project_url = f"{base}/projects/{quote(project.name)}"
        info.update(
            name=project.display_name,
            version=version,
            requires_python=info["requires_python"]
            or next((f.requires_python for f in files if f.requires_python), None),
            yanked=yanked,
            yanked_reason=next((f.yanked_reason for f in files if f.yanked_reason), None) if yanked else None,
            package_url=project_url,
            project_url=project_url,
            release_url=project_url,
            bugtrack_url=None,
            docs_url=None,
            downloads={"last_day": -1, "last_month": -1, "last_week": -1},
        )
        serial = audit.last_id(project.name) if isinstance(project, Project) else 0
        doc: dict = {"info": dict(sorted(info.items())), "last_serial": serial}
        if asked is None:
            doc["releases"] = {v: [_file(base, f) for f in fs] for v, fs in by_version.items()}
        doc["urls"] = [_file(base, f) for f in files]
        return doc

    def _core_metadata(self, files: list) -> bytes | None:
        """The release's core metadata from its local files: a wheel's is on record, an
        sdist's is read from the store (once per change: answers are cached)."""
        local = [f for f in files if isinstance(f, IndexedFile)]
        local.sort(key=lambda f: not f.filename.endswith(".whl"))
        index = self.simple.index
        for f in local:
            raw = index.core_metadata(f.path) or core_metadata_reader(index.store.root)(f.path)
            if raw:
                return raw
        return None


def _latest(by_version: dict[str, list]) -> str | None:
    """The version the public index shows: the highest final release with a file not
    yanked, else the highest with any file."""
    with_files = [v for v, fs in by_version.items() if fs]
    live = [v for v in with_files if any(not f.yanked for f in by_version[v])]
    return max(live or with_files, key=releases.rank, default=None)


def _same_version(listed: str, asked: str) -> bool:
    if listed == asked:
        return True
    try:
        return canonicalize_version(listed) == canonicalize_version(asked)
    except ValueError:  # e.g. a number past Python's digit limit: no version of ours
        return False


def _file(base: str, f) -> dict:
    """One file as the public index lists it; what privindex does not know (md5, blake2b,
    download counts) is left out rather than made up."""
    try:
        tags = parse_wheel_filename(f.filename)[3] if f.filename.endswith(".whl") else None
    except InvalidWheelFilename:
        tags = None
    uploaded = datetime.fromtimestamp(f.upload_time, UTC) if f.upload_time is not None else None
    return {
        "comment_text": "",
        "digests": {"sha256": f.sha256},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "packagetype": "bdist_wheel" if f.filename.endswith(".whl") else "sdist",
        "python_version": ".".join(sorted({t.interpreter for t in tags})) if tags else "source",
        "requires_python": f.requires_python,
        "size": f.size,
        "upload_time": uploaded.strftime("%Y-%m-%dT%H:%M:%S") if uploaded else None,
        "upload_time_iso_8601": uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if uploaded else None,
        "url": f"{base}/packages/{quote(f.path)}",
        "yanked": f.yanked,
        "yanked_reason": (f.yanked_reason or None) if f.yanked else None,
    }
