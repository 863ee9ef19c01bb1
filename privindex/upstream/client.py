"""The upstream index (e.g. the public index): an untrusted server, its client, and its
pages parsed into our own types.

The upstream is a trust boundary (SECURITY.md, "The upstream is a trust boundary"): what it
says reaches the rest of privindex only through this module, validated. Names are PEP 508
project names of at most 200 characters; digests exactly 64 hex characters (either case:
hex case means nothing, so a mirror's upper case is kept, lower-cased); filenames
distribution filenames of the project (no path separators); file URLs http(s). What fails
is dropped (a file without a valid sha256) or left out (an invalid metadata digest: the
file is kept without core-metadata). A page is fetched as PEP 691 JSON when the upstream
offers it, else as PEP 503 HTML (the standard library's HTML parser).

Fetching: every URL, and every redirect hop (followed here, a bounded number), must be on
the upstream's own origin or on a public address (checked on the addresses the host
resolves to, inside the connection, so DNS rebinding does not help); an https upstream's
files stay on https. Every body is read in bounded pieces under an overall deadline and a
size cap counted after decompression (`Limits`).

requests is used for its proxy handling (HTTPS_PROXY, NO_PROXY from the environment),
CA bundles and connection pooling; it is the one module that speaks to the upstream.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urldefrag, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
)
from packaging.version import InvalidVersion, Version

from privindex import __version__
from privindex.ops.logs import redact_url
from privindex.packages import project_status
from privindex.packages.distfile import InvalidDistribution, parse_filename
from privindex.packages.project_status import ProjectStatus
from privindex.packages.provenance import PROVENANCE_MAX, check_provenance

if TYPE_CHECKING:  # requests is imported when an upstream is set: 30 ms of every start otherwise
    import requests
    import requests.adapters

log = logging.getLogger(__name__)

PREFIX = ".upstream/"  # file paths under /packages/; a store never lists a dot-folder
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
CHUNK = 256 * 1024
NAME_MAX = 200
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)  # PEP 508
_DIGEST = re.compile(r"[0-9a-f]{64}")
_ANY_CASE_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_NOT_IN_FILENAME = re.compile(r"[/\\\x00-\x1f\x7f]")
_DEADLINE: ContextVar[float] = ContextVar("upstream_deadline", default=float("inf"))  # set by _open


def valid_name(name: str) -> bool:
    """Whether name is a PEP 508 project name of at most 200 characters; no other name
    is looked up anywhere (junk like `http:` costs no upstream request)."""
    return len(name) <= NAME_MAX and _NAME.fullmatch(name) is not None


def valid_digest(value: object) -> bool:
    """Exactly 64 lower-case hex characters: a sha256, and safe as a folder name."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def normal_digest(value: object) -> str | None:
    """A sha256 as the upstream sent it (64 hex characters, any case) in lower case, the
    one form used from here on; None for anything else."""
    if isinstance(value, str) and _ANY_CASE_DIGEST.fullmatch(value):
        return value.lower()
    return None


def public_address(address: str) -> bool:
    """Whether an IP address is on the public internet: not loopback, private, link-local,
    multicast or reserved (an IPv4-mapped IPv6 address counts as its IPv4 address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class UpstreamError(Exception):
    """The upstream failed, timed out or sent what we refuse; status is what we answer
    (502 or 504), outcome the metrics label of the fetch."""

    def __init__(self, message: str, status: int = 502, outcome: str = "error"):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class RefusedAddress(Exception):
    """A connection to a non-public address. Not an OSError: urllib3 neither retries it
    nor wraps it, so it reaches Upstream as it is."""


@dataclass(frozen=True)
class Limits:
    """What one fetch may cost (settings: upstream_timeout, upstream_page_deadline,
    upstream_file_deadline, upstream_max_page_mb, upstream_max_file_mb, upstream_file_hosts)."""

    timeout: float = 10.0  # to connect, and for each wait for data
    page_deadline: float = 60.0  # a whole page fetch, redirects included
    file_deadline: float = 1800.0  # a whole file fetch
    max_page_bytes: int = 20 * 1024**2  # after decompression
    max_file_bytes: int = 2000 * 1024**2
    file_hosts: tuple[str, ...] = ()  # if set, the only hosts besides the upstream's own


@dataclass(frozen=True, slots=True)
class UpstreamFile:
    """One upstream file, shaped like index.IndexedFile where api/simple.py renders it."""

    path: str  # .upstream/<project>/<filename>: the URL privindex serves it at
    project: str
    filename: str
    version: str
    url: str  # absolute, on the upstream
    sha256: str
    requires_python: str | None
    metadata_sha256: str | None
    yanked: bool
    yanked_reason: str
    size: int | None
    upload_time: float | None
    provenance_url: str | None = None  # PEP 740: its attestations, on the upstream

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"


@dataclass(frozen=True, slots=True, weakref_slot=True)  # the Simple API's page cache holds it weakly
class UpstreamProject:
    name: str  # normalized
    display_name: str
    files: tuple[UpstreamFile, ...]
    versions: tuple[str, ...]
    status: ProjectStatus = project_status.ACTIVE  # PEP 792, as the upstream marks it

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "display_name": self.display_name,
                "versions": list(self.versions),
                "files": [asdict(f) for f in self.files],
                "status": {"status": self.status.status.value, "reason": self.status.reason},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> UpstreamProject:
        """A page cached on disk, validated like a fresh one (the data dir may be older
        than these checks, or edited)."""
        doc = json.loads(text)
        name = doc["name"]
        if not isinstance(name, str) or not valid_name(name) or canonicalize_name(name) != name:
            raise ValueError(f"not a project name: {name!r}")
        files = [
            _file(name, f["filename"], f["url"], f["sha256"], **{k: f.get(k) for k in _FACTS})
            for f in doc["files"]
        ]
        return _project(
            name,
            doc.get("display_name"),
            [f for f in files if f is not None],
            doc.get("versions"),
            doc.get("status"),
        )


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, without its credentials; the port filled in."""
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or (443 if parts.scheme == "https" else 80),
    )


@contextmanager
def by_deadline(deadline: float) -> Iterator[None]:
    """Guarded connections made and answered inside end by deadline (time.monotonic()):
    a server sending its headers a byte at a time never waits for a timeout."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _guarded(connection_class: type, scheme: str, exempt: Callable[[tuple[str, str, int]], bool]) -> type:
    """connection_class, connecting only to public addresses, except to an origin exempt
    says yes to (the upstream's own). The host is resolved here and every address checked
    before connecting to one of the checked addresses: no second lookup to rebind."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
    from urllib3.util import connection

    class Guarded(connection_class):
        def getresponse(self) -> Any:
            """The response's status and headers, cut off at the fetch's deadline: a
            server sending its headers a byte at a time never waits for a timeout."""
            remaining = _DEADLINE.get() - time.monotonic()
            if remaining == float("inf"):
                return super().getresponse()
            timer = threading.Timer(max(remaining, 0.0), self._cut)
            timer.daemon = True
            timer.start()
            try:
                return super().getresponse()
            finally:
                timer.cancel()

        # The connected socket (TLS-wrapped for https), kept: http.client drops `sock` once
        # a response will close the connection, while the body is still read through it.
        kept_sock: socket.socket | None = None

        def connect(self) -> None:
            super().connect()
            self.kept_sock = self.sock

        def _cut(self) -> None:
            """End whatever a read on this connection waits for (past the deadline)."""
            sock = self.sock or self.kept_sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _new_conn(self) -> socket.socket:
            port = int(self.port or self.default_port)
            if exempt((scheme, self.host.lower(), port)):
                return super()._new_conn()
            try:
                infos = socket.getaddrinfo(self._dns_host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            refused = [a for a in addresses if not public_address(a)]
            if refused:
                raise RefusedAddress(f"{self.host} is at {refused[0]}, not a public address")
            error: Exception | None = None
            for address in addresses:
                try:
                    return connection.create_connection(
                        (address, port),
                        self.timeout,
                        source_address=self.source_address,
                        socket_options=self.socket_options,
                    )
                except TimeoutError:
                    error = ConnectTimeoutError(self, f"connection to {self.host} timed out")
                except OSError as exc:
                    error = NewConnectionError(self, f"failed to connect: {exc}")
            raise error or NewConnectionError(self, f"{self.host} has no address")

    return Guarded


def guarded_adapter(exempt: Callable[[tuple[str, str, int]], bool]) -> requests.adapters.HTTPAdapter:
    """A requests adapter whose connections are Guarded (public addresses only, but for the
    (scheme, host, port) origins exempt allows); webhooks (notify/webhook_sender.py) use it
    too. A proxy from the environment connects for us: then only an IP address written in
    the URL can be checked (Upstream._check)."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    pools = {
        "http": type(
            "GuardedHTTPPool",
            (HTTPConnectionPool,),
            {"ConnectionCls": _guarded(HTTPConnection, "http", exempt)},
        ),
        "https": type(
            "GuardedHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": _guarded(HTTPSConnection, "https", exempt)},
        ),
    }

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return GuardedAdapter()


class Upstream:
    """The upstream's client. One requests.Session (pooled connections, proxies from the
    environment); every fetch has a connect timeout, an overall deadline and a size cap."""

    def __init__(self, url: str, timeout: float, ca_bundle: str = "", limits: Limits | None = None):
        self.url = url if url.endswith("/") else url + "/"
        self.limits = limits or Limits(timeout=timeout)
        self.timeout = self.limits.timeout
        self.origin = _origin(self.url)
        import requests

        self.session = requests.Session()  # trust_env: HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
        self.session.headers["User-Agent"] = f"privindex/{__version__} (pull-through cache)"
        adapter = guarded_adapter(lambda origin: origin == self.origin)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if ca_bundle:
            self.session.verify = ca_bundle

    @property
    def shown_url(self) -> str:
        """The upstream's URL as it may be printed or shown: no credentials."""
        return redact_url(self.url)

    def project_url(self, name: str) -> str:
        return urljoin(self.url, f"{name}/")

    def fetch_project(self, name: str) -> UpstreamProject | None:
        """The upstream's page for a normalized name; None if it has no such project (and
        for a name that is not a valid project name, without asking)."""
        if not valid_name(name):
            return None
        url = self.project_url(name)
        deadline = time.monotonic() + self.limits.page_deadline
        resp = self._open(url, deadline, self.limits.page_deadline, {"Accept": ACCEPT})
        with resp:
            if resp.status_code in (404, 410):
                return None
            if resp.status_code != 200:
                raise UpstreamError(f"the upstream answered {resp.status_code} for {redact_url(url)}")
            body = b"".join(
                self._body(resp, url, deadline, self.limits.max_page_bytes, self.limits.page_deadline)
            )
            kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
            base = resp.url or url
        try:
            if kind.endswith("+json") or kind == "application/json":
                return parse_json(name, json.loads(body), base)
            return parse_html(name, body.decode(_known_codec(resp.encoding), "replace"), base)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise UpstreamError(
                f"the upstream's page for {name} cannot be read: {type(exc).__name__}"
            ) from None

    def stream(
        self, url: str, size: int | None = None
    ) -> tuple[int | None, Iterator[bytes], requests.Response]:
        """(Content-Length or None, chunks, response to close) of a file on the upstream.
        size is what the page says, if it does: over upstream_max_file_mb, nothing is
        fetched. The chunks raise UpstreamError past the deadline or the size cap."""
        cap, limit = self.limits.max_file_bytes, self.limits.file_deadline
        if size is not None and size > cap:
            raise self._too_large(url, cap)
        deadline = time.monotonic() + limit
        resp = self._open(url, deadline, limit)
        if resp.status_code != 200:
            resp.close()
            raise UpstreamError(f"the upstream answered {resp.status_code} for {redact_url(url)}")
        header = resp.headers.get("Content-Length", "")
        length = int(header) if header.isdigit() else None
        if length is not None and length > cap:
            resp.close()
            raise self._too_large(url, cap)
        if resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            length = None  # the length of the encoded body, not of what we pass on
        return length, self._body(resp, url, deadline, cap, limit), resp

    def fetch_provenance(self, f: UpstreamFile) -> bytes:
        """f's provenance object (PEP 740), fetched under the rules of every fetch and
        checked against f (check_provenance); UpstreamError if it fails either."""
        url = f.provenance_url
        assert url is not None
        limit = self.limits.page_deadline
        deadline = time.monotonic() + limit
        resp = self._open(url, deadline, limit, {"Accept": "application/json"})
        with resp:
            if resp.status_code != 200:
                raise UpstreamError(f"the upstream answered {resp.status_code} for {redact_url(url)}")
            data = b"".join(self._body(resp, url, deadline, PROVENANCE_MAX, limit))
        try:
            check_provenance(data, f.filename, f.sha256)
        except (ValueError, RecursionError) as exc:  # JSON, base64 and filename errors included
            raise self._refuse(url, f"not a provenance of {f.filename}: {exc}") from None
        return data

    def reachable(self) -> str | None:
        """None if the upstream answers its root URL, else why not (for the start-up line)."""
        try:
            limit = min(self.timeout, 5.0)
            with self._open(self.url, time.monotonic() + limit, limit) as resp:
                return None if resp.status_code < 500 else f"it answered {resp.status_code}"
        except UpstreamError as exc:
            return str(exc)

    # -- fetching within the rules -------------------------------------------------------

    def _check(self, url: str) -> None:
        """Refuse a URL not on the upstream's origin that fails the rules a URL shows
        (scheme, host list, an IP address in it); Guarded checks the resolved addresses."""
        parts = urlsplit(url)
        origin = _origin(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self._refuse(url, "not an http or https URL")
        if self.origin[0] == "https" and parts.scheme != "https":
            raise self._refuse(url, "the upstream is https, so its files must be too")
        if origin == self.origin:
            return
        if self.limits.file_hosts and origin[1] not in self.limits.file_hosts:
            raise self._refuse(url, "its host is not in upstream_file_hosts")
        try:
            literal = public_address(origin[1])
        except ValueError:
            return  # a host name: Guarded checks what it resolves to
        if not literal:
            raise self._refuse(url, f"{origin[1]} is not a public address")

    def _open(
        self, url: str, deadline: float, limit: float, headers: dict | None = None
    ) -> requests.Response:
        """A streamed GET of url, following redirects ourselves, each hop checked, all
        by the deadline (time.monotonic(); limit is its length in seconds, for errors)."""
        import requests

        for _hop in range(MAX_REDIRECTS + 1):
            self._check(url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _late(url, limit)
            try:
                with by_deadline(deadline):
                    resp = self.session.get(
                        url,
                        headers=headers,
                        stream=True,
                        allow_redirects=False,
                        timeout=min(self.timeout, remaining),
                    )
            except RefusedAddress as exc:
                raise self._refuse(url, str(exc)) from None
            except requests.RequestException as exc:
                if time.monotonic() >= deadline:
                    raise _late(url, limit) from None
                raise _as_error(exc, url) from None
            if resp.status_code not in _REDIRECTS or not resp.headers.get("Location"):
                return resp
            resp.close()
            url = urljoin(url, resp.headers["Location"])
        raise self._refuse(url, f"more than {MAX_REDIRECTS} redirects")

    def _body(
        self, resp: requests.Response, url: str, deadline: float, cap: int, limit: float
    ) -> Iterator[bytes]:
        """resp's body as it arrives, decoded in pieces of at most CHUNK bytes (urllib3
        bounds each decompression step, so a compression bomb never fills memory); raises
        UpstreamError past the deadline or past cap bytes after decoding."""
        from urllib3.exceptions import HTTPError as Urllib3Error

        size = 0
        connection = getattr(resp.raw, "connection", None)

        # Past the deadline the socket is shut, whatever a read waits for: urllib3's read1
        # keeps reading while a compressed body decodes to nothing (a byte at a time, each
        # inside the socket timeout), so checking the clock between reads is not enough.
        timer = threading.Timer(
            max(deadline - time.monotonic(), 0.0), getattr(connection, "_cut", lambda: None)
        )
        timer.daemon = True
        timer.start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _late(url, limit)
                sock = getattr(connection, "sock", None) or getattr(connection, "kept_sock", None)
                if sock is not None:
                    try:
                        sock.settimeout(min(self.timeout, remaining))  # each wait ends by the deadline
                    except OSError:  # closed already: the body is read from the buffer
                        pass
                try:
                    chunk = resp.raw.read1(CHUNK, decode_content=True)
                except (Urllib3Error, OSError) as exc:
                    if time.monotonic() >= deadline:
                        raise _late(url, limit) from None
                    raise _as_error(exc, url) from None
                if not chunk:
                    if time.monotonic() >= deadline:  # cut off, not ended: never a short body
                        raise _late(url, limit)
                    return
                size += len(chunk)
                if size > cap:
                    raise self._too_large(url, cap)
                yield chunk
        finally:
            timer.cancel()
            resp.close()

    def _refuse(self, url: str, reason: str) -> UpstreamError:
        log.warning("refused to fetch %s from the upstream: %s", redact_url(url), reason)
        return UpstreamError(f"refused to fetch {redact_url(url)}: {reason}", 502, "refused")

    def _too_large(self, url: str, cap: int) -> UpstreamError:
        log.warning("refused %s from the upstream: larger than %d bytes", redact_url(url), cap)
        return UpstreamError(
            f"{redact_url(url)} is larger than the limit ({cap} bytes); refused", 502, "too_large"
        )


def _known_codec(name: str | None) -> str:
    """The charset an upstream page names, if Python knows it; else UTF-8 (with "replace":
    a page in an unknown encoding is read as well as it can be, never a 500)."""
    try:
        return codecs.lookup(name).name if name else "utf-8"
    except LookupError:
        return "utf-8"


def _late(url: str, limit: float) -> UpstreamError:
    return UpstreamError(
        f"the upstream took longer than {limit:g} s for {redact_url(url)}; cut off", 504, "timeout"
    )


def _as_error(exc: Exception, url: str) -> UpstreamError:
    import requests
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(exc, (requests.Timeout, Urllib3Timeout, socket.timeout)):
        return UpstreamError(f"the upstream did not answer in time ({redact_url(url)})", 504, "timeout")
    return UpstreamError(f"cannot reach the upstream ({redact_url(url)}): {type(exc).__name__}")


# -- parsing into our own types ---------------------------------------------------------------


def parse_json(name: str, doc: dict, base: str) -> UpstreamProject:
    files = []
    for entry in doc.get("files", []):
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        yanked = entry.get("yanked", False)
        upload_time = entry.get("upload-time")
        hashes = entry.get("hashes")
        url = entry.get("url")
        made = _file(
            name,
            entry.get("filename"),
            urljoin(base, url) if isinstance(url, str) else None,
            hashes.get("sha256") if isinstance(hashes, dict) else None,
            requires_python=entry.get("requires-python"),
            metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
            yanked=bool(yanked),
            yanked_reason=yanked if isinstance(yanked, str) else "",
            size=entry.get("size"),
            upload_time=_timestamp(upload_time) if isinstance(upload_time, str) else None,
            provenance_url=urljoin(base, provenance)
            if isinstance(provenance := entry.get("provenance"), str)
            else None,
        )
        if made is not None:
            files.append(made)
    return _project(name, doc.get("name"), files, doc.get("versions"), doc.get("project-status"))


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.meta: dict[str, str | None] = {}  # the first of each <meta name=...>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []
        elif tag == "meta":
            found = dict(attrs)
            name = found.get("name")
            if name is not None:
                self.meta.setdefault(name, found.get("content"))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, "".join(self._text).strip()))
            self._open = None


def parse_html(name: str, text: str, base: str) -> UpstreamProject:
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    files = []
    for attrs, anchor_text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        algo, _, digest = fragment.partition("=")
        metadata = attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata") or ""
        meta_algo, _, meta_digest = metadata.partition("=")
        made = _file(
            name,
            anchor_text or url.rpartition("/")[2],
            url,
            digest if algo == "sha256" else None,
            requires_python=attrs.get("data-requires-python"),
            metadata_sha256=meta_digest if meta_algo == "sha256" else None,
            yanked="data-yanked" in attrs,
            yanked_reason=attrs.get("data-yanked") or "",
            size=None,
            upload_time=None,
            provenance_url=urljoin(base, provenance)
            if (provenance := attrs.get("data-provenance"))
            else None,
        )
        if made is not None:
            files.append(made)
    status = {
        "status": parser.meta.get("pypi:project-status"),
        "reason": parser.meta.get("pypi:project-status-reason"),
    }
    return _project(name, name, files, None, status)


_FACTS = (
    "requires_python",
    "metadata_sha256",
    "yanked",
    "yanked_reason",
    "size",
    "upload_time",
    "provenance_url",
)


def _project(
    name: str, display_name: object, files: list[UpstreamFile], versions: object, status: object = None
) -> UpstreamProject:
    """An UpstreamProject of checked files; the display name only if it is this name's,
    the versions only if they are strings (else those of the files); the PEP 792 status
    (`{"status": ..., "reason": ...}`) as project_status.from_index reads it."""
    if not (
        isinstance(display_name, str) and valid_name(display_name) and canonicalize_name(display_name) == name
    ):
        display_name = name
    if isinstance(versions, list) and all(isinstance(v, str) and len(v) <= NAME_MAX for v in versions):
        listed = tuple(versions)
    else:
        listed = tuple(sorted({f.version for f in files}, key=_version_key))
    marked = (
        project_status.from_index(status.get("status"), status.get("reason"))
        if isinstance(status, dict)
        else project_status.ACTIVE
    )
    return UpstreamProject(name, display_name, tuple(files), listed, marked)


def _file(
    project: str,
    filename: object,
    url: object,
    sha256: object,
    *,
    requires_python: object,
    metadata_sha256: object,
    yanked: object,
    yanked_reason: object,
    size: object,
    upload_time: object,
    provenance_url: object,
) -> UpstreamFile | None:
    """An UpstreamFile, or None for what cannot be served safely: no valid sha256 (its
    bytes could not be checked, and it names a folder of the cache), a filename that is
    not a distribution of this project or that holds a path separator, a URL that is not
    http(s). A metadata digest that is not a valid sha256 is dropped (no core-metadata), so
    is a provenance URL that is not http(s) (no provenance); the other facts are kept only
    if of the right type."""
    sha256, metadata_sha256 = normal_digest(sha256), normal_digest(metadata_sha256)
    if (
        sha256 is None
        or not isinstance(filename, str)
        or filename.startswith(".")
        or _NOT_IN_FILENAME.search(filename)
        or not _http_url(url)
    ):
        return None
    try:
        parsed_name, version = parse_filename(filename)
    except (InvalidDistribution, InvalidWheelFilename, InvalidSdistFilename, InvalidVersion, ValueError):
        return None
    if canonicalize_name(parsed_name) != project:
        return None
    return UpstreamFile(
        path=f"{PREFIX}{project}/{filename}",
        project=project,
        filename=filename,
        version=str(version),
        url=url,
        sha256=sha256,
        requires_python=requires_python if isinstance(requires_python, str) else None,
        metadata_sha256=metadata_sha256,
        yanked=yanked is True,
        yanked_reason=yanked_reason if isinstance(yanked_reason, str) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=float(upload_time)
        if isinstance(upload_time, (int, float)) and not isinstance(upload_time, bool)
        else None,
        provenance_url=provenance_url if _http_url(provenance_url) else None,
    )


def _http_url(url: object) -> TypeGuard[str]:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https")


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _version_key(text: str) -> tuple[int, Version | None, str]:
    from privindex.packages.index import parse_version

    try:
        return (0, parse_version(text), "")
    except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
        return (1, None, text)


def age_filter(project: UpstreamProject, min_age: float, now: float | None = None) -> UpstreamProject:
    """The project without files younger than min_age seconds (or of unknown age)."""
    if not min_age:
        return project
    cutoff = (now or time.time()) - min_age
    kept = tuple(f for f in project.files if f.upload_time is not None and f.upload_time <= cutoff)
    versions = tuple(v for v in project.versions if any(f.version == v for f in kept))
    return UpstreamProject(project.name, project.display_name, kept, versions, project.status)
