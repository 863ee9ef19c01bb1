"""`privindex token ...`: API tokens for pip, uv and twine."""

from __future__ import annotations

import click

from privindex.cli.common import account_command, day


@click.group()
def token() -> None:
    """Manage API tokens (for twine, pip and CI)."""


@account_command(token, "create")
@click.argument("name")
@click.option(
    "--project",
    "project_names",
    multiple=True,
    metavar="P",
    help="Limit the token to this project (repeatable); default: all the user's projects.",
)
@click.option("--read-only", is_flag=True, help="May read a private index, may not upload.")
@click.option("--expires", type=click.IntRange(min=1), metavar="DAYS", help="Expire after DAYS days.")
@click.option("--description", default="", help="What the token is for.")
def token_create(
    name: str, project_names: tuple[str, ...], read_only: bool, expires: int | None, description: str
) -> None:
    """Create a token for user NAME and print it (only this once) on standard output."""
    from privindex.accounts import api_tokens, users
    from privindex.ops import audit

    row, secret = api_tokens.create_token(
        users.get_user(name),
        audit.CLI,
        description=description,
        projects=list(project_names),
        read_only=read_only,
        expires_days=expires,
        require_2fa=click.get_current_context().obj.require_2fa,
    )
    click.echo(secret)
    click.echo(
        f"token {row.id} created for {name}; it is shown only once. Use it with username __token__.", err=True
    )


@account_command(token, "list")
@click.argument("name", required=False)
def token_list(name: str | None) -> None:
    """List tokens (all, or user NAME's). Secrets are never shown."""
    from privindex.accounts import api_tokens, users

    owner = users.get_user(name) if name else None
    click.echo("id\tuser\tprefix\tstatus\tscope\tcreated\texpires\tlast used\tdescription")
    for t in api_tokens.list_tokens(owner):
        scope = (
            "all projects"
            if t.all_projects
            else ",".join(sorted(link.project.name for link in t.project_links))
        )
        if t.read_only:
            scope += " (read-only)"
        click.echo(
            f"{t.id}\t{t.user.username}\t{t.prefix}…\t{api_tokens.token_status(t)}\t{scope}\t"
            f"{day(t.created_at)}\t{day(t.expires_at)}\t{day(t.last_used_at)}\t{t.description}"
        )


@account_command(token, "revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID (see token list); it stops working at once."""
    from privindex.accounts import api_tokens
    from privindex.ops import audit

    revoked = api_tokens.revoke_token(token_id, audit.CLI)
    click.echo(f"token {revoked.id} of {revoked.user.username} revoked", err=True)
