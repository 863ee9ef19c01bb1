"""`privindex retention ...`: the policy that deletes old pre-releases and dev releases."""

from __future__ import annotations

import sys

import click

from privindex.cli.common import account_command


@click.group("retention")
def retention() -> None:
    """Delete old pre-releases and dev releases to free disk (settings retention_*)."""


@account_command(retention, "run")
@click.option("--dry-run", is_flag=True, help="Only say what would go; delete nothing.")
def retention_run(dry_run: bool) -> None:
    """Apply the retention policy now: every file it lets go, and the bytes freed.

    A running server stops listing the deleted files within a pass (rescan_interval).
    """
    from privindex.packages import retention as service
    from privindex.packages.store import Store

    settings = click.get_current_context().obj
    files = service.plan(settings)
    if dry_run:
        report = service.Report(files)
    else:
        with click.progressbar(length=len(files), label="deleting", file=sys.stderr) as bar:
            report = service.delete(
                files,
                Store(settings.store),
                None,
                "retention-cli",
                progress=lambda done, _total: bar.update(done - bar.pos),
            )
    verb = "would delete" if dry_run else "deleted"
    for file in report.files:
        click.echo(f"{verb}\t{file.project}\t{file.filename}\t{file.size}\t{file.reason}")
    click.echo(
        f"{verb} {len(report.files)} files, {report.bytes} bytes ({report.bytes / 1024**2:.1f} MiB)"
        + ("; run without --dry-run to delete them" if dry_run and report.files else ""),
        err=True,
    )


@account_command(retention, "set")
@click.argument("project_name", metavar="PROJECT")
@click.option(
    "--keep-prereleases", type=click.IntRange(min=0), help="Keep the newest N pre-/dev releases (0: all)."
)
@click.option(
    "--dev-max-days", type=click.IntRange(min=0), help="Delete dev releases older than D days (0: never)."
)
@click.option("--inherit", is_flag=True, help="Drop the project's overrides: the index-wide settings apply.")
def retention_set(
    project_name: str, keep_prereleases: int | None, dev_max_days: int | None, inherit: bool
) -> None:
    """Override the index-wide retention settings for PROJECT (audited)."""
    from privindex.ops import audit
    from privindex.packages import retention as service

    settings = click.get_current_context().obj
    if inherit == (keep_prereleases is not None or dev_max_days is not None):
        raise click.UsageError("give --keep-prereleases and/or --dev-max-days, or --inherit")
    service.set_policy(None, project_name, keep_prereleases, dev_max_days, audit.CLI)
    click.echo(f"{project_name}: {service.policy_for(settings, project_name)}", err=True)
