"""Pre-rendered Simple API pages (static_pages = true, privindex export-pages): the files a
real `privindex serve` writes on every change, byte for byte its own answers, and the
README's nginx config serving them to pip and uv (Debian's nginx on loopback, configured by
benchmarks/peers.py from the README as the benchmark does)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import peers  # benchmarks/peers.py (on the path through conftest): the README's nginx config
import pytest
import requests
from conftest import (
    Accounts,
    app_server,
    audit_json,
    free_port,
    needs_nginx,
    nginx_conf,
    pip,
    populate,
    privindex_cli,
    run_nginx,
    start_server,
    twine,
    uv,
    wait_until,
)
from fake_upstream import FakeUpstream
from requests_toolbelt.adapters.source import SourceAddressAdapter
from wheels import make_wheel

from privindex.api.read_check import ReadCheck
from privindex.db.connection import bound, in_thread
from privindex.ops import audit
from privindex.packages import project_status, static_pages, withdrawal
from privindex.packages.index import Index
from privindex.packages.pages import V1_HTML, V1_JSON
from privindex.packages.static_pages import StaticPages
from privindex.packages.store import Store
from privindex.upstream.source_rules import Sources

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

# file -> the Accept header privindex answers with the same page
FILES = {"index.html": "text/html", "index.v1html": V1_HTML, "index.v1json": V1_JSON}
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
)
UV_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
SETTINGS = {"PRIVINDEX_STATIC_PAGES": "true", "PRIVINDEX_REQUIRE_2FA": "false"}


def page_files(server, name: str | None) -> Path:
    folder = server.data_dir / "static" / "simple"
    return folder / name if name else folder


def live(server, name: str | None, accept: str) -> requests.Response:
    url = f"{server.url}/simple/{name}/" if name else f"{server.url}/simple/"
    resp = requests.get(url, headers={"Accept": accept}, timeout=10)
    resp.raise_for_status()
    return resp


def page(server, name: str | None) -> bytes:
    """The JSON page file of name (the root's with None)."""
    return (page_files(server, name) / "index.v1json").read_bytes()


def in_step(server, name: str | None) -> bool:
    """Whether name's page files hold exactly what the server answers (every format)."""
    folder = page_files(server, name)
    try:
        return all((folder / f).read_bytes() == live(server, name, a).content for f, a in FILES.items())
    except FileNotFoundError:
        return False


def drop_wheel(server, tmp_path: Path, name: str, version: str) -> Path:
    """A wheel copied into the store as an operator would; the watcher finds it."""
    wheel = make_wheel(tmp_path / "wheels", name, version)
    target = server.store / wheel.name
    shutil.copy(wheel, target.with_suffix(".part"))
    os.replace(target.with_suffix(".part"), target)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory, dists):
    base = tmp_path_factory.mktemp("static-pages")
    populate(base / "store", dists)
    live_server = start_server(base / "store", base / "data", env=SETTINGS)
    yield live_server
    live_server.stop()


def test_every_project_and_the_root_are_written_as_privindex_answers_them(server, dists):
    for name in [None, *dists.files]:
        wait_until(lambda name=name: in_step(server, name), 10)
    html = (page_files(server, "alpha") / "index.html").read_text()
    assert "alpha-2.0-py3-none-any.whl" in html
    leftovers = [
        p for p in (server.data_dir / "static").rglob("*") if p.is_file() and not p.name.startswith("index.")
    ]
    assert leftovers == []  # no temp file left behind


def test_a_dropped_in_file_a_yank_and_a_delete_rewrite_the_page(server, tmp_path, dists):
    wheel = drop_wheel(server, tmp_path, "gamma-static", "1.0")
    wait_until(lambda: in_step(server, "gamma-static"), 10)
    wait_until(lambda: b"gamma-static" in (page_files(server, None) / "index.v1json").read_bytes(), 10)
    assert wheel.name in (page_files(server, "gamma-static") / "index.v1json").read_text()

    # the CLI removes the page first (privindex may be stopped); the server writes it anew
    privindex_cli(server, "project", "yank", "gamma-static", "1.0", "--reason", "broken build")
    wait_until(
        lambda: in_step(server, "gamma-static") and b"broken build" in page(server, "gamma-static"), 10
    )

    privindex_cli(server, "project", "unyank", "gamma-static", "1.0")
    wait_until(
        lambda: in_step(server, "gamma-static") and b"broken build" not in page(server, "gamma-static"), 10
    )

    privindex_cli(server, "project", "delete", "gamma-static", "1.0", "--yes")
    wait_until(lambda: not page_files(server, "gamma-static").exists(), 10)
    wait_until(lambda: in_step(server, None) and b"gamma-static" not in page(server, None), 10)


@pytest.mark.slow  # twine
def test_an_upload_writes_the_page_and_the_root(server, tmp_path):
    accounts = Accounts(server.store, server.data_dir, server.env)
    accounts.user("uploader")
    token = accounts.token("uploader")
    wheel = make_wheel(tmp_path, "delta-static", "2.0")
    assert twine(server.url, token, wheel).returncode == 0
    wait_until(lambda: in_step(server, "delta-static"), 10)
    assert wheel.name in (page_files(server, "delta-static") / "index.html").read_text()
    wait_until(lambda: in_step(server, None), 10)
    assert b"delta-static" in (page_files(server, None) / "index.html").read_bytes()


def test_pages_that_mix_in_the_upstream_are_left_to_privindex(tmp_path, dists):
    fake = FakeUpstream()
    fake.add("remote-only", make_wheel(tmp_path / "wheels", "remote-only", "1.0"))
    fake.add("alpha", dists.files["alpha"][0])
    fake.start()
    populate(tmp_path / "store", dists)
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", fake.url, env=SETTINGS)
    try:
        wait_until(lambda: in_step(server, "alpha"), 10)
        assert live(server, "remote-only", V1_JSON).json()["files"]
        assert not page_files(server, "remote-only").exists()  # upstream-only: never written
        assert not (page_files(server, None) / "index.html").exists()  # /simple/ lists upstream names
        privindex_cli(server, "project", "allow-upstream", "alpha")
        wait_until(lambda: not page_files(server, "alpha").exists(), 10)  # merged with the upstream
        privindex_cli(server, "project", "allow-upstream", "alpha", "--revoke")
        wait_until(lambda: in_step(server, "alpha"), 10)
    finally:
        server.stop()
        fake.stop()


def test_a_quarantined_project_has_no_files_and_gets_them_back_when_active(server, dists):
    name = next(n for n in dists.files if n != "alpha")
    wait_until(lambda: in_step(server, name), 10)
    privindex_cli(server, "project", "status", name, "quarantined", "--reason", "malware")
    assert not page_files(server, name).exists()  # the CLI removed it; the server writes none
    wait_until(lambda: live(server, name, V1_JSON).json()["project-status"]["status"] == "quarantined", 10)
    time.sleep(1)  # the writer's pass for the change
    assert not page_files(server, name).exists()
    privindex_cli(server, "project", "status", name, "active")
    wait_until(lambda: in_step(server, name), 10)


def test_a_namespace_grant_rewrites_the_pages_under_it(server):
    Accounts(server.store, server.data_dir, server.env).user("nsowner")
    privindex_cli(server, "namespace", "grant", "alpha", "--owner", "nsowner")
    try:
        wait_until(
            lambda: (
                b'"namespaces":[{"name":"alpha"'
                in (page_files(server, "alpha") / "index.v1json").read_bytes()
            ),
            10,
        )
        assert in_step(server, "alpha")
    finally:
        privindex_cli(server, "namespace", "revoke", "alpha")
    wait_until(
        lambda: b'"namespaces":null' in (page_files(server, "alpha") / "index.v1json").read_bytes(), 10
    )


def test_a_change_rewrites_only_the_pages_it_changes(server, dists):
    """nginx's ETag comes from the file's mtime: a page whose bytes stay must keep it."""
    name = next(n for n in dists.files if n != "alpha")
    for n in (None, "alpha", name):
        wait_until(lambda n=n: in_step(server, n), 10)
    kept = [page_files(server, n) / f for n in (None, "alpha") for f in FILES]
    before = {p: p.stat().st_mtime_ns for p in kept}
    privindex_cli(server, "project", "status", name, "deprecated")
    try:
        wait_until(lambda: in_step(server, name) and b"deprecated" in page(server, name), 10)
        assert {p: p.stat().st_mtime_ns for p in kept} == before
    finally:
        privindex_cli(server, "project", "status", name, "active")
    wait_until(lambda: in_step(server, name), 10)


def test_the_project_named_namespace_is_answered_as_its_page_file_holds(tmp_path, fresh_app):
    """nginx serves static/simple/namespace/index.html for /simple/namespace/: privindex
    answers that URL with the same project page, and PEP 752's /namespace/<name> still
    reaches the namespaces API."""
    make_wheel(tmp_path / "store", "namespace", "1.0")
    server = fresh_app(populated=False, static_pages=True)
    server.app.extensions["privindex_static_pages"].write_all()
    for f, accept in FILES.items():
        assert (page_files(server, "namespace") / f).read_bytes() == live(server, "namespace", accept).content
    assert (
        live(server, "namespace", V1_JSON).json()["files"][0]["filename"] == "namespace-1.0-py3-none-any.whl"
    )
    assert requests.get(f"{server.url}/simple/namespace/tools", timeout=10).status_code == 404  # no grant


def test_a_reader_never_sees_half_a_page_and_a_same_sized_change_gets_a_new_mtime(tmp_path):
    """nginx's ETag is the mtime in seconds and the size: two same-sized pages written
    within a second must still differ in mtime."""
    writer = StaticPages(tmp_path / "static", Sources(Index(Store(tmp_path / "store")), None))
    pages = [bytes([65 + i]) * 3_000_000 for i in range(2)]
    path = tmp_path / "static" / "simple" / "big" / "index.v1json"
    writer._put("simple/big", {"html": pages[0], "json": pages[0]})
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    mtimes = []
    try:
        for i in range(1, 9):
            writer._put("simple/big", {"html": pages[i % 2], "json": pages[i % 2]})
            mtimes.append(path.stat().st_mtime_ns // 10**9)
    finally:
        stop.set()
        reader.join()
    assert seen <= set(pages) and seen
    assert len(set(mtimes)) == len(mtimes)  # each rewrite a new second: a new ETag
    assert [p.name for p in path.parent.iterdir()] and all(
        p.name.startswith("index.") for p in path.parent.iterdir()
    )


def test_pages_of_other_sizes_rewritten_within_a_second_never_share_an_etag(tmp_path):
    """Sizes X, Y, X within one second: the first and third differ in bytes, so they must
    differ in nginx's ETag (mtime in seconds and size)."""
    writer = StaticPages(tmp_path / "static", Sources(Index(Store(tmp_path / "store")), None))
    path = tmp_path / "static" / "p" / "index.v1json"
    etags = []
    for body in (b'{"files":["a"]}', b'{"files":["a","b"]}', b'{"files":["b"]}'):
        writer._write("p/index.v1json", body)
        st = path.stat()
        etags.append((st.st_mtime_ns // 10**9, st.st_size))
    assert len(set(etags)) == 3


def test_the_read_check_remembers_a_passed_token_for_its_ttl_only():
    valid, asked = {"Basic good"}, []

    def guard(environ: dict) -> bool:
        asked.append(environ["HTTP_AUTHORIZATION"])
        return environ["HTTP_AUTHORIZATION"] in valid

    check = ReadCheck(guard, ttl=0.3)
    reader = {"HTTP_AUTHORIZATION": "Basic good", "REMOTE_ADDR": "10.0.0.1"}
    assert check.may_read(reader) and check.may_read(reader)
    assert len(asked) == 1  # the second from memory
    assert all(b"good" not in key for key in check._passed)  # keyed by an HMAC, not the header
    valid.clear()  # revoked
    assert check.may_read(reader)  # still remembered, for at most the TTL
    time.sleep(0.35)
    assert not check.may_read(reader)
    assert not check.may_read({"REMOTE_ADDR": "10.0.0.1"})  # no credentials: never asked
    assert not check.may_read({"HTTP_AUTHORIZATION": "Basic bad", "REMOTE_ADDR": "10.0.0.1"})
    assert not check.may_read({"HTTP_AUTHORIZATION": "Basic bad", "REMOTE_ADDR": "10.0.0.1"})
    assert asked.count("Basic bad") == 2  # failures are not remembered
    assert ReadCheck(None).may_read({})  # a public index


def test_export_pages_writes_the_same_tree_into_a_folder(server, tmp_path, dists):
    wait_until(lambda: in_step(server, "alpha") and in_step(server, None), 10)
    out = tmp_path / "exported"
    proc = privindex_cli(server, "export-pages", str(out), env=SETTINGS)
    assert "wrote the pages of" in proc.stderr
    for name in [None, "alpha"]:
        for f in FILES:
            assert (out / "simple" / (name or "") / f).read_bytes() == (
                page_files(server, name) / f
            ).read_bytes()


def test_export_pages_of_a_private_index_needs_the_read_check(server, tmp_path):
    private = {**SETTINGS, "PRIVINDEX_READ_ACCESS": "token"}
    proc = privindex_cli(server, "export-pages", str(tmp_path / "out"), env=private, check=False)
    assert proc.returncode == 1
    assert "static_pages_auth_request = true" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_write_fails_no_change_and_is_retried_with_the_next(tmp_path, dists):
    populate(tmp_path / "store", dists)
    server = start_server(tmp_path / "store", tmp_path / "data", env=SETTINGS)
    try:
        for name in [None, *dists.files]:  # the first pass is over: the writer rests
            wait_until(lambda name=name: in_step(server, name), 10)
        shutil.rmtree(page_files(server, None))
        page_files(server, None).write_text("in the way")  # every write now fails
        drop_wheel(server, tmp_path, "epsilon-static", "1.0")
        wait_until(lambda: "writing the static pages failed" in server.log(), 10)
        assert live(server, "epsilon-static", V1_JSON).json()["files"]  # the index is not held up
        page_files(server, None).unlink()
        drop_wheel(server, tmp_path, "zeta-static", "1.0")
        for name in ("epsilon-static", "zeta-static", None):
            wait_until(lambda name=name: in_step(server, name), 10)
    finally:
        server.stop()


def test_a_failed_pass_is_tried_again_by_itself_and_logged_once(fresh_app, monkeypatch):
    """No change comes after the failure: the writer tries again on its own, backing off,
    with one log line for the whole streak."""
    monkeypatch.setattr(static_pages, "RETRY_FIRST", 0.1)
    monkeypatch.setattr(static_pages, "RETRY_MOST", 0.2)
    server = fresh_app(static_pages=True)
    writer = server.app.extensions["privindex_static_pages"]
    page_files(server, None).parent.mkdir(parents=True)
    page_files(server, None).write_text("in the way")  # every write now fails
    stop = threading.Event()
    thread = threading.Thread(
        target=in_thread(server.app.extensions["privindex"].database, writer.run), args=(stop,)
    )
    thread.start()
    try:
        wait_until(lambda: "writing the static pages failed" in server.log(), 10)
        time.sleep(1)  # several more failed passes
        page_files(server, None).unlink()
        wait_until(lambda: in_step(server, "alpha") and in_step(server, None), 10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert server.log().count("writing the static pages failed") == 1
    assert "the static pages are written again, after" in server.log()


def test_a_start_removes_the_pages_that_must_not_be_served_before_serving(tmp_path, dists):
    """Quarantined, deleted, or the index made private while privindex was stopped: nginx
    must not serve the old page files until the writer's first pass reaches each name."""
    populate(tmp_path / "store", dists)
    store, data = tmp_path / "store", tmp_path / "data"
    with app_server(store, data, static_pages=True, require_2fa=False) as first:
        first.app.extensions["privindex_static_pages"].write_all()
        database = first.app.extensions["privindex"].database
    assert all(page_files(first, name).is_dir() for name in ("alpha", "beta-pkg", "future-only"))
    with bound(database):  # while privindex is stopped, as the CLI does
        project_status.set_status("alpha", project_status.parse("quarantined", "malware"), audit.CLI)
        for filename in withdrawal.filenames("future-only", "1.0"):
            withdrawal.delete(Store(store), None, None, "future-only", filename, audit.CLI)
    with app_server(store, data, static_pages=True, require_2fa=False) as second:
        assert not page_files(second, "alpha").exists()
        assert not page_files(second, "future-only").exists()
        assert (page_files(second, "beta-pkg") / "index.html").is_file()  # still true: kept
    with app_server(store, data, static_pages=True, require_2fa=False, read_access="token") as private:
        assert not page_files(private, None).exists()  # no read check in front of nginx: none


def test_pages_are_removed_when_the_setting_is_off(tmp_path, dists):
    populate(tmp_path / "store", dists)
    first = start_server(tmp_path / "store", tmp_path / "data", env=SETTINGS)
    wait_until(lambda: in_step(first, "alpha"), 10)
    first.stop()
    second = start_server(tmp_path / "store", tmp_path / "data", env={"PRIVINDEX_REQUIRE_2FA": "false"})
    try:
        assert not page_files(second, None).exists()  # nginx must not serve pages no one updates
    finally:
        second.stop()


# -- through the README's nginx -------------------------------------------------------------


class Proxied:
    """A privindex writing static pages and the README's nginx serving them."""

    def __init__(self, base: Path, dists, private: bool = False, **settings: str):
        populate(base / "store", dists)
        env = {**SETTINGS, "PRIVINDEX_TRUSTED_PROXY": "127.0.0.1", **settings}
        self.server = start_server(base / "store", base / "data", env=env)
        port = free_port()
        upstream_port = int(self.server.url.rsplit(":", 1)[1])
        work = base / "nginx"
        http = peers.readme_nginx_config(
            port, upstream_port, base / "store", work / "cache", base / "data" / "static"
        )
        if private:
            http = peers.with_read_check(http)
        self.nginx = run_nginx(work, nginx_conf(work, http), port)
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.nginx.terminate()
        self.nginx.wait(timeout=20)
        self.server.stop()


def from_file(resp: requests.Response) -> bool:
    """nginx's own ETag ("mtime-size" in hex), not privindex's ("<sha256>-<format>")."""
    etag = resp.headers.get("ETag", "")
    return resp.status_code in (200, 304) and not etag.endswith(('-html"', '-json"'))


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, dists):
    p = Proxied(tmp_path_factory.mktemp("static-nginx"), dists)
    for name in [None, *dists.files]:
        wait_until(lambda name=name: in_step(p.server, name), 10)
    yield p
    p.close()


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server, pip and uv
def test_pip_and_uv_install_through_nginx_serving_the_pages(proxied, tmp_path):
    index = f"{proxied.url}/simple/"
    pip("install", "--no-deps", "--index-url", index, "--target", str(tmp_path / "pip"), "beta-pkg")
    uv("pip", "install", "--no-deps", "--index-url", index, "--target", str(tmp_path / "uv"), "beta-pkg")
    assert list((tmp_path / "pip").glob("beta_pkg-*.dist-info")) and list(
        (tmp_path / "uv").glob("beta_pkg-*.dist-info")
    )
    for accept in (PIP_ACCEPT, UV_ACCEPT):
        assert from_file(requests.get(f"{index}beta-pkg/", headers={"Accept": accept}, timeout=10))


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
@pytest.mark.parametrize(
    ("accept", "content_type", "file"),
    [
        (None, "text/html; charset=utf-8", "index.html"),
        ("*/*", "text/html; charset=utf-8", "index.html"),
        ("text/html", "text/html; charset=utf-8", "index.html"),
        (V1_HTML, V1_HTML, "index.v1html"),
        (V1_JSON, V1_JSON, "index.v1json"),
        ("application/vnd.pypi.simple.latest+json", V1_JSON, "index.v1json"),
        (PIP_ACCEPT, V1_JSON, "index.v1json"),
    ],
)
def test_nginx_picks_the_file_by_accept_with_vary_and_its_own_304(proxied, accept, content_type, file):
    for name in (None, "alpha"):
        url = f"{proxied.url}/simple/{name}/" if name else f"{proxied.url}/simple/"
        headers = {"Accept": accept} if accept else {}
        resp = requests.get(url, headers=headers, timeout=10)
        assert from_file(resp), resp.headers
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["Vary"] == "Accept"
        assert resp.content == (page_files(proxied.server, name) / file).read_bytes()
        assert resp.content == live(proxied.server, name, accept or "text/html").content
        again = requests.get(url, headers={**headers, "If-None-Match": resp.headers["ETag"]}, timeout=10)
        assert again.status_code == 304
        head = requests.head(url, headers=headers, timeout=10)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(resp.content))


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_what_nginx_cannot_decide_is_answered_by_privindex(proxied, dists):
    odd = requests.get(
        f"{proxied.url}/simple/alpha/",
        headers={"Accept": "text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.6"},
        timeout=10,
    )
    assert odd.status_code == 200 and not from_file(odd)
    assert odd.headers["Content-Type"] == V1_JSON  # privindex negotiated the q-values
    assert (
        requests.get(f"{proxied.url}/simple/alpha/", headers={"Accept": "image/png"}, timeout=10).status_code
        == 406
    )
    assert requests.post(f"{proxied.url}/simple/alpha/", timeout=10).status_code == 405
    assert requests.get(f"{proxied.url}/simple/Alpha/", allow_redirects=False, timeout=10).status_code == 301
    name = next(n for n in dists.files if n not in ("alpha", "beta-pkg"))
    privindex_cli(proxied.server, "project", "status", name, "quarantined")
    try:
        assert not page_files(proxied.server, name).exists()  # the CLI removed it
        url = f"{proxied.url}/simple/{name}/"
        wait_until(
            lambda: requests.get(url, headers={"Accept": V1_JSON}, timeout=10).json()["files"] == [], 10
        )
        assert not from_file(requests.get(url, headers={"Accept": V1_JSON}, timeout=10))
    finally:
        privindex_cli(proxied.server, "project", "status", name, "active")


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_a_private_index_checks_the_token_before_nginx_serves_a_page(tmp_path, dists):
    p = Proxied(
        tmp_path,
        dists,
        private=True,
        PRIVINDEX_READ_ACCESS="token",
        PRIVINDEX_STATIC_PAGES_AUTH_REQUEST="true",
    )
    try:
        accounts = Accounts(p.server.store, p.server.data_dir, p.server.env)
        accounts.user("reader")
        token = accounts.token("reader", "--read-only")
        wait_until(lambda: page_files(p.server, "alpha").is_dir(), 10)
        url = f"{p.url}/simple/alpha/"
        refused = requests.get(url, timeout=10)
        assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
        assert requests.get(url, auth=("__token__", "not-a-token"), timeout=10).status_code == 401
        served = requests.get(url, auth=("__token__", token), headers={"Accept": V1_JSON}, timeout=10)
        assert served.status_code == 200 and from_file(served)
        # the read check sees the client's address, not nginx's: a read from a new address
        # is audited (and its owner told) though nginx served the page from its file
        elsewhere = requests.Session()
        elsewhere.mount("http://", SourceAddressAdapter("127.0.0.2"))
        from_there = elsewhere.get(url, auth=("__token__", token), headers={"Accept": V1_JSON}, timeout=10)
        assert from_there.status_code == 200 and from_file(from_there)
        seen_from = [e["ip"] for e in audit_json(p.server) if e["tag"] == "token:new-address"]
        assert "127.0.0.2" in seen_from and "127.0.0.1" in seen_from, seen_from
        accounts.revoke(token)
        # refused within the read check's memory (1 s) and the revocation reaching the server
        wait_until(lambda: requests.get(url, auth=("__token__", token), timeout=10).status_code == 401, 3)
        assert token not in (p.server.log() + (tmp_path / "nginx" / "error.log").read_text())
    finally:
        p.close()
