"""`privindex cache ...`: the pull-through cache of the upstream index."""

from __future__ import annotations

import click

from privindex.cli.common import account_command, day, fail, settings_options
from privindex.config import Settings


@click.group("cache")
def cache_group() -> None:
    """The pull-through cache of the upstream index (data dir, upstream/)."""


def offline_upstream_cache(settings: Settings):
    """The upstream cache on disk, never asking the upstream (it may not be configured now)."""
    from privindex.app import make_upstream_cache
    from privindex.config import replace

    if not settings.upstream_url:  # the cache on disk is still there to list or prune
        settings = replace(settings, upstream_url="http://upstream.invalid/")
    return make_upstream_cache(replace(settings, upstream_offline=True))


@cache_group.command("list")
@settings_options
def cache_list(settings: Settings) -> None:
    """List cached upstream files, most recently used first."""
    cache = offline_upstream_cache(settings)
    click.echo("file\tbytes\tlast used (UTC)")
    for rel, size, used in cache.listing():
        click.echo(f"{rel}\t{size}\t{day(used)}")
    click.echo(
        f"{len(cache.listing())} files, {cache.total_bytes() / 1e6:.1f} MB "
        f"(limit {settings.upstream_cache_max_gb} GB)",
        err=True,
    )


@cache_group.command("prune")
@settings_options
@click.option("--max-gb", type=float, help="Prune down to this size [default: upstream_cache_max_gb].")
@click.option("--all", "everything", is_flag=True, help="Remove every cached file.")
def cache_prune(settings: Settings, max_gb: float | None, everything: bool) -> None:
    """Remove least recently used upstream files until the cache fits."""
    cache = offline_upstream_cache(settings)
    limit = (
        0 if everything else int((max_gb if max_gb is not None else settings.upstream_cache_max_gb) * 1024**3)
    )
    removed = cache.prune(limit, report=lambda line: click.echo(line, err=True))
    click.echo(f"removed {removed} files; {cache.total_bytes() / 1e6:.1f} MB left", err=True)


@account_command(cache_group, "exempt")
@click.argument("name")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="UTC date (YYYY-MM-DD[THH:MM:SS]) the exemption ends [default: never].",
)
def cache_exempt(name: str, until) -> None:
    """Let NAME's newest upstream versions through at once, past upstream_min_age (a
    security fix, say). A running server follows within a pass; audited."""
    import calendar
    import time

    from privindex.ops import audit
    from privindex.upstream import cooldown

    ends = calendar.timegm(until.timetuple()) if until else None
    if ends is not None and ends <= time.time():
        fail(f"--until {day(ends)} is in the past; give a later date, or none for good")
    normalized = cooldown.exempt(name, ends, audit.CLI)
    how_long = f"until {day(ends)} UTC" if ends else "for good"
    click.echo(f"{normalized}: past the cooldown {how_long}", err=True)


@account_command(cache_group, "unexempt")
@click.argument("name")
def cache_unexempt(name: str) -> None:
    """The cooldown (upstream_min_age) applies to NAME again."""
    from privindex.ops import audit
    from privindex.upstream import cooldown

    if not cooldown.unexempt(name, audit.CLI):
        click.echo(f"{name} had no exemption; nothing changed", err=True)
    else:
        click.echo(f"{name}: the cooldown applies again", err=True)
