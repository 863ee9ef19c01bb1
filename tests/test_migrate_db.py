"""`privindex migrate-db --to postgresql://...`: a real SQLite installation (a user with TOTP,
a token, an upload through twine, a yank, the audit trail) copied to PostgreSQL, then
served from there with the same store and data dir: everything is where it was."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
import requests
import testdb
from conftest import privindex_cli, start_server, twine
from helpers import listed
from webclient import WebClient, user_with_totp
from wheels import make_wheel

pytestmark = pytest.mark.skipif(
    not testdb.ON_POSTGRES and os.environ.get("CI") != "true",
    reason="needs TEST_PRIVINDEX_DATABASE_URL (PostgreSQL)",
)
if os.environ.get("CI") == "true" and not testdb.ON_POSTGRES:
    pytestmark = pytest.mark.skip(reason="the PostgreSQL run of .ci/run covers this")
pytestmark = [pytestmark, pytest.mark.slow]  # servers on SQLite and PostgreSQL, the real CLI

SQLITE = {"PRIVINDEX_DATABASE_URL": ""}  # overrides the test database: this installation is SQLite's


def test_an_sqlite_installation_moves_to_postgresql_whole(tmp_path):
    store, data = tmp_path / "store", tmp_path / "data"
    old = start_server(store, data, env=SQLITE)
    web, totp, _codes, _at = user_with_totp(old, "alice")
    token = privindex_cli(old, "token", "create", "alice", "--description", "ci").stdout.strip()
    first = make_wheel(tmp_path / "dist", "moving-proj", "1.0")
    assert twine(old.url, token, first).returncode == 0
    web.post(f"/projects/moving-proj/files/{first.name}/yank", {"reason": "moved on"})
    before = privindex_cli(old, "audit", "--json").stdout.splitlines()
    assert len(before) >= 4  # user add, totp, token, upload, yank...
    old.stop()
    assert (data / "privindex.sqlite3").exists()

    url = testdb.url_for(tmp_path / "pg")  # a new, empty database
    moved = privindex_cli(old, "migrate-db", "--to", url, check=False)
    assert moved.returncode == 0, moved.stderr
    assert "user 1/1" in moved.stderr and f"audit_event {len(before)}/{len(before)}" in moved.stderr
    assert "the row counts match" in moved.stderr and "check: all 1 files match" in moved.stderr

    # a second run would overwrite: refused, with what to do, and no traceback
    again = privindex_cli(old, "migrate-db", "--to", url, check=False)
    assert again.returncode == 1 and "is not empty" in again.stderr and "new database" in again.stderr
    assert "Traceback" not in again.stderr

    new = start_server(store, data, env={"PRIVINDEX_DATABASE_URL": url})
    try:
        # the user signs in with password and TOTP (the code step used before stays used)
        signed = WebClient(new.url)
        resp = signed.login("alice", "correct horse battery", totp=totp, at=time.time() + 30)
        assert resp.status_code == 200 and "/login" not in resp.url, resp.url
        # the file is listed with its hash and its yank
        entry = listed(new, "moving-proj")[first.name]
        assert entry["hashes"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
        assert entry["yanked"] == "moved on"
        # the token uploads; new rows get new ids (the sequences were moved past the copied ones)
        second = make_wheel(tmp_path / "dist", "moving-proj", "2.0")
        assert twine(new.url, token, second).returncode == 0
        assert second.name in listed(new, "moving-proj")
        assert privindex_cli(new, "token", "create", "alice").returncode == 0
        after = [json.loads(line) for line in privindex_cli(new, "audit", "--json").stdout.splitlines()]
        # the audit trail came whole, and goes on (the upload and the new token added to it)
        old_events = [json.loads(line) for line in before]
        assert all(e in after for e in old_events)
        assert len(after) >= len(before) + 2
        assert {e["tag"] for e in old_events} >= {"file:add", "file:yank", "token:create"}
        # and what the server wrote went to PostgreSQL, not the old SQLite file
        assert testdb.query(tmp_path / "pg", "SELECT count(*) FROM dist_file") == [(2,)]
        download = requests.get(f"{new.url}/packages/{entry['url'].split('/packages/')[1]}", timeout=10)
        assert download.content == first.read_bytes()
        assert privindex_cli(new, "check", check=False).returncode == 0
    finally:
        new.stop()
