"""Webhooks with a real server, twine, the real CLI and a real receiver on loopback
(tests/fake_receiver.py, which checks the signature): what happens to a project reaches its
hooks signed, a target that fails is tried again (across a restart) until it answers, and a
webhook is no way into the LAN unless an admin allows the host."""

from __future__ import annotations

import sqlite3

import pytest
import testdb
from conftest import assert_no_secrets, privindex_cli, twine, wait_until
from fake_receiver import FakeReceiver
from wheels import make_wheel

pytestmark = pytest.mark.slow  # servers, twine and the CLI

FAST = {
    "PRIVINDEX_OUTBOX_POLL_SECONDS": "0.2",
    "PRIVINDEX_OUTBOX_RETRY_BASE_SECONDS": "0.3",
    "PRIVINDEX_OUTBOX_RETRY_MAX_SECONDS": "1",
    "PRIVINDEX_WEBHOOK_TIMEOUT": "3",
    "PRIVINDEX_REQUIRE_2FA": "false",  # uploads with a plain token
}


def allow(*receivers: FakeReceiver) -> dict[str, str]:
    """FAST, with the receivers' loopback host:port allowed (a bare host is port 80 only)."""
    return {**FAST, "PRIVINDEX_WEBHOOK_ALLOWED_HOSTS": " ".join(f"127.0.0.1:{r.port}" for r in receivers)}


@pytest.fixture
def receiver():
    fake = FakeReceiver()
    yield fake
    fake.stop()


def add_hook(server, url: str, *options: str) -> str:
    """`privindex webhook add`: the secret it prints."""
    return privindex_cli(server, "webhook", "add", url, *options).stdout.strip()


def uploader(server, accounts) -> str:
    a = accounts(server)
    a.user("ada")
    return a.token("ada")


def test_uploads_yanks_deletes_and_status_changes_reach_a_project_hook_signed(
    fresh_server, accounts, receiver, tmp_path
):
    other_hook = FakeReceiver()  # another project's hook hears nothing of demo
    server = fresh_server(populated=False, env=allow(receiver, other_hook))
    token = uploader(server, accounts)
    first = make_wheel(tmp_path, "demo", "1.0")
    assert twine(server.url, token, first).returncode == 0  # before the hook: nothing to send
    receiver.secret = add_hook(server, receiver.url, "--project", "Demo")
    other_hook.secret = add_hook(server, other_hook.url, "--project", "other")

    wheel = make_wheel(tmp_path, "demo", "2.0")
    assert twine(server.url, token, wheel).returncode == 0
    privindex_cli(server, "project", "yank", "demo", wheel.name, "--reason", "broken")
    privindex_cli(server, "project", "status", "demo", "deprecated", "--reason", "use demo2")
    privindex_cli(server, "project", "delete", "demo", wheel.name, "--yes")

    got = receiver.wait_for(5)
    assert [r.json["event"] for r in got] == [
        "release.published",
        "file.uploaded",
        "file.yanked",
        "project.status_changed",
        "file.deleted",
    ]
    assert all(r.genuine and r.status == 204 for r in got)
    published, uploaded = got[0].json, got[1].json
    assert published["data"] == {"version": "2.0"} and published["project"] == "demo"
    assert published["actor"] == "ada"
    assert published["project_url"] == server.url.replace("127.0.0.1", "localhost") + "/projects/demo/"
    assert uploaded["data"]["filename"] == wheel.name and len(uploaded["data"]["sha256"]) == 64
    assert got[2].json["data"]["reason"] == "broken"
    assert got[3].json["data"]["status"] == "deprecated"
    deliveries = [r.headers["X-Privindex-Delivery"] for r in got]
    assert len(set(deliveries)) == 5 and [r.json["delivery"] for r in got] == deliveries
    assert got[0].headers["X-Privindex-Event"] == "release.published"
    assert other_hook.received == []
    other_hook.stop()
    assert_no_secrets([receiver.secret], server.log_path, privindex_cli(server, "audit", "--json").stdout)


def test_a_target_that_fails_three_times_gets_the_delivery_after_a_restart(
    fresh_server, accounts, receiver, tmp_path
):
    env = {**allow(receiver), "PRIVINDEX_PUBLIC_URL": "http://index.example.test"}  # the port changes
    server = fresh_server(populated=False, env=env)
    token = uploader(server, accounts)
    receiver.secret = add_hook(server, receiver.url, "--event", "file.uploaded")
    receiver.answers = [500, 500, 500]
    assert twine(server.url, token, make_wheel(tmp_path, "demo", "1.0")).returncode == 0
    receiver.wait_for(1)  # the first try failed
    server.stop()  # the delivery waits in the outbox meanwhile
    server = fresh_server(populated=False, env=env)
    got = receiver.wait_for(4)
    assert [r.status for r in got] == [500, 500, 500, 204]
    assert all(r.genuine for r in got)
    assert len({r.headers["X-Privindex-Delivery"] for r in got}) == 1  # one delivery, retried
    assert len({r.body for r in got}) == 1
    assert "HTTP 500" in server.log()
    wait_until(lambda: 'privindex_outbox_deliveries{kind="webhook",status="sent"} 1.0' in metrics(server), 10)


def metrics(server) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_a_webhook_into_the_lan_is_refused_unless_an_admin_allows_the_host(
    fresh_server, accounts, receiver, tmp_path
):
    server = fresh_server(populated=False, env=FAST)
    refused = privindex_cli(server, "webhook", "add", receiver.url, check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "privindex: error: 127.0.0.1 is at 127.0.0.1, not a public address; an admin may allow "
        "the host with the webhook_allowed_hosts setting"
    )
    for url in ("ftp://example.org/hook", "http://user:pw@example.org/hook", "http://[::1]:80/x"):
        assert privindex_cli(server, "webhook", "add", url, check=False).returncode == 1

    # allowed when added, no longer allowed by the server that delivers: refused in the
    # connection, and not tried again
    # a bare host allows its default port only: not the receiver's
    bare = privindex_cli(
        server,
        "webhook",
        "add",
        receiver.url,
        env={"PRIVINDEX_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
        check=False,
    )
    assert bare.returncode == 1 and "not a public address" in bare.stderr
    receiver.secret = privindex_cli(
        server, "webhook", "add", receiver.url, env=allow(receiver)
    ).stdout.strip()
    token = uploader(server, accounts)
    assert twine(server.url, token, make_wheel(tmp_path, "demo", "1.0")).returncode == 0
    wait_until(lambda: 'kind="webhook",status="failed"} 2.0' in metrics(server), 15)
    assert receiver.received == []
    assert "not a public address" in server.log()


def test_a_redirect_is_not_followed(fresh_server, accounts, receiver, tmp_path):
    server = fresh_server(populated=False, env={**allow(receiver), "PRIVINDEX_OUTBOX_MAX_ATTEMPTS": "1"})
    receiver.secret = add_hook(server, receiver.url, "--event", "file.uploaded")
    receiver.answers = [(307, {"Location": "http://10.0.0.1/internal"})]
    token = uploader(server, accounts)
    assert twine(server.url, token, make_wheel(tmp_path, "demo", "1.0")).returncode == 0
    wait_until(lambda: 'kind="webhook",status="failed"} 1.0' in metrics(server), 15)
    assert len(receiver.received) == 1  # the 307 itself; nobody went to 10.0.0.1
    if not testdb.ON_POSTGRES:
        with sqlite3.connect(server.data_dir / "privindex.sqlite3") as db:
            [(error,)] = db.execute("SELECT last_error FROM outbox").fetchall()
        assert error.startswith("HTTP 307: redirects are not followed (to 10.0.0.1)")


@pytest.mark.skipif(testdb.ON_POSTGRES, reason="reads the SQLite outbox")
def test_the_answer_of_an_allowed_private_host_is_not_kept_in_the_delivery_log(
    fresh_server, accounts, receiver, tmp_path
):
    server = fresh_server(populated=False, env={**allow(receiver), "PRIVINDEX_OUTBOX_MAX_ATTEMPTS": "1"})
    receiver.secret = add_hook(server, receiver.url, "--event", "file.uploaded")
    receiver.answers = [(500, {}, b"Traceback: db password=hunter2 at /srv/internal")]
    token = uploader(server, accounts)
    assert twine(server.url, token, make_wheel(tmp_path, "demo", "1.0")).returncode == 0
    wait_until(lambda: 'kind="webhook",status="failed"} 1.0' in metrics(server), 15)
    with sqlite3.connect(server.data_dir / "privindex.sqlite3") as db:
        [(error,)] = db.execute("SELECT last_error FROM outbox").fetchall()
    assert error == "HTTP 500"
    assert "hunter2" not in server.log()
