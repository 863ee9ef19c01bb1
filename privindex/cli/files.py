"""`privindex file ...`: deliberate changes to published files."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from privindex.cli.common import fail, open_data, settings_options
from privindex.config import Settings
from privindex.packages.archives import ArchiveLimits


@click.group("file")
def file_group() -> None:
    """Deliberate changes to published files (each one audited as file:replace)."""


def publishing_command(fn: Callable) -> Callable:
    """Opens the database and the store (and passes the settings' archive limits); a
    refusal is one clear line and exit 1."""

    @functools.wraps(fn)
    def wrapper(settings: Settings, **params: Any):
        from privindex.packages.publishing import PublishError
        from privindex.packages.store import Store

        with open_data(settings):
            try:
                return fn(Store(settings.store), limits=ArchiveLimits.from_settings(settings), **params)
            except PublishError as exc:
                fail(str(exc))

    return settings_options(wrapper)


@file_group.command("accept")
@click.argument("filename")
@publishing_command
def file_accept(store, limits, filename: str) -> None:
    """Publish the bytes now on disk as FILENAME's content (after a change by hand).

    A running server lists the file again, with its new sha256, within a second or two.
    """
    from privindex.ops import audit
    from privindex.packages import publishing

    old, new = publishing.accept(store, filename, audit.CLI, limits)
    click.echo(f"{filename}: published sha256 {old} -> {new}", err=True)


@file_group.command("replace")
@click.argument("filename")
@click.argument("newfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@publishing_command
def file_replace(store, limits, filename: str, newfile: Path) -> None:
    """Replace FILENAME's content with NEWFILE (written atomically) and publish it."""
    from privindex.ops import audit
    from privindex.packages import publishing

    old, new = publishing.replace(store, filename, newfile, audit.CLI, limits)
    click.echo(f"{filename}: published sha256 {old} -> {new}", err=True)
