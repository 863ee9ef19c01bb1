"""The read path: the Simple Repository API and package file downloads, as plain WSGI.

pip and uv ask for /simple/<project>/ once per dependency of every install, so these URLs
bypass Flask's routing and request objects: a request is a dict lookup in the Index, an
identity check on a cached rendered page, and a write. Standards served: PEP 503 (HTML),
PEP 629 (repository-version meta), PEP 592 (yanked), PEP 658/714 (core metadata files),
PEP 691 (JSON, content negotiation), PEP 700 (versions, size, upload-time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from html import escape
from io import BytesIO
from typing import Callable, Iterable
from urllib.parse import quote

from packaging.utils import canonicalize_name
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date, parse_accept_header, parse_etags, quote_etag
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from privindex.headers import PAGE_SECURITY_HEADERS
from privindex.index import Index, IndexedFile, Project

log = logging.getLogger(__name__)

API_VERSION = "1.1"
V1_HTML = "application/vnd.pypi.simple.v1+html"
V1_JSON = "application/vnd.pypi.simple.v1+json"
# What a client may ask for -> (page format, the Content-Type we answer with).
# The order breaks ties between equal q-values: plain HTML first, for browsers and curl.
OFFERS: tuple[tuple[str, str, str], ...] = (
    ("text/html", "html", "text/html; charset=utf-8"),
    (V1_HTML, "html", V1_HTML),
    ("application/vnd.pypi.simple.latest+html", "html", V1_HTML),
    (V1_JSON, "json", V1_JSON),
    ("application/vnd.pypi.simple.latest+json", "json", V1_JSON),
)
PAGE_CACHE_CONTROL = "no-cache"  # always revalidate: a 304 is cheap and uploads show at once
FILE_CACHE_CONTROL = "public, max-age=600"
CHUNK = 256 * 1024

ReadGuard = Callable[[dict], bool]
StartResponse = Callable[..., object]


_BY_OFFER = {offer: (fmt, content_type) for offer, fmt, content_type in OFFERS}


@lru_cache(maxsize=512)
def negotiate(accept: str | None) -> tuple[str, str] | None:
    """(page format, Content-Type) for an Accept header, or None if nothing fits (406).

    Werkzeug's MIMEAccept does the RFC 9110 matching (q-values, q=0 excludes, the most
    specific range wins); best_match breaks ties by the order of OFFERS. Cached: clients
    send the same few headers.
    """
    parsed = parse_accept_header(accept, MIMEAccept) if accept else None
    if not parsed:  # no header, or no valid media range in it (an invalid q drops its range)
        return _BY_OFFER[OFFERS[0][0]]
    best = parsed.best_match([offer for offer, _f, _c in OFFERS])
    return _BY_OFFER[best] if best is not None else None


@dataclass(frozen=True)
class Page:
    source: object  # the Project or project-list snapshot it was rendered from
    body: bytes
    etag: str


def _upload_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_url(f: IndexedFile) -> str:
    """Relative to /simple/<project>/, so the index also works under a path prefix."""
    return "../../packages/" + quote(f.path)


def render_root(projects: Iterable[tuple[str, str]], fmt: str) -> bytes:
    if fmt == "json":
        doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": d} for _n, d in projects]}
        return json.dumps(doc, separators=(",", ":")).encode()
    links = "".join(f'    <a href="{quote(n)}/">{escape(d)}</a><br>\n' for n, d in projects)
    return _html("Simple index", links)


def render_project(project: Project, fmt: str) -> bytes:
    if fmt == "json":
        files = []
        for f in project.files:
            entry: dict = {"filename": f.filename, "url": file_url(f), "hashes": {"sha256": f.sha256}}
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
            entry["core-metadata"] = entry["dist-info-metadata"] = metadata
            entry["yanked"] = (f.yanked_reason or True) if f.yanked else False
            entry["size"] = f.size
            entry["upload-time"] = _upload_time(f.upload_time)
            files.append(entry)
        doc = {
            "meta": {"api-version": API_VERSION},
            "name": project.name,
            "versions": list(project.versions),
            "files": files,
        }
        return json.dumps(doc, separators=(",", ":")).encode()
    links = []
    for f in project.files:
        attrs = ""
        if f.requires_python:
            attrs += f' data-requires-python="{escape(f.requires_python)}"'
        if f.metadata_sha256:
            attrs += f' data-dist-info-metadata="sha256={f.metadata_sha256}"'
            attrs += f' data-core-metadata="sha256={f.metadata_sha256}"'
        if f.yanked:
            attrs += f' data-yanked="{escape(f.yanked_reason)}"'
        links.append(f'    <a href="{file_url(f)}#sha256={f.sha256}"{attrs}>{escape(f.filename)}</a><br>\n')
    return _html(f"Links for {escape(project.display_name)}", "".join(links))


def _html(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
        f"{body}  </body>\n</html>\n"
    ).encode()


def _content_type(filename: str) -> str:
    if filename.endswith(".tar.gz"):
        return "application/gzip"  # never Content-Encoding: pip must keep the bytes as they are
    if filename.endswith((".whl", ".zip")):
        return "application/zip"
    return "application/octet-stream"


class SimpleAPI:
    """WSGI app for /simple/... and /packages/...; anything else is not its business."""

    def __init__(self, index: Index, page_cache_size: int = 4096, read_guard: ReadGuard | None = None):
        self.index = index
        self.read_guard = read_guard
        self._pages: dict[tuple[str | None, str], Page] = {}
        self._cache_size = page_cache_size
        self._cache_lock = threading.Lock()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "Only GET and HEAD are allowed here.\n",
                          [("Allow", "GET, HEAD")])
        if self.read_guard is not None and not self.read_guard(environ):
            return _plain(start_response, "401 Unauthorized",
                          "This index is private: use an API token as the password (user __token__).\n",
                          [("WWW-Authenticate", 'Basic realm="privindex"')])
        try:
            path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        except UnicodeError:
            return _not_found(start_response)
        if path.startswith("/packages/"):
            return self._file(environ, start_response, path[len("/packages/"):])
        return self._simple(environ, start_response, path)

    # -- pages ---------------------------------------------------------------------------

    def _simple(self, environ: dict, start_response: StartResponse, path: str) -> Iterable[bytes]:
        prefix = environ.get("SCRIPT_NAME", "")
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                return _redirect(start_response, f"{prefix}/simple/")
            name = None
        else:
            raw = path[len("/simple/"):]
            name = raw.rstrip("/")
            if not name or "/" in name:
                return _not_found(start_response)
            normalized = canonicalize_name(name)
            if name != normalized or not raw.endswith("/"):
                return _redirect(start_response, f"{prefix}/simple/{quote(normalized)}/")
        chosen = negotiate(environ.get("HTTP_ACCEPT"))
        if chosen is None:
            offered = ", ".join(offer for offer, _fmt, _ct in OFFERS)
            return _plain(start_response, "406 Not Acceptable", f"Available media types: {offered}\n",
                          [("Vary", "Accept")])
        fmt, content_type = chosen
        page = self._page(name, fmt)
        if page is None:
            return _not_found(start_response)
        headers = [
            ("Content-Type", content_type),
            ("Vary", "Accept"),
            ("ETag", page.etag),
            ("Cache-Control", PAGE_CACHE_CONTROL),
            *PAGE_SECURITY_HEADERS,
        ]
        if _etag_matches(environ.get("HTTP_IF_NONE_MATCH"), page.etag):
            start_response("304 Not Modified", headers)
            return []
        headers.append(("Content-Length", str(len(page.body))))
        start_response("200 OK", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [page.body]

    def _page(self, name: str | None, fmt: str) -> Page | None:
        source: object = self.index.project_list() if name is None else self.index.project(name)
        if source is None:
            return None
        key = (name, fmt)
        page = self._pages.get(key)
        if page is not None and page.source is source:
            return page
        body = render_root(source, fmt) if name is None else render_project(source, fmt)  # type: ignore[arg-type]
        page = Page(source, body, f'"{hashlib.sha256(body).hexdigest()[:32]}-{fmt}"')
        if self._cache_size:
            with self._cache_lock:
                while len(self._pages) >= self._cache_size:
                    self._pages.pop(next(iter(self._pages)))
                self._pages[key] = page
        return page

    # -- files ---------------------------------------------------------------------------

    def _file(self, environ: dict, start_response: StartResponse, relpath: str) -> Iterable[bytes]:
        # Only paths the index holds are served: '..', absolute paths, backslashes and
        # anything else that is not a known file simply miss the dict.
        snapshot = self.index.snapshot
        indexed = snapshot.files.get(relpath)
        if indexed is not None:
            try:
                fh = open(self.index.store.full_path(indexed.path), "rb")
            except OSError:
                return _not_found(start_response)
            st = os.fstat(fh.fileno())
            if (st.st_size, st.st_mtime_ns) != (indexed.size, indexed.mtime_ns):
                # not the bytes that were hashed: never served unverified; the watcher rereads it
                fh.close()
                self.index.suspect(indexed.path)
                return _plain(start_response, "409 Conflict", f"{indexed.filename} changed on disk since "
                              "it was published; it is being checked again. Try again shortly.\n",
                              [("Cache-Control", "no-store"), ("Retry-After", "2")])
            return _send(environ, start_response, fh, st.st_size, st.st_mtime, indexed.sha256,
                         _content_type(indexed.filename))
        withdrawn = snapshot.withdrawn.get(relpath)
        if withdrawn is not None:
            return _plain(start_response, "409 Conflict",
                          f"{withdrawn.found.filename} is withdrawn: its content changed on disk after it was "
                          f"published (published sha256 {withdrawn.published_sha256}, found "
                          f"{withdrawn.found.sha256}). An admin must restore it or accept the new content.\n",
                          [("Cache-Control", "no-store")])
        if relpath.endswith(".metadata"):
            dist = snapshot.files.get(relpath[: -len(".metadata")])
            if dist is not None and dist.metadata_sha256:
                data = self.index.core_metadata(dist.path)
                if data is not None:
                    return _send(environ, start_response, BytesIO(data), len(data),
                                 dist.mtime_ns / 1e9, dist.metadata_sha256,
                                 "text/plain; charset=utf-8")
        return _not_found(start_response)


# Request headers that make a download conditional or partial: werkzeug decides those.
_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH",
                "HTTP_IF_UNMODIFIED_SINCE")


def _send(environ: dict, start_response: StartResponse, fh, size: int, mtime: float, etag: str,
          content_type: str) -> Iterable[bytes]:
    """Answer with an open file. werkzeug handles HEAD, Range, If-Range, If-None-Match and
    If-Modified-Since (Response.make_conditional). A plain GET, what pip and uv send for
    almost every download, has nothing to decide and skips building a Response, which
    costs a third of the throughput on small files; whole files go through the server's
    file wrapper either way."""
    headers = [
        ("Content-Type", content_type),
        ("ETag", quote_etag(etag)),
        ("Last-Modified", http_date(int(mtime))),
        ("Accept-Ranges", "bytes"),
        ("Cache-Control", FILE_CACHE_CONTROL),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if environ["REQUEST_METHOD"] == "GET" and not any(key in environ for key in _CONDITIONAL):
        start_response("200 OK", [*headers, ("Content-Length", str(size))])
        return wrap_file(environ, fh, CHUNK)
    response = Response(wrap_file(environ, fh, CHUNK), headers=headers, direct_passthrough=True)
    response.content_length = size
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        fh.close()
        return _plain(start_response, "416 Range Not Satisfiable", f"The file has {size} bytes.\n",
                      [("Content-Range", f"bytes */{size}")])
    if environ["REQUEST_METHOD"] == "HEAD" or response.status_code in (304, 412):
        fh.close()  # werkzeug answers these without the body, and so without closing it
    return response(environ, start_response)


def _etag_matches(header: str | None, etag: str) -> bool:
    """For pages, which keep their own fast path (no Response object)."""
    if not header:
        return False
    return parse_etags(header).contains_weak(etag.strip('"'))


def _plain(start_response: StartResponse, status: str, text: str, extra=()) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *extra])
    return [body]


def _not_found(start_response: StartResponse) -> list[bytes]:
    return _plain(start_response, "404 Not Found", "Not found.\n")


def _redirect(start_response: StartResponse, location: str) -> list[bytes]:
    return _plain(start_response, "301 Moved Permanently", f"See {location}\n", [("Location", location)])
