"""Teams: a named group of users that holds roles the way a user does, on projects and on
namespace grants (issue 29). What a role lets a member do is decided in permissions.py, which
reads these rows on every question, so a member removed here loses the team's rights at once.

Who manages a team: admins any; a project owner a team whose every role is on projects they
own (so adding or removing its members changes rights only where the owner already decides).
Owners create teams from their project's settings, and the new team starts with a role on
that project. Roles on namespaces are an admin's alone, like the grants themselves.
Every change is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import peewee
from packaging.utils import canonicalize_name

from privindex.accounts import namespaces, permissions
from privindex.accounts.users import USERNAME_RE, AccountError, get_user
from privindex.db.connection import database
from privindex.db.models import Namespace, Project, Team, TeamMember, TeamRole, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag

DESCRIPTION_MAX = 500


@dataclass(frozen=True)
class TeamRoleView:
    team: str
    role: str
    project: str | None  # one of project and namespace is set
    namespace: str | None

    @property
    def target(self) -> str:
        return self.project or f"{self.namespace}-*"


@dataclass(frozen=True)
class TeamView:
    name: str
    description: str
    members: tuple[str, ...]  # usernames, sorted
    roles: tuple[TeamRoleView, ...]


def normalize_team_name(text: str) -> str:
    name = text.strip().lower()
    if not USERNAME_RE.fullmatch(name):  # the same rule as usernames
        raise AccountError(
            _(
                "a team name has 1-50 characters: letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        )
    return name


def get_team(name: str) -> Team:
    team = Team.get_or_none(Team.name == name.strip().lower())
    if team is None:
        raise AccountError(_("there is no team '%(team)s'", team=name), "see: privindex team list")
    return team


def _roles(where: object) -> list[TeamRoleView]:
    rows = (
        TeamRole.select(Team.name, TeamRole.role, Project.name, Namespace.name)
        .join(Team)
        .switch(TeamRole)
        .join(Project, join_type=peewee.JOIN.LEFT_OUTER)
        .switch(TeamRole)
        .join(Namespace, join_type=peewee.JOIN.LEFT_OUTER)
        .where(where)
        .order_by(Team.name, Project.name, Namespace.name)
        .tuples()
    )
    return [TeamRoleView(team, role, project, ns) for team, role, project, ns in rows]


def describe(team: Team) -> TeamView:
    members = sorted(
        u for (u,) in User.select(User.username).join(TeamMember).where(TeamMember.team == team).tuples()
    )
    return TeamView(team.name, team.description, tuple(members), tuple(_roles(TeamRole.team == team)))


def list_teams() -> list[TeamView]:
    return [describe(t) for t in Team.select().order_by(Team.name)]


def teams_of_project(name: str) -> list[TeamRoleView]:
    """The teams with a role on the project (normalized name) or on a namespace covering it:
    what its page shows as "maintained by team X"."""
    covering = list(namespaces.prefixes(name))
    return _roles((Project.name == name) | (Namespace.name.in_(covering)))


def may_manage(user: User | None, team: Team) -> bool:
    """Admins; or an owner of every project the team has a role on (it has one at least, and
    none on a namespace)."""
    if user is None:
        return False
    if user.is_admin:
        return True
    roles = _roles(TeamRole.team == team)
    return bool(roles) and all(
        r.project is not None and permissions.can_manage(user, r.project) for r in roles
    )


def _require(user: User | None, allowed: bool) -> None:
    """The CLI acts as an admin (user None); on the web the rule must allow the user."""
    if user is not None and not allowed:
        raise AccountError(_("only an admin or an owner of the team's projects may do this"))


def create_team(name: str, description: str, ctx: audit.Context) -> Team:
    """An admin's (or the CLI's) new team, without members or roles."""
    _require(ctx.actor, bool(ctx.actor and ctx.actor.is_admin))
    return _create(name, description, ctx)


def create_team_for_project(name: str, description: str, project: str, role: str, ctx: audit.Context) -> Team:
    """A project owner's new team, holding `role` on their project from the start."""
    _require(ctx.actor, permissions.can_manage(ctx.actor, canonicalize_name(project)))
    with database.atomic():
        team = _create(name, description, ctx)
        # the team is new and hers: the rule of grant() (a team she manages already) cannot hold yet
        _set_role(_place(team.name, project, None, ctx), role, ctx)
    return team


def _create(name: str, description: str, ctx: audit.Context) -> Team:
    team_name = normalize_team_name(name)
    if len(description) > DESCRIPTION_MAX:
        raise AccountError(_("a team description has at most %(most)d characters", most=DESCRIPTION_MAX))
    with database.atomic():
        if Team.select().where(Team.name == team_name).exists():
            raise AccountError(
                _("the team '%(team)s' already exists", team=team_name), "see: privindex team list"
            )
        team = Team.create(name=team_name, description=description.strip(), created_at=time.time())
        audit.record(Tag.TEAM_CREATE, ctx, subject=team_name, description=team.description)
    return team


def delete_team(name: str, ctx: audit.Context) -> None:
    """Delete a team: its members lose its roles at once (its rows go with it)."""
    team = get_team(name)
    _require(ctx.actor, may_manage(ctx.actor, team))
    with database.atomic(), permissions.keeping_an_owner(_reach(team)):
        view = describe(team)
        team.delete_instance()  # members and roles go with it (ON DELETE CASCADE)
        audit.record(
            Tag.TEAM_DELETE,
            ctx,
            subject=team.name,
            members=list(view.members),
            roles=[f"{r.role}:{r.target}" for r in view.roles],
        )


def add_member(name: str, username: str, ctx: audit.Context) -> None:
    team = get_team(name)
    _require(ctx.actor, may_manage(ctx.actor, team))
    user = get_user(username)
    if user.is_disabled:
        raise AccountError(_("'%(user)s' is disabled", user=user.username))
    with database.atomic():
        if TeamMember.select().where(TeamMember.team == team, TeamMember.user == user).exists():
            raise AccountError(
                _("'%(user)s' is already a member of '%(team)s'", user=user.username, team=team.name)
            )
        TeamMember.create(team=team, user=user)
        audit.record(Tag.TEAM_MEMBER_ADD, ctx, subject=user.username, team=team.name)


def remove_member(name: str, username: str, ctx: audit.Context) -> None:
    """Take a user out of a team: the team's roles stop counting for them on the next request."""
    team = get_team(name)
    _require(ctx.actor, may_manage(ctx.actor, team))
    user = get_user(username)
    with database.atomic(), permissions.keeping_an_owner(permissions.projects_with_role(user)):
        removed = TeamMember.delete().where(TeamMember.team == team, TeamMember.user == user).execute()
        if not removed:
            raise AccountError(
                _("'%(user)s' is not a member of '%(team)s'", user=user.username, team=team.name)
            )
        audit.record(Tag.TEAM_MEMBER_REMOVE, ctx, subject=user.username, team=team.name)


@dataclass(frozen=True)
class _Place:
    """A team and where a role of it is (one project or one namespace), checked to exist and
    to be the actor's to change."""

    team: Team
    project: Project | None
    namespace: Namespace | None

    @property
    def name(self) -> str:
        return self.project.name if self.project else self.namespace.name if self.namespace else ""

    def current(self) -> TeamRole | None:
        where = TeamRole.project == self.project if self.project else TeamRole.namespace == self.namespace
        return TeamRole.get_or_none(TeamRole.team == self.team, where)

    def record(self, tag: Tag, ctx: audit.Context, role: str) -> None:
        audit.record(
            tag,
            ctx,
            subject=self.team.name,
            project=self.project.name if self.project else None,
            namespace=self.namespace.name if self.namespace else None,
            role=role,
        )


def _place(name: str, project: str | None, namespace: str | None, ctx: audit.Context) -> _Place:
    team = get_team(name)
    if (project is None) == (namespace is None):
        raise AccountError(_("give a project or a namespace"), "PROJECT or --namespace PREFIX")
    if project is not None:
        row = Project.get_or_none(Project.name == canonicalize_name(project))
        if row is None:
            raise AccountError(
                _("there is no project '%(project)s'", project=project), "see: privindex project list"
            )
        # admins on anything; owners on their projects, never on a namespace
        _require(ctx.actor, bool(ctx.actor and permissions.can_manage(ctx.actor, row.name)))
        return _Place(team, row, None)
    ns = Namespace.get_or_none(Namespace.name == namespaces.normalize(namespace or ""))
    if ns is None:
        raise AccountError(
            _("there is no namespace '%(name)s'", name=namespace), "see: privindex namespace list"
        )
    _require(ctx.actor, bool(ctx.actor and ctx.actor.is_admin))
    return _Place(team, None, ns)


def grant(
    name: str, role: str, ctx: audit.Context, project: str | None = None, namespace: str | None = None
) -> None:
    """Give the team `role` on a project or a namespace (changing the role it has there)."""
    place = _place(name, project, namespace, ctx)
    # An owner grants only to a team she manages already: else she could give an admin's empty
    # team a role, join it and inherit what the admin grants it later, or take another owner's
    # team out of their hands.
    _require(ctx.actor, may_manage(ctx.actor, place.team))
    _set_role(place, role, ctx)


def _set_role(place: _Place, role: str, ctx: audit.Context) -> None:
    if role not in permissions.ROLES:
        raise AccountError(_("a role is one of: %(roles)s", roles=", ".join(permissions.ROLES)))
    with database.atomic(), permissions.keeping_an_owner(_reach(place.team)):
        current = place.current()
        if current is not None and current.role == role:
            return
        if current is not None:
            current.role = role
            current.save()
        else:
            TeamRole.create(team=place.team, project=place.project, namespace=place.namespace, role=role)
        place.record(Tag.TEAM_ROLE_GRANT, ctx, role)


def revoke(name: str, ctx: audit.Context, project: str | None = None, namespace: str | None = None) -> None:
    """Take the team's role on a project or a namespace: its members lose it at once."""
    place = _place(name, project, namespace, ctx)
    with database.atomic(), permissions.keeping_an_owner(_reach(place.team)):
        current = place.current()
        if current is None:
            raise AccountError(
                _("the team '%(team)s' has no role on '%(target)s'", team=place.team.name, target=place.name)
            )
        current.delete_instance()
        place.record(Tag.TEAM_ROLE_REVOKE, ctx, current.role)


def _reach(team: Team) -> set[str]:
    """The projects a change to the team can take an owner from: those its members hold a
    role on (through the team or not; a few, for a team of people)."""
    members = User.select().join(TeamMember).where(TeamMember.team == team)
    return {name for member in members for name in permissions.projects_with_role(member)}
