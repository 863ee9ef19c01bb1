"""Who hears of a project's uploads, yanks and deletions: its owners unless they opt out,
its maintainers if they opt in. A row is kept only where a choice differs from that default."""

from __future__ import annotations

from dataclasses import dataclass

from privindex.db.models import Project, ProjectRole, ProjectSubscription, User


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
    roles = (
        ProjectRole.select(ProjectRole, Project)
        .join(Project)
        .where(ProjectRole.user == user)
        .order_by(Project.name)
    )
    return [Choice(r.project.name, r.role, chosen.get(r.project.id, _default(r.role))) for r in roles]


def set_subscribed(user: User, project: str, subscribed: bool) -> None:
    """Record the user's choice for a project they have a role on (others are ignored)."""
    role = (
        ProjectRole.select(ProjectRole, Project)
        .join(Project)
        .where(ProjectRole.user == user, Project.name == project)
        .first()
    )
    if role is None:
        return
    ProjectSubscription.delete().where(
        ProjectSubscription.user == user, ProjectSubscription.project == role.project
    ).execute()
    if subscribed != _default(role.role):
        ProjectSubscription.create(user=user, project=role.project, enabled=subscribed)


def subscribers(project: str) -> list[User]:
    """The users who hear of this project's uploads, yanks and deletions."""
    roles = (
        ProjectRole.select(ProjectRole, User, Project)
        .join(User)
        .switch(ProjectRole)
        .join(Project)
        .where(Project.name == project, User.is_disabled == False)  # noqa: E712
    )
    chosen = {
        row.user_id: row.enabled
        for row in ProjectSubscription.select().join(Project).where(Project.name == project)
    }
    return [r.user for r in roles if chosen.get(r.user.id, _default(r.role))]
