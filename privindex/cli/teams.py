"""`privindex team ...`: teams and the roles they hold (create, delete, add, remove, grant,
revoke, list). The command line acts as an admin."""

from __future__ import annotations

from collections.abc import Callable

import click

from privindex.cli.common import account_command


@click.group()
def team() -> None:
    """Groups of users that hold owner or maintainer roles on projects and namespaces."""


@account_command(team, "create")
@click.argument("name")
@click.option("--description", default="", help="What the team is for.")
def team_create(name: str, description: str) -> None:
    """Create the team NAME, without members or roles."""
    from privindex.accounts import teams
    from privindex.ops import audit

    created = teams.create_team(name, description, audit.CLI)
    click.echo(
        f"team {created.name} created; add members with: privindex team add {created.name} USER", err=True
    )


@account_command(team, "delete")
@click.argument("name")
def team_delete(name: str) -> None:
    """Delete the team NAME: its members lose its roles at once."""
    from privindex.accounts import teams
    from privindex.ops import audit

    teams.delete_team(name, audit.CLI)
    click.echo(f"team {name} deleted", err=True)


@account_command(team, "add")
@click.argument("name")
@click.argument("username")
def team_add(name: str, username: str) -> None:
    """Add USERNAME to the team NAME: they hold its roles from their next request."""
    from privindex.accounts import teams
    from privindex.ops import audit

    teams.add_member(name, username, audit.CLI)
    click.echo(f"{username} added to team {name}", err=True)


@account_command(team, "remove")
@click.argument("name")
@click.argument("username")
def team_remove(name: str, username: str) -> None:
    """Take USERNAME out of the team NAME: its roles stop counting for them at once."""
    from privindex.accounts import teams
    from privindex.ops import audit

    teams.remove_member(name, username, audit.CLI)
    click.echo(f"{username} removed from team {name}; the team's roles no longer count for them", err=True)


def _team_and_place(command: Callable[..., None]) -> Callable[..., None]:
    """NAME, then PROJECT or --namespace PREFIX: where `grant` and `revoke` act."""
    for param in (
        click.option("--namespace", help="A namespace grant (PEP 752) instead of a project."),
        click.argument("project", required=False),
        click.argument("name"),
    ):  # innermost first, as stacked decorators apply
        command = param(command)
    return command


@account_command(team, "grant")
@_team_and_place
@click.option("--role", type=click.Choice(["owner", "maintainer"]), required=True)
def team_grant(name: str, project: str | None, namespace: str | None, role: str) -> None:
    """Give the team NAME a role on PROJECT (or on --namespace PREFIX)."""
    from privindex.accounts import teams
    from privindex.ops import audit

    teams.grant(name, role, audit.CLI, project=project, namespace=namespace)
    click.echo(f"team {name} is {role} of {project or namespace}", err=True)


@account_command(team, "revoke")
@_team_and_place
def team_revoke(name: str, project: str | None, namespace: str | None) -> None:
    """Take the team NAME's role on PROJECT (or on --namespace PREFIX)."""
    from privindex.accounts import teams
    from privindex.ops import audit

    teams.revoke(name, audit.CLI, project=project, namespace=namespace)
    click.echo(f"team {name} no longer has a role on {project or namespace}", err=True)


@account_command(team, "list")
def team_list() -> None:
    """List teams with their members and roles."""
    from privindex.accounts import teams

    click.echo("team\tmembers\troles\tdescription")
    for t in teams.list_teams():
        roles = ",".join(f"{r.role}:{r.target}" for r in t.roles)
        click.echo(f"{t.name}\t{','.join(t.members)}\t{roles}\t{t.description}")
