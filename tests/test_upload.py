"""twine upload with scoped API tokens, against a live server: what lands, what is refused
(with the status and the message twine shows), what a refusal leaves behind (nothing but an
audit event), concurrency, overwrite, and the audit trail with no secret in it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import testdb
from conftest import Accounts, assert_no_secrets, audit_json, pip, start_server, twine, wait_until
from helpers import listed_hashes, store_files
from wheels import make_wheel, upload

pytestmark = pytest.mark.slow  # the point is twine (and pip) against a real server

# These tests are about tokens, scopes and roles; they run with the second-factor policy
# off so users can be made with the CLI alone. The policy has its own tests (test_web.py).
NO_2FA = {"PRIVINDEX_REQUIRE_2FA": "false"}


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def db(server):
    """A connection of our own to the server's database (SQLite's WAL, or PostgreSQL)."""
    with testdb.connect(server.data_dir) as conn:  # commit on success
        yield conn


def db_state(server) -> dict[str, int]:
    with db(server) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("project", "project_role", "dist_file", "api_token", "user")
        }


def audit_rows_after(server, last_id: int) -> list[dict]:
    with db(server) as conn:
        rows = conn.execute(
            "SELECT tag, project, details FROM audit_event WHERE id > ? ORDER BY id", (last_id,)
        ).fetchall()
    return [{"tag": tag, "project": project, **json.loads(details)} for tag, project, details in rows]


def last_audit_id(server) -> int:
    with db(server) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM audit_event").fetchone()[0]


@contextmanager
def leaves_nothing_behind(server, refusals: int, reason: str):
    """The block's uploads are all refused: no file (not even a temp file), no project, role,
    file or token row, and exactly one upload:refused audit event each, giving the reason."""
    files, state, last_id = store_files(server), db_state(server), last_audit_id(server)
    yield
    # the temp file is deleted when the request ends, which may be just after the answer
    wait_until(lambda: store_files(server) == files, 5)
    assert db_state(server) == state
    # a token's first use from this address is told whatever the upload's fate (token:new-address)
    events = [e for e in audit_rows_after(server, last_id) if e["tag"] != "token:new-address"]
    assert [e["tag"] for e in events] == ["upload:refused"] * refusals
    assert all(reason in e["reason"] for e in events), events


def assert_refused(
    server, path: Path, secret: str, status: int, message: str, username: str = "__token__", **fields
) -> None:
    """twine shows the status and the message; the raw answer has that status and reason."""
    with leaves_nothing_behind(server, refusals=2, reason=message):
        proc = twine(server.url, secret, path, username=username)
        assert proc.returncode != 0
        assert f"HTTPError: {status} " in proc.output, proc.output
        assert message in proc.output, proc.output
        resp = upload(server.url, None, path, auth=(username, secret), **fields)
        assert resp.status_code == status
        assert message in resp.reason
        assert message in resp.text
    assert path.name not in listed_hashes(server, path.name.split("-")[0])


def assert_clean_log(server) -> None:
    """No lock errors, no exceptions, and no 5xx in the access log lines."""
    log = server.log()
    assert "database is locked" not in log
    assert "Traceback" not in log and "Exception on" not in log
    assert not re.search(r'"(GET|POST|HEAD) [^"]*" 5\d\d ', log)


def project_table(accounts: Accounts) -> dict[str, tuple[str, str, str]]:
    """`privindex project list` as project -> (files, owners, maintainers)."""
    lines = accounts.cli("project", "list").stdout.splitlines()
    assert lines[0] == "project\tfiles\towners\tmaintainers"
    return {
        name: (files, owners, maintainers)
        for name, files, owners, maintainers in (line.split("\t") for line in lines[1:])
    }


# -- one server for the module ----------------------------------------------------------------------


class World:
    def __init__(self, server, accounts: Accounts, wheels: Path):
        self.server, self.accounts, self.wheels = server, accounts, wheels
        accounts.user("alice")
        accounts.user("bob")
        accounts.user("root", admin=True)
        self.alice = accounts.token("alice", "--description", "alice's upload token")
        self.bob = accounts.token("bob")
        self.root = accounts.token("root")

    def wheel(self, name: str, version: str = "1.0", **kwargs) -> Path:
        folder = self.wheels / f"{name}-{version}-{time.monotonic_ns()}"
        return make_wheel(folder, name, version, **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("upload")
    (base / "store").mkdir()
    server = start_server(
        base / "store",
        base / "data",
        env={**NO_2FA, "PRIVINDEX_MAX_UPLOAD_MB": "1", "PRIVINDEX_RESCAN_INTERVAL": "0.2"},
    )
    yield World(server, Accounts(server.store, server.data_dir, server.env), base / "wheels")
    server.stop()


# -- accepted uploads ---------------------------------------------------------------------------------


def test_upload_then_pip_install_and_the_uploader_owns_the_project(world, tmp_path):
    server = world.server
    wheel = world.wheel("first-upload", "1.0")
    proc = twine(server.url, world.alice, wheel, check=True)
    assert "Uploading first_upload-1.0-py3-none-any.whl" in proc.output
    # listed at once after the 200: no waiting for the folder watcher
    assert listed_hashes(server, "first-upload") == {
        wheel.name: hashlib.sha256(wheel.read_bytes()).hexdigest()
    }
    assert (server.store / "first-upload" / wheel.name).read_bytes() == wheel.read_bytes()

    pip("install", "--index-url", server.index_url, "--target", str(tmp_path / "t"), "first-upload==1.0")
    assert (tmp_path / "t" / "first_upload-1.0.dist-info").is_dir()
    assert (tmp_path / "t" / "first_upload" / "__init__.py").read_text() == "VERSION = '1.0'\n"

    assert project_table(world.accounts)["first-upload"] == ("1", "alice", "-")


def test_skip_existing_and_identical_reupload(world):
    server = world.server
    original = world.wheel("same-name", "1.0")
    twine(server.url, world.alice, original, check=True)
    stored = server.store / "same-name" / original.name
    before = stored.stat().st_mtime_ns, listed_hashes(server, "same-name")

    # the identical file again: a 200 that changes nothing
    resp = upload(server.url, world.alice, original)
    assert resp.status_code == 200
    assert "nothing changed" in resp.reason
    twine(server.url, world.alice, original, check=True)
    assert (stored.stat().st_mtime_ns, listed_hashes(server, "same-name")) == before

    # different bytes under the same filename: refused, and twine --skip-existing skips it
    changed = world.wheel("same-name", "1.0", payload=b"changed")
    assert changed.read_bytes() != original.read_bytes()
    with leaves_nothing_behind(server, refusals=2, reason="File already exists"):
        proc = twine(server.url, world.alice, changed)
        assert proc.returncode != 0
        assert (
            "HTTPError: 400 " in proc.output
            and "File already exists: same_name-1.0-py3-none-any.whl" in proc.output
        )
        assert upload(server.url, world.alice, changed).status_code == 400
    # --skip-existing: twine >= 6.2 accepts the flag only for PyPI itself, so ask twine's own
    # decision function whether it would skip on this answer
    from twine.commands.upload import skip_upload
    from twine.package import PackageFile

    answer = upload(server.url, world.alice, changed)
    assert skip_upload(answer, True, PackageFile.from_filename(str(changed), None))
    assert not skip_upload(
        upload(server.url, "pidx_" + "C" * 43, changed), True, PackageFile.from_filename(str(changed), None)
    )
    assert stored.read_bytes() == original.read_bytes()
    assert (stored.stat().st_mtime_ns, listed_hashes(server, "same-name")) == before


def test_an_sdist_uploads_too(world, dists):
    sdist = dists.one("alpha-1.0.tar.gz")
    twine(world.server.url, world.alice, sdist, check=True)
    assert listed_hashes(world.server, "alpha") == {
        sdist.name: hashlib.sha256(sdist.read_bytes()).hexdigest()
    }


# -- refusals -------------------------------------------------------------------------------------------


def test_unknown_token_is_403(world):
    bogus = "pidx_" + "A" * 43
    assert_refused(
        world.server, world.wheel("refuse-unknown"), bogus, 403, "Invalid or non-existent API token"
    )


def test_revoked_token_is_403(world):
    secret = world.accounts.token("alice")
    world.accounts.revoke(secret)
    assert_refused(
        world.server, world.wheel("refuse-revoked"), secret, 403, "This API token has been revoked"
    )


def test_expired_token_is_403(world):
    secret = world.accounts.token("alice", "--expires", "1")
    with db(world.server) as conn:  # a day passes
        conn.execute(
            "UPDATE api_token SET expires_at = ? WHERE id = ?",
            (time.time() - 60, world.accounts.token_ids[secret]),
        )
    assert_refused(world.server, world.wheel("refuse-expired"), secret, 403, "This API token has expired")


def test_another_users_project_is_403(world):
    twine(world.server.url, world.alice, world.wheel("alices-own"), check=True)
    assert_refused(
        world.server,
        world.wheel("alices-own", "2.0"),
        world.bob,
        403,
        "The user 'bob' isn't allowed to upload to project 'alices-own'",
    )


def test_ownerless_project_is_for_admins_only(world):
    server = world.server
    dropped = world.wheel("dropped-in")
    (server.store / "dropped-in").mkdir()
    shutil.copy(dropped, server.store / "dropped-in" / dropped.name)
    wait_until(lambda: dropped.name in listed_hashes(server, "dropped-in"), 10)
    assert project_table(world.accounts)["dropped-in"] == ("1", "(no owner)", "-")

    assert_refused(
        server,
        world.wheel("dropped-in", "2.0"),
        world.bob,
        403,
        "The project 'dropped-in' has no owner yet; ask an admin to assign one",
    )
    twine(server.url, world.root, world.wheel("dropped-in", "2.0"), check=True)
    assert len(listed_hashes(server, "dropped-in")) == 2
    # the admin's upload did not make the admin its owner
    assert project_table(world.accounts)["dropped-in"] == ("2", "(no owner)", "-")


def test_username_and_password_are_refused_with_the_token_hint(world):
    password = world.accounts.user("pat")
    wheel = world.wheel("refuse-password")
    assert_refused(
        world.server,
        wheel,
        password,
        403,
        "Username/password authentication is not accepted for uploads",
        username="pat",
    )
    # the answer says what to do instead
    text = upload(world.server.url, None, wheel, auth=("pat", password)).text
    assert "privindex token create" in text and "username __token__" in text


def test_no_credentials_is_401_with_a_challenge(world):
    wheel = world.wheel("refuse-anonymous")
    with leaves_nothing_behind(world.server, refusals=1, reason="Uploads need an API token"):
        resp = upload(world.server.url, None, wheel)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="privindex"'
    assert "privindex token create" in resp.text


def test_a_disabled_users_token_stops_working_at_once(world):
    world.accounts.user("dora")
    secret = world.accounts.token("dora")
    twine(world.server.url, secret, world.wheel("doras"), check=True)
    world.accounts.cli("user", "disable", "dora")
    assert_refused(world.server, world.wheel("doras", "2.0"), secret, 403, "This API token has been revoked")
    # disabling is final for credentials: enabling again does not revive the old token
    world.accounts.cli("user", "enable", "dora")
    assert_refused(world.server, world.wheel("doras", "2.0"), secret, 403, "This API token has been revoked")
    twine(world.server.url, world.accounts.token("dora"), world.wheel("doras", "2.0"), check=True)


def test_too_large_is_413(world):
    # max_upload_mb = 1; the random payload does not compress
    big = world.wheel("too-big", payload=os.urandom(1536 * 1024))
    assert big.stat().st_size > 1024 * 1024
    assert_refused(world.server, big, world.alice, 413, "File too large: the limit is 1 MiB")
    # far past the limit (the whole body is larger than the form may be): the same answer
    with leaves_nothing_behind(world.server, refusals=1, reason="File too large"):
        resp = upload(world.server.url, world.alice, big, content=os.urandom(3 * 1024 * 1024))
        assert resp.status_code == 413 and "File too large: the limit is 1 MiB" in resp.reason


# -- form validation (raw multipart, as a misbehaving client would send it) ------------------------


def _not_a_zip(world):
    path = world.wheels / "broken" / "not_a_zip-1.0-py3-none-any.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a zip archive")
    return path, {}


def _metadata_names_another_project(world):
    return world.wheel("meta-liar", metadata_name="somebody-else"), {}


FORM_CASES = {
    "name differs from filename": (
        lambda w: (w.wheel("form-name"), {"name": "other-name"}),
        "Start filename for 'other-name' with 'other_name'",
    ),
    "version differs from filename": (
        lambda w: (w.wheel("form-version"), {"version": "2.0"}),
        "Version in filename should be '2.0', not '1.0'",
    ),
    "invalid version": (
        lambda w: (w.wheel("form-badversion"), {"version": "one point oh"}),
        "'one point oh' is an invalid value for Version",
    ),
    "bad :action": (
        lambda w: (w.wheel("form-action"), {":action": "remove_pkg"}),
        "Invalid value for :action",
    ),
    "no digest": (
        lambda w: (w.wheel("form-nodigest"), {"sha256_digest": None, "blake2_256_digest": None}),
        "Include at least one message digest",
    ),
    "digest mismatch": (
        lambda w: (w.wheel("form-digest"), {"sha256_digest": "0" * 64}),
        "The sha256 digest supplied does not match the uploaded file",
    ),
    "filetype does not fit the extension": (
        lambda w: (w.wheel("form-filetype"), {"filetype": "sdist"}),
        "Invalid file extension for sdist",
    ),
    "wheel that is not a zip": (_not_a_zip, "not a readable archive"),
    "metadata names another project": (
        _metadata_names_another_project,
        "The file's metadata names project 'somebody-else'",
    ),
}


@pytest.mark.parametrize("case", FORM_CASES)
def test_invalid_upload_form_is_400_and_leaves_nothing(world, case):
    make, message = FORM_CASES[case]
    path, fields = make(world)
    with leaves_nothing_behind(world.server, refusals=1, reason=message):
        resp = upload(world.server.url, world.alice, path, **fields)
        assert resp.status_code == 400
        assert message in resp.reason
    assert not (world.server.store / path.name.split("-")[0].replace("_", "-")).exists()


# -- concurrency --------------------------------------------------------------------------------------


def test_16_concurrent_uploads_all_land(world):
    server = world.server
    wheels = [world.wheel("conc-shared", f"1.{i}") for i in range(8)] + [
        world.wheel(f"conc-solo-{i}", "1.0") for i in range(8)
    ]
    with ThreadPoolExecutor(len(wheels)) as pool:
        results = list(pool.map(lambda w: twine(server.url, world.alice, w), wheels))
    assert [r.returncode for r in results] == [0] * 16, [r.output for r in results if r.returncode]
    assert set(listed_hashes(server, "conc-shared")) == {w.name for w in wheels[:8]}
    for w in wheels[8:]:
        assert list(listed_hashes(server, w.name.split("-")[0].replace("_", "-"))) == [w.name]
    table = project_table(world.accounts)
    assert table["conc-shared"] == ("8", "alice", "-")  # created once, one owner
    assert all(table[f"conc-solo-{i}"] == ("1", "alice", "-") for i in range(8))
    assert_clean_log(server)


def test_same_filename_concurrently_exactly_one_wins(world):
    server = world.server
    for round_ in range(4):
        a = world.wheel("conc-race", f"{round_}.0", payload=b"a")
        b = world.wheel("conc-race", f"{round_}.0", payload=b"b")
        barrier = threading.Barrier(2)

        def send(path, barrier=barrier):
            barrier.wait()
            return upload(server.url, world.alice, path)

        with ThreadPoolExecutor(2) as pool:
            ra, rb = pool.map(send, (a, b))
        assert sorted([ra.status_code, rb.status_code]) == [200, 400], (ra.reason, rb.reason)
        loser = ra if ra.status_code == 400 else rb
        assert "File already exists" in loser.reason
        winner = a if ra.status_code == 200 else b
        assert (server.store / "conc-race" / a.name).read_bytes() == winner.read_bytes()
        assert listed_hashes(server, "conc-race")[a.name] == hashlib.sha256(winner.read_bytes()).hexdigest()
    assert not [n for n in store_files(server) if ".privindex-upload-" in n]
    assert_clean_log(server)


# -- overwrite = true -------------------------------------------------------------------------------------


def test_overwrite_replaces_the_file_and_is_audited(fresh_server, accounts, tmp_path):
    server = fresh_server(populated=False, env={**NO_2FA, "PRIVINDEX_OVERWRITE": "true"})
    acc = accounts(server)
    acc.user("olga")
    secret = acc.token("olga")
    first = make_wheel(tmp_path / "a", "over-write", "1.0", payload=b"first")
    second = make_wheel(tmp_path / "b", "over-write", "1.0", payload=b"second")
    twine(server.url, secret, first, check=True)
    twine(server.url, secret, second, check=True)

    new_hash = hashlib.sha256(second.read_bytes()).hexdigest()
    assert listed_hashes(server, "over-write") == {second.name: new_hash}
    got = requests.get(f"{server.url}/packages/over-write/{second.name}", timeout=10)
    assert got.content == second.read_bytes()
    events = audit_json(server, "--project", "over-write")
    assert [e["tag"] for e in events] == ["file:overwrite", "file:add", "role:add", "project:create"]
    assert events[0]["details"]["sha256"] == new_hash and events[0]["actor"] == "olga"
    assert (
        events[0]["details"]["old_sha256"]
        == events[1]["details"]["sha256"]
        == hashlib.sha256(first.read_bytes()).hexdigest()
    )
    assert audit_json(server, "--project", "over-write")[0]["tag"] != "file:changed-on-disk"
    assert_no_secrets(acc.secrets, testdb.dump(server.data_dir), server.log_path)


# -- the audit trail, and secrets --------------------------------------------------------------------------


def test_audit_trail_records_every_act_and_filters(world):
    acc, server = world.accounts, world.server
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    acc.user("audra")
    secret = acc.token("audra")
    wheel = world.wheel("audited")
    twine(server.url, secret, wheel, check=True)
    upload(server.url, secret, world.wheel("audited", "2.0"), sha256_digest="0" * 64)
    acc.cli("project", "add-maintainer", "audited", "bob")
    acc.revoke(secret)
    acc.cli("user", "disable", "audra")

    mine = audit_json(server, "--user", "audra")
    assert [e["tag"] for e in reversed(mine)] == [
        "user:create",
        "token:create",
        "token:new-address",
        "project:create",
        "role:add",
        "file:add",
        "upload:refused",
        "token:revoke",
        "user:disable",
    ]
    assert all(e["actor"] == "audra" or e["subject"] == "audra" for e in mine)
    by_tag = {e["tag"]: e for e in mine}
    assert by_tag["file:add"]["subject"] == "audited-1.0-py3-none-any.whl"
    assert by_tag["file:add"]["details"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert "digest supplied does not match" in by_tag["upload:refused"]["details"]["reason"]
    assert by_tag["upload:refused"]["details"]["status"] == 400
    assert by_tag["file:add"]["token_id"] == acc.token_ids[secret]
    assert by_tag["file:add"]["ip"] == "127.0.0.1"
    assert by_tag["token:create"]["details"]["via"] == "cli"

    project = audit_json(server, "--project", "Audited")
    assert {e["project"] for e in project} == {"audited"}
    assert [e["tag"] for e in reversed(project)] == [
        "project:create",
        "role:add",
        "file:add",
        "upload:refused",
        "role:add",
    ]
    assert project[0]["subject"] == "bob" and project[0]["details"]["role"] == "maintainer"

    since = audit_json(server, "--since", started)
    assert {e["id"] for e in mine} <= {e["id"] for e in since}
    assert all(e["time"] >= started for e in since)
    assert audit_json(server, "--since", "2999-01-01") == []
    assert audit_json(server, "--since", "2000-01-01") == audit_json(server)


def test_no_secret_is_stored_logged_or_audited(world):
    """Every token and password this module used: not in the database file (WAL included),
    not in the audit output, not in the server log. Tokens are stored as SHA-256 only."""
    acc, server = world.accounts, world.server
    audit_out = acc.cli("audit", "--json").stdout + acc.cli("audit").stdout
    assert_no_secrets(
        acc.secrets, testdb.dump(server.data_dir), server.log_path, audit_out, acc.cli("token", "list").stdout
    )
    tokens = [s for s in acc.secrets if s.startswith("pidx_")]
    with db(server) as conn:
        stored = {h for (h,) in conn.execute("SELECT token_hash FROM api_token")}
    assert len(stored) == len(tokens)
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    assert all(len(h) == 64 and set(h) <= set("0123456789abcdef") for h in stored)
