"""Crash safety, backup (while serving and uploading), restore, and the integrity check."""

from __future__ import annotations

import hashlib
import os
import signal
import threading

import pytest
import requests
import testdb
from conftest import pip, privindex_cli, start_server, wait_until
from helpers import listed
from webclient import uploader
from wheels import make_wheel, upload

pytestmark = pytest.mark.slow  # kills, restarts and backs up real servers; pip installs the restore


def temp_files(store) -> list[str]:
    return [
        name for _d, _s, names in os.walk(store) for name in names if name.startswith(".privindex-upload-")
    ]


def test_sigkill_during_a_large_upload_leaves_nothing_behind(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data")
    token = uploader(server, "crash")
    big = make_wheel(tmp_path, "big", "1.0", payload=os.urandom(90 * 1024 * 1024))
    outcome: list = []
    thread = threading.Thread(
        target=lambda: outcome.append(_ignore_errors(upload, server.url, token, big)), daemon=True
    )
    thread.start()
    # the body arrives first (waitress spools it), then Werkzeug streams the file into the store
    wait_until(lambda: temp_files(server.store) or outcome, 120, interval=0.002)
    assert not outcome, f"the upload finished before it could be interrupted: {outcome}"
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    thread.join(timeout=30)
    assert temp_files(server.store)  # the crash did leave a half-written upload...

    restarted = start_server(server.store, server.data_dir)
    try:
        assert temp_files(restarted.store) == []  # ...which the next start removes
        assert "removed 1 unfinished upload" in restarted.log()
        assert listed(restarted, "big") == {}
        assert requests.get(f"{restarted.url}/packages/big/{big.name}", timeout=10).status_code == 404
        if not testdb.ON_POSTGRES:
            assert testdb.query(restarted.data_dir, "PRAGMA integrity_check")[0][0] == "ok"
        assert privindex_cli(restarted, "check").returncode == 0
        # and the same upload goes through afterwards
        assert upload(restarted.url, token, big).status_code == 200
        assert big.name in listed(restarted, "big")
    finally:
        restarted.stop()


RECEIVING = """
import sys
from pathlib import Path
from privindex.packages.store import IncomingFile
incoming = IncomingFile(Path(sys.argv[1]), 1 << 30)
incoming.write(b"half an upload")
print(incoming.path.name, flush=True)
sys.stdin.readline()
"""


def test_a_server_starting_on_a_shared_store_leaves_another_process_upload_alone(tmp_path):
    """Servers sharing a store: one starting removes only the temp files of crashed uploads,
    not one another process is still receiving (it holds a lock on it); `check` does not
    count the running one as a problem either."""
    import subprocess
    import sys
    import time

    store = tmp_path / "store"
    store.mkdir()
    crashed = store / ".privindex-upload-crashed.tmp"
    crashed.write_bytes(b"left by a crash")
    os.utime(crashed, (time.time() - 60, time.time() - 60))
    receiving = subprocess.Popen(
        [sys.executable, "-c", RECEIVING, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        running = receiving.stdout.readline().strip()
        assert sorted(temp_files(store)) == sorted([crashed.name, running])
        server = start_server(store, tmp_path / "data")
        try:
            wait_until(lambda: "removed 1 unfinished upload" in server.log(), 10)  # the start's clean-up ran
            assert temp_files(store) == [running]
            assert privindex_cli(server, "check", check=False).returncode == 0
        finally:
            server.stop()
    finally:
        receiving.communicate("\n", timeout=30)
    assert temp_files(store) == []  # the upload's own process removed it when done


def _ignore_errors(fn, *args):
    try:
        return fn(*args)
    except requests.RequestException as exc:
        return exc


@testdb.sqlite_only  # privindex backup copies SQLite data dirs; PostgreSQL is pg_dump's
def test_backup_while_serving_and_uploading_then_restore_and_install(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data")
    token = uploader(server, "backer")
    for i in range(5):
        assert upload(server.url, token, make_wheel(tmp_path, f"early{i}", "1.0")).status_code == 200

    stop = threading.Event()
    uploaded: list[str] = []

    def keep_uploading():
        n = 0
        while not stop.is_set():
            wheel = make_wheel(tmp_path / "late", "late", f"{n}.0", payload=os.urandom(200_000))
            if upload(server.url, token, wheel).status_code == 200:
                uploaded.append(wheel.name)
            n += 1

    worker = threading.Thread(target=keep_uploading)
    worker.start()
    try:
        wait_until(lambda: len(uploaded) >= 2, 60)
        result = privindex_cli(server, "backup", str(tmp_path / "backup"))
    finally:
        stop.set()
        worker.join()
    assert "backed up" in result.stderr and "database: " in result.stderr
    server.stop()

    backup = tmp_path / "backup"
    assert privindex_cli(_at(backup), "check").returncode == 0
    restored = start_server(backup / "packages", backup / "data")
    try:
        assert "indexing the store" not in restored.log()  # sizes and mtimes kept: no rehash
        for i in range(5):
            assert f"early{i}-1.0-py3-none-any.whl" in listed(restored, f"early{i}")
        pip("install", "--index-url", restored.index_url, "--target", str(tmp_path / "t"), "early3")
        assert (tmp_path / "t" / "early3-1.0.dist-info").is_dir()
        restored_late = listed(restored, "late")
        assert restored_late  # uploads made before the backup's snapshot are there...
        for name, info in restored_late.items():  # ...complete and intact
            content = (backup / "packages" / "late" / name).read_bytes()
            assert hashlib.sha256(content).hexdigest() == info["hashes"]["sha256"]
    finally:
        restored.stop()


class _at:
    """Pretend to be a LiveServer for privindex_cli on a backup folder."""

    def __init__(self, backup):
        self.store, self.data_dir = backup / "packages", backup / "data"


def test_check_reports_corrupt_missing_and_unindexed_files(fresh_server, dists):
    server = fresh_server()
    assert privindex_cli(server, "check").returncode == 0
    server.stop()

    corrupt = server.store / "alpha" / "alpha-2.0-py3-none-any.whl"
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stat = corrupt.stat()
    corrupt.write_bytes(bytes(data))
    os.utime(corrupt, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # silent corruption: same size, same time
    (server.store / "handmade-0.3.tar.gz").unlink()
    (server.store / "stray-1.0-py3-none-any.whl").write_bytes(
        dists.one("alpha-1.0-py3-none-any.whl").read_bytes()
    )

    proc = privindex_cli(server, "check", check=False)
    assert proc.returncode == 1
    assert "alpha/alpha-2.0-py3-none-any.whl: content does not match the published sha256" in proc.stdout
    assert "handmade-0.3.tar.gz: missing from the store" in proc.stdout
    assert "stray-1.0-py3-none-any.whl: in the store but not indexed" in proc.stdout
    quick = privindex_cli(server, "check", "--quick", check=False)
    assert "alpha-2.0-py3-none-any.whl" not in quick.stdout  # --quick compares sizes only
    assert quick.returncode == 1
