"""Project status markers (PEP 792): `active`, `archived`, `quarantined`, `deprecated`, with
an optional free-text reason.

What each means here, as the PEP says: `archived` and `quarantined` take no uploads;
`quarantined` offers no files (its pages list none, its files are not served) until an
admin lifts it; `deprecated` is `active` with a warning. Owners archive and deprecate,
admins set anything (accounts/permissions.py). The read path never asks the database:
upstream/source_rules.py keeps the statuses in memory, reloaded after each change.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from privindex.accounts.permissions import UploadDenied, can_set_status, project_exists
from privindex.accounts.users import AccountError
from privindex.db.connection import database
from privindex.db.models import Project
from privindex.i18n import _
from privindex.notify import events
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.ops.logs import escape_controls
from privindex.packages.projects import ensure_project

log = logging.getLogger(__name__)

REASON_MAX = 400


class Status(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    QUARANTINED = "quarantined"
    DEPRECATED = "deprecated"


@dataclass(frozen=True, slots=True)
class ProjectStatus:
    status: Status
    reason: str = ""

    @property
    def takes_uploads(self) -> bool:
        return self.status not in (Status.ARCHIVED, Status.QUARANTINED)

    @property
    def offers_files(self) -> bool:
        return self.status is not Status.QUARANTINED


ACTIVE = ProjectStatus(Status.ACTIVE)


def _clean_reason(reason: str) -> str:
    """One line of at most REASON_MAX characters: it goes into meta tags and into the status
    line of a refused upload."""
    return escape_controls(" ".join(reason.split()))[:REASON_MAX]


def from_index(status: object, reason: object = None) -> ProjectStatus:
    """An index's marker as our type, for what another index says (the upstream): a status
    this PEP does not define, or none, is `active` ("if no status is explicitly noted, the
    project is considered to be in the active state"); a reason that is not text is dropped."""
    try:
        marker = Status(status) if isinstance(status, str) else None
    except ValueError:
        marker = None
    if marker is None:
        if status is not None:
            log.info("ignoring an unknown project status %r (treated as active)", str(status)[:40])
        return ACTIVE
    text = _clean_reason(reason) if isinstance(reason, str) else ""
    return ACTIVE if marker is Status.ACTIVE and not text else ProjectStatus(marker, text)


def parse(status: str, reason: str = "") -> ProjectStatus:
    """What an owner or admin chose (web form, CLI): refused with a message if it is not one
    of the four statuses or the reason is too long."""
    try:
        marker = Status(status.strip().lower())
    except ValueError:
        raise AccountError(
            _("a status is one of: %(statuses)s", statuses=", ".join(s.value for s in Status))
        ) from None
    if len(reason) > REASON_MAX:
        raise AccountError(_("the reason is longer than %(max)d characters", max=REASON_MAX))
    return ProjectStatus(marker, _clean_reason(reason))


def of_row(project: Project) -> ProjectStatus:
    return from_index(project.status, project.status_reason)


def current(name: str) -> ProjectStatus:
    """The status on record (the database, for writers and pages; the read path uses memory)."""
    project = Project.get_or_none(Project.name == canonicalize_name(name))
    return ACTIVE if project is None else of_row(project)


def non_active() -> dict[str, ProjectStatus]:
    """Every project not plainly `active`, by normalized name (one small query)."""
    rows = Project.select(Project.name, Project.status, Project.status_reason).where(
        (Project.status != Status.ACTIVE.value) | (Project.status_reason != "")
    )
    return {p.name: of_row(p) for p in rows}


def check_takes_uploads(name: str) -> None:
    """Raise UploadDenied for an archived or quarantined project (within the caller's
    transaction, so a status set meanwhile is seen)."""
    status = current(name)
    if status.takes_uploads:
        return
    if status.status is Status.ARCHIVED:
        message = (
            f"The project {name!r} is archived and takes no new uploads; an owner can make it active again"
        )
    else:
        message = (
            f"The project {name!r} is quarantined and takes no uploads until an admin lifts the quarantine"
        )
    raise UploadDenied(message + (f" (reason: {status.reason})" if status.reason else ""))


def set_status(name: str, new: ProjectStatus, ctx: audit.Context) -> bool:
    """Set a project's status, audited as project:status. ctx.actor None is the operator
    (the command line); a user needs the right (accounts/permissions.py). False if
    nothing changed. The caller reloads the in-memory statuses (Sources.reload)."""
    name = canonicalize_name(name)
    if not project_exists(name):
        raise AccountError(_("there is no project '%(project)s' (see: privindex project list)", project=name))
    with database.atomic():
        project = ensure_project(name, ctx)
        old = of_row(project)
        if ctx.actor is not None and not can_set_status(ctx.actor, name, old.status.value, new.status.value):
            raise AccountError(
                _("only an admin may quarantine a project or lift a quarantine")
                if Status.QUARANTINED in (old.status, new.status)
                else _("only an owner of the project or an admin may do that")
            )
        if old == new:
            return False
        Project.update(status=new.status.value, status_reason=new.reason).where(
            Project.id == project.id
        ).execute()
        audit.record(
            Tag.PROJECT_STATUS,
            ctx,
            subject=name,
            project=name,
            status=new.status.value,
            old_status=old.status.value,
            reason=new.reason,
        )
        events.emit(
            "project.status_changed",
            name,
            ctx,
            status=new.status.value,
            old_status=old.status.value,
            reason=new.reason,
        )
    return True
