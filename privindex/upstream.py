"""The upstream index (e.g. PyPI): an HTTP client and its pages parsed into our own types.

A project page is fetched as PEP 691 JSON when the upstream offers it, else as PEP 503
HTML (parsed with the standard library's HTML parser, never with regular expressions).
What comes back is an `UpstreamProject` whose files carry everything the upstream said
(sha256, requires-python, yanked and its reason, core-metadata, size, upload-time), and
whose `path` makes simple.py's file URL point at this server, never at the upstream.
Files without a sha256 are dropped: nothing could verify their bytes.

requests is used for its proxy handling (HTTPS_PROXY, NO_PROXY from the environment),
CA bundles, timeouts and streaming; it is the one module that speaks to the upstream.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urldefrag, urljoin

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name
from packaging.version import InvalidVersion

from privindex import __version__
from privindex.distfile import InvalidDistribution, parse_filename

if TYPE_CHECKING:  # requests is imported when an upstream is set: 30 ms of every start otherwise
    import requests

log = logging.getLogger(__name__)

PREFIX = ".upstream/"  # file paths under /packages/; a store never lists a dot-folder
ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
          "text/html;q=0.1")
CHUNK = 256 * 1024


class UpstreamError(Exception):
    """The upstream failed or timed out; status is what we answer (502 or 504)."""

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class UpstreamFile:
    """One upstream file, shaped like index.IndexedFile where simple.py renders it."""

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

    @property
    def metadata_url(self) -> str:
        return self.url + ".metadata"


@dataclass(frozen=True, slots=True)
class UpstreamProject:
    name: str  # normalized
    display_name: str
    files: tuple[UpstreamFile, ...]
    versions: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "display_name": self.display_name,
                           "versions": list(self.versions), "files": [asdict(f) for f in self.files]})

    @classmethod
    def from_json(cls, text: str) -> "UpstreamProject":
        doc = json.loads(text)
        return cls(doc["name"], doc["display_name"], tuple(UpstreamFile(**f) for f in doc["files"]),
                   tuple(doc["versions"]))


class Upstream:
    """The upstream's client. One requests.Session (pooled connections, proxies from the
    environment); every call has a timeout, so nothing hangs."""

    def __init__(self, url: str, timeout: float, ca_bundle: str = ""):
        self.url = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        import requests

        self.session = requests.Session()  # trust_env: HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
        self.session.headers["User-Agent"] = f"privindex/{__version__} (pull-through cache)"
        if ca_bundle:
            self.session.verify = ca_bundle

    def project_url(self, name: str) -> str:
        return urljoin(self.url, f"{name}/")

    def fetch_project(self, name: str) -> UpstreamProject | None:
        """The upstream's page for a normalized name; None if it has no such project."""
        import requests

        url = self.project_url(name)
        with self._get(url, headers={"Accept": ACCEPT}) as resp:
            if resp.status_code in (404, 410):
                return None
            if resp.status_code != 200:
                raise UpstreamError(f"the upstream answered {resp.status_code} for {url}")
            try:
                body = resp.content
            except requests.RequestException as exc:
                raise _as_error(exc, url) from None
            kind = resp.headers.get("Content-Type", "").split(";")[0].strip()
            base = resp.url or url
        try:
            if kind.endswith("+json") or kind == "application/json":
                return parse_json(name, json.loads(body), base)
            return parse_html(name, body.decode(resp.encoding or "utf-8", "replace"), base)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"the upstream's page for {name} cannot be read: {exc}") from None

    def stream(self, url: str) -> tuple[int | None, Iterator[bytes], "requests.Response"]:
        """(Content-Length or None, chunks, response to close) of a file on the upstream."""
        import requests

        resp = self._get(url, stream=True)
        if resp.status_code != 200:
            resp.close()
            raise UpstreamError(f"the upstream answered {resp.status_code} for {url}")
        length = resp.headers.get("Content-Length")

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_content(CHUNK)
            except requests.RequestException as exc:
                raise _as_error(exc, url) from None

        return (int(length) if length and length.isdigit() else None), chunks(), resp

    def get_bytes(self, url: str, limit: int = 16 * 1024 * 1024) -> bytes:
        length, chunks, resp = self.stream(url)
        with resp:
            data = bytearray()
            for chunk in chunks:
                data += chunk
                if len(data) > limit:
                    raise UpstreamError(f"{url} is larger than {limit} bytes")
        return bytes(data)

    def reachable(self) -> str | None:
        """None if the upstream answers its root URL, else why not (for the start-up line)."""
        try:
            with self._get(self.url, stream=True, timeout=min(self.timeout, 5.0)) as resp:
                return None if resp.status_code < 500 else f"it answered {resp.status_code}"
        except UpstreamError as exc:
            return str(exc)

    def _get(self, url: str, timeout: float | None = None, **kwargs) -> requests.Response:
        import requests

        try:
            return self.session.get(url, timeout=timeout or self.timeout, allow_redirects=True, **kwargs)
        except requests.RequestException as exc:
            raise _as_error(exc, url) from None


def _as_error(exc: Exception, url: str) -> UpstreamError:
    import requests

    if isinstance(exc, requests.Timeout):
        return UpstreamError(f"the upstream did not answer in time ({url})", 504)
    return UpstreamError(f"cannot reach the upstream ({url}): {type(exc).__name__}")


# -- parsing into our own types ---------------------------------------------------------------

def parse_json(name: str, doc: dict, base: str) -> UpstreamProject:
    files = []
    for entry in doc.get("files", []):
        metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
        yanked = entry.get("yanked", False)
        upload_time = entry.get("upload-time")
        made = _file(
            name, entry["filename"], urljoin(base, entry["url"]), entry.get("hashes", {}).get("sha256"),
            requires_python=entry.get("requires-python"),
            metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
            yanked=bool(yanked), yanked_reason=yanked if isinstance(yanked, str) else "",
            size=entry.get("size") if isinstance(entry.get("size"), int) else None,
            upload_time=_timestamp(upload_time) if isinstance(upload_time, str) else None,
        )
        if made is not None:
            files.append(made)
    versions = doc.get("versions")
    if not isinstance(versions, list):
        versions = sorted({f.version for f in files})
    return UpstreamProject(name, doc.get("name", name), tuple(files), tuple(str(v) for v in versions))


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

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
        made = _file(name, anchor_text or url.rpartition("/")[2], url, digest if algo == "sha256" else None,
                     requires_python=attrs.get("data-requires-python"),
                     metadata_sha256=meta_digest if meta_algo == "sha256" else None,
                     yanked="data-yanked" in attrs, yanked_reason=attrs.get("data-yanked") or "",
                     size=None, upload_time=None)
        if made is not None:
            files.append(made)
    return UpstreamProject(name, name, tuple(files), tuple(sorted({f.version for f in files}, key=_version_key)))


def _file(project: str, filename: str, url: str, sha256: str | None, **facts) -> UpstreamFile | None:
    """An UpstreamFile, or None for what cannot be served safely: no sha256 (its bytes
    could not be checked), a filename that is not a distribution of this project, or one
    that would leave its folder."""
    if not sha256 or len(sha256) != 64 or "/" in filename or filename.startswith("."):
        return None
    try:
        parsed_name, version = parse_filename(filename)
    except (InvalidDistribution, InvalidWheelFilename, InvalidSdistFilename, InvalidVersion, ValueError):
        return None
    if canonicalize_name(parsed_name) != project:
        return None
    return UpstreamFile(path=f"{PREFIX}{project}/{filename}", project=project, filename=filename,
                        version=str(version), url=url, sha256=sha256.lower(), **facts)


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _version_key(text: str):
    from privindex.index import parse_version

    try:
        return (0, parse_version(text), "")
    except InvalidVersion:
        return (1, None, text)


def age_filter(project: UpstreamProject, min_age: float, now: float | None = None) -> UpstreamProject:
    """The project without files younger than min_age seconds (or of unknown age)."""
    if not min_age:
        return project
    cutoff = (now or time.time()) - min_age
    kept = tuple(f for f in project.files if f.upload_time is not None and f.upload_time <= cutoff)
    versions = tuple(v for v in project.versions if any(f.version == v for f in kept))
    return UpstreamProject(project.name, project.display_name, kept, versions)
