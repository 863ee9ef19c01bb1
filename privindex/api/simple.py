"""The read path: the Simple Repository API and package file downloads, as plain WSGI.

pip and uv ask for /simple/<project>/ once per dependency of every install, so these URLs
bypass Flask's routing and request objects: a request is a dict lookup in the Index, an
identity check on a cached rendered page, and a write. Standards served: PEP 503 (HTML),
PEP 629 (repository-version meta), PEP 592 (yanked), PEP 658/714 (core metadata files),
PEP 691 (JSON, content negotiation), PEP 700 (versions, size, upload-time), PEP 740
(provenance of cached upstream files that have one), PEP 752 (the JSON project page's
`namespaces`, from source_rules' NamespaceRules in memory), PEP 792 (project status: a
quarantined project lists and serves no files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import IO, cast
from urllib.parse import quote
from wsgiref.types import StartResponse

from packaging.utils import canonicalize_name
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import http_date, parse_accept_header, parse_etags, quote_etag
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from privindex.api.headers import PAGE_SECURITY_HEADERS
from privindex.packages import pages
from privindex.packages.index import Index, IndexedFile, Project, parse_version
from privindex.packages.pages import V1_HTML, V1_JSON
from privindex.packages.project_status import ACTIVE, ProjectStatus
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX
from privindex.upstream.cache import Busy, Follower, NotCached
from privindex.upstream.client import PREFIX as UPSTREAM_PREFIX
from privindex.upstream.client import UpstreamError, UpstreamFile, UpstreamProject, valid_name
from privindex.upstream.source_rules import Source, Sources

log = logging.getLogger(__name__)

# What a client may ask for -> (page format, the Content-Type we answer with).
# The order breaks ties between equal q-values: plain HTML first, for browsers and curl.
OFFERS: tuple[tuple[str, str, str], ...] = (
    ("text/html", "html", "text/html; charset=utf-8"),
    (V1_HTML, "html", V1_HTML),
    ("application/vnd.pypi.simple.latest+html", "html", V1_HTML),
    (V1_JSON, "json", V1_JSON),
    ("application/vnd.pypi.simple.latest+json", "json", V1_JSON),
)
# Rendered pages kept, in bytes as well as in entries (page_cache_size): with an upstream,
# anyone can ask for any of its project names, and one page may be megabytes.
PAGE_CACHE_BYTES = 128 * 1024 * 1024
PAGE_CACHE_CONTROL = "no-cache"  # always revalidate: a 304 is cheap and uploads show at once
FILE_CACHE_CONTROL = "public, max-age=600"
CHUNK = 256 * 1024

# environ key: the bytes a download sends (or has the proxy send), for metrics
SENT_BYTES = "privindex.sent_bytes"
# environ key: set by `privindex serve`, whose server takes a wsgi.file_wrapper in the
# middle of a body too (server.py's task), sent from its main loop like a whole-file body
FILE_TAIL = "privindex.file_tail"

ReadGuard = Callable[[dict], bool]


_BY_OFFER = {offer: (fmt, content_type) for offer, fmt, content_type in OFFERS}


def _cached_when_short(fn: Callable[[str], object], maxsize: int, longest: int):
    """fn through an lru_cache for arguments up to `longest` characters (None too); longer
    ones are computed each time and never kept. The arguments are what clients send, so the
    cache is bounded in bytes, not only in entries (512 Accept headers of 200 KB pinned
    100 MB)."""
    cached = lru_cache(maxsize=maxsize)(fn)

    def call(text):
        return cached(text) if text is None or len(text) <= longest else fn(text)

    return call


def _negotiate(accept: str | None) -> tuple[str, str] | None:
    """(page format, Content-Type) for an Accept header, or None if nothing fits (406).

    Werkzeug's MIMEAccept does the RFC 9110 matching (q-values, q=0 excludes, the most
    specific range wins); best_match breaks ties by the order of OFFERS.
    """
    parsed = parse_accept_header(accept, MIMEAccept) if accept else None
    if not parsed:  # no header, or no valid media range in it (an invalid q drops its range)
        return _BY_OFFER[OFFERS[0][0]]
    best = parsed.best_match([offer for offer, _f, _c in OFFERS])
    return _BY_OFFER[best] if best is not None else None


# Cached: clients send the same few headers (pip's is 100 characters, browsers' under 200).
# A longer header than this is refused (431) before it is parsed: 200 KB take 0.2 s.
ACCEPT_LONGEST = 1024
negotiate = _cached_when_short(_negotiate, maxsize=512, longest=ACCEPT_LONGEST)

# PEP 503 normalization of the names in page URLs: a regex per request otherwise; clients
# ask for the same names again and again. Bounded (any name may be asked for).
_canonical = _cached_when_short(canonicalize_name, maxsize=8192, longest=256)


@dataclass(frozen=True)
class Page:
    source: object  # the Project or project-list snapshot it was rendered from (held_lightly)
    body: bytes
    etag: str
    status: ProjectStatus = ACTIVE  # the local status it was rendered with (an identity check too)
    namespaces: object = None  # the NamespaceRules it was rendered with (an identity check too)


def merge(local: Project, upstream: UpstreamProject) -> Project:
    """A local project with the upstream's files an admin allowed: local files first, and a
    local filename wins over an upstream file of the same name."""
    names = {f.filename for f in local.files}
    extra = tuple(f for f in upstream.files if f.filename not in names)
    versions = sorted(set(local.versions) | set(upstream.versions), key=_sortable_version)
    return Project(local.name, local.display_name, local.files + extra, tuple(versions))  # type: ignore[operator]


def resolve(source: object) -> Project | UpstreamProject | None:
    """The project a source from SimpleAPI.project_source stands for (a merged name's two
    parts merged; either alone when the other is missing)."""
    if isinstance(source, _Parts):
        local, upstream = source
        return merge(local, upstream) if local and upstream else local or upstream
    return source  # type: ignore[return-value]


class PageCache:
    """Rendered answers by key, each valid while its source objects are the current ones;
    bounded in entries (page_cache_size) and in bytes (PAGE_CACHE_BYTES), oldest out first."""

    def __init__(self, size: int):
        self._pages: dict[object, Page] = {}
        self._size = size
        self._bytes = 0  # the cached bodies' total
        self._lock = threading.Lock()

    def get(
        self, key: object, source: object, status: ProjectStatus = ACTIVE, namespaces: object = None
    ) -> Page | None:
        page = self._pages.get(key)
        valid = (
            page is not None
            and page.status is status
            and page.namespaces is namespaces
            and _same(page.source, source)
        )
        return page if valid else None

    def put(self, key: object, page: Page) -> None:
        body = page.body
        if not self._size or len(body) > PAGE_CACHE_BYTES:
            return
        with self._lock:
            replaced = self._pages.pop(key, None)
            self._bytes -= len(replaced.body) if replaced else 0
            while self._pages and (
                len(self._pages) >= self._size or self._bytes + len(body) > PAGE_CACHE_BYTES
            ):
                self._bytes -= len(self._pages.pop(next(iter(self._pages))).body)
            self._pages[key] = page
            self._bytes += len(body)


def _sortable_version(text: str):
    try:
        return (0, parse_version(text), text)
    except ValueError:
        return (1, None, text)


def _content_type(filename: str) -> str:
    if filename.endswith(".tar.gz"):
        return "application/gzip"  # never Content-Encoding: pip must keep the bytes as they are
    if filename.endswith((".whl", ".zip")):
        return "application/zip"
    return "application/octet-stream"


# What a path named to the proxy must not have: control characters, backslashes, a leading
# '/', or an empty, '.' or '..' segment (the empty path included).
_NOT_PLAIN = re.compile(r"[\x00-\x1f\x7f\\]|^/|(?:^|/)\.{0,2}(?:/|$)")


@dataclass(frozen=True)
class ProxySend:
    """Hands a file's body to the reverse proxy in front (send_files_via): X-Accel-Redirect
    with a URI under an nginx `internal` location, or X-Sendfile with an absolute path."""

    header: str  # "X-Accel-Redirect" or "X-Sendfile"
    prefix: str  # the internal location ("/_privindex_files/"), or the store's absolute path + "/"

    @classmethod
    def from_settings(cls, via: str, prefix: str, store_root: os.PathLike) -> ProxySend | None:
        if via == "x-accel-redirect":
            return cls("X-Accel-Redirect", prefix)
        if via == "x-sendfile":
            return cls("X-Sendfile", os.path.abspath(store_root).rstrip("/") + "/")
        return None

    def target(self, relpath: str) -> str | None:
        """The header's value for a path the index lists, or None if the path is not plainly
        safe to name (privindex then sends the file itself). The index lists only relative
        paths of real files, so this is a second line: no '..', '.', empty segments,
        backslashes or control characters ever reach the proxy."""
        if _NOT_PLAIN.search(relpath):
            return None
        if self.header == "X-Accel-Redirect":  # nginx unescapes it; '?' and '%' stay part of the name
            return self.prefix + quote(relpath, safe="/")
        return (self.prefix + relpath).encode("utf-8").decode("latin-1")  # WSGI: bytes as latin-1


class SimpleAPI:
    """WSGI app for /simple/... and /packages/...; anything else is not its business."""

    def __init__(
        self,
        index: Index,
        page_cache_size: int = 4096,
        read_guard: ReadGuard | None = None,
        sources: Sources | None = None,
        proxy_send: ProxySend | None = None,
    ):
        self.index = index
        self.proxy_send = proxy_send
        self._store_root = os.fspath(index.store.root)
        self.read_guard = read_guard
        self.sources = sources if sources is not None else Sources(index, None)
        self.cache = self.sources.cache
        self._pages = PageCache(page_cache_size)
        # page cache hits and misses, for metrics (set by create_app); no-ops otherwise
        self.on_page_hit: Callable[[], None] = _nothing
        self.on_page_miss: Callable[[], None] = _nothing

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = readable_path(environ, self.read_guard)
        if not isinstance(path, str):
            return path(start_response)
        if path.startswith("/packages/"):
            return self._file(environ, start_response, path[len("/packages/") :])
        return self._simple(environ, start_response, path)

    # -- pages ---------------------------------------------------------------------------

    def _simple(self, environ: dict, start_response: StartResponse, path: str) -> Iterable[bytes]:
        prefix = environ.get("SCRIPT_NAME", "")
        if path == "/simple/namespaces" or (
            path.startswith("/simple/namespace/") and path != "/simple/namespace/"
        ):
            return self._namespaces(environ, start_response, path)
        if path in ("/simple", "/simple/"):
            if path == "/simple":
                return _redirect(start_response, f"{prefix}/simple/")
            name = None
        else:
            raw = path[len("/simple/") :]
            name = raw.rstrip("/")
            if not valid_name(name):  # no project anywhere: never asked of the upstream
                return _not_found(start_response)
            normalized = _canonical(name)
            if name != normalized or not raw.endswith("/"):
                return _redirect(start_response, f"{prefix}/simple/{quote(normalized)}/")
        accept = environ.get("HTTP_ACCEPT")
        if accept is not None and len(accept) > ACCEPT_LONGEST:
            return _plain(
                start_response,
                "431 Request Header Fields Too Large",
                f"The Accept header is longer than {ACCEPT_LONGEST} characters.\n",
            )
        chosen = negotiate(accept)
        if chosen is None:
            offered = ", ".join(offer for offer, _fmt, _ct in OFFERS)
            return _plain(
                start_response,
                "406 Not Acceptable",
                f"Available media types: {offered}\n",
                [("Vary", "Accept")],
            )
        fmt, content_type = chosen
        return send_page(
            environ,
            start_response,
            lambda: self._page(name, fmt),
            [("Content-Type", content_type), ("Vary", "Accept")],
        )

    def _namespaces(self, environ: dict, start_response: StartResponse, path: str) -> Iterable[bytes]:
        """PEP 752's namespace list and detail (`/namespace/<name>`), relative to the Simple
        API's root like a project page (no project URL ends without a slash, nor holds one
        inside: no clash; `/simple/namespace/` is the project named namespace, as the static
        page nginx serves for it)."""
        rules = self.sources.namespaces
        if path == "/simple/namespaces":
            doc: object = rules.api_list()
        else:
            doc = rules.api_detail(_canonical(path[len("/simple/namespace/") :]))
            if doc is None:
                return _not_found(start_response)
        body = json.dumps(doc, separators=(",", ":")).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", PAGE_CACHE_CONTROL),
                *PAGE_SECURITY_HEADERS,
            ],
        )
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _page(self, name: str | None, fmt: str) -> Page | None:
        """The rendered page, from the cache while its source objects are the current ones.
        A local name never reaches the upstream code (sources decides from memory)."""
        source: object
        status = ACTIVE
        if name is None:
            source = self.index.project_list()
            if self.cache is not None:
                source = _Parts((source, self.cache.names, self.sources.claimed))
        else:
            source = self.project_source(name)
            status = self.status_of(name, source)
        if source is None:
            return None
        key = (name, fmt)
        rules = self.sources.namespaces
        page = self._pages.get(key, source, status, rules)
        if page is not None:
            self.on_page_hit()
            return page
        self.on_page_miss()
        if name is None:
            body = pages.render_root(self._root_names(source), fmt)
        else:
            project = resolve(source)
            if project is None:
                return None
            attested = (
                pages.attested_project(self._store_root, project)
                if project is source and isinstance(project, Project)  # the index's own object
                else pages.attested(self._store_root, project.files)
            )
            body = pages.render_project(project, fmt, status, rules.api_entries(name), attested)  # type: ignore[arg-type]
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}-{fmt}"'
        page = Page(held_lightly(source), body, etag, status, rules)
        self._pages.put(key, page)
        return page

    def project_source(self, name: str) -> object | None:
        """What a project's answers are made from, for `resolve` and the cache's identity
        check: the local Project, the cached upstream page, or both (_Parts) for a merged name."""
        kind = self.sources.source(name)
        if kind is Source.LOCAL:
            return self.index.project(name)
        if kind is Source.UPSTREAM:
            return self.cache.project(name)  # type: ignore[union-attr]
        return _Parts((self.index.project(name), self._allowed_upstream(name)))

    def status_of(self, name: str, source: object) -> ProjectStatus:
        """The PEP 792 status a project's answers carry: the upstream's for an upstream-only
        name, ours (from memory) for a local or merged one."""
        if isinstance(source, UpstreamProject):
            return source.status
        return self.sources.status(name)

    def _allowed_upstream(self, name: str) -> UpstreamProject | None:
        """The upstream's part of a merged page; if the upstream fails, the local part alone,
        and so when the upstream quarantined the name (PEP 792)."""
        try:
            upstream = self.cache.project(name)  # type: ignore[union-attr]
        except (UpstreamError, NotCached) as exc:
            log.warning("serving %s without its allowed upstream files: %s", name, exc)
            return None
        return upstream if upstream is None or upstream.status.offers_files else None

    def _root_names(self, source) -> list[tuple[str, str]]:
        """Local projects, and upstream projects already cached here (never the upstream's
        whole list: PyPI's has 600,000 names); a name known here hides the upstream's."""
        if not isinstance(source, _Parts):
            return source
        local, upstream, claimed = source
        names = dict(local)
        for n, display in upstream:
            if n not in names and n not in claimed and not self.sources.namespaces.covers(n):
                names[n] = display
        return sorted(names.items())

    # -- files ---------------------------------------------------------------------------

    def _file(self, environ: dict, start_response: StartResponse, relpath: str) -> Iterable[bytes]:
        # Only paths the index holds are served: '..', absolute paths, backslashes and
        # anything else that is not a known file simply miss the dict.
        snapshot = self.index.snapshot
        indexed = snapshot.files.get(relpath)
        if indexed is not None:
            if not self.sources.status(indexed.project).offers_files:
                return _quarantined(start_response, indexed.project)
            full_path = os.path.join(self._store_root, indexed.path)  # a str: pathlib costs per request
            send = self.proxy_send
            target = send.target(indexed.path) if send is not None else None
            if send is not None and target is not None and _proxy_may_send(environ):
                try:
                    st = os.stat(full_path)
                except OSError:
                    return _not_found(start_response)
                if (st.st_size, st.st_mtime_ns) != indexed.signature:
                    return self._changed(start_response, indexed)
                return _hand_off(
                    environ,
                    start_response,
                    send.header,
                    target,
                    st.st_size,
                    st.st_mtime,
                    indexed.sha256,
                    _content_type(indexed.filename),
                )
            try:
                fh = open(full_path, "rb")
            except OSError:
                return _not_found(start_response)
            st = os.fstat(fh.fileno())
            if (st.st_size, st.st_mtime_ns) != indexed.signature:
                fh.close()
                return self._changed(start_response, indexed)
            return _send(
                environ,
                start_response,
                fh,
                st.st_size,
                st.st_mtime,
                indexed.sha256,
                _content_type(indexed.filename),
            )
        if relpath.startswith(UPSTREAM_PREFIX) and self.cache is not None:
            return self._upstream_file(environ, start_response, relpath[len(UPSTREAM_PREFIX) :])
        withdrawn = snapshot.withdrawn.get(relpath)
        if withdrawn is not None:
            return _plain(
                start_response,
                "409 Conflict",
                f"{withdrawn.found.filename} is withdrawn: its content changed on disk after it was "
                f"published (published sha256 {withdrawn.published_sha256}, found "
                f"{withdrawn.found.sha256}). An admin must restore it or accept the new content.\n",
                [("Cache-Control", "no-store")],
            )
        if relpath.endswith(PROVENANCE_SUFFIX):
            return self._local_provenance(environ, start_response, relpath)
        if relpath.endswith(".metadata"):
            dist = snapshot.files.get(relpath[: -len(".metadata")])
            if dist is not None and not self.sources.status(dist.project).offers_files:
                return _quarantined(start_response, dist.project)
            if dist is not None and dist.metadata_sha256:
                data = self.index.core_metadata(dist.path)
                if data is not None:
                    return _send(
                        environ,
                        start_response,
                        BytesIO(data),
                        len(data),
                        dist.mtime_ns / 1e9,
                        dist.metadata_sha256,
                        "text/plain; charset=utf-8",
                    )
        return _not_found(start_response)

    def _local_provenance(
        self, environ: dict, start_response: StartResponse, relpath: str
    ) -> Iterable[bytes]:
        """A listed local file's provenance object, as uploaded with it (PEP 740)."""
        dist = self.index.snapshot.files.get(relpath.removesuffix(PROVENANCE_SUFFIX))
        if dist is None:
            return _not_found(start_response)
        if not self.sources.status(dist.project).offers_files:
            return _quarantined(start_response, dist.project)
        return _send_provenance_file(environ, start_response, os.path.join(self._store_root, relpath))

    def _changed(self, start_response: StartResponse, indexed: IndexedFile) -> list[bytes]:
        """Not the bytes that were hashed: never served unverified; the watcher rereads it."""
        self.index.suspect(indexed.path)
        return _plain(
            start_response,
            "409 Conflict",
            f"{indexed.filename} changed on disk since "
            "it was published; it is being checked again. Try again shortly.\n",
            [("Cache-Control", "no-store"), ("Retry-After", "2")],
        )

    def _upstream_file(self, environ: dict, start_response: StartResponse, rest: str) -> Iterable[bytes]:
        """An upstream file (or its .metadata) listed on the page this server shows for its
        name: from the cache, else followed while its download lands (503 when the workers
        the upstream may hold are all taken)."""
        project, _, filename = rest.partition("/")
        if not valid_name(project) or "/" in filename or canonicalize_name(project) != project:
            return _not_found(start_response)
        kind = self.sources.source(project)
        if kind is Source.LOCAL:
            return _not_found(start_response)  # a name known here never serves upstream files
        if not self.sources.status(project).offers_files:
            return _quarantined(start_response, project)
        metadata = filename.endswith(".metadata")
        provenance = filename.endswith(PROVENANCE_SUFFIX)
        dist_name = (
            filename.removesuffix(".metadata") if metadata else filename.removesuffix(PROVENANCE_SUFFIX)
        )
        if kind is Source.MERGED:
            local = self.index.project(project)
            if local is not None and any(f.filename == dist_name for f in local.files):
                return _not_found(start_response)  # the local file of that name wins
        try:
            upstream = self.cache.project(project)  # type: ignore[union-attr]
            if upstream is not None and not upstream.status.offers_files:  # even if its bytes are cached
                return _quarantined(start_response, project)
            found = next((f for f in upstream.files if f.filename == dist_name), None) if upstream else None
            if found is None or (metadata and not found.metadata_sha256):
                return _not_found(start_response)
            if provenance:
                return self._send_provenance(environ, start_response, found)
            return self._send_upstream(environ, start_response, found, metadata)
        except UpstreamError as exc:
            return _upstream_failed(start_response, exc)
        except NotCached as exc:
            return _plain(start_response, "404 Not Found", f"{exc}.\n")

    def _send_provenance(
        self, environ: dict, start_response: StartResponse, f: UpstreamFile
    ) -> Iterable[bytes]:
        if f.provenance_url is None:
            return _not_found(start_response)
        return _send_provenance_file(environ, start_response, self.cache.provenance(f))  # type: ignore[union-attr]

    def _send_upstream(
        self, environ: dict, start_response: StartResponse, f: UpstreamFile, metadata: bool
    ) -> Iterable[bytes]:
        content_type = "text/plain; charset=utf-8" if metadata else _content_type(f.filename)
        etag = f.metadata_sha256 if metadata else f.sha256
        cache = self.cache
        assert cache is not None
        if environ["REQUEST_METHOD"] == "HEAD":
            path = cache.cached(f, metadata)
            if path is None:  # a HEAD does not fetch; what the page says is enough
                headers = [("Content-Type", content_type), ("ETag", quote_etag(etag or ""))]
                if f.size is not None and not metadata:
                    headers.append(("Content-Length", str(f.size)))
                start_response("200 OK", headers)
                return []
        path, size, follower = cache.open_or_fetch(f, metadata)
        if path is not None:
            try:
                fh = open(path, "rb")
            except OSError:
                return _not_found(start_response)
            st = os.fstat(fh.fileno())
            return _send(environ, start_response, fh, st.st_size, st.st_mtime, etag or "", content_type)
        headers = [
            ("Content-Type", content_type),
            ("ETag", quote_etag(etag or "")),
            ("Cache-Control", FILE_CACHE_CONTROL),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if size is not None:
            headers.append(("Content-Length", str(size)))
        start_response("200 OK", headers)
        assert follower is not None  # open_or_fetch gives a path or a follower
        return _followed(environ, follower)


def _followed(environ: dict, follower: Follower) -> Iterable[bytes]:
    """A cold upstream file's body: its bytes as its download brings them, then, once it
    landed, the rest as a file wrapper (FILE_TAIL). The worker is held while the download
    runs (within upstream_workers), not while a slow client reads the rest. Waiting for the
    whole download before the first byte would free the worker sooner but leave clients
    without a byte past their read timeout (pip's is 15 s) on big files."""
    wrapper = environ.get("wsgi.file_wrapper")
    if not environ.get(FILE_TAIL) or wrapper is None or follower.size is None:
        return follower  # chunked (no Content-Length), or a server that takes bytes only
    follower.stop_when_landed = True

    def body() -> Iterator[object]:
        try:
            yield from follower
            rest = follower.take_rest()
            if rest is not None:
                yield wrapper(_capped(rest), CHUNK)
        finally:
            follower.close()

    return cast(Iterable[bytes], body())  # bytes, then the wrapper FILE_TAIL's server takes


def send_page(
    environ: dict,
    start_response: StartResponse,
    make: Callable[[], Page | None],
    headers: list[tuple[str, str]],
) -> Iterable[bytes]:
    """A page from make (cached or rendered), 304 when the client holds it, or why there is
    none: 404, or the upstream's failure (502, 503, 504)."""
    try:
        page = make()
    except UpstreamError as exc:
        return _upstream_failed(start_response, exc)
    except NotCached as exc:
        return _plain(start_response, "404 Not Found", f"{exc}.\n")
    if page is None:
        return _not_found(start_response)
    headers = [*headers, ("ETag", page.etag), ("Cache-Control", PAGE_CACHE_CONTROL), *PAGE_SECURITY_HEADERS]
    if _etag_matches(environ.get("HTTP_IF_NONE_MATCH"), page.etag):
        start_response("304 Not Modified", headers)
        return []
    headers.append(("Content-Length", str(len(page.body))))
    start_response("200 OK", headers)
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return _shared_body(environ, page.body)


def readable_path(
    environ: dict, read_guard: ReadGuard | None
) -> str | Callable[[StartResponse], list[bytes]]:
    """The decoded path of a read the machine faces answer, or the refusal to send: 405 for
    other methods than GET and HEAD, 401 for a private index without a token, 404 for a
    path that is not UTF-8."""
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        return lambda start_response: _plain(
            start_response,
            "405 Method Not Allowed",
            "Only GET and HEAD are allowed here.\n",
            [("Allow", "GET, HEAD")],
        )
    if read_guard is not None and not read_guard(environ):
        return lambda start_response: _plain(
            start_response,
            "401 Unauthorized",
            "This index is private: use an API token as the password (user __token__).\n",
            [("WWW-Authenticate", 'Basic realm="privindex"')],
        )
    try:
        return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        return _not_found


def _nothing() -> None:
    pass


class _Parts(tuple):
    """A page made from several sources (a merged page, the root with upstream names)."""


def held_lightly(source: object) -> object:
    """What a cached page keeps of its sources: an upstream page only by a weak reference
    (the upstream cache alone decides how many stay in memory), anything else itself."""
    if isinstance(source, UpstreamProject):
        return weakref.ref(source)
    if isinstance(source, _Parts):
        return _Parts(held_lightly(part) for part in source)
    return source


def _same(cached: object, current: object) -> bool:
    """Whether a cached page was rendered from exactly these objects (identity, per part)."""
    if isinstance(cached, weakref.ref):
        cached = cached()  # None once the upstream cache let that page go: render again
    if cached is current:
        return True
    if isinstance(current, _Parts) and isinstance(cached, _Parts) and len(cached) == len(current):
        return all(_same(a, b) for a, b in zip(cached, current))
    return False


_UPSTREAM_STATUS = {503: "503 Service Unavailable", 504: "504 Gateway Timeout"}


def _upstream_failed(start_response: StartResponse, exc: UpstreamError) -> list[bytes]:
    if isinstance(exc, Busy):  # the share of workers for the upstream is taken: pip and uv retry
        status, retry_after = "503 Service Unavailable", exc.retry_after
    else:
        status, retry_after = _UPSTREAM_STATUS.get(exc.status, "502 Bad Gateway"), 30
    return _plain(
        start_response, status, f"{exc}\n", [("Cache-Control", "no-store"), ("Retry-After", str(retry_after))]
    )


# Request headers that make a download conditional or partial: werkzeug decides those.
_CONDITIONAL = (
    "HTTP_RANGE",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
)


# HTTP dates of file mtimes (werkzeug formats through email.utils: visible per download)
_http_date = lru_cache(maxsize=4096)(http_date)


def _file_headers(content_type: str, etag: str, mtime: float) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("ETag", quote_etag(etag)),
        ("Last-Modified", _http_date(int(mtime))),
        ("Accept-Ranges", "bytes"),
        ("Cache-Control", FILE_CACHE_CONTROL),
        ("X-Content-Type-Options", "nosniff"),
    ]


# Preconditions nginx would judge against its own validators (it knows neither our ETag nor
# our rules for If-Range): requests carrying them, and HEAD, are answered by privindex alone.
_SELF_ANSWERED = ("HTTP_IF_RANGE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def _proxy_may_send(environ: dict) -> bool:
    return environ["REQUEST_METHOD"] == "GET" and not any(key in environ for key in _SELF_ANSWERED)


def _hand_off(
    environ: dict,
    start_response: StartResponse,
    header: str,
    target: str,
    size: int,
    mtime: float,
    etag: str,
    content_type: str,
) -> Iterable[bytes]:
    """Answer a GET with the file's headers and a header naming the file; the proxy sends
    the bytes. privindex decides first: 304 (If-None-Match, If-Modified-Since) and 416 are
    its own answers. A Range it accepted is left in the request for the proxy, which cuts
    the same range from the same file (nginx keeps Content-Type, Cache-Control and
    Accept-Ranges from this answer; the README's location adds ETag back)."""
    # no Accept-Ranges: the proxy says it itself (nginx would send it twice)
    headers = [h for h in _file_headers(content_type, etag, mtime) if h[0] != "Accept-Ranges"]
    status, sent = "200 OK", size
    if any(key in environ for key in _CONDITIONAL):
        response = Response(headers=headers, direct_passthrough=True)
        response.content_length = size
        try:
            response.make_conditional(environ, accept_ranges=True, complete_length=size)
        except RequestedRangeNotSatisfiable:
            return _plain(
                start_response,
                "416 Range Not Satisfiable",
                f"The file has {size} bytes.\n",
                [("Content-Range", f"bytes */{size}")],
            )
        if response.status_code not in (200, 206):  # 304 Not Modified
            return response(environ, start_response)
        status, sent = response.status, response.content_length or 0
    environ[SENT_BYTES] = sent
    start_response(status, [*headers, (header, target), ("Content-Length", "0")])
    return []


def _send_provenance_file(
    environ: dict, start_response: StartResponse, path: str | os.PathLike
) -> Iterable[bytes]:
    """A provenance object (small JSON), read whole; 404 if it is gone (pruned, deleted)."""
    try:
        with open(path, "rb") as fh:
            data, mtime = fh.read(), os.fstat(fh.fileno()).st_mtime
    except OSError:
        return _not_found(start_response)
    etag = hashlib.sha256(data).hexdigest()
    return _send(environ, start_response, BytesIO(data), len(data), mtime, etag, "application/json")


def _send(
    environ: dict, start_response: StartResponse, fh, size: int, mtime: float, etag: str, content_type: str
) -> Iterable[bytes]:
    """Answer with an open file. werkzeug handles HEAD, Range, If-Range, If-None-Match and
    If-Modified-Since (Response.make_conditional). A plain GET, what pip and uv send for
    almost every download, has nothing to decide and skips building a Response, which
    costs a third of the throughput on small files. Every body, whole file or range, goes
    through the server's file wrapper, which waitress sends from its main loop: a slow
    client never holds a worker thread for its transfer (werkzeug's own range body is a
    generator, which a worker would write at the client's speed)."""
    headers = _file_headers(content_type, etag, mtime)
    if environ["REQUEST_METHOD"] == "GET" and not any(key in environ for key in _CONDITIONAL):
        start_response("200 OK", [*headers, ("Content-Length", str(size))])
        return wrap_file(environ, _capped(fh), CHUNK)
    response = Response(wrap_file(environ, _capped(fh), CHUNK), headers=headers, direct_passthrough=True)
    response.content_length = size
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        fh.close()
        return _plain(
            start_response,
            "416 Range Not Satisfiable",
            f"The file has {size} bytes.\n",
            [("Content-Range", f"bytes */{size}")],
        )
    if environ["REQUEST_METHOD"] == "HEAD" or response.status_code in (304, 412):
        fh.close()  # werkzeug answers these without the body, and so without closing it
    elif response.status_code == 206:
        first, end = response.content_range.start, response.content_range.stop
        fh.seek(first)
        response.response = wrap_file(environ, _capped(fh, end), CHUNK)
    return response(environ, start_response)


SHARED_BODY_MIN = 64 * 1024


def _shared_body(environ: dict, body: bytes) -> Iterable[bytes]:
    """A big page (the project list: 860 KB at 20,000 projects) goes to the server as a
    file over the cached bytes: waitress sends a file wrapper in chunks from it instead of
    copying the whole body into each connection's output buffer, so 64 clients fetching
    /simple/ at once share one copy instead of holding 64 (BytesIO shares the bytes)."""
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None or len(body) < SHARED_BODY_MIN:
        return [body]
    return wrapper(_ReadsCapped(BytesIO(body)), CHUNK)


READ_CAP = 1024 * 1024


def _capped(fh: IO[bytes], end: int | None = None) -> IO[bytes]:
    """fh read through _ReadsCapped, which has all of a file that wrap_file uses; with
    `end`, no byte from that offset on is read (a range's end)."""
    return cast(IO[bytes], _ReadsCapped(fh, end))


class _ReadsCapped:
    """A file that returns at most READ_CAP bytes a read. waitress reads a file wrapper's
    file in pieces of the socket's send buffer size, 4 MB on loopback: each piece a new
    4 MB bytes object, which glibc, its mmap threshold raised after the first, kept on a
    fragmenting heap (RSS +8 MB per 20 MB download; 215 MB peak at 20,000 projects). 1 MB
    pieces keep the socket as full (waitress loops until it would block): 20 MB downloads
    at 1 and 16 connections ran at the same req/s with a peak RSS of 85 MB instead of 135
    (256 KB pieces cost 15 % of the req/s)."""

    __slots__ = ("_file", "_end", "seek", "tell", "close")

    def __init__(self, file, end: int | None = None):
        self._file, self._end = file, end
        self.seek, self.tell, self.close = file.seek, file.tell, file.close

    def read(self, size: int = -1) -> bytes:
        size = READ_CAP if size < 0 or size > READ_CAP else size
        if self._end is not None:
            size = max(0, min(size, self._end - self._file.tell()))
        return self._file.read(size)


def _etag_matches(header: str | None, etag: str) -> bool:
    """For pages, which keep their own fast path (no Response object)."""
    if not header:
        return False
    if header == etag:  # what pip and uv send back: the ETag as they got it
        return True
    return parse_etags(header).contains_weak(etag.strip('"'))


def _plain(start_response: StartResponse, status: str, text: str, extra=()) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    )
    return [body]


def _quarantined(start_response: StartResponse, project: str) -> list[bytes]:
    return _plain(
        start_response,
        "404 Not Found",
        f"The project {project} is quarantined: its files are not served.\n",
        [("Cache-Control", "no-store")],
    )


def _not_found(start_response: StartResponse) -> list[bytes]:
    return _plain(start_response, "404 Not Found", "Not found.\n")


def _redirect(start_response: StartResponse, location: str) -> list[bytes]:
    return _plain(start_response, "301 Moved Permanently", f"See {location}\n", [("Location", location)])
