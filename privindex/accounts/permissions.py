"""Who may do what to a project: the one place for these rules.

Roles are 'owner' (manage files and roles) and 'maintainer' (upload). Admins may do
everything. A user holds a role on a project directly or through a team they are a member
of (accounts/teams.py): the team's role on the project, or on a namespace grant covering the
project's name; the highest of these counts. The rows are read on every question, so a
member removed from a team (or a role taken from it) loses the rights at once, in open web
sessions and for existing API tokens alike. A token may upload only within its scope and
never when read-only. A project that exists only as files dropped into the store has no
owner: only admins may upload to it until an admin assigns one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import peewee

from privindex.accounts import namespaces
from privindex.accounts.users import AccountError
from privindex.db.models import DistFile, Namespace, Project, ProjectRole, TeamMember, TeamRole, User
from privindex.i18n import _

ROLES = ("owner", "maintainer")
_RANK = {"maintainer": 1, "owner": 2}


class UploadDenied(Exception):
    """The token may not upload to this project; the message says why and what to do."""


class NamespaceReserved(UploadDenied):
    """A new project under a namespace the user has no grant for (PEP 752: 409 Conflict)."""


def project_exists(name: str) -> bool:
    """A project exists if someone has rights on it or if the store holds files of it."""
    return (
        Project.select().where(Project.name == name).exists()
        or DistFile.select().where(DistFile.project == name).exists()
    )


def user_role(user: User, project: Project | None) -> str | None:
    """The user's highest role on the project: their own, or a team's they are a member of."""
    if project is None:
        return None
    own = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user)
    roles = [own.role] if own else []
    roles += team_roles(user, project.name)
    return max(roles, key=_RANK.__getitem__, default=None)


def team_roles(user: User, name: str) -> list[str]:
    """The roles the user's teams hold on the project `name` or on a namespace covering it."""
    covering = Namespace.select(Namespace.id).where(Namespace.name.in_(list(namespaces.prefixes(name))))
    project = Project.select(Project.id).where(Project.name == name)
    return [
        role
        for (role,) in TeamRole.select(TeamRole.role)
        .join(TeamMember, on=(TeamMember.team == TeamRole.team))
        .where(
            TeamMember.user == user,
            (TeamRole.project.in_(project)) | (TeamRole.namespace.in_(covering)),
        )
        .tuples()
    ]


def role_holders(name: str) -> list[tuple[User, str]]:
    """Who holds a role on the project `name`, their own or through a team, with the
    highest (project notices go by it), in the order of their user ids."""
    project = Project.get_or_none(Project.name == name)
    if project is None:
        return []
    covering = Namespace.select(Namespace.id).where(Namespace.name.in_(list(namespaces.prefixes(name))))
    own = ProjectRole.select(ProjectRole.user).where(ProjectRole.project == project)
    teamed = (
        TeamMember.select(TeamMember.user)
        .join(TeamRole, on=(TeamRole.team == TeamMember.team))
        .where((TeamRole.project == project) | (TeamRole.namespace.in_(covering)))
    )
    holders = User.select().where(User.id.in_(own) | User.id.in_(teamed)).order_by(User.id)
    return [(user, role) for user in holders if (role := user_role(user, project))]


def projects_with_role(user: User) -> set[str]:
    """The names of the projects the user holds a role on, their own or through a team
    (on the project, or on a namespace over it): the user's own list of projects."""
    names = {
        n for (n,) in ProjectRole.select(Project.name).join(Project).where(ProjectRole.user == user).tuples()
    }
    held = (
        TeamRole.select(Project.name, Namespace.name)
        .join(TeamMember, on=(TeamMember.team == TeamRole.team))
        .switch(TeamRole)
        .join(Project, peewee.JOIN.LEFT_OUTER)
        .switch(TeamRole)
        .join(Namespace, peewee.JOIN.LEFT_OUTER)
        .where(TeamMember.user == user)
        .tuples()
    )
    for project, namespace in held:
        if project:
            names.add(project)
        else:
            under = (Project.name == namespace) | Project.name.startswith(namespace + "-")
            names |= {n for (n,) in Project.select(Project.name).where(under).tuples()}
    return names


def sole_owned(user: User) -> list[str]:
    """The projects that would be left without an owner if `user` went: they own it (their
    own role or a team's) and nobody else does, directly or as another member of an owning
    team. Warehouse's rule: a project keeps at least one owner."""
    return sorted(
        name
        for name in projects_with_role(user)
        if user_role(user, Project.get(Project.name == name)) == "owner"
        and not any(role == "owner" and holder.id != user.id for holder, role in role_holders(name))
    )


def has_owner(name: str) -> bool:
    """Whether anyone owns the project, by their own role or through a team."""
    return any(role == "owner" for _holder, role in role_holders(name))


@contextmanager
def keeping_an_owner(
    names: Iterable[str], refusal: Callable[[list[str]], str] | None = None
) -> Iterator[None]:
    """Around a role change, inside the caller's transaction: refuse it (AccountError, so the
    transaction rolls back) if it leaves one of the projects `names` that had an owner
    without one, counting owners through teams too. Warehouse's rule: a project keeps at
    least one owner; one made by dropping files in has none until an admin names one.
    refusal(lost) words the refusal for the caller (say, naming the person)."""
    owned = {name for name in set(names) if has_owner(name)}
    yield
    lost = sorted(name for name in owned if not has_owner(name))
    if lost:
        raise AccountError(
            refusal(lost)
            if refusal
            else _(
                "that would leave %(projects)s without an owner; add another owner first",
                projects=", ".join(lost),
            )
        )


def can_manage(user: User | None, project_name: str) -> bool:
    """Owners and admins may yank and delete files and change roles."""
    if user is None:
        return False
    return user.is_admin or user_role(user, Project.get_or_none(Project.name == project_name)) == "owner"


def check_upload(user: User, read_only: bool, scope: set[str] | None, name: str) -> None:
    """Raise UploadDenied unless a token of `user` (read-only or not, limited to the projects
    in `scope` or, with None, to all the user's) may upload to the project; changes nothing.
    The token's facts come as plain values, so the rules need not know api_tokens.

    The first upload with a token scoped to the whole user creates the project (see
    projects.claim_project); a project-scoped token cannot create projects.
    """
    if read_only:
        raise UploadDenied("This API token is read-only; create an upload token")
    if scope is not None and name not in scope:
        raise UploadDenied(f"This API token is not valid for project {name!r}")
    if user.is_admin:
        return
    project = Project.get_or_none(Project.name == name)
    if project is None:
        if DistFile.select().where(DistFile.project == name).exists():
            raise UploadDenied(f"The project {name!r} has no owner yet; ask an admin to assign one")
        check_namespace(user, name)
        return
    if not user_role(user, project):
        raise UploadDenied(f"The user {user.username!r} isn't allowed to upload to project {name!r}")


def check_namespace(user: User, name: str) -> None:
    """Raise NamespaceReserved unless `user` may create the project `name`: under a
    restricted namespace only its owners, members of a team with a role on it (and admins)
    may; projects that already exist keep their own roles, so this is asked of new names
    only."""
    refused = [g for g in namespaces.may_create_under(user, name) if not _team_holds(user, g.name)]
    if refused:
        grant = refused[0]
        raise NamespaceReserved(
            f"{name!r} is in the namespace {grant.name!r}, reserved for {', '.join(grant.owners)}; "
            "ask one of them or an admin to create the project, or to share the namespace"
        )


def _team_holds(user: User, namespace: str) -> bool:
    """Whether one of the user's teams has a role on the namespace grant `namespace`."""
    return (
        TeamRole.select()
        .join(TeamMember, on=(TeamMember.team == TeamRole.team))
        .switch(TeamRole)
        .join(Namespace)
        .where(TeamMember.user == user, Namespace.name == namespace)
        .exists()
    )


def first_upload_owns(name: str) -> bool:
    """Whether claiming a new project makes the uploader its owner (not when files were
    already there: such a project waits for an admin)."""
    return not DistFile.select().where(DistFile.project == name).exists()


# PEP 792 statuses an owner may move a project between; quarantine is an admin's alone,
# set and lifted (the statuses are plain strings here: packages/project_status.py has them).
OWNER_STATUSES = ("active", "archived", "deprecated")


def can_set_status(user: User, project_name: str, current: str, new: str) -> bool:
    """Admins may set any status; owners may archive, deprecate and make active again, but
    never quarantine a project nor lift a quarantine."""
    if user.is_admin:
        return True
    return current in OWNER_STATUSES and new in OWNER_STATUSES and can_manage(user, project_name)
