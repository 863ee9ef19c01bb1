"""Run from the wrong folder, privindex says where it looked instead of making an empty
./privindex_data (or serving an empty store) and acting on it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import client_env, http_status, run, start_server

from privindex.cli import main

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty current folder, no PRIVINDEX_* settings from outside."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("PRIVINDEX_")]:
        monkeypatch.delenv(key)
    return tmp_path


@pytest.mark.parametrize("command", [["user", "list"], ["audit"], ["check"], ["cache", "list"]])
def test_a_command_outside_the_data_folder_names_the_default_it_looked_for(elsewhere, command):
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert (
        f"no data dir at {elsewhere / 'privindex_data'} (the default, in the current folder)" in result.output
    )
    assert "--data-dir PATH" in result.output and "Traceback" not in result.output
    assert not (elsewhere / "privindex_data").exists()


def test_a_data_dir_that_does_not_exist_is_named_and_not_created(elsewhere):
    result = CliRunner().invoke(
        main, ["user", "add", "alice", "--password-stdin", "--data-dir", "typo"], input="pw\n"
    )
    assert result.exit_code == 1
    assert f"no data dir at {elsewhere / 'typo'};" in result.output
    assert not (elsewhere / "typo").exists()


def _serve(*args: str, cwd):
    return run(
        [sys.executable, "-m", "privindex", "serve", "--port", "0", *args],
        check=False,
        cwd=cwd,
        env=client_env(),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_serve_refuses_a_store_that_does_not_exist_and_creates_nothing(elsewhere):
    proc = _serve("--store", "pakages", "--data-dir", "data", cwd=elsewhere)
    assert proc.returncode == 1
    assert f"the store {elsewhere / 'pakages'} does not exist" in proc.stderr
    assert "mkdir -p pakages" in proc.stderr and "--create" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (elsewhere / "pakages").exists() and not (elsewhere / "data").exists()


def test_serve_create_makes_the_store_it_is_given(tmp_path):
    server = start_server(tmp_path / "new-store", tmp_path / "data", "--create", make_store=False)
    try:
        assert (tmp_path / "new-store").is_dir()
        assert http_status(f"{server.index_url}") == 200
    finally:
        server.stop()
