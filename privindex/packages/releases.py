"""What releases say about themselves, for people browsing: summaries, long descriptions,
URLs, classifiers; the project list and its search.

Core metadata is read once per file, when it is published or indexed: `distfile.read_facts`
parses it (`from_fields`; on a cold start in the index's worker processes) and the long
description is rendered there, once, by readme_renderer (which sanitises: no script, no
javascript: links); `record`, called by `index.save_facts` in the file's transaction, keeps
it. Pages only read rows; no request opens an archive or renders Markdown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from packaging.metadata import RawMetadata, parse_email
from packaging.version import Version

from privindex.db.connection import database, is_postgres
from privindex.db.models import ApiToken, AuditEvent, ProjectMeta, Release

log = logging.getLogger(__name__)

# A description past this size is shown as plain text: rendering it would stall an upload.
RENDER_LIMIT = 512 * 1024
PAGE_SIZE = 50


@dataclass(frozen=True)
class ReleaseInfo:
    summary: str
    description_html: str
    description_type: str
    urls: list[tuple[str, str]]
    classifiers: list[str]
    requires_python: str | None


def parse(raw: bytes) -> ReleaseInfo:
    """Read core metadata into what a project page shows (lenient: stored files are served
    even if an old tool wrote them oddly)."""
    return from_fields(parse_email(raw)[0])


def from_fields(fields: RawMetadata) -> ReleaseInfo:
    """parse(), from fields packaging's parse_email already read (distfile.read_facts reads
    them once, in the index's worker processes on a cold start)."""
    content_type = fields.get("description_content_type") or ""
    description = fields.get("description") or ""
    urls: list[tuple[str, str]] = []
    if fields.get("home_page"):
        urls.append(("Homepage", fields["home_page"]))
    urls += list((fields.get("project_urls") or {}).items())
    if fields.get("download_url"):
        urls.append(("Download", fields["download_url"]))
    return ReleaseInfo(
        summary=" ".join((fields.get("summary") or "").split())[:512],
        description_html=render_description(description, content_type),
        description_type=content_type.partition(";")[0].strip().lower(),
        urls=[
            (label.strip()[:100], url.strip())
            for label, url in urls
            if re.match(r"https?://[^\s]+$", url.strip(), re.IGNORECASE)
        ],
        classifiers=[c for c in fields.get("classifiers") or [] if isinstance(c, str)],
        requires_python=fields.get("requires_python") or None,
    )


@lru_cache(maxsize=16)  # a release's wheels (one per platform) carry one description
def render_description(text: str, content_type: str) -> str:
    """Sanitised HTML for a long description, by its Description-Content-Type (PyPI's
    default, reStructuredText, when none is given; plain text when rendering fails)."""
    if not text.strip() or text.strip() == "UNKNOWN":
        return ""
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    kind, _sep, params = content_type.partition(";")
    kind = kind.strip().lower() or "text/x-rst"
    html = None
    if len(text) <= RENDER_LIMIT:
        try:
            if kind == "text/markdown":
                variant = re.search(r"variant\s*=\s*(\w+)", params)
                html = readme_renderer.markdown.render(text, variant=variant.group(1) if variant else "GFM")
            elif kind == "text/x-rst":
                html = readme_renderer.rst.render(text)
        except Exception:  # a renderer bug must not refuse an upload; plain text is fine
            log.warning("could not render a description (%s); showing it as plain text", kind, exc_info=True)
            html = None
    return _fit_page(html if html is not None else readme_renderer.txt.render(text) or "")


def _fit_page(html: str) -> str:
    """Fit sanitised description HTML into a project page: its headings go under the
    page's own, each one level down (a README's h1 under the page's h1, its h2 under the
    page's section headings, and so on), the empty anchor links the renderers add to headings (links
    without a name for a screen reader) go, code blocks can be scrolled with the keyboard,
    and `<pre lang="python">` (not a language tag) becomes data-lang."""
    html = re.sub(r'<a [^>]*href="#[^"]*"[^>]*></a>', "", html)
    html = re.sub(r"<(/?)h([1-6])\b", lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 1, 6)}", html)
    html = re.sub(r'<pre lang="', '<pre data-lang="', html)
    return re.sub(r"<pre\b", '<pre tabindex="0"', html)


class LatestVersions:
    """Each project's latest release among many files recorded in one transaction, written
    to project_meta once per project (save) instead of once per file: a cold start's
    projects come a few files at a time, and each write updates the search index."""

    def __init__(self) -> None:
        self._best: dict[str, tuple[str, str, str]] = {}  # project -> version, display name, summary

    def note(self, project: str, version: str, display_name: str, summary: str) -> None:
        best = self._best.get(project)
        if best is None or rank(version) >= rank(best[0]):  # as _note_latest: the later of equals
            self._best[project] = (version, display_name, summary)

    def save(self) -> None:
        for project, (version, display_name, summary) in self._best.items():
            _note_latest(project, version, display_name, summary)
        self._best.clear()


def record(
    project: str,
    version: str,
    display_name: str,
    raw: bytes,
    info: ReleaseInfo | None = None,
    latest: LatestVersions | None = None,
) -> None:
    """Keep what this version's core metadata says (call in the file's transaction); the
    description is rendered only when the metadata differs from what is kept, unless `info`
    (what parse(raw) gives) was made already, off the writers' path. The project's latest
    release is noted at once, or in `latest` for the caller to save. Plain SQL,
    like index.save_facts: a cold start calls this once per file, and building peewee
    queries cost twenty times more than running them (25,000 files: 28 s to 3 s)."""
    p = database.param
    source = hashlib.sha256(raw).hexdigest()
    kept = database.execute_sql(
        f"SELECT source_sha256, summary FROM release WHERE project = {p} AND version = {p}",
        (project, version),
    ).fetchone()
    summary = kept[1] if kept else ""
    if kept is None or kept[0] != source:
        info = info or parse(raw)
        values = (
            info.summary,
            info.description_html,
            info.description_type,
            source,
            json.dumps(info.urls),
            json.dumps(info.classifiers),
            info.requires_python,
            time.time(),
        )
        if kept is None:
            database.execute_sql(
                "INSERT INTO release (summary, description_html, description_type, source_sha256, urls, "
                "classifiers, requires_python, recorded_at, project, version) "
                f"VALUES ({', '.join([p] * 10)})",
                values + (project, version),
            )
        else:
            database.execute_sql(
                f"UPDATE release SET summary = {p}, description_html = {p}, description_type = {p}, "
                f"source_sha256 = {p}, urls = {p}, classifiers = {p}, requires_python = {p}, "
                f"recorded_at = {p} "
                f"WHERE project = {p} AND version = {p}",
                values + (project, version),
            )
        summary = info.summary
    if latest is None:
        _note_latest(project, version, display_name, summary)
    else:
        latest.note(project, version, display_name, summary)


@lru_cache(maxsize=4096)  # a cold start ranks every file's version, most of them alike
def rank(version: str) -> tuple[bool, Version]:
    """Finals before pre-releases, as PyPI shows the latest version."""
    try:
        parsed = Version(version)
    except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
        return False, Version("0")
    return not (parsed.is_prerelease or parsed.is_devrelease), parsed


def _note_latest(project: str, version: str, display_name: str, summary: str) -> None:
    p = database.param
    meta = database.execute_sql(
        f"SELECT latest_version, summary, display_name FROM project_meta WHERE name = {p}", (project,)
    ).fetchone()
    if meta is None:
        database.execute_sql(
            "INSERT INTO project_meta (name, display_name, latest_version, summary) "
            f"VALUES ({p}, {p}, {p}, {p})",
            (project, display_name, version, summary),
        )
    elif rank(version) >= rank(meta[0]) and tuple(meta) != (version, summary, display_name):
        database.execute_sql(
            f"UPDATE project_meta SET latest_version = {p}, summary = {p}, display_name = {p} "
            f"WHERE name = {p}",
            (version, summary, display_name, project),
        )


def files_removed(project: str) -> None:
    """Files of the project were deleted: its latest release is worked out again from what
    is left, and a project with no file left no longer shows in the list or the search."""
    from privindex.db.models import DistFile

    versions = {v for (v,) in DistFile.select(DistFile.version).where(DistFile.project == project).tuples()}
    Release.delete().where(Release.project == project, Release.version.not_in(list(versions))).execute()
    if not versions:
        ProjectMeta.delete().where(ProjectMeta.name == project).execute()
        return
    latest = max(versions, key=rank)
    kept = Release.get_or_none(Release.project == project, Release.version == latest)
    ProjectMeta.update(latest_version=latest, summary=kept.summary if kept else "").where(
        ProjectMeta.name == project
    ).execute()


def backfill(read: Callable[[str], bytes | None]) -> int:
    """Fill in releases for files indexed before this version kept them: a wheel's METADATA
    is on record; an sdist's is read (`read(path)`) once, at start. Returns how many."""
    rows = database.execute_sql(
        "SELECT d.path, d.project, d.version, d.name, d.metadata FROM dist_file d "
        "LEFT JOIN release r ON r.project = d.project AND r.version = d.version "
        "WHERE r.id IS NULL ORDER BY d.path"
    ).fetchall()
    done: set[tuple[str, str]] = set()
    with database.atomic():
        for path, project, version, name, metadata in rows:
            if (project, version) in done:
                continue
            raw = bytes(metadata) if metadata is not None else read(path)  # bytea: a memoryview
            if raw is None:
                continue
            record(project, version, name, raw)
            done.add((project, version))
    return len(done)


# -- reading, for pages ---------------------------------------------------------------------


def releases(project: str) -> dict[str, Release]:
    return {r.version: r for r in Release.select().where(Release.project == project)}


def release(project: str, version: str) -> Release | None:
    """What one version says about itself (its description), None if nothing was kept."""
    return Release.get_or_none(Release.project == project, Release.version == version)


def summaries(names: Iterable[str]) -> dict[str, ProjectMeta]:
    names = list(names)
    if not names:
        return {}
    return {m.name: m for m in ProjectMeta.select().where(ProjectMeta.name.in_(names))}


def search(text: str, limit: int = PAGE_SIZE, offset: int = 0) -> tuple[list[ProjectMeta], int]:
    """Projects whose name or summary holds every word of text (word prefixes), best
    first: (a page of them, how many in all). FTS5 (the project_search table) on SQLite,
    a tsvector on PostgreSQL; each word typed is a prefix term passed as a parameter, so
    user text never reaches either query syntax."""
    words = re.findall(r"\w+", text.lower())[:10]
    if not words:
        return [], 0
    if is_postgres(database):  # a generated tsvector column (migrations.v7_browse)
        query = " & ".join(f"{w}:*" for w in words)
        where = "FROM project_meta WHERE search @@ to_tsquery('simple', %s)"
        total = database.execute_sql(f"SELECT count(*) {where}", (query,)).fetchone()[0]
        ids = [
            row[0]
            for row in database.execute_sql(
                f"SELECT id {where} ORDER BY ts_rank(search, to_tsquery('simple', %s)) DESC, name "
                "LIMIT %s OFFSET %s",
                (query, query, limit, offset),
            )
        ]
    else:
        query = fts_query(text)
        total = database.execute_sql(
            "SELECT count(*) FROM project_search WHERE project_search MATCH ?", (query,)
        ).fetchone()[0]
        ids = [
            row[0]
            for row in database.execute_sql(
                "SELECT rowid FROM project_search WHERE project_search MATCH ? "
                "ORDER BY bm25(project_search, 10.0, 1.0) LIMIT ? OFFSET ?",
                (query, limit, offset),
            )
        ]
    found = {m.id: m for m in ProjectMeta.select().where(ProjectMeta.id.in_(ids))} if ids else {}
    return [found[i] for i in ids if i in found], total


def fts_query(text: str) -> str:
    """A safe FTS5 query: each word of text as a quoted prefix, all required (user input
    never reaches FTS5's query syntax)."""
    words = re.findall(r"\w+", text.lower())[:10]
    return " AND ".join(f'"{w}"*' for w in words)


@dataclass(frozen=True)
class Upload:
    who: str | None  # username, None when a command put the file there
    token: str | None  # the description of the token it came with ("" if none was given)
    via: str  # "upload", "cli" or "web"
    when: float


def uploads(project: str) -> dict[str, Upload]:
    """Who put each file of the project there and how, from the audit trail."""
    events = (
        AuditEvent.select(
            AuditEvent.subject, AuditEvent.actor, AuditEvent.token_id, AuditEvent.details, AuditEvent.ts
        )
        .where(
            AuditEvent.project == project, AuditEvent.tag.in_(["file:add", "file:overwrite", "file:replace"])
        )
        .order_by(AuditEvent.id)
    )
    token_ids = set()
    result: dict[str, tuple] = {}
    for e in events:
        via = json.loads(e.details or "{}").get("via", "")
        result[e.subject] = (e.actor, e.token_id, via, e.ts)
        if e.token_id:
            token_ids.add(e.token_id)
    descriptions = (
        {
            t.id: t.description
            for t in ApiToken.select(ApiToken.id, ApiToken.description).where(
                ApiToken.id.in_(list(token_ids))
            )
        }
        if token_ids
        else {}
    )
    out = {}
    for filename, (actor, token_id, via, ts) in result.items():
        token = descriptions.get(token_id, "") if token_id else None
        out[filename] = Upload(actor, token, via or "web", ts)
    return out


def json_info(raw: bytes | None) -> dict:
    """The fields of the JSON API's `info` that a release's core metadata gives, as the
    public index spells them (raw values: a JSON reader renders nothing); all empty when
    no metadata is at hand (a name only the upstream has: its pages carry none)."""
    fields: dict = parse_email(raw)[0] if raw else {}  # type: ignore[assignment]
    keywords = fields.get("keywords")
    platforms = fields.get("platforms")
    return {
        "author": fields.get("author"),
        "author_email": fields.get("author_email"),
        "classifiers": fields.get("classifiers") or [],
        "description": fields.get("description") or "",
        "description_content_type": fields.get("description_content_type"),
        "download_url": fields.get("download_url"),
        "dynamic": fields.get("dynamic"),
        "home_page": fields.get("home_page"),
        "keywords": ",".join(keywords) if keywords else None,
        "license": fields.get("license"),
        "license_expression": fields.get("license_expression"),
        "license_files": fields.get("license_files"),
        "maintainer": fields.get("maintainer"),
        "maintainer_email": fields.get("maintainer_email"),
        "platform": ",".join(platforms) if platforms else None,
        "project_urls": fields.get("project_urls") or None,
        "provides_extra": fields.get("provides_extra"),
        "requires_dist": fields.get("requires_dist"),
        "requires_python": fields.get("requires_python"),
        "summary": fields.get("summary"),
    }
