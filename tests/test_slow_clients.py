"""Slow downloads never hold a worker (issue 30, item 2): with threads = 2, more clients
than threads reading big files slowly (local files, cached upstream files, whole and by
Range) leave pages answering at once, and a slow client of a cold upstream file frees its
worker, and the upstream's share, once the download has landed.

A slow client is a raw socket with a small receive buffer that reads a little and sleeps,
as a client on a slow link does. The files are bigger than what waitress buffers for one
connection (16 MB) plus the kernel's socket buffers, so a worker writing one at the
client's speed would stay blocked on it.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import start_server, wait_until
from fake_upstream import FakeUpstream
from helpers import SlowReader, listed
from wheels import make_wheel

pytestmark = [
    pytest.mark.database_neutral,  # what it checks is the same on any database
    pytest.mark.slow,  # the point is the server process: its worker threads under slow clients
]

BIG = 40 * 1024 * 1024
OLD = datetime(2020, 1, 1, tzinfo=UTC)


def _big_wheel(folder: Path, name: str) -> Path:
    return make_wheel(folder, name, "1.0", payload=os.urandom(BIG))


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    folder = tmp_path_factory.mktemp("far")
    fake = FakeUpstream()
    for name in ("far-big", "far-cold", "far-other"):
        fake.add(name, _big_wheel(folder / name, name), uploaded=OLD)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake):
    base = tmp_path_factory.mktemp("slow-clients")
    _big_wheel(base / "store", "near-big")
    server = start_server(
        base / "store",
        base / "data",
        "--upstream",
        fake.url,
        env={"PRIVINDEX_THREADS": "2", "PRIVINDEX_UPSTREAM_WORKERS": "1"},
    )
    yield server
    server.stop()


def _upstream_path(server, fake, project: str) -> str:
    filename = fake.projects[project][0]["filename"]
    assert filename in listed(server, project)  # its page is cached now
    return f"/packages/.upstream/{project}/{filename}"


def _local_path(server) -> str:
    (filename,) = listed(server, "near-big")
    return f"/packages/{filename}"


def _page_seconds(url: str) -> float:
    started = time.monotonic()
    assert requests.get(url, timeout=5).status_code == 200
    return time.monotonic() - started


def test_more_slow_readers_than_threads_leave_pages_answering(server, fake):
    local, far = _local_path(server), _upstream_path(server, fake, "far-big")
    blob = fake.blobs[far.rsplit("/", 1)[1]]
    assert requests.get(server.url + far, timeout=60).content == blob  # cached now
    readers = [
        SlowReader(server.url, path, headers)
        for path in (local, far)
        for headers in ("", "Range: bytes=1000-\r\n", "Range: bytes=5000000-\r\n")
    ]
    for reader in readers:
        reader.start()
    try:
        for reader in readers:
            assert reader.started_answer.wait(10)
        assert sorted(r.status.split()[1] for r in readers) == [b"200"] * 2 + [b"206"] * 4
        time.sleep(1)  # what waitress and the kernel buffer for each is full: writers would block now
        for _ in range(5):
            assert _page_seconds(f"{server.index_url}near-big/") < 1
            assert _page_seconds(server.index_url) < 1
        # a range of a cached upstream file is its exact bytes, and ends where it was asked to
        part = requests.get(server.url + far, headers={"Range": "bytes=1000-1999"}, timeout=10)
        assert part.status_code == 206 and part.content == blob[1000:2000]
        assert all(r.is_alive() and r.received < BIG for r in readers)  # still reading, slowly
    finally:
        for reader in readers:
            reader.stop.set()
        for reader in readers:
            reader.join(10)


def test_a_slow_client_of_a_cold_file_frees_the_upstreams_share_once_the_download_landed(server, fake):
    cold, other = _upstream_path(server, fake, "far-cold"), _upstream_path(server, fake, "far-other")
    reader = SlowReader(server.url, cold, rate=1024 * 1024)  # 40 s for the whole file
    reader.start()
    try:
        assert reader.started_answer.wait(10) and reader.status.split()[1] == b"200"
        wait_until(lambda: fake.finished[fake.projects["far-cold"][0]["url"]] == 1, 20)
        time.sleep(3)  # verified and renamed; the follower gives the rest to the server
        # the share (upstream_workers = 1) was the slow follower's only while the file came:
        # one try (a refused one would start the download, and a retry find it cached)
        with requests.get(server.url + other, stream=True, timeout=30) as answer:
            assert answer.status_code == 200
            body = answer.content
        assert hashlib.sha256(body).digest() == hashlib.sha256(fake.blobs[other.rsplit("/", 1)[1]]).digest()
        assert reader.is_alive() and reader.received < BIG  # it is still reading, slowly
    finally:
        reader.stop.set()
        reader.join(10)
