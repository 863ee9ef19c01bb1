"""Anyone may ask a pull-through index for any name the upstream has, so the upstream pages
held in memory are bounded (an LRU in entries and bytes, `upstream_page_memory_mb`):
asking for many names from a loopback upstream leaves the server's RSS bounded, /simple/
still lists every cached name, and a page pushed out of memory is read back from disk,
without asking the upstream again, while it is fresh."""

from __future__ import annotations

import hashlib

import pytest
import requests
from conftest import start_server
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed, rss_kb

pytestmark = pytest.mark.slow  # the point is the server process: its resident memory

NAMES, FILES = 240, 400  # pages of about 70 KB of JSON each, about 17 MB in all
BLOB = b"a wheel's bytes\n"
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def page(name: str) -> list[dict]:
    return [
        {
            "filename": f"{name}-1.{i}-py3-none-any.whl",
            "url": f"/files/{name}-1.{i}-py3-none-any.whl",
            "hashes": {"sha256": BLOB_SHA},
            "requires-python": ">=3.9",
            "size": len(BLOB),
        }
        for i in range(FILES)
    ]


@pytest.fixture(scope="module")
def upstream():
    fake = FakeUpstream().start()
    for n in range(NAMES):
        fake.projects[f"wide{n}"] = page(f"wide{n}")
    fake.blobs["wide0-1.7-py3-none-any.whl"] = BLOB
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    base = tmp_path_factory.mktemp("pagememory")
    srv = start_server(
        base / "store",
        base / "data",
        "--upstream",
        upstream.url,
        # the rendered-page cache (bounded on its own) kept small, so what grows is the pages
        env={"PRIVINDEX_UPSTREAM_PAGE_MEMORY_MB": "2", "PRIVINDEX_PAGE_CACHE_SIZE": "32"},
    )
    yield srv
    srv.stop()


def test_many_upstream_names_leave_memory_bounded_and_all_listed(server, upstream):
    session = requests.Session()

    def ask(n: int) -> None:
        resp = session.get(f"{server.index_url}wide{n}/", headers={"Accept": V1_JSON}, timeout=30)
        assert resp.status_code == 200 and len(resp.json()["files"]) == FILES

    for n in range(20):  # warm: the allocator, the page caches, the first pages
        ask(n)
    before = rss_kb(server)
    for n in range(20, NAMES):
        ask(n)
    grown_mb = (rss_kb(server) - before) / 1024
    print(f"RSS grew {grown_mb:.1f} MB over {NAMES - 20} pages")
    assert grown_mb < 40

    root = session.get(server.index_url, headers={"Accept": V1_JSON}, timeout=30).json()
    assert {f"wide{n}" for n in range(NAMES)} <= {p["name"] for p in root["projects"]}


def test_a_page_pushed_out_of_memory_is_read_back_from_disk_while_fresh(server, upstream):
    first = "wide0"  # asked for first, so long since pushed out by the others
    assert upstream.requests[f"/simple/{first}/"] == 1
    files = listed(server, first)
    assert len(files) == FILES and files[f"{first}-1.7-py3-none-any.whl"]["hashes"] == {"sha256": BLOB_SHA}
    assert upstream.requests[f"/simple/{first}/"] == 1  # from disk, not the upstream
    wheel = requests.get(f"{server.url}/packages/.upstream/{first}/{first}-1.7-py3-none-any.whl", timeout=30)
    assert wheel.content == BLOB
