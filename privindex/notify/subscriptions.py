"""Who hears of a project's uploads, yanks and deletions: its owners unless they opt out,
its maintainers if they opt in. A role held through a team counts as one held directly
(accounts/permissions.py). A row is kept only where a choice differs from that default."""

from __future__ import annotations

from dataclasses import dataclass

from privindex.accounts import permissions
from privindex.db.models import Project, ProjectSubscription, User


@dataclass(frozen=True)
class Choice:
    project: str
    role: str
    subscribed: bool


def _default(role: str) -> bool:
    return role == "owner"


def choices(user: User) -> list[Choice]:
    """The user's projects (those they have a role on), with whether they hear of them."""
    chosen = {
        row.project_id: row.enabled
        for row in ProjectSubscription.select().where(ProjectSubscription.user == user)
    }
    result = []
    for project in (
        Project.select().where(Project.name.in_(permissions.projects_with_role(user))).order_by(Project.name)
    ):
        role = permissions.user_role(user, project)
        if role is not None:
            result.append(Choice(project.name, role, chosen.get(project.id, _default(role))))
    return result


def set_subscribed(user: User, project: str, subscribed: bool) -> None:
    """Record the user's choice for a project they have a role on (others are ignored)."""
    row = Project.get_or_none(Project.name == project)
    role = permissions.user_role(user, row)
    if row is None or role is None:
        return
    ProjectSubscription.delete().where(
        ProjectSubscription.user == user, ProjectSubscription.project == row
    ).execute()
    if subscribed != _default(role):
        ProjectSubscription.create(user=user, project=row, enabled=subscribed)


def subscribers(project: str) -> list[User]:
    """The users who hear of this project's uploads, yanks and deletions."""
    chosen = {
        row.user_id: row.enabled
        for row in ProjectSubscription.select().join(Project).where(Project.name == project)
    }
    return [
        user
        for user, role in permissions.role_holders(project)
        if not user.is_disabled and chosen.get(user.id, _default(role))
    ]
