"""The Simple API's pages as bytes: PEP 503 HTML and PEP 691 JSON for `/simple/` and a
project. One renderer for the live answer (api/simple.py) and the pre-rendered files
(static_pages.py), so a file nginx serves is byte for byte what privindex would answer.
Standards: PEP 629 (repository-version meta), PEP 592 (yanked), PEP 658/714 (core
metadata), PEP 700 (versions, size, upload-time), PEP 740 (provenance URLs), PEP 752
(`namespaces`), PEP 792 (project status: a quarantined project lists no files).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Container, Iterable
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from privindex.packages.index import IndexedFile, Project
from privindex.packages.project_status import ACTIVE, ProjectStatus
from privindex.packages.provenance import SUFFIX as PROVENANCE_SUFFIX

API_VERSION = "1.5"  # PEP 752's; 1.2 (PEP 708) adds only optional keys, 1.3 PEP 740, 1.4 PEP 792
V1_HTML = "application/vnd.pypi.simple.v1+html"
V1_JSON = "application/vnd.pypi.simple.v1+json"


_QUOTE_FREE = re.compile(r"[A-Za-z0-9_.~/-]*")  # what quote() leaves as it is


def _upload_time(timestamp: float) -> str:
    """PEP 700's upload-time, always with microseconds (isoformat is C; strftime is slower)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def file_url(f: IndexedFile) -> str:
    """Relative to /simple/<project>/, so the index also works under a path prefix."""
    path = f.path
    return "../../packages/" + (path if _QUOTE_FREE.fullmatch(path) else quote(path))


def render_root(projects: Iterable[tuple[str, str]], fmt: str) -> bytes:
    if fmt == "json":
        doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": d} for _n, d in projects]}
        return json.dumps(doc, separators=(",", ":")).encode()
    links = "".join(f'    <a href="{quote(n)}/">{escape(d)}</a><br>\n' for n, d in projects)
    return _html("Simple index", links)


def render_project(
    project: Project,
    fmt: str,
    status: ProjectStatus = ACTIVE,
    namespaces: list[dict] | None = None,
    attested: Container[str] = (),
) -> bytes:
    """The project's page; a quarantined project's lists no files (PEP 792). A file has a
    provenance URL (PEP 740) if the upstream lists one or its path is in attested (local
    files uploaded with attestations)."""
    listed = project.files if status.offers_files else ()

    def provenance_url(f: IndexedFile) -> str | None:
        has = getattr(f, "provenance_url", None) or f.path in attested
        return file_url(f) + PROVENANCE_SUFFIX if has else None

    if fmt == "json":
        files = []
        for f in listed:
            entry: dict = {"filename": f.filename, "url": file_url(f), "hashes": {"sha256": f.sha256}}
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
            entry["core-metadata"] = entry["dist-info-metadata"] = metadata
            entry["yanked"] = (f.yanked_reason or True) if f.yanked else False
            if f.size is not None:  # an upstream page in HTML does not say
                entry["size"] = f.size
            if f.upload_time is not None:
                entry["upload-time"] = _upload_time(f.upload_time)
            if provenance := provenance_url(f):
                entry["provenance"] = provenance
            files.append(entry)
        doc = {
            "meta": {"api-version": API_VERSION},
            "project-status": {
                "status": status.status.value,
                **({"reason": status.reason} if status.reason else {}),
            },
            "name": project.name,
            "versions": list(project.versions),
            "files": files,
            "namespaces": namespaces,
        }
        return json.dumps(doc, separators=(",", ":")).encode()
    links = []
    for f in listed:  # every value escaped, local or upstream: none may end its attribute
        attrs = ""
        if f.requires_python:
            attrs += f' data-requires-python="{escape(f.requires_python)}"'
        if f.metadata_sha256:
            digest = escape(f"sha256={f.metadata_sha256}")
            attrs += f' data-dist-info-metadata="{digest}" data-core-metadata="{digest}"'
        if f.yanked:
            attrs += f' data-yanked="{escape(f.yanked_reason)}"'
        if provenance := provenance_url(f):
            attrs += f' data-provenance="{escape(provenance)}"'
        href = escape(f"{file_url(f)}#sha256={f.sha256}")
        links.append(f'    <a href="{href}"{attrs}>{escape(f.filename)}</a><br>\n')
    return _html(f"Links for {escape(project.display_name)}", "".join(links), _status_meta(status))


def _status_meta(status: ProjectStatus) -> str:
    """PEP 792's meta tags, left out for a plain active project (as the PEP allows)."""
    if status is ACTIVE:
        return ""
    tags = f'    <meta name="pypi:project-status" content="{status.status.value}">\n'
    if status.reason:
        tags += f'    <meta name="pypi:project-status-reason" content="{escape(status.reason)}">\n'
    return tags


def _html(title: str, body: str, meta: str = "") -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n{meta}'
        f"    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
        f"{body}  </body>\n</html>\n"
    ).encode()


def attested(store_root: str, files: Iterable[object]) -> frozenset[str]:
    """The paths of the local files that have a provenance object beside them."""
    return frozenset(
        f.path
        for f in files
        if isinstance(f, IndexedFile) and os.path.isfile(os.path.join(store_root, f.path + PROVENANCE_SUFFIX))
    )


NOT_ATTESTED: frozenset[str] = frozenset()  # one object for the many projects without any


def attested_project(store_root: str, project: Project) -> frozenset[str]:
    """attested() of a Project the index holds, found once and kept on it: a page cache
    miss would otherwise stat every file (a third of a JSON page's cost at 20,000
    projects). It cannot change under one Project: the index replaces a project's object
    whenever its files change, and a provenance object is written before its file is
    listed and removed with it (publishing.py, withdrawal.py)."""
    found = project.attested
    if found is None:
        found = attested(store_root, project.files) or NOT_ATTESTED
        object.__setattr__(project, "attested", found)  # a memo on a frozen object
    return found
