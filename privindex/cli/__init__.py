"""The `privindex` command line, one module per command group: parse, call a service, print.
Errors are one line (`common.fail`)."""

from __future__ import annotations

import click

from privindex import __version__
from privindex.cli import (
    cache,
    files,
    mail,
    namespaces,
    ops,
    projects,
    publishers,
    retention,
    teams,
    tokens,
    users,
    webhooks,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="privindex")
def main() -> None:
    """privindex: a private Python package index for small teams."""


for command in (
    ops.serve,
    users.user,
    tokens.token,
    projects.project,
    namespaces.namespace,
    teams.team,
    publishers.publisher,
    files.file_group,
    ops.audit_command,
    cache.cache_group,
    retention.retention,
    mail.mail_group,
    webhooks.webhook,
    ops.backup,
    ops.export_pages,
    ops.check,
    ops.migrate_db,
):
    main.add_command(command)
