"""The JSON API tools read (/pypi/<name>/json), driven by a real consumer: the `pypi-json`
client from the public index, pointed at a real `privindex serve`, or at the app in-process
(conftest's AppServer) where the point is the answers, not the process."""

from __future__ import annotations

import hashlib

import pytest
import requests
from conftest import app_server, populate, privindex_cli, start_server, twine, wait_until
from fake_upstream import FakeUpstream
from packaging.requirements import InvalidRequirement
from pypi_json import PyPIJSON
from wheels import make_wheel


def consumer(server, token: str | None = None) -> PyPIJSON:
    client = PyPIJSON(endpoint=f"{server.url}/pypi")
    if token:
        client.endpoint.session.auth = ("__token__", token)
    return client


def test_a_local_project_reads_like_the_public_index(read_server, dists):
    with consumer(read_server) as client:
        alpha = client.get_metadata("alpha")
        assert alpha.name == "alpha" and str(alpha.version) == "2.0"
        assert alpha.info["summary"] == "A tiny test project"
        assert alpha.info["requires_python"] == ">=3.9"
        assert alpha.info["yanked"] is False
        assert str(alpha.get_latest_version()) == "2.0"
        on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dists.files["alpha"]}
        releases = alpha.get_releases_with_digests()
        assert sorted(releases) == ["1.0", "2.0"]
        for files in releases.values():
            for entry in files:  # every URL downloads the bytes its digest names
                body = client.download_file(entry["url"]).content
                assert hashlib.sha256(body).hexdigest() == entry["digest"]
                assert on_disk[entry["url"].rsplit("/", 1)[1]] == entry["digest"]
        assert {f["filename"] for f in alpha.urls} == {n for n in on_disk if "-2.0" in n}
        wheel = next(f for f in alpha.urls if f["packagetype"] == "bdist_wheel")
        assert wheel["python_version"] == "py3" and wheel["requires_python"] == ">=3.9"
        assert wheel["upload_time_iso_8601"].endswith("Z") and wheel["size"] > 0
        assert alpha.get_wheel_tag_mapping()  # the consumer reads the wheel tags from urls

        beta = client.get_metadata("Beta_Pkg", "0.1")  # redirected to the normalized name
        assert beta.info["name"] == "Beta_Pkg" and beta.info["requires_dist"] == ["alpha>=2.0"]
        assert beta.releases is None  # the version answer lists only its own files, as upstream's does
        assert {f["filename"] for f in beta.urls} == {p.name for p in dists.files["beta-pkg"]}

        with pytest.raises(InvalidRequirement):
            client.get_metadata("alpha", "3.0")
        with pytest.raises(InvalidRequirement):
            client.get_metadata("no-such-project")
    too_long = requests.get(f"{read_server.url}/pypi/alpha/{'9' * 5000}/json", timeout=10)
    assert too_long.status_code == 404  # past Python's digit limit: no such version, not a 500


def test_an_sdist_only_release_has_its_metadata_read_from_the_sdist(read_server):
    with consumer(read_server) as client:
        handmade = client.get_metadata("handmade")
    assert handmade.info["version"] == "0.3" and handmade.info["requires_python"] == ">=3.8,<4"
    assert [f["packagetype"] for f in handmade.urls] == ["sdist"]
    assert handmade.urls[0]["python_version"] == "source"


# live: the server process's store watcher is what follows the CLI's yank
def test_answers_follow_uploads_and_yanks_and_revalidate(fresh_server, accounts, tmp_path):
    server = fresh_server(env={"PRIVINDEX_REQUIRE_2FA": "false"})
    people = accounts(server)
    people.user("ann")
    token = people.token("ann")
    url = f"{server.url}/pypi/gamma/json"
    assert requests.get(url, timeout=10).status_code == 404
    first = make_wheel(
        tmp_path, "gamma", "1.0", headers="Summary: first\nKeywords: a,b\n", description="Hello"
    )
    assert twine(server.url, token, first).returncode == 0
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    assert resp.json()["info"]["description"].strip() == "Hello"
    assert resp.json()["info"]["keywords"] == "a,b"
    etag = resp.headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304

    assert (
        twine(server.url, token, make_wheel(tmp_path, "gamma", "2.0", headers="Summary: second\n")).returncode
        == 0
    )
    with consumer(server) as client:
        gamma = client.get_metadata("gamma")
        assert gamma.info["version"] == "2.0" and gamma.info["summary"] == "second"
        privindex_cli(server, "project", "yank", "gamma", "2.0", "--reason", "broken build")
        wait_until(
            lambda: client.get_metadata("gamma").releases["2.0"][0]["yanked"], 10
        )  # the server follows
        gamma = client.get_metadata("gamma")  # the latest release not yanked is what info shows
        assert gamma.info["version"] == "1.0" and gamma.info["summary"] == "first"
        (yanked,) = gamma.releases["2.0"]
        assert yanked["yanked"] is True and yanked["yanked_reason"] == "broken build"
        pinned = client.get_metadata("gamma", "2.0")
        assert pinned.info["yanked"] is True and pinned.info["yanked_reason"] == "broken build"
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 200


def test_a_private_index_answers_only_with_a_token(tmp_path, dists, accounts):
    populate(tmp_path / "store", dists)
    with app_server(tmp_path / "store", tmp_path / "data", read_access="token") as server:
        people = accounts(server)
        people.user("ann")
        token = people.token("ann", "--read-only")
        with consumer(server) as client, pytest.raises(requests.HTTPError, match="401"):
            client.get_metadata("alpha")
        resp = requests.get(f"{server.url}/pypi/no-such-name/json", timeout=10)
        assert resp.status_code == 401  # a stranger learns nothing, not even which names exist
        with consumer(server, token) as client:
            assert str(client.get_metadata("alpha").version) == "2.0"


@pytest.fixture
def fake():
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


def test_an_upstream_only_name_is_answered_from_its_cached_page(tmp_path, fake):
    wheel = make_wheel(tmp_path / "up", "remote-lib", "1.4", requires_python=">=3.10")
    fake.add("remote-lib", wheel)
    with app_server(tmp_path / "store", tmp_path / "data", upstream_url=fake.url) as server:
        with consumer(server) as client:
            remote = client.get_metadata("remote-lib")
            again = client.get_metadata("remote-lib", "1.4")
            (entry,) = remote.releases["1.4"]
            body = client.download_file(entry["url"]).content
        assert remote.info["name"] == "remote-lib" and remote.info["version"] == "1.4"
        assert remote.info["requires_python"] is None  # the page given here does not say
        assert remote.info["summary"] is None and remote.info["description"] == ""  # pages carry no metadata
        assert entry["digests"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert hashlib.sha256(body).hexdigest() == entry["digests"]["sha256"]
        assert again.urls == remote.urls
        assert fake.requests["/simple/remote-lib/"] == 1  # one page fetch for every answer


# live: the server process's watcher reloads the source rules the CLI changed
def test_a_merged_name_lists_local_and_allowed_upstream_releases(tmp_path, fake, accounts):
    make_wheel(tmp_path / "store", "shared-lib", "1.0", headers="Summary: ours\n")
    theirs = make_wheel(tmp_path / "up", "shared-lib", "2.0")
    fake.add("shared-lib", theirs)
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", fake.url)
    try:
        with consumer(server) as client:
            local = client.get_metadata("shared-lib")
            assert sorted(local.releases) == ["1.0"] and local.info["summary"] == "ours"  # local wins
            accounts(server).cli("project", "allow-upstream", "shared-lib")
            wait_until(lambda: "2.0" in client.get_metadata("shared-lib").releases, 10)
            merged = client.get_metadata("shared-lib")
            assert (
                merged.info["version"] == "2.0" and merged.info["summary"] is None
            )  # upstream's: no metadata
            assert client.get_metadata("shared-lib", "1.0").info["summary"] == "ours"
            (entry,) = merged.releases["2.0"]
            body = client.download_file(entry["url"]).content
        assert hashlib.sha256(body).hexdigest() == entry["digests"]["sha256"]
        assert body == theirs.read_bytes()
    finally:
        server.stop()


def test_answers_are_rendered_once_per_change(app, client, monkeypatch):
    from privindex.api import json_api

    services = app.extensions["privindex"]
    make_wheel(services.store.root, "delta", "1.0")
    services.index.load()
    rendered = []
    real = json_api.releases.json_info
    monkeypatch.setattr(json_api.releases, "json_info", lambda raw: rendered.append(1) or real(raw))
    for _ in range(3):
        assert client.get("/pypi/delta/json").json["info"]["version"] == "1.0"
    assert len(rendered) == 1
    make_wheel(services.store.root, "delta", "2.0")
    services.index.load()
    assert client.get("/pypi/delta/json").json["info"]["version"] == "2.0"
    assert len(rendered) == 2
