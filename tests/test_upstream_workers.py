"""Cold upstream files never take every worker: a background thread downloads each cold
file once, clients follow its temp file, and past `upstream_workers` a client gets 503 at
once, so /healthz and local pages keep answering (issue 23, item 5).

The upstream is fake_upstream's FakeUpstream on loopback, sending files slowly (`rate`);
the server runs with threads = 4 and upstream_workers = 2.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from conftest import build_project, pip, start_server, uv, wait_until
from fake_upstream import FakeUpstream
from helpers import listed

pytestmark = [
    pytest.mark.database_neutral,  # what it checks is the same on any database
    pytest.mark.slow,  # the point is the server process: its threads streaming one download to many
]

OLD = datetime(2020, 1, 1, tzinfo=UTC)
SIZE = 2 * 1024 * 1024
RATE = 512 * 1024  # bytes/s: a cold file takes 4 s to come from the upstream


def _blob(folder: Path, project: str, seed: int, size: int = SIZE) -> Path:
    path = folder / f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    path.write_bytes(hashlib.sha256(str(seed).encode()).digest() * (size // 32))
    return path


@pytest.fixture(scope="module")
def fake(tmp_path_factory, dists):
    folder = tmp_path_factory.mktemp("cold-files")
    fake = FakeUpstream()
    for i, project in enumerate(("cold-b", "cold-c", "cold-e")):
        fake.add(project, _blob(folder, project, i), uploaded=OLD)
    # slower: they keep the share taken while a test shows what else still answers
    fake.add("cold-a", _blob(folder, "cold-a", 3, 3 * SIZE), uploaded=OLD)  # 12 s
    for i, project in enumerate(("busy-pip", "busy-uv")):
        fake.add(project, _blob(folder, project, 4 + i, 8 * SIZE), uploaded=OLD)  # 32 s
    fake.add("tampered", _blob(folder, "tampered", 9), sha256="2" * 64, uploaded=OLD)
    fake.add("alpha", next(p for p in dists.files["alpha"] if p.name.endswith(".whl")), uploaded=OLD)
    build_project(folder / "src", folder / "gamma", "gamma", "1.0", ">=3.8", [])
    fake.add("gamma", next((folder / "gamma").glob("*.whl")), uploaded=OLD)
    fake.rate = RATE
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, dists, fake):
    base = tmp_path_factory.mktemp("workers")
    (base / "store").mkdir()
    for path in dists.files["beta-pkg"]:  # a local project
        shutil.copy2(path, base / "store" / path.name)
    server = start_server(
        base / "store",
        base / "data",
        "--upstream",
        fake.url,
        env={"PRIVINDEX_THREADS": "4", "PRIVINDEX_UPSTREAM_WORKERS": "2"},
    )
    yield server
    server.stop()


def file_url(proxy, fake, project: str) -> str:
    filename = fake.projects[project][0]["filename"]
    assert filename in listed(proxy, project)  # the page is cached now; the file is not
    return f"{proxy.url}/packages/.upstream/{project}/{filename}"


def upstream_path(fake, project: str) -> str:
    return fake.projects[project][0]["url"]


def files_left(proxy, sha256: str) -> list[str]:
    folder = proxy.data_dir / "upstream" / "files" / sha256
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_clients_past_the_share_get_503_at_once_while_healthz_and_local_pages_and_files_answer(proxy, fake):
    url, other = file_url(proxy, fake, "cold-a"), file_url(proxy, fake, "cold-e")
    streams = [requests.get(url, stream=True, timeout=10) for _ in range(4)]  # as many as threads
    try:
        statuses = sorted(r.status_code for r in streams)
        assert statuses == [200, 200, 503, 503]
        refused = next(r for r in streams if r.status_code == 503)
        # try again when the file should be cached: about 10 s of its 12 s are still to come
        assert 5 <= int(refused.headers["Retry-After"]) <= 30
        assert (
            refused.text.count("\n") == 1
            and f"try again in {refused.headers['Retry-After']} s" in refused.text
        )
        # the two followers hold their workers; the other two are free for everyone else
        assert fake.finished[upstream_path(fake, "cold-a")] == 0
        assert requests.get(f"{proxy.url}/healthz", timeout=4).status_code == 200
        assert requests.get(f"{proxy.index_url}beta-pkg/", timeout=4).status_code == 200
        local = next(iter(listed(proxy, "beta-pkg").values()))["url"]
        assert requests.get(urljoin(f"{proxy.index_url}beta-pkg/", local), timeout=4).status_code == 200
        # a client refused for another cold file starts its download all the same
        refused = requests.get(other, timeout=4)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"  # no estimate yet
        wait_until(lambda: fake.requests[upstream_path(fake, "cold-e")] == 1, 5)
    finally:
        for r in streams:
            r.close()
    wait_until(lambda: fake.finished[upstream_path(fake, "cold-a")] == 1, 20)
    wait_until(lambda: requests.get(other, timeout=10).status_code == 200, 10)
    assert requests.get(other, timeout=10).content == fake.blobs[other.rsplit("/", 1)[1]]
    assert fake.requests[upstream_path(fake, "cold-e")] == 1


def test_clients_of_one_cold_file_share_one_download_and_follow_it_as_it_arrives(proxy, fake):
    url = file_url(proxy, fake, "cold-b")
    expected = fake.blobs[url.rsplit("/", 1)[1]]

    def fetch(_i) -> tuple[bool, bytes]:
        with requests.get(url, stream=True, timeout=10) as resp:
            assert resp.status_code == 200
            chunks = resp.iter_content(64 * 1024)
            first = next(chunks)
            # bytes arrive while the upstream is still sending, the follower's too
            early = fake.finished[upstream_path(fake, "cold-b")] == 0
            return early, first + b"".join(chunks)

    with ThreadPoolExecutor(2) as pool:  # the share: both are followers of one download
        answers = list(pool.map(fetch, range(2)))
    assert [early for early, _body in answers] == [True, True]
    assert all(body == expected for _early, body in answers)
    assert fake.requests[upstream_path(fake, "cold-b")] == 1
    # cached now: served from disk, with no worker held for the transfer
    assert requests.get(url, timeout=10).content == expected
    assert fake.requests[upstream_path(fake, "cold-b")] == 1


def test_a_client_that_goes_away_does_not_stop_the_download_for_the_others(proxy, fake):
    url = file_url(proxy, fake, "cold-c")
    expected = fake.blobs[url.rsplit("/", 1)[1]]
    leaving = requests.get(url, stream=True, timeout=10)
    assert leaving.status_code == 200
    next(leaving.iter_content(1024))
    with ThreadPoolExecutor(1) as pool:
        staying = pool.submit(lambda: requests.get(url, timeout=10))
        time.sleep(0.2)  # the second client is in
        leaving.close()  # the first client, whose request started the download, hangs up
        assert staying.result().status_code == 200 and staying.result().content == expected
    assert requests.get(url, timeout=10).content == expected
    assert fake.requests[upstream_path(fake, "cold-c")] == 1
    assert files_left(proxy, fake.projects["cold-c"][0]["hashes"]["sha256"]) == [url.rsplit("/", 1)[1]]


def test_bytes_that_do_not_match_end_every_stream_short_and_leave_nothing(proxy, fake):
    url = file_url(proxy, fake, "tampered")

    def fetch(_i) -> int:
        received = 0
        with (
            pytest.raises(requests.exceptions.RequestException),
            requests.get(url, stream=True, timeout=10) as resp,
        ):
            assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == SIZE
            for chunk in resp.iter_content(64 * 1024):
                received += len(chunk)
        return received

    with ThreadPoolExecutor(2) as pool:
        received = list(pool.map(fetch, range(2)))
    assert all(n < SIZE for n in received)
    assert fake.requests[upstream_path(fake, "tampered")] == 1  # one download for both
    assert files_left(proxy, "2" * 64) == []  # neither the file nor its temp file
    assert "but its page published" in proxy.log()
    with pytest.raises(requests.exceptions.RequestException):  # the next client starts anew
        requests.get(url, timeout=10)  # reads the whole body: cut short
    assert fake.requests[upstream_path(fake, "tampered")] == 2
    assert files_left(proxy, "2" * 64) == []
    assert "Traceback" not in proxy.log()  # streams cut short, not crashed


@pytest.mark.parametrize("client, project", [("pip", "alpha"), ("uv", "gamma")])
def test_pip_and_uv_install_a_cold_package_while_the_share_is_taken(proxy, fake, tmp_path, client, project):
    busy_url = file_url(proxy, fake, f"busy-{client}")
    holders = [requests.get(busy_url, stream=True, timeout=10) for _ in range(2)]
    assert [r.status_code for r in holders] == [200, 200]
    if client == "pip":
        command = (pip, "download", "--no-deps", "--index-url", proxy.index_url, "-d", str(tmp_path), project)
    else:
        command = (
            uv,
            "pip",
            "install",
            "--index-url",
            proxy.index_url,
            "--python",
            sys.executable,
            "--target",
            str(tmp_path),
            project,
        )
    with ThreadPoolExecutor(1) as pool:
        install = pool.submit(*command)
        wait_until(lambda: f'"GET /simple/{project}/" 503' in proxy.log(), 10)
        for r in holders:  # the share frees up; the client's retry gets through
            r.close()
        install.result(timeout=120)
    wheel = fake.projects[project][0]["filename"]
    if client == "pip":
        assert (tmp_path / wheel).read_bytes() == fake.blobs[wheel]
    else:
        assert (tmp_path / f"{project}-1.0.dist-info").is_dir()
    assert fake.requests[upstream_path(fake, project)] == 1
