"""A start serves at once from what the database recorded, and catches up with the disk in
the background (Index.catch_up): pages fill in as files are read, /readyz says how far it
is, and bytes changed while the server was stopped are never served."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import requests
import testdb
from conftest import start_server, wait_until
from helpers import listed, listed_hashes
from wheels import make_wheel

from privindex.app import create_app
from privindex.config import Settings
from privindex.db.connection import bound
from privindex.ops import audit
from privindex.packages import index as index_module
from privindex.packages import reading, withdrawal

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def settings(tmp_path) -> Settings:
    return Settings(
        store=tmp_path / "store", data_dir=tmp_path / "data", database_url=testdb.url_for(tmp_path / "data")
    )


def page_files(client, project: str) -> dict[str, str]:
    """filename -> sha256 on the project's JSON page ({} when not listed)."""
    page = client.get(f"/simple/{project}/", headers=JSON)
    return (
        {f["filename"]: f["hashes"]["sha256"] for f in page.json["files"]} if page.status_code == 200 else {}
    )


def test_a_start_lists_the_record_at_once_and_never_serves_bytes_changed_while_stopped(tmp_path):
    store = tmp_path / "store"
    kept = make_wheel(store, "kept", "1.0")
    changed = make_wheel(store, "changed", "1.0")
    deleted = make_wheel(store, "deleted", "1.0")
    create_app(settings(tmp_path))  # indexes and records all three
    changed.write_bytes(
        make_wheel(tmp_path / "other", "changed", "1.0", payload=b"not what was published").read_bytes()
    )
    deleted.unlink()
    added = make_wheel(store, "added", "1.0")

    app = create_app(settings(tmp_path), index_later=True)
    client, index = app.test_client(), app.extensions["privindex"].index
    # what the database recorded, before the disk is looked at
    assert set(page_files(client, "kept")) == {kept.name}
    assert set(page_files(client, "changed")) == {changed.name}
    assert page_files(client, "added") == {}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["status"] == "indexing"
    assert ready.json["indexing"]["files_indexed"] == 3
    assert client.get("/health").json["indexing"]["files_indexed"] == 3
    # a download checks the record: changed bytes are refused, a missing file is not found
    refused = client.get(f"/packages/{changed.name}")
    assert refused.status_code == 409 and b"changed on disk" in refused.data
    assert client.get(f"/packages/{deleted.name}").status_code == 404
    assert client.get(f"/packages/{kept.name}").data == kept.read_bytes()

    with bound(app.extensions["privindex"].database):
        index.catch_up()
    assert set(page_files(client, "added")) == {added.name}
    assert page_files(client, "deleted") == {}
    assert page_files(client, "changed") == {}  # withdrawn: its published digest is not on disk
    assert b"withdrawn" in client.get(f"/packages/{changed.name}").data
    assert client.get("/readyz").status_code == 200 and "indexing" not in client.get("/health").json


def test_a_warm_start_reads_pages_from_the_record_until_a_writer_or_catch_up_loads_it(tmp_path):
    """load_recorded lists the projects from one query and reads each page from the
    database when asked for; what it serves is what the whole record in memory serves."""
    store = tmp_path / "store"
    make_wheel(store, "mixed-case", "1.0", metadata_name="Mixed-Case")
    make_wheel(store, "mixed-case", "2.0", metadata_name="mixed-case")  # the latest spelling wins
    other = make_wheel(store, "other", "1.0")
    loaded = create_app(settings(tmp_path)).test_client()
    pages = ["/simple/", "/simple/mixed-case/", "/simple/other/"]
    expected = {url: loaded.get(url).data for url in pages}
    assert b">mixed-case</a>" in expected["/simple/"]

    app = create_app(settings(tmp_path), index_later=True)
    client, index = app.test_client(), app.extensions["privindex"].index
    assert {url: client.get(url).data for url in pages} == expected
    assert client.get(f"/packages/{other.name}").data == other.read_bytes()
    assert client.get("/simple/absent/").status_code == 404
    assert (client.get("/health").json["projects"], client.get("/health").json["files"]) == (2, 3)
    stored = sum(p.stat().st_size for p in store.glob("*.whl"))
    assert f"privindex_index_bytes {float(stored)}" in client.get("/metrics").text  # goes over every file
    # a writer before catch_up: the record is loaded first, so nothing listed is lost
    with bound(app.extensions["privindex"].database):
        withdrawal.set_yanked(index, None, "other", other.name, True, "broken", audit.Context(via="cli"))
    assert page_files(client, "mixed-case") == page_files(loaded, "mixed-case")
    assert client.get("/simple/", headers=JSON).json == loaded.get("/simple/", headers=JSON).json
    assert client.get("/simple/other/", headers=JSON).json["files"][0]["yanked"] == "broken"


def test_pages_fill_in_a_batch_at_a_time_while_the_store_is_read(tmp_path, monkeypatch):
    store = tmp_path / "store"
    wheels = [make_wheel(store, f"proj{i % 3}", f"1.{i}") for i in range(7)]
    app = create_app(settings(tmp_path), index_later=True)
    client, index = app.test_client(), app.extensions["privindex"].index
    assert client.get("/simple/").status_code == 200 and index.file_count() == 0
    monkeypatch.setattr(index_module, "LOAD_BATCH", 2)
    seen = []

    def progress(done: int, total: int) -> None:
        listed_now = {name for p in ("proj0", "proj1", "proj2") for name in page_files(client, p)}
        assert len(listed_now) == done  # every file read so far is on its page, no other
        ready = client.get("/readyz").json
        seen.append((done, total, ready["status"], ready["indexing"]["files_left"]))

    with bound(app.extensions["privindex"].database):
        index.catch_up(progress)
    assert seen == [
        (2, 7, "indexing", 5),
        (4, 7, "indexing", 3),
        (6, 7, "indexing", 1),
        (7, 7, "indexing", 0),
    ]
    assert {name for p in ("proj0", "proj1", "proj2") for name in page_files(client, p)} == {
        w.name for w in wheels
    }
    assert client.get("/readyz").status_code == 200


def test_many_new_files_are_read_by_a_process_per_core_with_the_same_facts(tmp_path, monkeypatch):
    store = tmp_path / "store"
    wheels = [make_wheel(store, f"many{i}", "1.0", payload=bytes([i]) * 5000) for i in range(12)]
    (store / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    monkeypatch.setattr(reading, "POOL_THRESHOLD", 4)
    client = create_app(settings(tmp_path)).test_client()
    for w in wheels:
        assert page_files(client, w.name.split("-")[0]) == {
            w.name: hashlib.sha256(w.read_bytes()).hexdigest()
        }
    assert page_files(client, "broken") == {}


@pytest.mark.slow  # a server of its own
def test_a_server_on_an_unindexed_store_answers_and_reports_its_progress(tmp_path):
    store = tmp_path / "store"
    wheels = [make_wheel(store, f"cold{i}", "1.0") for i in range(300)]
    server = start_server(store, tmp_path / "data", indexed=False)
    try:
        assert requests.get(f"{server.url}/simple/", timeout=10).status_code == 200
        wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 60)
        assert set(listed(server, "cold7")) == {wheels[7].name}
        assert requests.get(f"{server.url}/health", timeout=10).json()["files"] == 300
        wait_until(lambda: "indexing the store: read 300/300 new or changed files" in server.log(), 5)
    finally:
        server.stop()


def _children(pid: int) -> dict[int, str]:
    """pid's child processes now: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):  # not a process, or gone meanwhile
            continue
    return found


@pytest.mark.slow  # a server of its own
def test_a_cold_index_leaves_no_process_behind(tmp_path):
    """Once every file is listed, the worker processes that read them are gone, and so is
    the process multiprocessing starts to watch their semaphores (12 MB for as long as the
    server lived); a second round of reading starts and stops them again."""
    store = tmp_path / "store"
    for i in range(240):
        make_wheel(store, f"cold{i}", "1.0")
    server = start_server(store, tmp_path / "data", indexed=False)
    try:
        wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 60)
        wait_until(lambda: not _children(server.proc.pid), 5)
        for i in range(240):  # copied in by hand: the watcher reads them with the pool too
            make_wheel(store, f"more{i}", "1.0")
        wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["files"] == 480, 60)
        wait_until(lambda: not _children(server.proc.pid), 5)
        assert "leaked" not in server.log() and "Traceback" not in server.log()
    finally:
        server.stop()


def _pool_workers(server_pid: int) -> dict[int, int]:
    """The server's worker processes (spawned by multiprocessing) now: pid -> niceness."""
    found = {}
    for pid, command in _children(server_pid).items():
        if "spawn_main" in command:
            try:
                found[pid] = os.getpriority(os.PRIO_PROCESS, pid)
            except OSError:  # gone meanwhile
                continue
    return found


@pytest.mark.slow  # a server of its own
def test_a_cold_store_is_read_below_the_servers_priority_and_only_broken_files_are_refused(tmp_path):
    """Many files are read by worker processes at a lower priority than the server, so it
    answers its readers first; among them, a corrupt and a truncated wheel are refused with
    their reason in the log and every other file is listed with its sha256 (big ones are
    hashed a chunk at a time)."""
    store = tmp_path / "store"
    small = [make_wheel(store, f"cold{i}", "1.0") for i in range(240)]
    big = [make_wheel(store, f"big{i}", "1.0", payload=os.urandom(24 * 1024 * 1024)) for i in range(4)]
    (store / "corrupt-1.0-py3-none-any.whl").write_bytes(b"not a zip at all")
    whole = small[0].read_bytes()
    (store / "truncated-1.0-py3-none-any.whl").write_bytes(whole[: len(whole) // 2])
    server = start_server(store, tmp_path / "data", indexed=False)
    try:
        workers: dict[int, int] = {}
        while requests.get(f"{server.url}/readyz", timeout=10).status_code != 200:
            workers.update(_pool_workers(server.proc.pid))
            time.sleep(0.01)
        server_niceness = os.getpriority(os.PRIO_PROCESS, server.proc.pid)
        assert workers and set(workers.values()) == {min(server_niceness + reading.NICENESS, 19)}

        assert requests.get(f"{server.url}/health", timeout=10).json()["files"] == 244
        for wheel in small[:3] + big:
            assert listed_hashes(server, wheel.name.split("-")[0]) == {
                wheel.name: hashlib.sha256(wheel.read_bytes()).hexdigest()
            }
        assert listed(server, "corrupt") == listed(server, "truncated") == {}
        log = server.log()
        for broken in ("corrupt", "truncated"):
            assert f"skipping {broken}-1.0-py3-none-any.whl: {broken}-1.0-py3-none-any.whl: not a " in log
        wait_until(lambda: "indexing the store: read 246/246 new or changed files" in server.log(), 5)
    finally:
        server.stop()


def test_upload_temp_files_of_a_crash_go_and_a_running_uploads_stay(tmp_path):
    """catch_up removes the temp files left by a crash (older than this process), never one
    an upload of this process is writing."""
    store = tmp_path / "store"
    store.mkdir()
    old = store / ".privindex-upload-crashed.tmp"
    old.write_bytes(b"half")
    app = create_app(settings(tmp_path), index_later=True)
    running = store / ".privindex-upload-running.tmp"
    running.write_bytes(b"being written")
    with bound(app.extensions["privindex"].database):
        app.extensions["privindex"].index.catch_up()
    assert not old.exists() and running.exists()
