"""The rules of the services whose own test modules are `slow` (they need twine, pip, a
real server process or a crash to make their point), checked in-process so the fast loop
covers every service: uploads, tokens and users from the CLI, the published digests, the
store's folder rules, backup and check. The slow modules stay the contract with the real
clients; these say quickly that the rules still hold."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
import testdb
from conftest import populate
from helpers import files, new_token, post_file
from packaging.utils import canonicalize_name
from wheels import make_wheel

PASSWORD = "correct horse battery"
NO_2FA = pytest.mark.app_settings(require_2fa=False)


def audit_tags(runner, *args: str) -> list[str]:
    return [line.split("\t")[1] for line in runner.invoke("audit", *args).stdout.splitlines()]


def refresh(app) -> None:
    """What a server's store watcher does within a second: see the disk and the database."""
    app.extensions["privindex"].index.refresh()


@NO_2FA
def test_an_upload_is_listed_with_its_sha256_and_refusals_change_nothing(app, client, runner, tmp_path):
    runner.add_user("cora", password=PASSWORD)
    runner.add_user("dave", password=PASSWORD)
    cora, dave = new_token(runner, "cora"), new_token(runner, "dave")
    wheel = make_wheel(tmp_path, "fast-proj", "1.0", payload=os.urandom(2000))
    assert post_file(client, cora, wheel).status_code == 200
    published = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert files(client, "fast-proj")[wheel.name]["hashes"] == {"sha256": published}
    assert post_file(client, cora, wheel).status_code == 200  # identical bytes again: accepted, no change

    other = make_wheel(tmp_path / "other", "fast-proj", "1.0", payload=b"other bytes")
    refused = post_file(client, cora, other)
    assert refused.status_code in (400, 409) and "Traceback" not in refused.text
    assert post_file(client, dave, make_wheel(tmp_path, "fast-proj", "2.0")).status_code == 403
    assert post_file(client, "pidx_" + "x" * 40, make_wheel(tmp_path, "fast-proj", "3.0")).status_code == 403
    assert client.post("/legacy/", data={}).status_code == 401
    assert list(files(client, "fast-proj")) == [wheel.name]
    assert files(client, "fast-proj")[wheel.name]["hashes"] == {"sha256": published}
    store = app.extensions["privindex"].settings.store
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == [wheel.name]  # no temp file left
    tags = audit_tags(runner, "--project", "fast-proj")
    assert "file:add" in tags and "project:create" in tags and "upload:refused" in tags


@NO_2FA
def test_a_revoked_token_or_a_disabled_user_stops_uploading_at_once(client, runner, tmp_path):
    runner.add_user("erin", password=PASSWORD)
    token = new_token(runner, "erin")
    listing = runner.invoke("token", "list", "erin").stdout
    token_id, _user, prefix = listing.splitlines()[1].split("\t")[:3]
    assert token not in listing and token.startswith(prefix.rstrip("…"))  # the prefix, never the secret
    assert runner.invoke("token", "revoke", token_id).exit_code == 0
    assert post_file(client, token, make_wheel(tmp_path, "erin-proj", "1.0")).status_code == 403

    second = new_token(runner, "erin")
    assert runner.invoke("user", "disable", "erin").exit_code == 0
    assert post_file(client, second, make_wheel(tmp_path, "erin-proj", "1.0")).status_code == 403
    assert "disabled" in runner.invoke("user", "list").stdout
    assert files(client, "erin-proj") == {}
    assert {"token:revoke", "user:disable"} <= set(audit_tags(runner, "--user", "erin"))


@NO_2FA
def test_bytes_changed_on_disk_are_withdrawn_until_an_admin_accepts_them(app, client, runner, tmp_path):
    runner.add_user("fay", password=PASSWORD)
    wheel = make_wheel(tmp_path, "disk-proj", "1.0", payload=os.urandom(2000))
    assert post_file(client, new_token(runner, "fay"), wheel).status_code == 200
    stored = app.extensions["privindex"].settings.store / "disk-proj" / wheel.name
    rebuilt = make_wheel(tmp_path / "rebuilt", "disk-proj", "1.0", payload=b"rebuilt by hand")
    shutil.copy(rebuilt, stored)  # the same name, other bytes, put there by hand
    refresh(app)
    assert files(client, "disk-proj") == {}
    resp = client.get(f"/packages/disk-proj/{wheel.name}")
    assert resp.status_code == 409 and "withdrawn" in resp.text
    check = runner.invoke("check")
    assert "privindex file accept" in check.stdout
    assert (
        check.exit_code == 1
        and f"disk-proj/{wheel.name}: changed on disk after it was published" in check.stdout
    )

    assert runner.invoke("file", "accept", wheel.name).exit_code == 0
    refresh(app)
    now = hashlib.sha256(stored.read_bytes()).hexdigest()
    assert files(client, "disk-proj")[wheel.name]["hashes"] == {"sha256": now}
    assert runner.invoke("check").exit_code == 0
    assert "file:changed-on-disk" in audit_tags(runner, "--project", "disk-proj")


def test_hidden_temporary_and_escaping_files_are_not_served(make_app, dists, tmp_path):
    store = tmp_path / "app" / "store"
    populate(store, dists)
    alpha = dists.one("alpha-1.0-py3-none-any.whl")
    shutil.copy(alpha, store / ".hidden-1.0-py3-none-any.whl")
    (store / "notapackage.txt").write_text("hello")
    (store / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(alpha, outside / "escape-1.0-py3-none-any.whl")
    os.symlink(outside / "escape-1.0-py3-none-any.whl", store / "escape-1.0-py3-none-any.whl")
    client = make_app().test_client()
    names = client.get("/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json
    listed = {canonicalize_name(p["name"]) for p in names["projects"]}
    assert {"alpha", "beta-pkg", "handmade"} <= listed
    assert not listed & {"hidden", "broken", "escape", "notapackage"}
    assert client.get("/packages/escape-1.0-py3-none-any.whl").status_code == 404


@testdb.sqlite_only  # on PostgreSQL, backup says to use pg_dump (test_maintenance)
def test_backup_copies_what_check_then_finds_whole(app, runner, dists, tmp_path):
    store = app.extensions["privindex"].settings.store
    populate(store, dists)
    refresh(app)
    dest = tmp_path / "backup"
    result = runner.invoke("backup", str(dest))
    assert result.exit_code == 0, result.output
    copied = sorted(p.name for p in (dest / "packages").rglob("*") if p.is_file())
    assert copied == sorted(p.name for p in dists.all())
    assert (dest / "data").is_dir()
    (store / "handmade-0.3.tar.gz").unlink()
    check = runner.invoke("check")
    assert check.exit_code == 1 and "handmade-0.3.tar.gz: missing from the store" in check.stdout
