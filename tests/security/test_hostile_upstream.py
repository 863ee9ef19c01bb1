"""The upstream is untrusted input (issue 23): a hostile upstream on loopback.

A small real HTTP server (tests/fake_upstream.py) plays an upstream that lies: path-like
digests, HTML in a metadata digest, file URLs on other hosts and private addresses,
redirects, a compression bomb, endless slow bodies, files over the cap, and a configured
URL with a password in it. A real `privindex serve` sits in front; each test asserts the
safe answer a client gets, that nothing outside the cache folder is read, written or
deleted, and that the server still answers /healthz within a second.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import privindex_cli, start_server
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from webclient import user_with_totp

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

LIMITS = {  # small, so each breach shows in seconds
    "PRIVINDEX_UPSTREAM_TIMEOUT": "2",
    "PRIVINDEX_UPSTREAM_PAGE_DEADLINE": "3",
    "PRIVINDEX_UPSTREAM_FILE_DEADLINE": "3",
    "PRIVINDEX_UPSTREAM_MAX_PAGE_MB": "1",
    "PRIVINDEX_UPSTREAM_MAX_FILE_MB": "1",
    "PRIVINDEX_UPSTREAM_CACHE_MAX_GB": "0.000001",  # ~1 KB: every fetch ends in a prune
}
BLOB = b"not really a wheel, but bytes with a known sha256\n" * 40
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def entry(filename: str, url: str, sha256: str = BLOB_SHA, **extra) -> dict:
    return {"filename": filename, "url": url, "hashes": {"sha256": sha256}, **extra}


def assert_healthy(server) -> None:
    started = time.monotonic()
    assert requests.get(f"{server.url}/healthz", timeout=1).status_code == 200
    assert time.monotonic() - started < 1


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=kwargs.pop("timeout", 30), **kwargs)


def cache_files(server) -> list[str]:
    root = Path(server.data_dir) / "upstream" / "files"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- servers shared by the module ------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile():
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def elsewhere():
    """File hosts a page must not send us to: another loopback port and 127.0.0.2."""
    hosts = [FakeUpstream().start(), FakeUpstream("127.0.0.2").start()]
    yield hosts
    for host in hosts:
        host.stop()


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A folder outside the cache, with canaries in it."""
    return tmp_path_factory.mktemp("outside")


@pytest.fixture(scope="module")
def cache(tmp_path_factory, hostile):
    base = tmp_path_factory.mktemp("cache")
    (base / "store").mkdir()
    server = start_server(base / "store", base / "data", "--upstream", hostile.url, env=LIMITS)
    yield server
    server.stop()


# -- digests and filenames -----------------------------------------------------------------------


def test_a_path_like_sha256_is_left_out_and_nothing_outside_the_cache_is_served_or_pruned(
    hostile, cache, outside
):
    files_dir = Path(cache.data_dir) / "upstream" / "files"
    rel = os.path.relpath(outside, files_dir)
    padding = 64 - len(rel)
    digest = rel + "/." * (padding // 2) + "/" * (padding % 2)  # 64 characters, naming `outside`
    assert len(digest) == 64
    canary = outside / "victim-1.0-py3-none-any.whl"
    canary.write_bytes(b"canary: not the cache's")
    hostile.blobs["victim-2.0-py3-none-any.whl"] = BLOB
    hostile.projects["victim"] = [
        entry(canary.name, "/files/victim-1.0-py3-none-any.whl", sha256=digest),
        entry("victim-1.0.tar.gz", "/files/victim-1.0.tar.gz", sha256=BLOB_SHA[:63] + "/"),
        entry("victim-2.0-py3-none-any.whl", "/files/victim-2.0-py3-none-any.whl"),
    ]
    assert set(listed(cache, "victim")) == {"victim-2.0-py3-none-any.whl"}
    assert get(cache, f"/packages/.upstream/victim/{canary.name}").status_code == 404
    good = get(cache, "/packages/.upstream/victim/victim-2.0-py3-none-any.whl")  # cached, then pruned
    assert good.status_code == 200 and good.content == BLOB
    privindex_cli(cache, "cache", "prune", "--all")
    assert canary.read_bytes() == b"canary: not the cache's"
    assert sorted(p.name for p in outside.iterdir()) == [canary.name]
    assert_healthy(cache)


def test_upper_case_digests_are_kept_in_lower_case_and_near_misses_still_dropped(hostile, cache):
    """Hex case means nothing, and a mirror may send upper case: such a file is listed with
    its digest in lower case and served verified; anything but 64 hex characters is dropped."""
    meta = b"Metadata-Version: 2.1\nName: shout\nVersion: 1.0\n"
    hostile.blobs["shout-1.0-py3-none-any.whl"] = BLOB
    hostile.blobs["shout-1.0-py3-none-any.whl.metadata"] = meta
    meta_sha = hashlib.sha256(meta).hexdigest()
    hostile.projects["shout"] = [
        entry(
            "shout-1.0-py3-none-any.whl",
            "/files/shout-1.0-py3-none-any.whl",
            sha256=BLOB_SHA.upper(),
            **{"core-metadata": {"sha256": meta_sha.upper()}},
        ),
        entry("shout-1.1.tar.gz", "/files/shout-1.1.tar.gz", sha256=BLOB_SHA[:32] + BLOB_SHA[32:].upper()),
        entry("shout-2.0.tar.gz", "/files/shout-2.0.tar.gz", sha256=BLOB_SHA.upper()[:63]),
        entry("shout-2.1.tar.gz", "/files/shout-2.1.tar.gz", sha256=BLOB_SHA.upper() + "A"),
        entry("shout-2.2.tar.gz", "/files/shout-2.2.tar.gz", sha256="G" + BLOB_SHA.upper()[1:]),
        entry("shout-2.3.tar.gz", "/files/shout-2.3.tar.gz", sha256="\uff21" + BLOB_SHA.upper()[1:]),
    ]
    files = listed(cache, "shout")
    assert set(files) == {"shout-1.0-py3-none-any.whl", "shout-1.1.tar.gz"}
    assert {f["hashes"]["sha256"] for f in files.values()} == {BLOB_SHA}
    assert files["shout-1.0-py3-none-any.whl"]["core-metadata"] == {"sha256": meta_sha}
    wheel = get(cache, "/packages/.upstream/shout/shout-1.0-py3-none-any.whl")
    assert wheel.status_code == 200 and wheel.content == BLOB
    assert get(cache, "/packages/.upstream/shout/shout-1.0-py3-none-any.whl.metadata").content == meta
    assert get(cache, "/packages/.upstream/shout/shout-2.0.tar.gz").status_code == 404
    assert_healthy(cache)


def test_a_cached_page_on_disk_is_checked_like_a_fresh_one(hostile, outside, tmp_path):
    """A data dir from before these checks (or edited) holds a page with a path as its
    digest: read at start, it goes through the same validation, and the file is left out."""
    canary = outside / "ondisk-1.0-py3-none-any.whl"
    canary.write_bytes(b"canary: read from outside the cache")
    stored = {
        "path": f".upstream/ondisk/{canary.name}",
        "project": "ondisk",
        "filename": canary.name,
        "version": "1.0",
        "url": f"{hostile.origin}/files/{canary.name}",
        "sha256": str(outside),
        "requires_python": None,
        "metadata_sha256": None,
        "yanked": False,
        "yanked_reason": "",
        "size": None,
        "upload_time": None,
    }
    pages = tmp_path / "data" / "upstream" / "pages"
    pages.mkdir(parents=True)
    (pages / "ondisk.json").write_text(
        json.dumps({"name": "ondisk", "display_name": "ondisk", "versions": ["1.0"], "files": [stored]})
    )
    (tmp_path / "store").mkdir()
    server = start_server(
        tmp_path / "store",
        tmp_path / "data",
        "--upstream",
        hostile.url,
        env={"PRIVINDEX_UPSTREAM_OFFLINE": "true"},
    )
    try:
        assert listed(server, "ondisk") == {}
        assert get(server, f"/packages/.upstream/ondisk/{canary.name}").status_code == 404
        assert_healthy(server)
    finally:
        server.stop()


def test_a_metadata_digest_that_is_a_path_or_html_is_dropped_and_the_file_kept(hostile, cache, outside):
    stolen = outside / "meta-1.0-py3-none-any.whl.metadata"
    stolen.write_text("Metadata-Version: 2.1\nName: stolen\nVersion: 1.0\n")
    html = '"><base href="http://evil.invalid/"><a x="'
    hostile.projects["meta"] = [
        entry(
            "meta-1.0-py3-none-any.whl",
            "/files/meta-1.0-py3-none-any.whl",
            **{"core-metadata": {"sha256": str(outside)}},
        ),
        entry(
            "meta-2.0-py3-none-any.whl",
            "/files/meta-2.0-py3-none-any.whl",
            **{"core-metadata": {"sha256": html}, "requires-python": '">=3"><script>x</script>'},
        ),
    ]
    page = get(cache, "/simple/meta/").text
    assert "<base" not in page and "<script" not in page and "evil.invalid" not in page
    files = listed(cache, "meta")
    assert set(files) == {"meta-1.0-py3-none-any.whl", "meta-2.0-py3-none-any.whl"}
    assert all(f["core-metadata"] is False for f in files.values())
    assert get(cache, "/packages/.upstream/meta/meta-1.0-py3-none-any.whl.metadata").status_code == 404
    assert "stolen" not in get(cache, "/packages/.upstream/meta/meta-1.0-py3-none-any.whl.metadata").text
    assert_healthy(cache)


# -- where files may come from -----------------------------------------------------------------------


def test_file_urls_off_the_upstream_to_private_addresses_are_refused_before_any_byte(
    hostile, elsewhere, cache
):
    other_port, other_ip = elsewhere
    port = other_port.server.server_address[1]
    urls = {
        "ssrf-1.0-py3-none-any.whl": f"{other_port.origin}/files/ssrf-1.0-py3-none-any.whl",
        "ssrf-1.1-py3-none-any.whl": f"{other_ip.origin}/files/ssrf-1.1-py3-none-any.whl",
        "ssrf-1.2-py3-none-any.whl": "http://10.1.2.3/files/ssrf-1.2-py3-none-any.whl",
        "ssrf-1.3-py3-none-any.whl": "http://169.254.169.254/latest/meta-data/ssrf-1.3-py3-none-any.whl",
        # a host name that resolves to loopback: the check is on the resolved address
        "ssrf-1.4-py3-none-any.whl": f"http://localhost:{port}/files/ssrf-1.4-py3-none-any.whl",
        "ssrf-1.5-py3-none-any.whl": f"http://[::ffff:127.0.0.1]:{port}/files/ssrf-1.5-py3-none-any.whl",
        # on the upstream, but redirecting off it
        "ssrf-1.6-py3-none-any.whl": f"{hostile.origin}/hop/ssrf-1.6-py3-none-any.whl",
        "ssrf-1.7-py3-none-any.whl": "file:///etc/passwd#ssrf-1.7-py3-none-any.whl",
    }
    for host in elsewhere:
        host.blobs.update({name: BLOB for name in urls})

    def hop(handler):
        handler.send_response(302)
        handler.send_header("Location", f"{other_port.origin}/files/ssrf-1.6-py3-none-any.whl")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    hostile.routes["/hop/ssrf-1.6-py3-none-any.whl"] = hop
    hostile.projects["ssrf"] = [entry(name, url) for name, url in urls.items()]
    shown = listed(cache, "ssrf")
    for name in urls:
        if name not in shown:
            assert name == "ssrf-1.7-py3-none-any.whl"  # not http(s): not even listed
            continue
        started = time.monotonic()
        resp = get(cache, f"/packages/.upstream/ssrf/{name}")
        assert resp.status_code == 502, (name, resp.status_code)
        assert resp.text.startswith("refused to fetch") and resp.text.count("\n") == 1, resp.text
        assert time.monotonic() - started < 2
    assert sum(other_port.requests.values()) == sum(other_ip.requests.values()) == 0
    assert (
        hostile.requests["/hop/ssrf-1.6-py3-none-any.whl"] == 1
    )  # its own origin: asked, then the hop refused
    assert cache.log().count("refused to fetch") >= 7
    metrics = get(cache, "/metrics").text
    assert 'privindex_upstream_fetches_total{kind="file",outcome="refused"} 7.0' in metrics
    assert not any("ssrf" in f for f in cache_files(cache))
    assert_healthy(cache)


def test_an_https_upstreams_files_stay_on_https_and_file_hosts_narrow_where_files_come_from():
    from privindex.upstream.client import Limits, Upstream, UpstreamError

    secure = Upstream("https://mirror.invalid/simple/", 2.0)
    narrowed = Upstream("https://mirror.invalid/simple/", 2.0, limits=Limits(file_hosts=("files.invalid",)))
    for upstream, url, reason in [
        (secure, "http://files.invalid/a-1.0.tar.gz", "must be too"),
        (secure, "ftp://files.invalid/a-1.0.tar.gz", "not an http or https URL"),
        (narrowed, "https://elsewhere.invalid/a-1.0.tar.gz", "not in upstream_file_hosts"),
    ]:
        with pytest.raises(UpstreamError) as refused:
            upstream.stream(url)
        assert refused.value.outcome == "refused" and reason in str(refused.value)


# -- limits -----------------------------------------------------------------------------------------


def test_a_compression_bomb_page_is_cut_off_after_decompression(hostile, cache):
    doc = {"meta": {"api-version": "1.1"}, "name": "bomb", "files": [], "padding": " " * (8 * 1024 * 1024)}
    body = gzip.compress(json.dumps(doc).encode())
    assert len(body) < 64 * 1024

    def bomb(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", V1_JSON)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    hostile.routes["/simple/bomb/"] = bomb
    resp = get(cache, "/simple/bomb/", headers={"Accept": V1_JSON})
    assert resp.status_code == 502 and "larger than the limit" in resp.text
    assert "bomb" not in get(cache, "/simple/").text
    assert not (Path(cache.data_dir) / "upstream" / "pages" / "bomb.json").exists()
    assert_healthy(cache)


@pytest.mark.parametrize(
    "name, content_type, body",
    [
        ("bogus-charset", "text/html; charset=x-no-such-charset", b'<a href="/files/x.whl">x</a>'),
        ("deep-json", V1_JSON, b"[" * 200_000),
    ],
)
def test_a_page_in_an_unknown_charset_or_nested_too_deep_is_answered_not_a_500(
    hostile, cache, name, content_type, body
):
    def answer(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    hostile.routes[f"/simple/{name}/"] = answer
    resp = get(cache, f"/simple/{name}/", headers={"Accept": V1_JSON})
    assert resp.status_code in (200, 502), resp.text  # read as well as it can be, or refused
    assert resp.status_code == (502 if name == "deep-json" else 200)
    assert_healthy(cache)


def test_the_cooldown_keeps_the_upstreams_project_status():
    from privindex.upstream.client import age_filter, parse_json

    page = parse_json(
        "held",
        {"project-status": {"status": "quarantined"}, "files": [entry("held-1.0-py3-none-any.whl", "/f")]},
        "http://127.0.0.1:1/simple/held/",
    )
    assert age_filter(page, 86400).status.status.value == "quarantined"


def drip(handler) -> None:
    """A byte every half second, for as long as anyone listens (a minute at most)."""
    for _ in range(120):
        try:
            handler.wfile.write(b" ")
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(0.5)


def trickle(handler) -> None:
    """Headers announcing a megabyte, then a drip."""
    handler.send_response(200)
    handler.send_header("Content-Type", V1_JSON)
    handler.send_header("Content-Length", "1000000")
    handler.end_headers()
    drip(handler)


def trickle_headers(handler) -> None:
    """A status line, then a header that never ends."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: x")
    drip(handler)


def trickle_gzip(handler) -> None:
    """A gzip body that decodes to nothing for ever: empty stored deflate blocks, a byte
    every half second (each read returns, but decoding never yields a byte)."""
    handler.send_response(200)
    handler.send_header("Content-Type", V1_JSON)
    handler.send_header("Content-Encoding", "gzip")
    handler.end_headers()
    handler.wfile.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # a gzip header
    handler.wfile.flush()
    for _ in range(24):
        for byte in b"\x00\x00\x00\xff\xff":  # one empty, non-final stored block
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)


@pytest.mark.parametrize(
    "name, route", [("slow", trickle), ("slow-headers", trickle_headers), ("slow-gzip", trickle_gzip)]
)
def test_an_endless_slow_page_is_cut_off_at_its_deadline(hostile, cache, name, route):
    hostile.routes[f"/simple/{name}/"] = route
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(get(cache, f"/simple/{name}/", timeout=60)))
    started = time.monotonic()
    thread.start()
    time.sleep(1)
    assert_healthy(cache)  # while a worker waits on the upstream
    thread.join(60)
    assert answer and answer[0].status_code == 504 and "took longer than 3 s" in answer[0].text
    assert time.monotonic() - started < 8
    assert name not in get(cache, "/simple/").text


def test_an_endless_slow_file_is_cut_off_at_its_deadline_and_nothing_is_cached(hostile, cache):
    hostile.routes["/files/slowfile-1.0-py3-none-any.whl"] = trickle
    hostile.projects["slowfile"] = [
        entry("slowfile-1.0-py3-none-any.whl", "/files/slowfile-1.0-py3-none-any.whl")
    ]
    assert listed(cache, "slowfile")
    started = time.monotonic()
    received = b""
    try:
        with requests.get(
            f"{cache.url}/packages/.upstream/slowfile/slowfile-1.0-py3-none-any.whl", stream=True, timeout=60
        ) as resp:
            for chunk in resp.iter_content(1024):
                received += chunk
    except requests.RequestException:
        pass
    assert time.monotonic() - started < 8
    assert len(received) < 1_000_000
    assert not any("slowfile" in f for f in cache_files(cache))  # no file, no temp file
    assert "took longer than 3 s" in cache.log()
    assert_healthy(cache)


def test_files_over_the_cap_are_refused(hostile, cache):
    big = os.urandom(2 * 1024 * 1024)  # the cap is 1 MB
    sha = hashlib.sha256(big).hexdigest()
    for version in ("1.0", "2.0"):
        hostile.blobs[f"big-{version}-py3-none-any.whl"] = big

    def unannounced(handler):  # no Content-Length: only streaming can tell
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(big)

    hostile.routes["/files/big-3.0-py3-none-any.whl"] = unannounced
    hostile.projects["big"] = [
        entry("big-1.0-py3-none-any.whl", "/files/big-1.0-py3-none-any.whl", sha, size=len(big)),
        entry("big-2.0-py3-none-any.whl", "/files/big-2.0-py3-none-any.whl", sha),
        entry("big-3.0-py3-none-any.whl", "/files/big-3.0-py3-none-any.whl", sha),
    ]
    assert len(listed(cache, "big")) == 3
    # the page says so: not even asked for
    first = get(cache, "/packages/.upstream/big/big-1.0-py3-none-any.whl")
    assert first.status_code == 502 and "larger than the limit" in first.text
    assert hostile.requests["/files/big-1.0-py3-none-any.whl"] == 0
    # Content-Length says so: refused before any byte
    second = get(cache, "/packages/.upstream/big/big-2.0-py3-none-any.whl")
    assert second.status_code == 502 and "larger than the limit" in second.text
    # only the stream says so: cut off there
    received = b""
    try:
        with requests.get(
            f"{cache.url}/packages/.upstream/big/big-3.0-py3-none-any.whl", stream=True, timeout=30
        ) as resp:
            for chunk in resp.iter_content(64 * 1024):
                received += chunk
    except requests.RequestException:
        pass
    assert len(received) <= 1024 * 1024
    assert not any("big-" in f for f in cache_files(cache))
    assert_healthy(cache)


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/simple/http:/",
        "/simple/" + "a" * 201 + "/",
        "/simple/-leading/",
        "/simple/trailing./",
        "/simple/white%20space/",
        "/simple/%2e%2e/",
        "/packages/.upstream/-x-/x-1.0.tar.gz",
        "/packages/.upstream/" + "b" * 201 + "/" + "b" * 201 + "-1.0.tar.gz",
    ],
)
def test_junk_names_are_404_without_asking_the_upstream(hostile, cache, path):
    before = sum(hostile.requests.values())
    assert get(cache, path).status_code == 404
    assert sum(hostile.requests.values()) == before
    assert "http:" not in get(cache, "/simple/").text


def test_no_such_project_answers_are_kept_in_a_bounded_lru(hostile, tmp_path, monkeypatch):
    from privindex.upstream import cache as upstream_cache
    from privindex.upstream.client import Upstream

    monkeypatch.setattr(upstream_cache, "NEGATIVE_MAX", 3)
    cache = upstream_cache.UpstreamCache(
        Upstream(hostile.url, 2.0), tmp_path, ttl=600, min_age=0, max_bytes=1024**2
    )
    names = [f"nothing-{i}" for i in range(10)]
    for name in names:
        assert cache.project(name) is None
    assert [n for n in names if cache.cached_entry(n) is not None] == names[-3:]
    assert cache.names == ()
    assert cache.project("nothing-9") is None and hostile.requests["/simple/nothing-9/"] == 1  # remembered


# -- credentials in the configured URL ---------------------------------------------------------------


def test_credentials_in_the_upstream_url_are_used_but_never_shown(hostile, tmp_path):
    password = "Upstream-Pa55word-never-shown"
    url = f"http://mirror-user:{password}@127.0.0.1:{hostile.server.server_address[1]}/simple/"

    def broken(handler):
        handler.send_error(500)

    hostile.routes["/simple/broken/"] = broken
    hostile.projects["creds"] = [
        entry("creds-1.0-py3-none-any.whl", "/files/missing.whl"),
        entry("creds-2.0-py3-none-any.whl", "http://10.9.8.7/creds-2.0-py3-none-any.whl"),
    ]
    (tmp_path / "store").mkdir()
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", url, env=LIMITS)
    try:
        seen = [
            get(server, "/simple/broken/"),
            get(server, "/simple/creds/"),
            get(server, "/packages/.upstream/creds/creds-1.0-py3-none-any.whl"),
            get(server, "/packages/.upstream/creds/creds-2.0-py3-none-any.whl"),
            get(server, "/metrics"),
        ]
        assert [r.status_code for r in seen] == [502, 200, 502, 502, 200]
        admin, _totp, _codes, _t = user_with_totp(server, "root", admin=True)
        page = admin.get("/admin/upstream")
        assert page.status_code == 200 and "127.0.0.1" in page.text
        assert any(line.startswith("upstream: http://[redacted]@127.0.0.1") for line in server.banner)
        assert any("Basic" in h.get("Authorization", "") for h in hostile.headers)  # still used
    finally:
        server.stop()
    for text in [r.text for r in seen] + [page.text, server.log(), "\n".join(server.banner)]:
        assert password not in text
