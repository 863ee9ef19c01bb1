"""Settings layers and the `privindex serve` command as an operator meets them."""

from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests
from conftest import ROOT, serve_command, start_server

from privindex.config import ConfigError, Settings, load_settings

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database


def test_layers_defaults_then_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "privindex.toml"
    config.write_text('port = 9001\nthreads = 3\nstore = "from-file"\nread_access = "token"\n')
    env = {"PRIVINDEX_PORT": "9002", "PRIVINDEX_THREADS": "5"}
    settings = load_settings(config, environ=env, overrides={"threads": 7, "host": None})
    assert settings.port == 9002  # environment beats the file
    assert settings.threads == 7  # a flag beats the environment
    assert settings.store == Path("from-file")
    assert settings.read_access == "token"
    assert settings.host == "127.0.0.1"  # default; a flag left unset changes nothing
    assert load_settings(environ={"PRIVINDEX_CONFIG": str(config)}).port == 9001


@pytest.mark.parametrize(
    "toml, env, message",
    [
        ("prot = 1\n", {}, "unknown key 'prot'"),
        ("port = 'eighty'\n", {}, "port: expected int"),
        ("", {"PRIVINDEX_PORT": "eighty"}, "PRIVINDEX_PORT: expected int, got 'eighty'"),
        ("port = 9000\n", {"PRIVINDEX_PORT": "70000"}, "PRIVINDEX_PORT: 70000 is not a TCP port"),
        ("", {"PRIVINDEX_PROT": "1"}, "unknown environment variable PRIVINDEX_PROT"),
        ("", {"PRIVINDEX_OVERWRITE": "maybe"}, "PRIVINDEX_OVERWRITE: expected bool"),
        ("read_access = 'everyone'\n", {}, "read_access: must be 'public' or 'token'"),
        ("port = 70000\n", {}, "port: 70000 is not a TCP port"),
        ("port = = 1\n", {}, "privindex.toml"),
        ("", {"PRIVINDEX_UPSTREAM_FILE_DEADLINE": "0"}, "PRIVINDEX_UPSTREAM_FILE_DEADLINE: must be positive"),
        ("upstream_max_page_mb = -1\n", {}, "upstream_max_page_mb: must be positive"),
        (
            "upstream_file_hosts = 'https://files.example/'\n",
            {},
            "upstream_file_hosts: 'https://files.example/' is not",
        ),
        (
            "upstream_url = 'ftp://me:hunter2@mirror/'\n",
            {},
            r"upstream_url: must be an http or https URL .*\(got scheme 'ftp'\)$",
        ),
        (
            "threads = 4\n",
            {"PRIVINDEX_UPSTREAM_WORKERS": "4"},
            "PRIVINDEX_UPSTREAM_WORKERS: must be 0 .* or 1 to threads - 1 .3.",
        ),
    ],
)
def test_bad_settings_name_the_culprit(tmp_path, toml, env, message):
    config = tmp_path / "privindex.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ=env)


def test_bad_setting_stops_serve_with_exit_2_and_no_traceback(tmp_path):
    config = tmp_path / "privindex.toml"
    config.write_text("threds = 4\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "privindex",
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown key 'threds'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing was created before the check


def test_missing_config_file_is_reported(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "privindex", "serve", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "nope.toml does not exist" in proc.stderr


def test_example_config_documents_every_setting_with_its_default():
    documented = tomllib.loads((ROOT / "config.example.toml").read_text())
    defaults = Settings()
    assert set(documented) == set(Settings.__dataclass_fields__)
    for key, value in documented.items():
        default = getattr(defaults, key)
        assert str(list(default) if isinstance(default, tuple) else default) == str(value), key


def test_serve_prints_url_and_pip_line_and_stops_cleanly_on_sigterm(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data")
    port = server.url.rsplit(":", 1)[1]
    assert (
        f"install with:  pip install --index-url http://localhost:{port}/simple/ <package>" in server.banner
    )
    assert any(
        line.startswith(
            "no user yet: create the first admin with:  privindex user add NAME --admin --data-dir"
        )
        for line in server.banner
    )
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    assert server.stop(signal.SIGTERM) == 0
    assert "privindex stopped" in server.banner
    assert "Traceback" not in server.log()


def test_ctrl_c_stops_cleanly(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data")
    assert server.stop(signal.SIGINT) == 0
    assert "Traceback" not in server.log()


def test_environment_variables_reach_serve(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "privindex", "serve", "--port", "0"],
        env={"PRIVINDEX_STORE": str(tmp_path / "s"), "PRIVINDEX_THREADS": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "PRIVINDEX_THREADS: must be at least 1, got 0" in proc.stderr


@pytest.mark.slow  # two real serve processes
def test_port_in_use_is_a_clear_error(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data")
    port = server.url.rsplit(":", 1)[1]
    try:
        proc = subprocess.run(
            serve_command(tmp_path / "store", tmp_path / "data2", port=port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
    assert proc.returncode == 1
    assert "Choose another --port" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_python_dash_m_and_console_script_agree():
    module = subprocess.run([sys.executable, "-m", "privindex", "--version"], capture_output=True, text=True)
    script = subprocess.run(
        [str(Path(sys.executable).parent / "privindex"), "--version"], capture_output=True, text=True
    )
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout and "privindex" in module.stdout
