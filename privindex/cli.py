"""The `privindex` command line: parse, call a service, print. Errors are one line."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from privindex import __version__
from privindex.config import ConfigError, Settings, load_settings

SETTING_NAMES = set(Settings.__dataclass_fields__)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"privindex: error: {message}", err=True)
    sys.exit(code)


def settings_options(command: Callable) -> Callable:
    """--config, --store and --data-dir, shared by every command that touches the data."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML settings file (also PRIVINDEX_CONFIG). See config.example.toml.")
    @click.option("--store", type=click.Path(file_okay=False),
                  help="Package folder [default: ./packages_store].")
    @click.option("--data-dir", type=click.Path(file_okay=False),
                  help="Database and caches [default: ./privindex_data].")
    @functools.wraps(command)
    def wrapper(config_path: str | None, **kwargs: Any):
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in SETTING_NAMES}
        return command(load(overrides, config_path), **kwargs)

    return wrapper


def load(overrides: dict[str, Any], config_path: str | None = None) -> Settings:
    try:
        return load_settings(config_path, overrides=overrides)
    except ConfigError as exc:
        fail(f"bad setting: {exc}", code=2)
        raise  # unreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="privindex")
def main() -> None:
    """privindex: a private Python package index for small teams."""


@main.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="TCP port; 0 picks a free one [default: 8080].")
@click.option("--threads", type=int, help="Worker threads [default: 8].")
@settings_options
def serve(settings: Settings) -> None:
    """Serve the package folder as a simple index (Ctrl-C stops)."""
    from privindex.server import serve as run

    try:
        run(settings, echo=click.echo)
    except OSError as exc:
        fail(f"cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}; "
             "is another server running there? Choose another --port.")
    except RuntimeError as exc:
        fail(str(exc))
