"""static_files: the serving tree of hard links nginx sends verified files from.

In-process (fresh_app) for what the tree holds after each change: upload, yank, delete,
quarantine and its lifting, a file changed in the store, a file dropped in by hand, a
symlink, a restart over an old tree, the setting off. Against a real `privindex serve`
behind Debian's nginx on README.md's own config (read by benchmarks/peers.py): pip
installs bytes nginx sent from the tree, privindex never sees the request, and what
privindex must decide (quarantine, a changed file) still answers from privindex.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from conftest import (
    app_server,
    client_env,
    free_port,
    privindex_cli,
    run,
    run_nginx,
    start_server,
    wait_until,
)
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from wheels import make_wheel, upload

from privindex.config import ConfigError, Settings
from privindex.db.connection import bound
from privindex.ops import audit
from privindex.packages import project_status, withdrawal
from privindex.packages.serving_tree import ServingTree, tree_folder
from privindex.packages.store import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import peers  # noqa: E402  (benchmarks/peers.py: the README's nginx config, made concrete)

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and os.environ.get("CI") != "true",
    reason="needs Debian's nginx (.ci/run installs it)",
)
NO_2FA = {"require_2fa": False}
OLD = datetime(2020, 1, 1, tzinfo=UTC)  # an upstream upload old enough to be served


def in_tree(server) -> dict[str, int]:
    """Path in the tree -> inode, for every file the tree holds (temp links and symlinks included)."""
    folder = tree_folder(server.data_dir)
    held = {}
    for p in folder.rglob("*"):
        try:
            if p.is_symlink() or not p.is_dir():
                held[str(p.relative_to(folder))] = p.stat(follow_symlinks=False).st_ino
        except FileNotFoundError:  # a temp link renamed into place meanwhile
            pass
    return held


def tree_is(server, *paths: str, timeout: float = 10) -> None:
    """Wait until the tree holds exactly these store paths, each the store file itself."""

    def matches() -> bool:
        return in_tree(server) == {p: (server.store / p).stat().st_ino for p in paths}

    try:
        wait_until(matches, timeout)
    except AssertionError:
        raise AssertionError(f"the tree holds {sorted(in_tree(server))}, expected {sorted(paths)}") from None


def services(server):
    return server.app.extensions["privindex"]


@pytest.fixture
def tree(tmp_path, fresh_app):
    """An app with static_files over a store of two projects (a folder, and flat)."""
    make_wheel(tmp_path / "store" / "alpha", "alpha", "1.0")
    make_wheel(tmp_path / "store", "gamma", "1.0")
    server = fresh_app(populated=False, static_files=True, **NO_2FA)
    tree_is(server, "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl")
    return server


def test_the_tree_follows_upload_yank_delete_and_quarantine(tree, tmp_path, accounts):
    alpha1, gamma = "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"
    people = accounts(tree)
    people.user("alice", admin=True)
    token = people.token("alice")
    new = make_wheel(tmp_path / "wheels", "alpha", "2.0")
    assert upload(tree.url, token, new).status_code == 200
    alpha2 = next(p for p in [str(p.relative_to(tree.store)) for p in tree.store.rglob("alpha-2.0*")])
    tree_is(tree, alpha1, gamma, alpha2)

    with tree.app.app_context():
        index = services(tree).index
        withdrawal.set_yanked(index, None, "alpha", "alpha-2.0-py3-none-any.whl", True, "bad", audit.CLI)
        assert index.file(alpha2).yanked
        tree_is(tree, alpha1, gamma, alpha2)  # yanked files stay installable by pin (PEP 592)

        withdrawal.delete(services(tree).store, index, None, "alpha", "alpha-2.0-py3-none-any.whl", audit.CLI)
        tree_is(tree, alpha1, gamma)

        project_status.set_status("alpha", project_status.parse("quarantined", "malware"), audit.CLI)
        services(tree).sources.reload()  # what the web UI does after a change, and the server's thread
        tree_is(tree, gamma)
        assert requests.get(f"{tree.url}/packages/{alpha1}", timeout=10).status_code == 404

        project_status.set_status("alpha", project_status.parse("active"), audit.CLI)
        services(tree).sources.reload()
        tree_is(tree, alpha1, gamma)


def test_a_file_changed_in_the_store_leaves_the_tree_and_privindex_refuses_it(tree):
    gamma = "gamma-1.0-py3-none-any.whl"
    target = tree.store / gamma
    url = f"{tree.url}/packages/{gamma}"
    assert requests.get(url, timeout=10).status_code == 200
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))  # in place: the tree's link is the same inode
    # a download notices first (409), as before; the watcher's pass then withdraws it
    assert requests.get(url, timeout=10).status_code == 409
    with tree.app.app_context():
        services(tree).index.refresh()
    tree_is(tree, "alpha/alpha-1.0-py3-none-any.whl")
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 409 and "withdrawn" in resp.text


def test_a_file_rewritten_in_place_unnoticed_by_privindex_leaves_the_tree(tree):
    """No download reaches privindex when nginx sends the file: the tree's own sweep finds
    the moved size and mtime, removes the link and has the index read the file again."""
    target = tree.store / "alpha" / "alpha-1.0-py3-none-any.whl"
    folder_mtime = target.parent.stat().st_mtime_ns
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target.parent, ns=(folder_mtime, folder_mtime))  # nothing for the watcher to see
    tree_is(tree, "gamma-1.0-py3-none-any.whl")
    with tree.app.app_context():
        services(tree).index.refresh()  # the watcher's next pass reads what the tree reported
    resp = requests.get(f"{tree.url}/packages/alpha/{target.name}", timeout=10)
    assert resp.status_code == 409 and "withdrawn" in resp.text


def test_a_file_dropped_in_by_hand_is_linked_once_verified_and_symlinks_never(tree, tmp_path):
    dropped = make_wheel(tree.store / "alpha", "alpha", "3.0")
    outside = make_wheel(tmp_path / "elsewhere", "delta", "1.0")
    os.symlink(tree.store / "gamma-1.0-py3-none-any.whl", tree.store / "gamma-1.0.post1-py3-none-any.whl")
    os.symlink(outside, tree.store / outside.name)
    tree_is(tree, "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl")  # not before
    with tree.app.app_context():
        services(tree).index.refresh()
        assert services(tree).index.file("gamma-1.0.post1-py3-none-any.whl") is not None  # listed...
    tree_is(tree, "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl", f"alpha/{dropped.name}")
    assert not any(p.startswith(("gamma-1.0.post1", "delta")) for p in in_tree(tree))  # ...never linked


def test_a_start_removes_links_not_listed_and_relinks_a_changed_inode(tmp_path, fresh_app):
    alpha = make_wheel(tmp_path / "store" / "alpha", "alpha", "1.0")
    folder = tree_folder(tmp_path / "data")
    (folder / "alpha").mkdir(parents=True)
    (folder / "alpha" / "gone-1.0-py3-none-any.whl").write_bytes(b"left from an earlier run")
    (folder / "alpha" / ".privindex-link-0123").write_bytes(b"a crash between link and rename")
    shutil.copy(alpha, folder / "alpha" / alpha.name)  # the same bytes, another inode
    (folder / "planted").symlink_to(tmp_path / "store")  # nginx must never follow one
    server = fresh_app(populated=False, static_files=True)
    tree_is(server, f"alpha/{alpha.name}")


def test_a_start_removes_links_withdrawn_while_stopped_before_serving(tmp_path, monkeypatch):
    """Quarantined or deleted while privindex was stopped: create_app itself removes those
    links, before the tree's thread (held still here) and before anyone is served."""
    alpha, gamma = "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"
    make_wheel(tmp_path / "store" / "alpha", "alpha", "1.0")
    make_wheel(tmp_path / "store", "gamma", "1.0")
    make_wheel(tmp_path / "store", "kept", "1.0")
    store, data = tmp_path / "store", tmp_path / "data"
    with app_server(store, data, static_files=True, **NO_2FA) as first:
        tree_is(first, alpha, gamma, "kept-1.0-py3-none-any.whl")
        database = services(first).database
    with bound(database):  # while privindex is stopped, as the CLI does
        project_status.set_status("alpha", project_status.parse("quarantined", "malware"), audit.CLI)
        withdrawal.delete(Store(store), None, None, "gamma", "gamma-1.0-py3-none-any.whl", audit.CLI)
    monkeypatch.setattr(ServingTree, "run", lambda self, stop: None)
    with app_server(store, data, static_files=True, **NO_2FA) as second:
        assert set(in_tree(second)) == {"kept-1.0-py3-none-any.whl"}


def test_the_cli_removes_the_pages_and_links_of_what_it_withdraws(tmp_path):
    """privindex stopped (or on another host): a quarantine or a delete from the CLI must not
    leave nginx serving the old page and the hard-linked file."""
    alpha, gamma = "alpha/alpha-1.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"
    make_wheel(tmp_path / "store" / "alpha", "alpha", "1.0")
    make_wheel(tmp_path / "store", "gamma", "1.0")
    make_wheel(tmp_path / "store", "kept", "1.0")
    pages = tmp_path / "data" / "static" / "simple"
    with app_server(
        tmp_path / "store", tmp_path / "data", static_files=True, static_pages=True, **NO_2FA
    ) as s:
        tree_is(s, alpha, gamma, "kept-1.0-py3-none-any.whl")
        s.app.extensions["privindex_static_pages"].write_all()
    assert {p.name for p in pages.iterdir() if p.is_dir()} == {"alpha", "gamma", "kept"}
    s.cli("project", "status", "alpha", "quarantined")
    s.cli("project", "delete", "gamma", "1.0", "--yes")
    assert set(in_tree(s)) == {"kept-1.0-py3-none-any.whl"}
    assert {p.name for p in pages.iterdir() if p.is_dir()} == {"kept"}


def test_a_file_tail_for_a_client_that_left_is_closed(tmp_path):
    """The rest of a cold upstream file goes to waitress as a file wrapper mid-body; if the
    client left before it was queued, nothing else would ever close that file."""
    from waitress.buffers import ReadOnlyFileBasedBuffer
    from waitress.channel import ClientDisconnected

    from privindex.server import _KeepAliveTask

    class Gone:  # the channel of a client that left: waitress's own answer to every write
        def write_soon(self, data):
            raise ClientDisconnected

    task = _KeepAliveTask.__new__(_KeepAliveTask)
    task.channel, task.complete, task.wrote_header, task.status = Gone(), True, True, "200 OK"
    task.content_length, task.content_bytes_written, task.chunked_response = 10, 4, False
    (tmp_path / "rest").write_bytes(b"0123456789")
    rest = open(tmp_path / "rest", "rb")
    rest.seek(4)
    with pytest.raises(ClientDisconnected):
        task.write(ReadOnlyFileBasedBuffer(rest))
    assert rest.closed


def open_files(pid: int, under: Path) -> list[str]:
    """The files under a folder that process pid holds open, but its database and log."""
    fds = Path(f"/proc/{pid}/fd")
    held = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith(str(under)) and ".sqlite3" not in target and not target.endswith(".log"):
            held.append(target)
    return held


def leave_mid_body(url: str, path: str, headers: str = "") -> None:
    """GET path, read the head and a few KB of the body slowly, then leave."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port)) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        got = b""
        while len(got) < 64 * 1024:
            got += client.recv(4096)
            time.sleep(0.005)


@pytest.mark.slow  # a real server, a slow upstream
def test_clients_leaving_mid_body_leave_no_open_file_behind(tmp_path):
    """A cold upstream download (bytes as they come, then the rest as a file) and a Range
    answer, each left by its client part-way: the server holds none of their files after."""
    fake = FakeUpstream()
    payload = os.urandom(6 * 1024 * 1024)
    for name in ("far-one", "far-two"):
        fake.add(name, make_wheel(tmp_path / name, name, "1.0", payload=payload), uploaded=OLD)
    fake.start()
    fake.rate = 4 * 1024 * 1024  # each download takes 1.5 s: the client leaves before and after
    make_wheel(tmp_path / "store", "near", "1.0", payload=payload)
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", fake.url)
    try:
        pid = server.proc.pid
        for name in ("far-one", "far-two"):
            (filename,) = listed(server, name)
            leave_mid_body(server.url, f"/packages/.upstream/{name}/{filename}")
        leave_mid_body(server.url, "/packages/near-1.0-py3-none-any.whl", "Range: bytes=1000-\r\n")
        wait_until(lambda: fake.finished[f"/files/{filename}"] == 1, 20)  # landed, the client gone
        try:
            wait_until(lambda: not open_files(pid, tmp_path), 10)
        except AssertionError:
            raise AssertionError(open_files(pid, tmp_path)) from None
    finally:
        server.stop()
        fake.stop()


def test_an_apps_tree_thread_ends_when_the_app_is_stopped(tmp_path):
    """Tests and embedders build many apps: each one's polling thread ends with its stop."""
    before = set(threading.enumerate())
    with app_server(tmp_path / "store", tmp_path / "data", static_files=True, **NO_2FA):
        started = [t for t in threading.enumerate() if t not in before and t.name == "serving-tree"]
        assert len(started) == 1
    started[0].join(timeout=5)
    assert not started[0].is_alive()


def test_turned_off_the_tree_is_removed_and_private_indexes_cannot_have_one(tmp_path, fresh_app):
    folder = tree_folder(tmp_path / "data")
    (folder / "alpha").mkdir(parents=True)
    (folder / "alpha" / "alpha-1.0-py3-none-any.whl").write_bytes(b"from when it was on")
    fresh_app(populated=False)
    assert not folder.exists()
    with pytest.raises(ConfigError, match="static_files"):
        Settings(static_files=True, read_access="token")


# -- behind nginx, on README.md's config -----------------------------------------------------


class Proxied:
    """A privindex with static_files and the README's nginx in front of it."""

    def __init__(self, base: Path):
        store = base / "store"
        make_wheel(store / "alpha", "alpha", "1.0", payload=os.urandom(100_000))
        make_wheel(store, "gamma", "1.0")
        make_wheel(store / "epsilon", "epsilon", "1.0+cpu.local")  # a '+' the URL escapes
        self.server = start_server(
            store,
            base / "data",
            env={"PRIVINDEX_TRUSTED_PROXY": "127.0.0.1", "PRIVINDEX_STATIC_FILES": "true"},
        )
        port = free_port()
        work = base / "nginx"
        config = peers.readme_nginx_config(
            port, int(self.server.url.rsplit(":", 1)[1]), store, work / "cache", base / "data" / "static"
        )
        self.nginx = run_nginx(work, peers.nginx_http_conf(work, config, workers="1"), port)
        self.url = f"http://127.0.0.1:{port}"
        self.store = store
        tree_is(
            self.server,
            "alpha/alpha-1.0-py3-none-any.whl",
            "gamma-1.0-py3-none-any.whl",
            "epsilon/epsilon-1.0+cpu.local-py3-none-any.whl",
        )

    def close(self) -> None:
        self.nginx.terminate()
        self.nginx.wait(timeout=20)
        self.server.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    p = Proxied(tmp_path_factory.mktemp("static-files"))
    yield p
    p.close()


def asked_privindex(p: Proxied, path: str) -> int:
    """How many requests for path privindex's access log shows."""
    return sum(f'"GET {path}"' in line for line in p.server.log().splitlines())


@needs_nginx
@pytest.mark.slow  # pip through nginx in front of a real server
def test_pip_installs_bytes_nginx_sent_from_the_tree(proxied, tmp_path):
    path = "/packages/alpha/alpha-1.0-py3-none-any.whl"
    target = tmp_path / "site"
    run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-cache-dir"]
        + ["--index-url", f"{proxied.url}/simple/", "--target", str(target), "alpha"],
        env=client_env(),
    )
    assert (target / "alpha" / "payload.bin").stat().st_size == 100_000
    assert asked_privindex(proxied, "/simple/alpha/") >= 1  # the log names what privindex was asked
    assert asked_privindex(proxied, path) == 0

    body = (proxied.store / path.removeprefix("/packages/")).read_bytes()
    resp = requests.get(f"{proxied.url}{path}", timeout=10)
    assert resp.content == body and resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Cache-Control"] == "public, max-age=600"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    part = requests.get(f"{proxied.url}{path}", headers={"Range": "bytes=10-109"}, timeout=10)
    assert part.status_code == 206 and part.content == body[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(body)}"
    etag = resp.headers["ETag"]
    again = requests.get(f"{proxied.url}{path}", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304
    assert asked_privindex(proxied, path) == 0

    page = requests.get(f"{proxied.url}/simple/epsilon/", headers={"Accept": V1_JSON}, timeout=10).json()
    url = page["files"][0]["url"]  # as pip and uv follow it: the '+' percent-escaped
    assert "%2B" in url
    escaped = requests.get(urljoin(f"{proxied.url}/simple/epsilon/", url), timeout=10)
    assert escaped.status_code == 200 and escaped.content[:2] == b"PK"
    assert asked_privindex(proxied, urlsplit(urljoin("/simple/epsilon/", url)).path) == 0


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_quarantined_and_changed_files_are_privindexs_answers_through_nginx(proxied):
    server = proxied.server
    privindex_cli(server, "project", "status", "alpha", "quarantined", "--reason", "malware")
    assert "alpha/alpha-1.0-py3-none-any.whl" not in in_tree(server)  # the CLI removed it
    url = f"{proxied.url}/packages/alpha/alpha-1.0-py3-none-any.whl"
    wait_until(lambda: requests.get(url, timeout=10).status_code == 404, 10)  # privindex saw the status
    assert "alpha is quarantined" in requests.get(url, timeout=10).text

    gamma = proxied.store / "gamma-1.0-py3-none-any.whl"
    url = f"{proxied.url}/packages/{gamma.name}"
    data = bytearray(gamma.read_bytes())
    data[-1] ^= 0xFF
    gamma.write_bytes(bytes(data))
    os.utime(proxied.store)  # the folder changed, as a copy by hand changes it
    wait_until(lambda: gamma.name not in in_tree(server), 10)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 409 and bytes(data) != resp.content
    assert requests.get(f"{proxied.url}/packages/nothing-1.0.tar.gz", timeout=10).status_code == 404
    assert requests.get(f"{proxied.url}/packages/.privindex-link-x", timeout=10).status_code == 404


def test_a_store_on_another_filesystem_is_said_at_start_and_by_check(tmp_path, caplog):
    store = Path("/dev/shm") / f"privindex-{tmp_path.name}-{os.getpid()}"
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same filesystem as the test's folder here")
    try:
        make_wheel(store, "gamma", "1.0")
        with app_server(store, tmp_path / "data", static_files=True) as server:
            assert "are on different filesystems" in caplog.text
            assert not tree_folder(server.data_dir).exists()
            checked = privindex_cli(server, "check", check=False, env={"PRIVINDEX_STATIC_FILES": "true"})
        assert checked.returncode == 1
        assert "are on different filesystems, so files cannot be hard-linked" in checked.stdout
    finally:
        shutil.rmtree(store, ignore_errors=True)
