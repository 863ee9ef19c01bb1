"""What the operator runs: serve, audit, backup, check, migrate-db."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from privindex.cli.cache import offline_upstream_cache
from privindex.cli.common import fail, is_default, open_data, require_data_dir, settings_options
from privindex.config import Settings
from privindex.packages.archives import ArchiveLimits


@click.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="TCP port; 0 picks a free one [default: 8080].")
@click.option("--threads", type=int, help="Worker threads [default: 8].")
@click.option(
    "--upstream",
    "upstream_url",
    metavar="URL",
    help="Serve names not known here from this index, e.g. https://upstream.example/simple/.",
)
@click.option(
    "--send-files-via",
    type=click.Choice(["off", "x-accel-redirect", "x-sendfile"]),
    help="Let the reverse proxy send package files (nginx: x-accel-redirect) [default: off].",
)
@click.option("--create", is_flag=True, help="Create the --store folder if it does not exist.")
@functools.partial(settings_options, may_create_data=True)
def serve(settings: Settings, create: bool) -> None:
    """Serve the package folder as a simple index (Ctrl-C stops)."""
    from privindex.server import serve as run

    try:
        run(settings, echo=click.echo, create_store=create or is_default(settings, "store"))
    except OSError as exc:
        fail(f"cannot serve the store {settings.store} with data in {settings.data_dir}: {exc}")
    except RuntimeError as exc:  # including server.CannotListen
        fail(str(exc))


@click.command("audit")
@settings_options
@click.option("--user", "username", help="Events done by or to this user.")
@click.option("--project", "project_name", help="Events about this project.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Only events at or after this UTC date (YYYY-MM-DD[THH:MM:SS]).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_command(
    settings: Settings, username: str | None, project_name: str | None, since, as_json: bool
) -> None:
    """Show the audit trail, newest first."""
    import calendar
    import json

    from packaging.utils import canonicalize_name

    from privindex.ops import audit

    since_ts = calendar.timegm(since.timetuple()) if since else None
    with open_data(settings):
        events = audit.query(
            username=username.lower() if username else None,
            project=canonicalize_name(project_name) if project_name else None,
            since=since_ts,
        )
        for event in events:
            row = audit.as_dict(event)
            if as_json:
                click.echo(json.dumps(row, sort_keys=True))
            else:
                click.echo(
                    f"{row['time']}\t{row['tag']}\t{row['actor'] or '-'}\t{row['subject'] or '-'}\t"
                    f"{row['project'] or '-'}\t{row['ip'] or '-'}\t"
                    f"{json.dumps(row['details'], sort_keys=True)}"
                )


@click.command()
@settings_options
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(settings: Settings, dest: Path) -> None:
    """Copy the database and the store into DEST, safely while the server runs.

    Restore by serving the copy: privindex serve --data-dir DEST/data --store DEST/packages
    (or copy those two folders back into place).
    """
    from privindex.ops.maintenance import MaintenanceError, record_success
    from privindex.ops.maintenance import backup as run_backup
    from privindex.packages.store import Store

    try:
        result = run_backup(
            settings.database, Store(settings.store), dest, lambda line: click.echo(line, err=True)
        )
    except MaintenanceError as exc:
        fail(str(exc))
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(
        f"backed up {result.files} files ({result.bytes / 1e6:.1f} MB) and the database to {dest}", err=True
    )
    if result.problems:
        sys.exit(1)
    record_success(settings.data_dir, "backup")


@click.command()
@settings_options
@click.option("--quick", is_flag=True, help="Compare sizes only; do not re-read every file.")
def check(settings: Settings, quick: bool) -> None:
    """Verify every file against its recorded hash; report missing and unindexed files,
    and settings that are likely a mistake (warnings).

    Exits with 1 if a file is wrong; warnings alone do not fail.
    """
    from privindex.ops.maintenance import MaintenanceError, record_success
    from privindex.ops.maintenance import check as run_check
    from privindex.packages.store import Store

    try:
        result = run_check(
            settings.database,
            Store(settings.store),
            lambda line: click.echo(line, err=True),
            rehash=not quick,
            limits=ArchiveLimits.from_settings(settings),
        )
    except MaintenanceError as exc:
        fail(str(exc))
    problems, checked = list(result.problems), result.checked
    if settings.upstream_dir.is_dir():  # cached upstream files, by the digest they are filed under
        cached, cache_problems = offline_upstream_cache(settings).check()
        problems += cache_problems
        checked += cached
    if settings.static_files:
        from privindex.packages.serving_tree import filesystem_problem

        if fs_problem := filesystem_problem(settings.store, settings.data_dir):
            problems.append(fs_problem)
    for problem in problems:
        click.echo(f"problem: {problem}")
    for warning in settings.warnings():  # reported, but they fail nothing
        click.echo(f"warning: {warning}")
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked} files", err=True)
        sys.exit(1)
    click.echo(f"all {checked} files match their records", err=True)
    record_success(settings.data_dir, "check")


@click.command("export-pages")
@settings_options
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def export_pages(settings: Settings, dest: Path) -> None:
    """Write the pre-rendered Simple API pages into DEST/simple/ once.

    The tree `static_pages = true` keeps up to date in the data dir, for a deployment that
    renders elsewhere: serve DEST as the `root` of README.md's nginx config.
    """
    from privindex.packages.index import Index
    from privindex.packages.static_pages import StaticPages
    from privindex.packages.store import Store
    from privindex.server import progress_printer
    from privindex.upstream.source_rules import Sources

    require_data_dir(settings)
    with open_data(settings):
        index = Index(Store(settings.store), ArchiveLimits.from_settings(settings))
        sources = Sources(index, offline_upstream_cache(settings) if settings.upstream_url else None)
        writer = StaticPages.from_settings(settings, sources, dest)
        if writer.private:
            fail(
                'this index is private (read_access = "token"): its pages are written only for an '
                "nginx that asks the read check first; set static_pages_auth_request = true "
                '(README.md, "Serving a LAN") and run this again'
            )
        index.load(progress_printer(lambda line: click.echo(line, err=True)))
        sources.reload()
        try:
            with click.progressbar(
                length=len(index.project_list()), label="writing pages", file=sys.stderr
            ) as bar:
                written = writer.write_all(lambda done, _total: bar.update(done - bar.pos))
        except OSError as exc:
            fail(f"cannot write the pages into {dest}: {exc}; check that the folder is writable")
    click.echo(
        f"wrote the pages of {written} projects into {dest / 'simple'}; "
        f"projects served by privindex itself (quarantined, mixed with the upstream): "
        f"{len(index.project_list()) - written}",
        err=True,
    )


@click.command("migrate-db")
@settings_options
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="The empty PostgreSQL database: postgresql://user:password@host:port/name.",
)
@click.option("--skip-check", is_flag=True, help="Do not run `privindex check` on the new database.")
def migrate_db(settings: Settings, target_url: str, skip_check: bool) -> None:
    """Copy the data dir's SQLite database to an empty PostgreSQL database.

    Stop the servers first: what they write during the copy is not copied. Every table is
    copied in one transaction, the row counts are compared, and `privindex check` runs
    against the new database. The SQLite file is left as it was.
    """
    from privindex.db.connection import redact_url
    from privindex.ops.database_copy import CopyError, copy_sqlite_to_postgres
    from privindex.ops.maintenance import MaintenanceError
    from privindex.ops.maintenance import check as run_check
    from privindex.packages.store import Store

    shown = redact_url(target_url)
    click.echo(f"copying {settings.database_path} to {shown}", err=True)
    try:
        result = copy_sqlite_to_postgres(
            settings.database_path, target_url, lambda line: click.echo(line, err=True)
        )
    except (CopyError, ValueError) as exc:
        fail(str(exc))
    rows = sum(result.counts.values())
    click.echo(
        f"copied and verified {len(result.counts)} tables, {rows:,} rows: the row counts match", err=True
    )
    if not skip_check:
        try:
            checked = run_check(target_url, Store(settings.store), lambda line: click.echo(line, err=True))
        except MaintenanceError as exc:
            fail(f"the copy is committed, but check could not run: {exc}")
        for problem in checked.problems:
            click.echo(f"problem: {problem}")
        if checked.problems:
            fail(
                f"the copy is committed, but check found {len(checked.problems)} problem(s) in "
                f"{checked.checked} files (the SQLite installation has them too: `privindex check`)"
            )
        click.echo(f"check: all {checked.checked} files match their records in the new database", err=True)
    click.echo(
        f'done. Point every server at it: database_url = "{shown}" (or PRIVINDEX_DATABASE_URL), '
        f"with the same store and data dir; keep {settings.database_path.name} as a backup",
        err=True,
    )
