"""The cooldown (upstream_min_age) and its exemptions: an admin lets a named project past it
at once, for a security fix, until a date or for good.

Exemptions are rows in `upstream_exemption`, audited; the read path never queries them: the
cache holds them in memory (`UpstreamCache.exemptions`), reloaded with the claimed names
(source_rules.Sources.reload, which the watcher runs when another connection committed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from privindex.db.connection import database
from privindex.db.models import UpstreamExemption
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.upstream.client import UpstreamProject

Exemptions = dict[str, float | None]  # name -> until (Unix time; None: for good)


@dataclass(frozen=True)
class Hidden:
    """An upstream version the cooldown hides: when it was published, when it shows."""

    version: str
    published: float
    visible_from: float


def exempt(name: str, until: float | None, ctx: audit.Context) -> str:
    """Let name past the cooldown now (until a time, or for good); returns the normalized name."""
    normalized = canonicalize_name(name)
    with database.atomic():
        UpstreamExemption.delete().where(UpstreamExemption.name == normalized).execute()
        UpstreamExemption.create(name=normalized, until=until, created_at=time.time())
        audit.record(Tag.UPSTREAM_EXEMPT, ctx, subject=normalized, until=until)
    return normalized


def unexempt(name: str, ctx: audit.Context) -> bool:
    """The cooldown applies to name again; False if it had no exemption."""
    normalized = canonicalize_name(name)
    with database.atomic():
        removed = UpstreamExemption.delete().where(UpstreamExemption.name == normalized).execute()
        if removed:
            audit.record(Tag.UPSTREAM_UNEXEMPT, ctx, subject=normalized)
    return bool(removed)


def load() -> Exemptions:
    return dict(UpstreamExemption.select(UpstreamExemption.name, UpstreamExemption.until).tuples())


def is_exempt(exemptions: Exemptions, name: str, now: float) -> bool:
    if name not in exemptions:
        return False
    until = exemptions[name]
    return until is None or now < until


def hidden(project: UpstreamProject, min_age: float, now: float) -> list[Hidden]:
    """The versions of project's page that min_age hides now, newest first (the page lists
    versions oldest first); a version whose files all lack an upload time never shows."""
    if not min_age:
        return []
    cutoff = now - min_age
    shown = {f.version for f in project.files if f.upload_time is not None and f.upload_time <= cutoff}
    first: dict[str, float] = {}  # a hidden version's first file
    for file in project.files:
        if file.version not in shown and file.upload_time is not None:
            first[file.version] = min(first.get(file.version, file.upload_time), file.upload_time)
    return [Hidden(v, published, published + min_age) for v, published in first.items()][::-1]
