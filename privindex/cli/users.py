"""`privindex user ...`: create, list, disable, enable, admin, sign out, email, second factors,
remove, passwords."""

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


@account_command(user, "admin")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Take the admin rights back instead.")
def user_admin(name: str, revoke: bool) -> None:
    """Make user NAME an admin (every project and user), or take it back with --revoke."""
    from privindex.accounts import users
    from privindex.ops import audit

    users.set_admin(users.get_user(name), not revoke, audit.CLI)
    click.echo(f"{name} is no longer an admin" if revoke else f"{name} is an admin now", err=True)


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


@account_command(user, "email")
@click.argument("name")
@click.argument("address")
@click.option("--verified", is_flag=True, help="You vouch for it: verified, and made primary.")
def user_email(name: str, address: str, verified: bool) -> None:
    """Give NAME the email ADDRESS (where security notices and reset links go)."""
    from privindex.accounts import emails, users
    from privindex.ops import audit

    target = users.get_user(name)
    row = emails.add_address(target, address, audit.CLI, verified=verified)
    if verified:
        if not row.is_primary:
            emails.make_primary(target, row.id, audit.CLI)
        click.echo(f"{row.address} is the verified primary address of {target.username}", err=True)
    else:
        click.echo(
            f"added {row.address} to {target.username}, not verified: they send themselves a link "
            f"from their account page, or you vouch for it: privindex user email {target.username} "
            f"{row.address} --verified",
            err=True,
        )


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
    """Remove NAME for good: refused while a project would be left without an owner; their roles go,
    tokens are revoked, sessions end; the audit trail keeps their name."""
    from privindex.accounts import removal, users
    from privindex.ops import audit

    revoked, roles = removal.remove_user(users.get_user(name), audit.CLI)
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
