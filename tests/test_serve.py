"""`privindex serve` as an operator runs it: signals, and errors reported before any change."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
from conftest import serve_command, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.database_neutral,
]  # the real serve process


def test_kill_int_stops_a_server_that_inherited_sigint_as_ignored(tmp_path):
    """A server started in the background by a script (or nohup from one) inherits SIGINT as
    ignored; Ctrl-C and `kill -INT` must stop it all the same."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child through fork
    try:
        server = start_server(tmp_path / "store", tmp_path / "data")
    finally:
        signal.signal(signal.SIGINT, previous)
    status = open(f"/proc/{server.proc.pid}/status").read() if sys.platform == "linux" else ""
    assert server.stop(signal.SIGINT) == 0
    assert "privindex stopped" in server.banner
    assert "Traceback" not in server.log()
    if status:  # the child did start with SIGINT ignored, and replaced that with its own handler
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1], 16)
        assert caught & (1 << (signal.SIGINT - 1))


def test_a_busy_port_is_reported_before_the_data_dir_is_created(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            serve_command(tmp_path / "store", tmp_path / "data", port=port),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "Choose another --port" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "store").exists()
    assert "privindex stopped" not in proc.stdout


def test_a_bad_flag_value_is_named_as_the_flag(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "privindex", "serve", "--threads", "0", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--threads: must be at least 1, got 0" in proc.stderr
