"""send_files_via: privindex decides every download, the reverse proxy sends the bytes.

Debian's nginx on loopback, configured with README.md's own recommended config (read from
the README by benchmarks/peers.py, as the benchmark does), in front of a real `privindex
serve`; pip installs through it. Without nginx these tests are skipped, except in CI
(`.ci/run` installs it).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import requests
from conftest import Accounts, client_env, free_port, needs_nginx, populate, run, run_nginx, start_server

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import peers  # noqa: E402  (benchmarks/peers.py: the README's nginx config, made concrete)

from privindex.api.simple import ProxySend  # noqa: E402
from privindex.config import ConfigError, Settings  # noqa: E402

WHEEL = "alpha-2.0-py3-none-any.whl"  # in the store's alpha/ folder (conftest.populate)


class Proxied:
    """A privindex and the README's nginx in front of it."""

    def __init__(self, base: Path, dists, **settings: str):
        populate(base / "store", dists)
        env = {f"PRIVINDEX_{k.upper()}": v for k, v in settings.items()}
        self.server = start_server(
            base / "store", base / "data", env={"PRIVINDEX_TRUSTED_PROXY": "127.0.0.1", **env}
        )
        port = free_port()
        upstream_port = int(self.server.url.rsplit(":", 1)[1])
        work = base / "nginx"
        conf = peers.nginx_http_conf(
            work, peers.readme_nginx_config(port, upstream_port, base / "store", work / "cache"), workers="1"
        )
        self.nginx = run_nginx(work, conf, port)
        self.url = f"http://127.0.0.1:{port}"
        self.store = base / "store"

    def close(self) -> None:
        self.nginx.terminate()
        self.nginx.wait(timeout=20)
        self.server.stop()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, dists):
    p = Proxied(tmp_path_factory.mktemp("proxied"), dists, send_files_via="x-accel-redirect")
    yield p
    p.close()


@pytest.fixture(scope="module")
def private(tmp_path_factory, dists):
    p = Proxied(
        tmp_path_factory.mktemp("private"), dists, send_files_via="x-accel-redirect", read_access="token"
    )
    yield p
    p.close()


def wheel_bytes(p: Proxied) -> bytes:
    return (p.store / "alpha" / WHEEL).read_bytes()


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_pip_installs_through_nginx_with_files_sent_by_nginx(proxied, tmp_path):
    target = tmp_path / "site"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--index-url",
            f"{proxied.url}/simple/",
            "--target",
            str(target),
            "beta-pkg",
        ],
        env=client_env(),
    )
    assert (target / "alpha" / "__init__.py").read_text() == 'VERSION = "2.0"\n'  # a dependency, too
    assert (target / "beta_pkg" / "__init__.py").exists()


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_privindex_decides_and_names_the_file_nginx_sends_it(proxied):
    # privindex itself answers with the headers, an empty body and the internal URI ...
    direct = requests.get(f"{proxied.server.url}/packages/alpha/{WHEEL}", timeout=10)
    assert direct.status_code == 200 and direct.content == b""
    assert direct.headers["X-Accel-Redirect"] == f"/_privindex_files/alpha/{WHEEL}"
    # ... and through nginx the client gets the file, with privindex's headers
    resp = requests.get(f"{proxied.url}/packages/alpha/{WHEEL}", timeout=10)
    body = wheel_bytes(proxied)
    assert resp.status_code == 200 and resp.content == body
    assert resp.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Cache-Control"] == direct.headers["Cache-Control"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Accept-Ranges"] == "bytes"  # once: nginx's own
    assert "X-Accel-Redirect" not in resp.headers
    # the download is counted once, with its bytes, although privindex sent none
    metrics = requests.get(f"{proxied.server.url}/metrics", timeout=10).text
    sent = next(
        line
        for line in metrics.splitlines()
        if line.startswith('privindex_download_bytes_total{route="file"}')
    )
    assert float(sent.split()[-1]) >= len(body)


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_ranges_conditionals_and_head_through_nginx(proxied):
    url, body = f"{proxied.url}/packages/alpha/{WHEEL}", wheel_bytes(proxied)
    part = requests.get(url, headers={"Range": "bytes=10-109"}, timeout=10)
    assert part.status_code == 206 and part.content == body[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(body)}"
    tail = requests.get(url, headers={"Range": "bytes=-7"}, timeout=10)
    assert tail.status_code == 206 and tail.content == body[-7:]
    assert requests.get(url, headers={"Range": f"bytes={len(body) + 5}-"}, timeout=10).status_code == 416

    etag = requests.head(url, timeout=10).headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    other = requests.get(url, headers={"If-None-Match": '"something-else"'}, timeout=10)
    assert other.status_code == 200 and other.content == body
    # If-Range is privindex's to judge: a stale validator gets the whole file
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == body
    fresh = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert fresh.status_code == 206 and fresh.content == body[:10]

    head = requests.head(url, timeout=10)
    assert (
        head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(body)
    )


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_the_internal_location_cannot_be_requested(proxied):
    resp = requests.get(f"{proxied.url}/_privindex_files/alpha/{WHEEL}", timeout=10)
    assert resp.status_code == 404 and resp.content != wheel_bytes(proxied)
    assert (
        requests.get(f"{proxied.url}/packages/../_privindex_files/alpha/{WHEEL}", timeout=10).status_code
        == 404
    )
    assert requests.get(f"{proxied.url}/packages/alpha/..%2f..%2fetc%2fpasswd", timeout=10).status_code == 404


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_pages_come_from_the_micro_cache_and_revalidate(proxied):
    url = f"{proxied.url}/simple/alpha/"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200 and WHEEL in first.text
    assert first.headers["Cache-Control"] == "no-cache"  # clients still revalidate every time
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    json_page = requests.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10)
    assert json_page.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"  # keyed on Accept
    assert first.headers["X-Request-ID"] != again.headers.get("X-Request-ID")  # each request its own id


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_a_file_changed_on_disk_is_refused_through_nginx(proxied):
    target = proxied.store / "handmade-0.3.tar.gz"
    url = f"{proxied.url}/packages/handmade-0.3.tar.gz"
    assert requests.get(url, timeout=10).content == target.read_bytes()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 409 and bytes(data) != resp.content


@needs_nginx
@pytest.mark.slow  # nginx in front of a real server
def test_a_private_index_refuses_without_a_token_through_nginx(private):
    url = f"{private.url}/packages/alpha/{WHEEL}"
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 401 and refused.content != wheel_bytes(private)
    assert requests.get(f"{private.url}/simple/alpha/", timeout=10).status_code == 401
    accounts = Accounts(private.store, private.server.data_dir, private.server.env)
    accounts.user("reader")
    token = accounts.token("reader", "--read-only")
    resp = requests.get(url, auth=("__token__", token), timeout=10)
    assert resp.status_code == 200 and resp.content == wheel_bytes(private)
    page = requests.get(f"{private.url}/simple/alpha/", auth=("__token__", token), timeout=10)
    assert page.status_code == 200
    # with credentials pages bypass the micro-cache: a wrong token is refused at once
    assert (
        requests.get(f"{private.url}/simple/alpha/", auth=("__token__", token + "x"), timeout=10).status_code
        == 401
    )
    assert requests.get(url, auth=("__token__", "pidx_" + "A" * 43), timeout=10).status_code == 401


def test_with_the_setting_off_privindex_sends_the_bytes(read_server, dists):
    """The default: no header for a proxy, the body itself (Range included)."""
    body = next(p for p in dists.all() if p.name == WHEEL).read_bytes()
    resp = requests.get(f"{read_server.url}/packages/alpha/{WHEEL}", timeout=10)
    assert (
        resp.content == body and "X-Accel-Redirect" not in resp.headers and "X-Sendfile" not in resp.headers
    )
    part = requests.get(
        f"{read_server.url}/packages/alpha/{WHEEL}", headers={"Range": "bytes=0-9"}, timeout=10
    )
    assert part.status_code == 206 and part.content == body[:10]


def test_x_sendfile_names_the_absolute_path(make_app, tmp_path, dists):
    populate(tmp_path / "xs" / "store", dists)
    client = make_app("xs", send_files_via="x-sendfile").test_client()
    resp = client.get(f"/packages/alpha/{WHEEL}")
    assert resp.status_code == 200 and resp.data == b""
    assert resp.headers["X-Sendfile"] == str((tmp_path / "xs" / "store" / "alpha" / WHEEL).absolute())
    assert resp.headers["ETag"].startswith('"') and resp.headers["Content-Length"] == "0"
    assert client.head(f"/packages/alpha/{WHEEL}").headers.get("X-Sendfile") is None  # HEAD: privindex's own
    assert client.get(f"/packages/alpha/{WHEEL}", headers={"Range": "bytes=999999-"}).status_code == 416
    assert client.get("/packages/alpha/nothing.whl").status_code == 404
    metadata = client.get(f"/packages/alpha/{WHEEL}.metadata")
    assert metadata.status_code == 200 and b"Name: alpha" in metadata.data  # always sent by privindex


@pytest.mark.parametrize(
    "relpath",
    [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b.whl",
        "a//b.whl",
        "./a.whl",
        "a\\b.whl",
        "a\nX-Evil: 1.whl",
        "a\x00.whl",
        "",
    ],
)
def test_only_plain_relative_paths_are_named_to_the_proxy(relpath):
    assert ProxySend("X-Accel-Redirect", "/_privindex_files/").target(relpath) is None
    assert ProxySend("X-Sendfile", "/srv/packages/").target(relpath) is None


def test_names_are_escaped_for_nginx():
    send = ProxySend("X-Accel-Redirect", "/_privindex_files/")
    assert (
        send.target("pkg/a-1.0+local-py3-none-any.whl")
        == "/_privindex_files/pkg/a-1.0%2Blocal-py3-none-any.whl"
    )
    assert send.target("b-1.0?x=%41.tar.gz") == "/_privindex_files/b-1.0%3Fx%3D%2541.tar.gz"
    assert ProxySend("X-Sendfile", "/srv/p/").target("é-1.0.tar.gz") == "/srv/p/é-1.0.tar.gz".encode().decode(
        "latin-1"
    )


@pytest.mark.parametrize(
    "values",
    [
        {"send_files_via": "nginx"},
        {"send_files_prefix": "files/"},
        {"send_files_prefix": "/a/../b/"},
        {"send_files_prefix": "/a b/"},
    ],
)
def test_bad_send_files_settings_are_refused(values):
    with pytest.raises(ConfigError, match=next(iter(values))):
        Settings(**values)
