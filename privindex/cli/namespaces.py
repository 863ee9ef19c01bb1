"""`privindex namespace ...`: PEP 752 namespace grants (grant, revoke, list)."""

from __future__ import annotations

import click

from privindex.cli.common import account_command


@click.group()
def namespace() -> None:
    """Name prefixes reserved for their owners; every name under one is local by rule."""


@account_command(namespace, "grant")
@click.argument("prefix")
@click.option("--owner", "owners", multiple=True, required=True, help="A user who owns it (repeatable).")
@click.option(
    "--open", "is_open", is_flag=True, help="Anyone may create projects under it (the upstream stays closed)."
)
def namespace_grant(prefix: str, owners: tuple[str, ...], is_open: bool) -> None:
    """Reserve PREFIX and PREFIX-* : the upstream is hidden for them, only owners create projects."""
    from privindex.accounts import namespaces
    from privindex.ops import audit

    settings = click.get_current_context().obj
    grant = namespaces.grant(prefix, owners, is_open, audit.CLI, settings.namespace_max_depth)
    who = (
        "anyone may create projects" if grant.open else f"only {', '.join(grant.owners)} may create projects"
    )
    click.echo(
        f"namespace {grant.name} granted to {', '.join(grant.owners)}: {grant.name} and {grant.name}-* "
        f"are local from now on; {who} under it",
        err=True,
    )


@account_command(namespace, "revoke")
@click.argument("prefix")
def namespace_revoke(prefix: str) -> None:
    """Remove the grant for PREFIX: unclaimed names under it come from the upstream again."""
    from privindex.accounts import namespaces
    from privindex.ops import audit

    namespaces.revoke(prefix, audit.CLI)
    click.echo(
        f"namespace {namespaces.normalize(prefix)} revoked; existing projects under it keep their owners",
        err=True,
    )


@account_command(namespace, "list")
def namespace_list() -> None:
    """List namespace grants with their owners."""
    from privindex.accounts import namespaces

    click.echo("namespace\taccess\towners")
    for g in namespaces.list_grants():
        click.echo(f"{g.name}\t{'open' if g.open else 'restricted'}\t{','.join(g.owners)}")
