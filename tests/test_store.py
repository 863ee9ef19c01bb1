"""The package folder as users treat it: files dropped in, removed, replaced by hand."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import pytest
import requests
from conftest import pip, privindex_cli, wait_until
from helpers import V1_JSON, listed, listed_hashes


@pytest.mark.slow  # a server of its own
def test_file_dropped_in_appears_and_installs_without_restart(fresh_server, dists, tmp_path):
    server = fresh_server()
    wheel = dists.one("alpha-1.0-py3-none-any.whl")
    (server.store / "alpha" / wheel.name).unlink()
    wait_until(lambda: wheel.name not in set(listed(server, "alpha")), 2.5)

    newdir = server.store / "late"
    newdir.mkdir()
    shutil.copy(wheel, newdir / wheel.name)
    took = wait_until(lambda: wheel.name in set(listed(server, "alpha")), 2.5)
    assert took < 2.0
    pip(
        "install", "--no-deps", "--index-url", server.index_url, "--target", str(tmp_path / "t"), "alpha==1.0"
    )
    assert (tmp_path / "t" / "alpha-1.0.dist-info").is_dir()


@pytest.mark.slow  # a server of its own
def test_deleted_project_disappears(fresh_server):
    server = fresh_server()
    shutil.rmtree(server.store / "alpha")
    wait_until(lambda: requests.get(f"{server.index_url}alpha/", timeout=10).status_code == 404, 2.5)
    root = requests.get(server.index_url, headers={"Accept": V1_JSON}, timeout=10).json()
    assert "alpha" not in {p["name"] for p in root["projects"]}


@pytest.mark.slow  # a server of its own
def test_hidden_temporary_and_invalid_files_are_not_served(fresh_server, dists):
    server = fresh_server()
    wheel = dists.one("alpha-2.0-py3-none-any.whl")
    shutil.copy(wheel, server.store / ".hidden-9.0-py3-none-any.whl")
    shutil.copy(wheel, server.store / "gamma-1.0-py3-none-any.whl.part")
    (server.store / "not a package.txt").write_text("hello")
    (server.store / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    shutil.copy(wheel, server.store / "delta-1.0-py3-none-any.whl")  # valid, as a marker
    wait_until(lambda: "delta-1.0-py3-none-any.whl" in set(listed(server, "delta")), 3)
    time.sleep(1.5)  # give the watcher time to settle and look at everything again
    root = requests.get(server.index_url, headers={"Accept": V1_JSON}, timeout=10).json()
    names = {p["name"] for p in root["projects"]}
    assert not names & {"hidden", "gamma", "broken"}
    log = server.log()
    assert log.count("skipping broken-1.0-py3-none-any.whl") == 1
    assert log.count("skipping not a package.txt") == 1
    assert "hidden" not in log and ".part" not in log


@pytest.mark.slow  # a server of its own
def test_symlinks_out_of_the_store_are_not_followed(fresh_server, dists, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(dists.one("alpha-2.0-py3-none-any.whl"), outside / "escape-1.0-py3-none-any.whl")
    store = tmp_path / "store"
    store.mkdir()
    os.symlink(outside / "escape-1.0-py3-none-any.whl", store / "escape-1.0-py3-none-any.whl")
    os.symlink(outside, store / "escaped-dir")
    inside = store / "real"
    inside.mkdir()
    shutil.copy(dists.one("alpha-1.0-py3-none-any.whl"), inside / "alpha-1.0-py3-none-any.whl")
    os.symlink(inside / "alpha-1.0-py3-none-any.whl", store / "alpha-1.0-py3-none-any.whl")
    server = fresh_server(populated=False)
    assert requests.get(f"{server.index_url}escape/", timeout=10).status_code == 404
    assert set(listed(server, "alpha")) == {"alpha-1.0-py3-none-any.whl"}  # an inside link is fine
    assert "symlink leads outside the store" in server.log()


@pytest.mark.slow  # a server of its own
def test_restart_does_not_rehash_but_a_file_changed_by_hand_is_withdrawn_until_accepted(fresh_server, dists):
    server = fresh_server()
    assert any("indexing the store: read" in line for line in server.log().splitlines())
    published = {
        f["filename"]: f["hashes"]["sha256"]
        for f in requests.get(f"{server.index_url}alpha/", headers={"Accept": V1_JSON}, timeout=10).json()[
            "files"
        ]
    }
    server.stop()
    log_before = len(server.log())

    second = fresh_server()
    assert "indexing the store" not in second.log()[log_before:]
    second.stop()
    log_before = len(second.log())

    # replace a published file by hand with other content: the next start reads just that
    # one, and withdraws it rather than publish a new hash under the old name
    target = second.store / "alpha" / "alpha-2.0-py3-none-any.whl"
    shutil.copy(dists.one("alpha-1.0-py3-none-any.whl"), target)
    os.utime(target, (time.time() - 10, time.time() - 10))
    third = fresh_server()
    assert "read 1/1 new or changed files" in third.log()[log_before:]
    assert "alpha-2.0-py3-none-any.whl changed on disk after it was published" in third.log()
    assert set(listed(third, "alpha")) == set(published) - {target.name}
    resp = requests.get(f"{third.url}/packages/alpha/{target.name}", timeout=10)
    assert resp.status_code == 409 and "withdrawn" in resp.text
    assert published[target.name] in resp.text
    check = privindex_cli(third, "check", "--quick", check=False)
    assert (
        check.returncode == 1
        and f"alpha/{target.name}: changed on disk after it was published" in check.stdout
    )

    # the admin accepts the new bytes: listed again under their own hash, audited
    new_hash = hashlib.sha256(target.read_bytes()).hexdigest()
    privindex_cli(third, "file", "accept", target.name)
    wait_until(lambda: target.name in set(listed(third, "alpha")), 5)
    assert listed_hashes(third, "alpha")[target.name] == new_hash
    assert (
        requests.get(f"{third.url}/packages/alpha/{target.name}", timeout=10).content == target.read_bytes()
    )
    events = [json.loads(line) for line in privindex_cli(third, "audit", "--json").stdout.splitlines()]
    assert [(e["tag"], e["subject"]) for e in events] == [
        ("file:replace", target.name),
        ("file:changed-on-disk", target.name),
    ]
    assert events[0]["details"]["old_sha256"] == published[target.name]
    assert events[0]["details"]["sha256"] == new_hash
    assert privindex_cli(third, "check", check=False).returncode == 0


def test_yanked_files_are_marked_in_both_formats(tmp_path, dists):
    """Yank state lives in the database; setting it is the web UI's job, reading it is ours."""
    from conftest import populate

    from privindex.app import create_app
    from privindex.config import Settings
    from privindex.packages.index import save_yank

    populate(tmp_path / "store", dists)
    app = create_app(Settings(store=tmp_path / "store", data_dir=tmp_path / "data"))
    index = app.extensions["privindex"].index
    with app.app_context():  # the app's own database, as inside a request
        for path, reason in (
            ("alpha/alpha-1.0-py3-none-any.whl", "broken <build>"),
            ("alpha/alpha-1.0.tar.gz", ""),
        ):
            save_yank(path, True, reason)  # what files.set_yanked does, without an owner to act
            index.set_yanked(path, True, reason)
    client = app.test_client()
    html = client.get("/simple/alpha/", headers={"Accept": "text/html"}).text
    assert 'data-yanked="broken &lt;build&gt;">alpha-1.0-py3-none-any.whl' in html
    assert 'data-yanked="">alpha-1.0.tar.gz' in html
    assert "data-yanked" not in next(line for line in html.splitlines() if "alpha-2.0.tar.gz" in line)
    files = {
        f["filename"]: f for f in client.get("/simple/alpha/", headers={"Accept": V1_JSON}).json["files"]
    }
    assert files["alpha-1.0-py3-none-any.whl"]["yanked"] == "broken <build>"
    assert files["alpha-1.0.tar.gz"]["yanked"] is True
    assert files["alpha-2.0.tar.gz"]["yanked"] is False
    # the yank state is kept in the database: a restart still shows it
    app = create_app(Settings(store=tmp_path / "store", data_dir=tmp_path / "data"))
    files = {
        f["filename"]: f
        for f in app.test_client().get("/simple/alpha/", headers={"Accept": V1_JSON}).json["files"]
    }
    assert files["alpha-1.0-py3-none-any.whl"]["yanked"] == "broken <build>"
