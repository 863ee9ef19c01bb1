"""`privindex user ...`: create, list, email, disable, enable, sign out, second factors, remove,
passwords."""

from __future__ import annotations

import click

from privindex.cli.common import account_command, day, read_password


@click.group()
def user() -> None:
    """Manage users."""


@account_command(user, "add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage every project and user.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, admin: bool, password_stdin: bool) -> None:
    """Create a user (asks for the password twice unless it is piped in)."""
    from privindex.accounts import users
    from privindex.ops import audit

    new = users.create_user(name, read_password(password_stdin), audit.CLI, is_admin=admin)
    click.echo(f"created {'admin ' if admin else ''}user {new.username}", err=True)


@account_command(user, "list")
def user_list() -> None:
    """List users."""
    from privindex.accounts import users

    for u in users.list_users():
        flags = [
            f
            for f, on in (
                ("admin", u.is_admin),
                ("disabled", u.is_disabled and not u.removed_at),
                ("removed", bool(u.removed_at)),
                ("2fa", users.has_second_factor(u)),
            )
            if on
        ]
        click.echo(
            f"{u.username}\t{','.join(flags) or '-'}\tcreated {day(u.created_at)}"
            f"\tlast login {day(u.last_login_at)}"
        )


@account_command(user, "email")
@click.argument("name")
@click.argument("address")
def user_email(name: str, address: str) -> None:
    """Set a user's email address: sign-in through an identity provider that verifies it
    may then link to this account, once its owner proves it (password, second factor)."""
    from privindex.accounts import users
    from privindex.ops import audit

    email = users.set_email(users.get_user(name), address, audit.CLI)
    click.echo(f"{name}'s email address is {email}", err=True)


@account_command(user, "disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable a user: their sessions end and their tokens are revoked, for good."""
    from privindex.accounts import users
    from privindex.ops import audit

    revoked = users.set_disabled(users.get_user(name), True, audit.CLI)
    click.echo(f"disabled {name}; {_tokens_revoked(revoked)}, their web sessions ended", err=True)


@account_command(user, "enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Enable a disabled user again (tokens revoked by the disable stay revoked)."""
    from privindex.accounts import users
    from privindex.ops import audit

    revoked = users.set_disabled(users.get_user(name), False, audit.CLI)
    if revoked:
        click.echo(
            f"enabled {name}; {_tokens_revoked(revoked)} when it was disabled: issue new ones "
            f"(privindex token create {name})",
            err=True,
        )
    else:
        click.echo(f"enabled {name}; it had no API tokens to revoke when it was disabled", err=True)


def _tokens_revoked(count: int) -> str:
    return f"its {count} API token{'' if count == 1 else 's'} {'was' if count == 1 else 'were'} revoked"


@account_command(user, "sign-out")
@click.argument("name")
def user_sign_out(name: str) -> None:
    """End every web session of user NAME at once (a lost laptop, a stolen cookie)."""
    from privindex.accounts import sessions, users
    from privindex.ops import audit

    ended = sessions.end_all(users.get_user(name), audit.CLI, reason="cli")
    click.echo(f"ended {ended} web session{'' if ended == 1 else 's'} of {name}", err=True)


@account_command(user, "totp")
@click.argument("name")
def user_totp(name: str) -> None:
    """Set up an authenticator app for NAME in this terminal: scan the QR code (or type the
    secret), then type the code the app shows. Prints recovery codes once, for a first factor."""
    import segno

    from privindex.accounts import second_factors, users
    from privindex.auth import totp
    from privindex.ops import audit

    target = users.get_user(name)
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, target.username)
    click.echo(uri)
    segno.make(uri, error="m").terminal(compact=True)
    for attempt in range(3):
        code = click.prompt("Code the app shows now", err=True)
        try:
            codes = second_factors.enable_totp(target, secret, code, audit.CLI)
            break
        except users.AccountError as exc:
            if attempt == 2:
                raise
            click.echo(f"privindex: {exc}", err=True)
    click.echo(f"an authenticator app is set up for {target.username}", err=True)
    if codes:
        click.echo("Recovery codes (each works once; shown only now, keep them somewhere safe):", err=True)
        for c in codes:
            click.echo(c)


@account_command(user, "reset-2fa")
@click.argument("name")
def user_reset_2fa(name: str) -> None:
    """Remove every second factor of NAME (a lost phone and lost codes); ends their sessions."""
    from privindex.accounts import second_factors, users
    from privindex.ops import audit

    second_factors.reset(users.get_user(name), audit.CLI)
    click.echo(
        f"removed every second factor of {name} and ended their web sessions; they can set up "
        f"new ones after signing in (or: privindex user totp {name})",
        err=True,
    )


@account_command(user, "remove")
@click.argument("name")
def user_remove(name: str) -> None:
    """Remove NAME for good: refused while they are a project's last owner; their roles go,
    tokens are revoked, sessions end; the audit trail keeps their name."""
    from privindex.accounts import users
    from privindex.ops import audit

    revoked, roles = users.remove_user(users.get_user(name), audit.CLI)
    click.echo(
        f"removed {name}: {_tokens_revoked(revoked)}, {roles} project role{'' if roles == 1 else 's'} "
        "removed, their web sessions ended; their audit events stay",
        err=True,
    )


@account_command(user, "set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(name: str, password_stdin: bool) -> None:
    """Set a user's password (ends their web sessions)."""
    from privindex.accounts import users
    from privindex.ops import audit

    target = users.get_user(name)
    users.set_password(target, read_password(password_stdin), audit.CLI)
    click.echo(f"password of {target.username} changed", err=True)
