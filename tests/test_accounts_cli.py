"""The account commands as an administrator uses them (users, tokens, project roles, audit),
on the data dir of a running server, and reading a private index with tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import click
import pytest
import requests
import testdb
from conftest import Accounts, assert_no_secrets, audit_json, pip, start_server, twine, wait_until
from helpers import listed
from wheels import make_wheel

pytestmark = pytest.mark.slow  # the real CLI in processes beside a real server; twine and pip

TOKEN_RE = re.compile(r"pidx_[A-Za-z0-9_-]{43}")

# These tests are about tokens, scopes and roles; they run with the second-factor policy
# off so users can be made with the CLI alone. The policy has its own tests (test_web.py).
NO_2FA = {"PRIVINDEX_REQUIRE_2FA": "false"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    base = tmp_path_factory.mktemp("accounts")
    (base / "store").mkdir()
    server = start_server(base / "store", base / "data", env={**NO_2FA, "PRIVINDEX_RESCAN_INTERVAL": "0.2"})
    server.acc = Accounts(server.store, server.data_dir, server.env)
    server.acc.user("alice")
    server.acc.user("bob")
    server.wheels = base / "wheels"
    yield server
    server.stop()


def wheel(srv, name: str, version: str):
    return make_wheel(srv.wheels / f"{name}-{version}", name, version)


def projects(srv) -> dict[str, tuple[str, str, str]]:
    lines = srv.acc.cli("project", "list").stdout.splitlines()
    return {
        name: (files, owners, maintainers)
        for name, files, owners, maintainers in (line.split("\t") for line in lines[1:])
    }


# -- help and errors ------------------------------------------------------------------------------


def command_paths(command: click.Command, path: tuple[str, ...] = ()):
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from command_paths(sub, (*path, name))


def test_every_command_has_help():
    from privindex.cli import main

    paths = list(command_paths(main))
    assert ("token", "create") in paths and ("project", "set-owner") in paths and ("audit",) in paths

    def show_help(path):
        return path, subprocess.run(
            [sys.executable, "-m", "privindex", *path, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    with ThreadPoolExecutor(4) as pool:
        for path, proc in pool.map(show_help, paths):
            assert proc.returncode == 0, (path, proc.stderr)
            usage = proc.stdout.splitlines()[0]
            assert usage.startswith("Usage: ") and f"privindex {' '.join(path)}".strip() in usage, path
            assert proc.stderr == ""


ERRORS = {
    "unknown user": (
        ["token", "create", "nobody"],
        None,
        "there is no user 'nobody' (see: privindex user list)",
    ),
    "disable unknown user": (["user", "disable", "nobody"], None, "there is no user 'nobody'"),
    "list tokens of unknown user": (["token", "list", "nobody"], None, "there is no user 'nobody'"),
    "revoke a token that does not exist": (
        ["token", "revoke", "9999"],
        None,
        "there is no token 9999 (see: privindex token list)",
    ),
    "bad username": (
        ["user", "add", "Bad Name!", "--password-stdin"],
        "a fine password\n",
        "a username has 1-50 characters",
    ),
    "short password": (
        ["user", "add", "shorty", "--password-stdin"],
        "short\n",
        "the password must have at least 8 characters",
    ),
    "password is the username": (
        ["user", "add", "samename", "--password-stdin"],
        "SameName\n",
        "the password must not be the username",
    ),
    "no tty and no --password-stdin": (
        ["user", "add", "notty"],
        None,
        "no terminal to ask for the password on; pipe it in with --password-stdin",
    ),
    "user exists": (
        ["user", "add", "ALICE", "--password-stdin"],
        "a fine password\n",
        "the user 'alice' already exists",
    ),
    "token for someone else's project": (
        ["token", "create", "bob", "--project", "nowhere"],
        None,
        "'bob' is not an owner or maintainer of a project 'nowhere'",
    ),
    "maintainer of an unknown project": (
        ["project", "add-maintainer", "nowhere", "bob"],
        None,
        "there is no project 'nowhere'",
    ),
    "set-password with a short password": (
        ["user", "set-password", "bob", "--password-stdin"],
        "2short\n",
        "at least 8 characters",
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_one_line_without_a_traceback(srv, case):
    args, stdin, message = ERRORS[case]
    users_before = srv.acc.cli("user", "list").stdout
    proc = srv.acc.cli(*args, input=stdin, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("privindex: error: ")
    assert message in line
    assert srv.acc.cli("user", "list").stdout == users_before


# -- tokens --------------------------------------------------------------------------------------------------


def test_command_substitution_gets_the_token_alone(srv):
    script = (
        f'TOKEN=$("{sys.executable}" -m privindex token create alice --description ci '
        f'--data-dir "{srv.data_dir}" --store "{srv.store}") && printf "%s" "$TOKEN"'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **NO_2FA, **testdb.env_for(srv.data_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    secret = proc.stdout
    srv.acc.secrets.append(secret)
    assert TOKEN_RE.fullmatch(secret)
    assert "shown only once" in proc.stderr and secret not in proc.stderr
    # it is a working token
    twine(srv.url, secret, wheel(srv, "subst-token", "1.0"), check=True)
    assert set(listed(srv, "subst-token")) == {"subst_token-1.0-py3-none-any.whl"}


def test_token_list_shows_prefix_status_and_scope_but_never_the_secret(srv):
    acc = srv.acc
    twine(srv.url, acc.token("alice"), wheel(srv, "listed-proj", "1.0"), check=True)
    plain = acc.token("alice", "--description", "laptop")
    read_only = acc.token("alice", "--read-only", "--description", "ci mirror")
    scoped = acc.token("alice", "--project", "listed-proj", "--expires", "30", "--description", "release job")
    revoked = acc.token("alice", "--description", "old")
    acc.revoke(revoked)
    acc.revoke(revoked)  # twice is harmless

    out = acc.cli("token", "list", "alice").stdout
    assert out == acc.cli("token", "list", "ALICE").stdout
    assert_no_secrets(acc.secrets, out, acc.cli("token", "list").stdout)
    rows = {int(line.split("\t")[0]): line.split("\t") for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split("\t") == [
        "id",
        "user",
        "prefix",
        "status",
        "scope",
        "created",
        "expires",
        "last used",
        "description",
    ]

    def row(secret):
        return rows[acc.token_ids[secret]]

    for secret in (plain, read_only, scoped, revoked):
        assert row(secret)[1] == "alice"
        assert row(secret)[2] == secret[:11] + "…"
    assert row(plain)[3:5] == ["active", "all projects"] and row(plain)[8] == "laptop"
    assert row(read_only)[3:5] == ["active", "all projects (read-only)"]
    assert row(scoped)[3:5] == ["active", "listed-proj"] and row(scoped)[6] != "-"
    assert row(revoked)[3] == "revoked"
    revokes = [
        e
        for e in audit_json(srv, "--user", "alice")
        if e["tag"] == "token:revoke" and e["details"]["token"] == acc.token_ids[revoked]
    ]
    assert len(revokes) == 1 and revokes[0]["details"]["description"] == "old"


# -- project roles ----------------------------------------------------------------------------------------


def test_roles_set_on_the_command_line_decide_who_may_upload(srv):
    acc = srv.acc
    alice, bob = acc.token("alice"), acc.token("bob")
    twine(srv.url, alice, wheel(srv, "role-proj", "1.0"), check=True)
    assert projects(srv)["role-proj"] == ("1", "alice", "-")
    refused = twine(srv.url, bob, wheel(srv, "role-proj", "2.0"))
    assert (
        refused.returncode != 0
        and "The user 'bob' isn't allowed to upload to project 'role-proj'" in refused.output
    )

    acc.cli("project", "add-maintainer", "Role_Proj", "bob")
    assert projects(srv)["role-proj"] == ("1", "alice", "bob")
    twine(srv.url, bob, wheel(srv, "role-proj", "2.0"), check=True)
    bob_scoped = acc.token("bob", "--project", "role-proj")  # a maintainer may scope a token to it

    acc.cli("project", "remove-maintainer", "role-proj", "bob")
    assert projects(srv)["role-proj"] == ("2", "alice", "-")
    for secret in (bob, bob_scoped):
        refused = twine(srv.url, secret, wheel(srv, "role-proj", "3.0"))
        assert refused.returncode != 0 and "isn't allowed to upload to project 'role-proj'" in refused.output

    acc.cli("project", "set-owner", "role-proj", "bob")
    assert projects(srv)["role-proj"] == ("2", "alice,bob", "-")
    twine(srv.url, bob_scoped, wheel(srv, "role-proj", "3.0"), check=True)
    assert len(listed(srv, "role-proj")) == 3

    proc = acc.cli("project", "remove-maintainer", "role-proj", "bob", check=False)
    assert (
        proc.returncode == 1 and proc.stderr == "privindex: error: 'bob' is not a maintainer of 'role-proj'\n"
    )

    tags = [
        (e["tag"], e["subject"], e["details"].get("role"))
        for e in reversed(audit_json(srv, "--project", "role-proj"))
    ]
    assert [t for t in tags if t[0].startswith("role:")] == [
        ("role:add", "alice", "owner"),
        ("role:add", "bob", "maintainer"),
        ("role:remove", "bob", "maintainer"),
        ("role:add", "bob", "owner"),
    ]


def test_an_ownerless_project_gets_an_owner_from_the_command_line(srv):
    acc = srv.acc
    dropped = wheel(srv, "hand-dropped", "1.0")
    (srv.store / dropped.name).write_bytes(dropped.read_bytes())
    wait_until(lambda: listed(srv, "hand-dropped"), 10)
    assert projects(srv)["hand-dropped"] == ("1", "(no owner)", "-")
    bob = acc.token("bob")
    refused = twine(srv.url, bob, wheel(srv, "hand-dropped", "2.0"))
    assert refused.returncode != 0 and "has no owner yet" in refused.output

    acc.cli("project", "set-owner", "hand-dropped", "bob")
    assert projects(srv)["hand-dropped"] == ("1", "bob", "-")
    twine(srv.url, bob, wheel(srv, "hand-dropped", "2.0"), check=True)
    assert len(listed(srv, "hand-dropped")) == 2
    events = list(reversed(audit_json(srv, "--project", "hand-dropped")))
    assert [(e["tag"], e["actor"], e["subject"]) for e in events] == [
        ("upload:refused", "bob", None),
        ("project:create", None, "hand-dropped"),
        ("role:add", None, "bob"),
        ("file:add", "bob", "hand_dropped-2.0-py3-none-any.whl"),
    ]


def test_an_admin_may_scope_a_token_to_an_ownerless_project(srv):
    acc = srv.acc
    dropped = wheel(srv, "admin-scoped", "1.0")
    (srv.store / dropped.name).write_bytes(dropped.read_bytes())
    wait_until(lambda: listed(srv, "admin-scoped"), 10)
    acc.user("chief", admin=True)
    proc = acc.cli("token", "create", "bob", "--project", "admin-scoped", check=False)
    assert (
        proc.returncode == 1
        and "'bob' is not an owner or maintainer of a project 'admin-scoped'" in proc.stderr
    )
    scoped = acc.token("chief", "--project", "admin-scoped")
    twine(srv.url, scoped, wheel(srv, "admin-scoped", "2.0"), check=True)
    refused = twine(srv.url, scoped, wheel(srv, "elsewhere", "1.0"))
    assert refused.returncode != 0 and "This API token is not valid for project 'elsewhere'" in refused.output
    assert projects(srv)["admin-scoped"] == ("2", "(no owner)", "-")
    # the project row the token needed is on the record like any other
    assert [e["tag"] for e in reversed(audit_json(srv, "--project", "admin-scoped"))] == [
        "project:create",
        "file:add",
    ]


def test_user_list_shows_flags_and_disable_enable(srv):
    acc = srv.acc
    acc.user("boss", admin=True)
    acc.user("gone")
    acc.cli("user", "disable", "gone")
    rows = {line.split("\t")[0]: line.split("\t")[1] for line in acc.cli("user", "list").stdout.splitlines()}
    assert rows["boss"] == "admin" and rows["gone"] == "disabled" and rows["alice"] == "-"
    acc.cli("user", "enable", "gone")
    rows = {line.split("\t")[0]: line.split("\t")[1] for line in acc.cli("user", "list").stdout.splitlines()}
    assert rows["gone"] == "-"
    # a disabled user gets no new token
    acc.cli("user", "disable", "gone")
    proc = acc.cli("token", "create", "gone", check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "the user 'gone' is disabled" in proc.stderr


BUSY_SCRIPT = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from privindex.accounts import api_tokens as apitokens
    from privindex.ops import audit
    from privindex.packages import projects
    from privindex.accounts import users
    from privindex.db.connection import open_database

    open_database(sys.argv[1] if "://" in sys.argv[1] else Path(sys.argv[1]))
    stop = threading.Event()

    def server_like_writes():  # short autocommit writes, as the server's request threads make them
        while not stop.is_set():
            audit.record("upload:refused", audit.Context(via="upload"), reason="busy")

    writer = threading.Thread(target=server_like_writes)
    writer.start()
    failures = []
    try:
        for i in range(5):
            projects.ensure_project(f"busy-{i}", audit.CLI)
        for i in range(100):
            for act in (lambda: users.create_user(f"user{i}", None, audit.CLI),
                        lambda: projects.set_role(f"busy-{i % 5}", f"user{i}", "maintainer", audit.CLI),
                        lambda: apitokens.create_token(users.get_user(f"user{i}"), audit.CLI,
                                                      projects=[f"busy-{i % 5}"])):
                try:
                    act()
                except Exception as exc:
                    failures.append(repr(exc))
    finally:
        stop.set()
        writer.join()
    print(len(failures), sorted(set(failures))[:3])
""")


def test_account_changes_never_fail_with_database_is_locked_while_the_server_writes(tmp_path):
    """What `user add`, `token create` and `project add-maintainer` do, 300 times, while another
    connection keeps committing (a busy server): each read-then-write change waits its turn."""
    where = testdb.url_for(tmp_path / "data") or str(tmp_path / "privindex.sqlite3")
    proc = subprocess.run(
        [sys.executable, "-c", BUSY_SCRIPT, where],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0 []\n"


def test_no_secret_in_database_log_or_audit(srv):
    audit_out = srv.acc.cli("audit", "--json").stdout + srv.acc.cli("audit").stdout
    assert_no_secrets(srv.acc.secrets, testdb.dump(srv.data_dir), srv.log_path, audit_out)
    assert any(s.startswith("pidx_") for s in srv.acc.secrets) and any(
        s.startswith("pw-") for s in srv.acc.secrets
    )


# -- a private index: reading needs a token ----------------------------------------------------------------


def test_private_index_needs_a_token_to_read(fresh_server, accounts, dists, tmp_path):
    server = fresh_server(env={**NO_2FA, "PRIVINDEX_READ_ACCESS": "token"})
    acc = accounts(server)
    acc.user("reader")
    acc.user("leaver")
    reader = acc.token("reader", "--read-only")
    revoked = acc.token("reader")
    acc.revoke(revoked)
    leaver = acc.token("leaver", "--read-only")
    acc.cli("user", "disable", "leaver")
    wheel_name = dists.one("alpha-2.0-py3-none-any.whl").name
    urls = [server.index_url, f"{server.index_url}alpha/", f"{server.url}/packages/alpha/{wheel_name}"]

    for url in urls:
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 401, url
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="privindex"'
        assert requests.get(url, auth=("__token__", reader), timeout=10).status_code == 200, url
        assert requests.get(url, headers={"Authorization": f"Bearer {reader}"}, timeout=10).status_code == 200
        for bad in (
            ("__token__", revoked),
            ("__token__", leaver),
            ("reader", reader),
            ("__token__", "pidx_" + "B" * 43),
        ):
            assert requests.get(url, auth=bad, timeout=10).status_code == 401, (url, bad[0])

    host = server.url.removeprefix("http://")
    pip(
        "install",
        "--no-deps",
        "--index-url",
        f"http://__token__:{reader}@{host}/simple/",
        "--target",
        str(tmp_path / "t"),
        "alpha==2.0",
    )
    assert (tmp_path / "t" / "alpha-2.0.dist-info").is_dir()
    anonymous = pip(
        "download",
        "--no-deps",
        "--index-url",
        server.index_url,
        "-d",
        str(tmp_path / "d"),
        "alpha==2.0",
        check=False,
    )
    assert anonymous.returncode != 0
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").iterdir())

    assert_no_secrets(acc.secrets, server.log_path, testdb.dump(server.data_dir))
