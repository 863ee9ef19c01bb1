"""Projects, roles, and who may upload what.

A project row exists once someone has rights on it. Projects that exist only as files
dropped into the store have no owner: only admins may upload to them until an admin
assigns one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from peewee import fn

from privindex import audit
from privindex.audit import Tag
from privindex.accounts import AccountError, TokenAuth, get_user, project_exists, user_role
from privindex.db import database
from privindex.i18n import _
from privindex.models import DistFile, Project, ProjectRole, User

ROLES = ("owner", "maintainer")


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    owners: list[str]
    maintainers: list[str]
    files: int


def list_projects(user: User | None = None, name: str | None = None) -> list[ProjectInfo]:
    """Every project (with rights or with files), sorted; only the user's when user is
    given, only the named one when name is given."""
    roles: dict[str, dict[str, list[str]]] = {}
    query = (ProjectRole.select(ProjectRole, Project, User).join(Project).switch(ProjectRole).join(User)
             .order_by(User.username))
    counts = DistFile.select(DistFile.project, fn.COUNT(DistFile.id)).group_by(DistFile.project)
    names = Project.select(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
        counts = counts.where(DistFile.project == name)
        names = names.where(Project.name == name)
    for role in query:
        roles.setdefault(role.project.name, {"owner": [], "maintainer": []})[role.role].append(role.user.username)
    file_counts = dict(counts.tuples())
    result = []
    for project in sorted(set(file_counts) | {p.name for p in names}):
        r = roles.get(project, {"owner": [], "maintainer": []})
        if user is not None and user.username not in r["owner"] + r["maintainer"]:
            continue
        result.append(ProjectInfo(project, r["owner"], r["maintainer"], file_counts.get(project, 0)))
    return result


def ensure_project(name: str, ctx: audit.Context) -> Project:
    project = Project.get_or_none(Project.name == name)
    if project is None:
        project = Project.create(name=name, created_at=time.time())
        audit.record(Tag.PROJECT_CREATE, ctx, subject=name, project=name)
    return project


def set_role(project_name: str, username: str, role: str, ctx: audit.Context) -> None:
    """Give username the role on the project (changing a role they already have)."""
    if role not in ROLES:
        raise AccountError(_("a role is one of: %(roles)s", roles=", ".join(ROLES)))
    name = canonicalize_name(project_name)
    if not project_exists(name):
        raise AccountError(_("there is no project '%(project)s' (see: privindex project list)", project=name))
    user = get_user(username)
    with database.atomic():
        project = ensure_project(name, ctx)
        current = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user)
        if current is not None and current.role == role:
            return
        if current is not None:
            if current.role == "owner" and _owner_count(project) == 1:
                raise AccountError(_LAST_OWNER(user, name))
            current.role = role
            current.save()
        else:
            ProjectRole.create(project=project, user=user, role=role)
        audit.record(Tag.ROLE_ADD, ctx, subject=user.username, project=name, role=role)


def remove_role(project_name: str, username: str, ctx: audit.Context, role: str | None = None) -> None:
    name = canonicalize_name(project_name)
    user = get_user(username)
    project = Project.get_or_none(Project.name == name)
    current = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user) if project else None
    if current is None or (role is not None and current.role != role):
        raise AccountError(_("'%(user)s' is not %(role)s of '%(project)s'", user=user.username,
                             role=_("a maintainer") if role == "maintainer" else _("an owner") if role
                             else _("a member"), project=name))
    if current.role == "owner" and _owner_count(project) == 1:
        raise AccountError(_LAST_OWNER(user, name))
    with database.atomic():
        current.delete_instance()
        audit.record(Tag.ROLE_REMOVE, ctx, subject=user.username, project=name, role=current.role)


def _LAST_OWNER(user: User, name: str) -> str:
    return _("'%(user)s' is the last owner of '%(project)s'; add another owner first",
             user=user.username, project=name)


def _owner_count(project: Project) -> int:
    return ProjectRole.select().where(ProjectRole.project == project, ProjectRole.role == "owner").count()


class UploadDenied(Exception):
    """The token may not upload to this project; the message says why and what to do."""


def check_upload(auth: TokenAuth, name: str) -> None:
    """Raise UploadDenied unless the token may upload to the project; changes nothing.

    The first upload with a token scoped to the whole user creates the project (see
    claim_project); a project-scoped token cannot create projects.
    """
    user, token = auth.user, auth.token
    if token.read_only:
        raise UploadDenied("This API token is read-only; create an upload token")
    scope = auth.scope()
    if scope is not None and name not in scope:
        raise UploadDenied(f"This API token is not valid for project {name!r}")
    if user.is_admin:
        return
    project = Project.get_or_none(Project.name == name)
    if project is None:
        if DistFile.select().where(DistFile.project == name).exists():
            raise UploadDenied(f"The project {name!r} has no owner yet; ask an admin to assign one")
        return
    if not user_role(user, project):
        raise UploadDenied(f"The user {user.username!r} isn't allowed to upload to project {name!r}")


def claim_project(auth: TokenAuth, name: str, ctx: audit.Context) -> Project:
    """The project row for an accepted upload; a brand-new project gets the uploader as owner.

    Call inside the (immediate) transaction that publishes the file, so a failed publish
    rolls it back and a project created meanwhile by someone else is checked again.
    """
    check_upload(auth, name)
    project = Project.get_or_none(Project.name == name)
    if project is not None:
        return project
    had_files = DistFile.select().where(DistFile.project == name).exists()
    project = ensure_project(name, ctx)
    if not had_files:
        ProjectRole.create(project=project, user=auth.user, role="owner")
        audit.record(Tag.ROLE_ADD, ctx, subject=auth.user.username, project=name, role="owner")
    return project
