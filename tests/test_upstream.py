"""One index URL for everything: privindex as a pull-through cache of an upstream index.

The upstream is a second privindex on loopback (a real PEP 691 index) or, where the test
must control or count what the upstream does, a small stdlib HTTP server. pip and uv talk
to the one privindex URL; nothing here touches the internet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from conftest import build_project, pip, privindex_cli, start_server, twine, uv, wait_until
from fake_upstream import FakeUpstream
from helpers import V1_JSON, installed, listed
from pypi_simple import ACCEPT_HTML_ONLY, PyPISimple

from privindex.packages.pages import API_VERSION

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database


def downloaded(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# -- servers shared by the module ------------------------------------------------------------


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> dict[str, list[Path]]:
    out = tmp_path_factory.mktemp("acme-dists")
    work = tmp_path_factory.mktemp("acme-src")
    for version in ("1.0", "99.0"):
        build_project(work, out / version, "acme-lib", version, ">=3.8", [])
    return {v: sorted((out / v).iterdir()) for v in ("1.0", "99.0")}


def _copy(files, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, folder / path.name)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory, dists, acme):
    """The public index: alpha (1.0, 2.0), future-only, and the attacker's acme-lib 99.0."""
    base = tmp_path_factory.mktemp("upstream")
    _copy(dists.files["alpha"] + dists.files["future-only"] + acme["99.0"], base / "store")
    server = start_server(base / "store", base / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, dists, acme, upstream):
    """The team's index: beta-pkg (needs alpha, only upstream) and the private acme-lib 1.0."""
    base = tmp_path_factory.mktemp("proxy")
    _copy(dists.files["beta-pkg"] + acme["1.0"], base / "store")
    server = start_server(
        base / "store",
        base / "data",
        "--upstream",
        upstream.index_url,
        env={"PRIVINDEX_REQUIRE_2FA": "false"},
    )
    yield server
    server.stop()


def page(server, name: str) -> dict:
    resp = requests.get(f"{server.index_url}{name}/", headers={"Accept": V1_JSON}, timeout=30)
    resp.raise_for_status()
    return resp.json()


# -- installing through the one URL ----------------------------------------------------------


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_startup_line_says_the_upstream_is_reachable(proxy, upstream):
    assert any(line.startswith(f"upstream: {upstream.index_url} reachable") for line in proxy.banner)


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_a_private_package_whose_dependency_is_only_upstream_installs(proxy, tmp_path):
    pip("install", "--index-url", proxy.index_url, "--target", str(tmp_path / "pip"), "beta-pkg")
    assert installed(tmp_path / "pip") == {"beta_pkg-0.1.dist-info", "alpha-2.0.dist-info"}
    uv(
        "pip",
        "install",
        "--index-url",
        proxy.index_url,
        "--python",
        sys.executable,
        "--target",
        str(tmp_path / "uv"),
        "beta-pkg",
    )
    assert installed(tmp_path / "uv") == {"beta_pkg-0.1.dist-info", "alpha-2.0.dist-info"}


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_a_local_name_hides_the_upstream_completely(proxy, upstream, tmp_path):
    pip("download", "--no-deps", "--index-url", proxy.index_url, "-d", str(tmp_path / "pip"), "acme-lib")
    assert downloaded(tmp_path / "pip") == {"acme_lib-1.0-py3-none-any.whl"}
    uv(
        "pip",
        "install",
        "--index-url",
        proxy.index_url,
        "--python",
        sys.executable,
        "--target",
        str(tmp_path / "uv"),
        "acme-lib",
    )
    assert installed(tmp_path / "uv") == {"acme_lib-1.0.dist-info"}
    proc = pip(
        "download",
        "--no-deps",
        "--index-url",
        proxy.index_url,
        "-d",
        str(tmp_path / "no"),
        "acme-lib==99.0",
        check=False,
    )
    assert proc.returncode != 0 and "from versions: 1.0)" in proc.stderr
    assert not any((tmp_path / "no").glob("*"))
    # in no format, and not by guessing the URL either
    assert set(listed(proxy, "acme-lib")) == {"acme_lib-1.0-py3-none-any.whl", "acme_lib-1.0.tar.gz"}
    html = requests.get(f"{proxy.index_url}acme-lib/", timeout=10).text
    assert "99.0" not in html
    guessed = f"{proxy.url}/packages/.upstream/acme-lib/acme_lib-99.0-py3-none-any.whl"
    assert requests.get(guessed, timeout=10).status_code == 404
    assert "acme_lib-99.0" in requests.get(f"{upstream.index_url}acme-lib/", timeout=10).text  # it is there


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_upstream_pages_are_served_faithfully_in_both_formats(proxy, upstream):
    ours, theirs = page(proxy, "alpha"), page(upstream, "alpha")
    assert ours["versions"] == theirs["versions"] == ["1.0", "2.0"]
    assert ours["meta"]["api-version"] == API_VERSION
    by_name = {f["filename"]: f for f in theirs["files"]}
    assert {f["filename"] for f in ours["files"]} == set(by_name)
    for f in ours["files"]:
        for key in ("hashes", "requires-python", "core-metadata", "yanked", "size", "upload-time"):
            assert f[key] == by_name[f["filename"]][key], key
        url = urljoin(f"{proxy.index_url}alpha/", f["url"])
        assert url.startswith(proxy.url + "/packages/.upstream/alpha/")  # never the upstream's host
        body = requests.get(url, timeout=30).content
        assert hashlib.sha256(body).hexdigest() == f["hashes"]["sha256"]
        if f["core-metadata"]:
            metadata = requests.get(url + ".metadata", timeout=30).content
            assert hashlib.sha256(metadata).hexdigest() == f["core-metadata"]["sha256"]
    with PyPISimple(proxy.index_url, accept=ACCEPT_HTML_ONLY) as client:
        html_page = client.get_project_page("alpha")
    assert {
        (p.filename, p.digests["sha256"], p.requires_python, bool(p.has_metadata)) for p in html_page.packages
    } == {
        (f["filename"], f["hashes"]["sha256"], f["requires-python"], bool(f["core-metadata"]))
        for f in theirs["files"]
    }
    # the root lists local names and the upstream names cached here, not the upstream's whole list
    root = requests.get(proxy.index_url, headers={"Accept": V1_JSON}, timeout=10).json()
    names = {p["name"] for p in root["projects"]}
    assert {"alpha", "acme-lib", "Beta_Pkg"} <= names
    assert requests.get(f"{proxy.index_url}no-such-project-anywhere/", timeout=10).status_code == 404


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_require_hashes_with_hashes_from_our_pages(proxy, tmp_path):
    hashes = [
        f["hashes"]["sha256"] for f in page(proxy, "alpha")["files"] if f["filename"].startswith("alpha-2.0")
    ]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==2.0 " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n")
    pip(
        "install",
        "--require-hashes",
        "--index-url",
        proxy.index_url,
        "--target",
        str(tmp_path / "t"),
        "-r",
        str(requirements),
    )
    assert installed(tmp_path / "t") == {"alpha-2.0.dist-info"}


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_cached_files_are_listed_and_checked(proxy):
    requests.get(f"{proxy.url}/packages/.upstream/alpha/alpha-1.0.tar.gz", timeout=30).raise_for_status()
    listing = privindex_cli(proxy, "cache", "list").stdout
    assert "/alpha-1.0.tar.gz\t" in listing
    assert "all " in privindex_cli(proxy, "check").stderr


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_first_upload_of_an_upstream_name_needs_an_admin_claim(proxy, dists, accounts):
    acc = accounts(proxy)
    acc.user("carol")
    token = acc.token("carol")
    wheel = next(p for p in dists.files["future-only"] if p.name.endswith(".whl"))
    refused = twine(proxy.url, token, wheel)
    assert refused.returncode != 0
    assert "future-only exists on the upstream index; an admin must claim it first" in refused.output
    assert "403" in refused.output
    assert listed(proxy, "future-only")  # still the upstream's
    acc.cli("project", "claim", "future-only", "--owner", "carol")
    wait_until(lambda: requests.get(f"{proxy.index_url}future-only/", timeout=10).status_code == 404, 10)
    assert twine(proxy.url, token, wheel).returncode == 0
    assert set(listed(proxy, "future-only")) == {wheel.name}
    events = [
        json.loads(line)
        for line in acc.cli("audit", "--project", "future-only", "--json").stdout.splitlines()
    ]
    assert "project:claim" in {e["tag"] for e in events}


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_an_admin_allowance_merges_upstream_files_after_the_local_ones(proxy, tmp_path, accounts):
    acc = accounts(proxy)
    try:
        acc.cli("project", "allow-upstream", "acme-lib")
        wait_until(lambda: len(listed(proxy, "acme-lib")) == 4, 10)
        files = [f["filename"] for f in page(proxy, "acme-lib")["files"]]
        assert files[:2] == ["acme_lib-1.0-py3-none-any.whl", "acme_lib-1.0.tar.gz"]  # local first
        assert page(proxy, "acme-lib")["versions"] == ["1.0", "99.0"]
        pip("download", "--no-deps", "--index-url", proxy.index_url, "-d", str(tmp_path), "acme-lib==99.0")
        assert downloaded(tmp_path) == {"acme_lib-99.0-py3-none-any.whl"}
    finally:
        acc.cli("project", "allow-upstream", "acme-lib", "--revoke")
    wait_until(lambda: len(listed(proxy, "acme-lib")) == 2, 10)
    tags = [
        json.loads(line)["tag"]
        for line in acc.cli("audit", "--project", "acme-lib", "--json").stdout.splitlines()
    ]
    assert "project:upstream:allow" in tags and "project:upstream:revoke" in tags


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_the_upstream_publishing_a_local_name_is_recorded_once(proxy, accounts):
    acc = accounts(proxy)

    def shadowed() -> list[dict]:
        lines = acc.cli("audit", "--project", "acme-lib", "--json").stdout.splitlines()
        return [e for e in map(json.loads, lines) if e["tag"] == "upstream:shadowed"]

    wait_until(lambda: shadowed(), 20)
    assert len(shadowed()) == 1
    assert shadowed()[0]["details"]["via"] == "server"


# -- an upstream the tests control ---------------------------------------------------------------


def _wheel(dists, project: str, version: str) -> Path:
    return next(p for p in dists.files[project] if p.name.endswith(".whl") and f"-{version}-" in p.name)


@pytest.fixture(scope="module")
def fake(dists):
    """alpha 1.0 (old) and 2.0 (brand new); beta-pkg published with a wrong sha256;
    future-only (old), for the one test that fetches it."""
    fake = FakeUpstream()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    fake.add("alpha", _wheel(dists, "alpha", "1.0"), uploaded=old)
    fake.add("alpha", _wheel(dists, "alpha", "2.0"))
    fake.add("beta-pkg", _wheel(dists, "beta-pkg", "0.1"), sha256="0" * 64, uploaded=old)
    fake.add("future-only", _wheel(dists, "future-only", "1.0"), uploaded=old)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, fake):
    """A privindex in front of the fake, hiding upstream files younger than a day."""
    base = tmp_path_factory.mktemp("guarded")
    (base / "store").mkdir()
    server = start_server(
        base / "store", base / "data", "--upstream", fake.url, env={"PRIVINDEX_UPSTREAM_MIN_AGE": "86400"}
    )
    yield server
    server.stop()


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_min_age_hides_freshly_published_upstream_files(guarded, tmp_path):
    assert set(listed(guarded, "alpha")) == {"alpha-1.0-py3-none-any.whl"}
    assert page(guarded, "alpha")["versions"] == ["1.0"]
    pip("download", "--no-deps", "--index-url", guarded.index_url, "-d", str(tmp_path), "alpha")
    assert downloaded(tmp_path) == {"alpha-1.0-py3-none-any.whl"}


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_upstream_bytes_that_do_not_match_their_hash_are_refused_and_not_cached(guarded, fake, tmp_path):
    proc = pip(
        "download",
        "--no-deps",
        "--index-url",
        guarded.index_url,
        "-d",
        str(tmp_path),
        "beta-pkg",
        check=False,
    )
    assert proc.returncode != 0
    assert not (tmp_path / "beta_pkg-0.1-py3-none-any.whl").exists()
    url = f"{guarded.url}/packages/.upstream/beta-pkg/beta_pkg-0.1-py3-none-any.whl"
    assert requests.get(url, timeout=30).status_code == 502
    assert "beta_pkg" not in privindex_cli(guarded, "cache", "list").stdout
    assert fake.requests["/files/beta_pkg-0.1-py3-none-any.whl"] >= 2  # never served from a cache
    assert "but its page published" in guarded.log()


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_a_large_upstream_file_with_bad_bytes_is_cut_short_never_delivered_whole(guarded, fake, tmp_path):
    # several chunks: the answer has started before the digest can be checked, so the
    # client must get a broken transfer (fewer bytes than announced), never the whole file
    big = tmp_path / "bigpkg-1.0-py3-none-any.whl"
    big.write_bytes(os.urandom(900 * 1024))
    fake.add("bigpkg", big, sha256="1" * 64, uploaded=datetime(2020, 1, 1, tzinfo=UTC))
    url = f"{guarded.url}/packages/.upstream/bigpkg/{big.name}"
    assert big.name in listed(guarded, "bigpkg")
    received = bytearray()
    with (
        pytest.raises(requests.exceptions.RequestException),
        requests.get(url, stream=True, timeout=30) as resp,
    ):
        assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == 900 * 1024
        for chunk in resp.iter_content(64 * 1024):
            received += chunk
    assert len(received) < 900 * 1024
    proc = pip(
        "download",
        "--no-deps",
        "--index-url",
        guarded.index_url,
        "-d",
        str(tmp_path / "dl"),
        "bigpkg",
        check=False,
    )
    assert proc.returncode != 0 and not (tmp_path / "dl" / big.name).exists()
    assert "bigpkg" not in privindex_cli(guarded, "cache", "list").stdout


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_upstream_down_serves_the_cache_and_offline_makes_no_connections(tmp_path, dists):
    fake = FakeUpstream()
    fake.add("alpha", _wheel(dists, "alpha", "2.0"))
    fake.start()
    store, data = tmp_path / "store", tmp_path / "data"
    store.mkdir()
    server = start_server(store, data, "--upstream", fake.url, env={"PRIVINDEX_UPSTREAM_PAGE_TTL": "0"})
    try:
        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "one"), "alpha")
        fake.stop()  # connection refused from now on
        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "two"), "alpha")
        assert downloaded(tmp_path / "two") == {"alpha-2.0-py3-none-any.whl"}
        assert "serving alpha from a page cached" in server.log()
        never = requests.get(f"{server.index_url}never-fetched/", timeout=30)
        assert never.status_code == 502 and "cannot reach the upstream" in never.text
    finally:
        server.stop()
    fake = FakeUpstream().start()  # counts what an offline server asks: nothing
    server = start_server(store, data, "--upstream", fake.url, env={"PRIVINDEX_UPSTREAM_OFFLINE": "true"})
    try:
        assert any("offline" in line for line in server.banner)
        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "three"), "alpha")
        assert downloaded(tmp_path / "three") == {"alpha-2.0-py3-none-any.whl"}
        assert requests.get(f"{server.index_url}never-fetched/", timeout=30).status_code == 404
    finally:
        server.stop()
        fake.stop()
    assert sum(fake.requests.values()) == 0


@pytest.mark.app_settings(upstream_url="http://127.0.0.1:9/simple/", upstream_offline=True)
def test_the_project_page_says_where_a_name_comes_from(app, client):
    from privindex.ops import audit
    from privindex.upstream import source_rules

    source_rules.claim("claimed-here", audit.CLI)
    source_rules.set_upstream_allowed("merged-here", True, audit.CLI)
    app.extensions["privindex"].sources.reload()
    assert (
        "Local: clients get only the files of this index"
        in client.get("/projects/claimed-here?tab=history").text
    )
    assert (
        "the upstream's files are listed after the local ones"
        in client.get("/projects/merged-here?tab=history").text
    )
    assert client.get("/projects/never-seen").status_code == 404
