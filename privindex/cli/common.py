"""What every command shares: settings options, the database opened for a command, one-line errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from privindex.config import ConfigError, Settings, load_settings

SETTING_NAMES = set(Settings.__dataclass_fields__)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"privindex: error: {message}", err=True)
    sys.exit(code)


def settings_options(command: Callable, *, may_create_data: bool = False) -> Callable:
    """--config, --store and --data-dir, shared by every command that touches the data. Only
    a command that may_create_data (serve) runs on a data dir that does not exist yet."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="TOML settings file (also PRIVINDEX_CONFIG). See config.example.toml.",
    )
    @click.option(
        "--store", type=click.Path(file_okay=False), help="Package folder [default: ./packages_store]."
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        help="Database and caches [default: ./privindex_data].",
    )
    @functools.wraps(command)
    def wrapper(config_path: str | None, **kwargs: Any):
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in SETTING_NAMES}
        settings = load(overrides, config_path)
        if not may_create_data:
            require_data_dir(settings)
        return command(settings, **kwargs)

    return wrapper


def is_default(settings: Settings, name: str) -> bool:
    return bool(getattr(settings, name) == Settings.__dataclass_fields__[name].default)


def require_data_dir(settings: Settings) -> None:
    """Run from the wrong folder, a command must not make an empty ./privindex_data and act
    on it (a user added there is not the server's): say where it looked and how to point."""
    if settings.database_url or settings.data_dir.is_dir():  # PostgreSQL holds the data
        return
    which = " (the default, in the current folder)" if is_default(settings, "data_dir") else ""
    fail(
        f"no data dir at {settings.data_dir.absolute()}{which}; point at the server's with "
        "--data-dir PATH (or PRIVINDEX_DATA_DIR, or data_dir in the --config file), "
        "or run `privindex serve` once to create it"
    )


def load(overrides: dict[str, Any], config_path: str | None = None) -> Settings:
    try:
        return load_settings(config_path, overrides=overrides)
    except ConfigError as exc:
        fail(f"bad setting: {exc}", code=2)


def open_data(settings: Settings):
    """The data dir's database, bound for the rest of the command (see db/connection.py)."""
    from privindex.db.connection import bound, connect, describe
    from privindex.notify import mail, notices

    try:
        db = connect(settings.database)
    except (RuntimeError, OSError, ValueError) as exc:
        fail(f"cannot open the database {describe(settings.database)}: {exc}")
    mail.configure(settings)  # queued here, sent by the server's sender thread
    notices.attach(db, settings)  # an admin's change by command is told like one on the web
    return bound(db)


def account_command(group: click.Group, *args, **kwargs) -> Callable:
    """A subcommand that opens the database and turns AccountError into one clear line."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(settings: Settings, **params: Any):
            from privindex.accounts.users import AccountError

            click.get_current_context().obj = settings
            with open_data(settings):
                try:
                    return fn(**params)
                except AccountError as exc:
                    fail(exc.for_cli())

        return group.command(*args, **kwargs)(settings_options(wrapper))

    return decorate


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password on; pipe it in with --password-stdin")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def day(timestamp: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else "-"
