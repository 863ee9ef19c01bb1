"""Projects and roles: listing them and changing who holds which role.

A project row exists once someone has rights on it. The rules of who may do what are in
permissions.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from peewee import fn

from privindex import audit
from privindex.audit import Tag
from privindex.apitokens import TokenAuth
from privindex.permissions import ROLES, check_upload, first_upload_owns, project_exists
from privindex.users import AccountError, get_user
from privindex.db import database
from privindex.i18n import _
from privindex.models import DistFile, Project, ProjectRole, User


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


def claim_project(auth: TokenAuth, name: str, ctx: audit.Context) -> Project:
    """The project row for an accepted upload; a brand-new project gets the uploader as owner.

    Call inside the (immediate) transaction that publishes the file, so a failed publish
    rolls it back and a project created meanwhile by someone else is checked again.
    """
    check_upload(auth, name)
    project = Project.get_or_none(Project.name == name)
    if project is not None:
        return project
    owns = first_upload_owns(name)
    project = ensure_project(name, ctx)
    if owns:
        ProjectRole.create(project=project, user=auth.user, role="owner")
        audit.record(Tag.ROLE_ADD, ctx, subject=auth.user.username, project=name, role="owner")
    return project
