"""The Simple Repository API as a strict parser (pypi-simple) and raw HTTP see it."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from conftest import start_server
from helpers import V1_JSON
from pypi_simple import ACCEPT_HTML_ONLY, ACCEPT_JSON_ONLY, PyPISimple
from wheels import make_wheel

from privindex.packages.pages import API_VERSION

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

V1_HTML = "application/vnd.pypi.simple.v1+html"


@pytest.fixture(scope="module")
def url(read_server) -> str:
    return read_server.url


@pytest.mark.parametrize("accept", [ACCEPT_JSON_ONLY, ACCEPT_HTML_ONLY])
def test_root_page_lists_every_project_in_both_formats(url, accept):
    with PyPISimple(f"{url}/simple/", accept=accept) as client:
        page = client.get_index_page()
    assert sorted(page.projects) == ["Beta_Pkg", "alpha", "future-only", "handmade"]
    assert page.repository_version == API_VERSION


@pytest.mark.parametrize("accept", [ACCEPT_JSON_ONLY, ACCEPT_HTML_ONLY])
def test_project_page_describes_every_file_truthfully(url, read_server, dists, accept):
    with PyPISimple(f"{url}/simple/", accept=accept) as client:
        page = client.get_project_page("alpha")
        by_name = {p.filename: p for p in page.packages}
        assert set(by_name) == {p.name for p in dists.files["alpha"]}
        for path in dists.files["alpha"]:
            package = by_name[path.name]
            content = path.read_bytes()
            assert package.digests["sha256"] == hashlib.sha256(content).hexdigest()
            assert package.requires_python == (">=3.8" if "1.0" in path.name else ">=3.9")
            assert not package.is_yanked
            # the file itself is served at the advertised URL
            assert requests.get(package.url, timeout=10).content == content
            if path.name.endswith(".whl"):
                assert package.has_metadata
                metadata = client.get_package_metadata_bytes(package)
                assert hashlib.sha256(metadata).hexdigest() == package.metadata_digests["sha256"]
                assert b"Name: alpha" in metadata
            else:
                assert not package.has_metadata
    if accept == ACCEPT_JSON_ONLY:
        assert page.versions == ["1.0", "2.0"]
        for package in page.packages:
            assert (
                package.size
                == next(p for p in dists.files["alpha"] if p.name == package.filename).stat().st_size
            )
            assert package.upload_time.tzinfo is not None
            assert package.upload_time <= datetime.now(UTC)


def test_handmade_sdist_requires_python_is_published_and_escaped(url):
    html = requests.get(f"{url}/simple/handmade/", headers={"Accept": "text/html"}, timeout=10).text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    doc = requests.get(f"{url}/simple/handmade/", headers={"Accept": V1_JSON}, timeout=10).json()
    assert doc["files"][0]["requires-python"] == ">=3.8,<4"
    assert doc["files"][0]["core-metadata"] is False


def test_html_page_carries_pep_629_658_714_attributes(url):
    html = requests.get(f"{url}/simple/beta-pkg/", timeout=10).text
    assert f'<meta name="pypi:repository-version" content="{API_VERSION}">' in html
    wheel_line = next(line for line in html.splitlines() if ".whl" in line)
    assert "#sha256=" in wheel_line
    assert 'data-core-metadata="sha256=' in wheel_line
    assert 'data-dist-info-metadata="sha256=' in wheel_line


@pytest.mark.parametrize(
    "path, location",
    [
        ("/simple", "/simple/"),
        ("/simple/Beta_Pkg/", "/simple/beta-pkg/"),
        ("/simple/BETA.pkg", "/simple/beta-pkg/"),
        ("/simple/alpha", "/simple/alpha/"),
    ],
)
def test_non_normalized_urls_redirect_permanently(url, path, location):
    resp = requests.get(url + path, allow_redirects=False, timeout=10)
    assert resp.status_code == 301
    assert resp.headers["Location"] == location


def test_unknown_project_is_404(url):
    assert requests.get(f"{url}/simple/no-such-project/", timeout=10).status_code == 404


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html", "text/html"),
        (V1_JSON, V1_JSON),
        ("application/vnd.pypi.simple.latest+json", V1_JSON),
        ("application/vnd.pypi.simple.latest+html", V1_HTML),
        (f"{V1_JSON}, {V1_HTML};q=0.1, text/html;q=0.01", V1_JSON),  # what pip sends
        (f"{V1_JSON};q=0.2, text/html;q=0.9", "text/html"),
        (f"{V1_JSON};q=0, */*;q=0.5", "text/html"),
        (f"text/*;q=0.1, {V1_HTML};q=0.5", V1_HTML),
    ],
)
def test_content_negotiation_honours_q_values(url, accept, expected):
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        headers = {"Accept": ""}
    resp = requests.get(f"{url}/simple/alpha/", headers=headers, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0] == expected
    assert resp.headers["Vary"] == "Accept"


@pytest.mark.parametrize("accept", ["application/xml", f"{V1_JSON};q=0, text/html;q=0", "image/*"])
def test_nothing_acceptable_is_406(url, accept):
    resp = requests.get(f"{url}/simple/", headers={"Accept": accept}, timeout=10)
    assert resp.status_code == 406
    assert V1_JSON in resp.text


@pytest.mark.parametrize("accept", ["text/html", V1_JSON])
def test_pages_revalidate_with_strong_etags(url, accept):
    first = requests.get(f"{url}/simple/alpha/", headers={"Accept": accept}, timeout=10)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = requests.get(
        f"{url}/simple/alpha/", headers={"Accept": accept, "If-None-Match": etag}, timeout=10
    )
    assert again.status_code == 304
    assert again.content == b""
    other = requests.get(
        f"{url}/simple/beta-pkg/", headers={"Accept": accept, "If-None-Match": etag}, timeout=10
    )
    assert other.status_code == 200


def test_json_and_html_have_different_etags(url):
    html = requests.get(f"{url}/simple/alpha/", headers={"Accept": "text/html"}, timeout=10)
    js = requests.get(f"{url}/simple/alpha/", headers={"Accept": V1_JSON}, timeout=10)
    assert html.headers["ETag"] != js.headers["ETag"]


def test_head_on_a_page_has_headers_but_no_body(url):
    resp = requests.head(f"{url}/simple/alpha/", timeout=10)
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) > 100
    assert resp.content == b""


def test_writes_are_refused_on_the_read_path(url):
    resp = requests.post(f"{url}/simple/alpha/", data=b"x", timeout=10)
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"]


# -- package files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(dists):
    return (
        dists.files["alpha"][1] if dists.files["alpha"][1].name.endswith(".whl") else dists.files["alpha"][0]
    )


@pytest.fixture(scope="module")
def wheel_url(url, wheel):
    return f"{url}/packages/alpha/{wheel.name}"


def test_file_download_headers(wheel_url, wheel):
    resp = requests.get(wheel_url, timeout=10)
    content = wheel.read_bytes()
    assert resp.status_code == 200
    assert resp.content == content
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Length"] == str(len(content))
    assert resp.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert "Last-Modified" in resp.headers
    assert "Content-Encoding" not in resp.headers


def test_sdist_is_served_as_gzip_without_content_encoding(url, dists):
    sdist = dists.one("handmade-0.3.tar.gz")
    resp = requests.get(f"{url}/packages/{sdist.name}", timeout=10)
    assert resp.headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in resp.headers
    assert resp.content == sdist.read_bytes()


def test_file_range_requests(wheel_url, wheel):
    content = wheel.read_bytes()
    part = requests.get(wheel_url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.content == content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(content)}"
    tail = requests.get(wheel_url, headers={"Range": "bytes=-5"}, timeout=10)
    assert tail.status_code == 206 and tail.content == content[-5:]
    beyond = requests.get(wheel_url, headers={"Range": f"bytes={len(content) + 10}-"}, timeout=10)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"
    stale = requests.get(wheel_url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == content


def test_file_conditional_requests(wheel_url):
    first = requests.get(wheel_url, timeout=10)
    by_etag = requests.get(wheel_url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert by_etag.status_code == 304 and by_etag.content == b""
    by_date = requests.get(
        wheel_url, headers={"If-Modified-Since": first.headers["Last-Modified"]}, timeout=10
    )
    assert by_date.status_code == 304
    changed = requests.get(
        wheel_url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, timeout=10
    )
    assert changed.status_code == 200


def test_file_head(wheel_url, wheel):
    resp = requests.head(wheel_url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(wheel.stat().st_size)
    assert resp.content == b""


def test_metadata_file_of_an_sdist_does_not_exist(url):
    assert requests.get(f"{url}/packages/handmade-0.3.tar.gz.metadata", timeout=10).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/packages/../../../../etc/passwd",
        "/packages/%2e%2e/%2e%2e/etc/passwd",
        "/packages/..%2F..%2Fetc%2Fpasswd",
        "/packages/alpha/..%2F..%2Fdata%2Fprivindex.sqlite3",
        "/packages/..\\..\\etc\\passwd",
        "/packages//etc/passwd",
        "/packages/%2Fetc%2Fpasswd",
        "/packages/alpha/../alpha/",
        "/packages/README.md",
        "/packages/",
        "/packages/alpha",
    ],
)
def test_paths_outside_the_index_are_404(url, path):
    # requests would normalize '..' itself; send the raw path
    with requests.Session() as session:
        req = requests.Request("GET", url + "/").prepare()
        req.url = url + path
        resp = session.send(req, timeout=10)
    assert resp.status_code == 404


def test_health(url):
    resp = requests.get(f"{url}/health", timeout=10)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.json()["projects"] == 4


def test_revalidation_keeps_the_connection_open(url):
    """pip revalidates every page: a 304 must not cost a new TCP connection."""
    import http.client

    conn = http.client.HTTPConnection(url.split("//")[1], timeout=10)
    conn.request("GET", "/simple/alpha/")
    first = conn.getresponse()
    first.read()
    etag = first.getheader("ETag")
    for _ in range(3):
        conn.request("GET", "/simple/alpha/", headers={"If-None-Match": etag})
        again = conn.getresponse()
        again.read()
        assert again.status == 304
        assert again.getheader("Connection") != "close"
    local_port = conn.sock.getsockname()[1]
    conn.request("GET", "/simple/alpha/", headers={"If-None-Match": etag})
    conn.getresponse().read()
    assert conn.sock.getsockname()[1] == local_port  # still the same socket
    conn.close()


@pytest.mark.slow  # many clients on a server of its own
def test_big_answers_arrive_whole_to_many_clients_at_once(tmp_path):
    """The project list past 64 KB goes to waitress as a file over the cached page (one copy
    for every connection, not one each), and files are read a megabyte at a time: every
    client still gets every byte, and ranges across those pieces are right."""
    store = tmp_path / "store"
    store.mkdir()
    names = [f"a-rather-long-project-name-for-a-big-list-{i:04d}" for i in range(1200)]
    for name in names:
        make_wheel(store, name, "1.0")
    big = make_wheel(store, "big-payload", "1.0", payload=os.urandom(5 * 1024 * 1024 + 123))
    server = start_server(store, tmp_path / "data")
    try:
        file_url = f"{server.url}/packages/{big.name}"
        with requests.Session() as session, ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda _: session.get(file_url, timeout=60).content, range(16)))
        assert all(body == big.read_bytes() for body in bodies)
        ranged = requests.get(file_url, headers={"Range": "bytes=1048000-3146000"}, timeout=60)
        assert ranged.status_code == 206 and ranged.content == big.read_bytes()[1048000:3146001]
        for accept in (ACCEPT_HTML_ONLY, ACCEPT_JSON_ONLY):
            one = requests.get(f"{server.url}/simple/", headers={"Accept": accept}, timeout=30)
            assert len(one.content) > 64 * 1024
            assert int(one.headers["Content-Length"]) == len(one.content)
            with PyPISimple(f"{server.url}/simple/", accept=accept) as client:
                assert len(client.get_index_page().projects) == len(names) + 1
            with requests.Session() as session, ThreadPoolExecutor(16) as pool:
                bodies = list(
                    pool.map(
                        lambda _, accept=accept: (
                            session.get(
                                f"{server.url}/simple/", headers={"Accept": accept}, timeout=30
                            ).content
                        ),
                        range(48),
                    )
                )
            assert all(body == one.content for body in bodies)
            head = requests.head(f"{server.url}/simple/", headers={"Accept": accept}, timeout=30)
            assert head.content == b"" and head.headers["Content-Length"] == one.headers["Content-Length"]
    finally:
        server.stop()
