"""Service rules checked in-process: Flask's test client and click's CliRunner on an app
of the test's own (the `app`, `client` and `runner` fixtures). No real client is needed to
see these rules; pip, uv, twine and the browser keep their own tests against live servers."""

from __future__ import annotations

import re

import pyotp
import pytest
from helpers import files, new_token, post_file
from wheels import make_wheel

PASSWORD = "correct horse battery"


class Browser:
    """One signed-in web session on the test client, sending the CSRF token with each form."""

    def __init__(self, client, username: str, password: str = PASSWORD):
        self.client = client
        resp = self.post("/login", {"username": username, "password": password})
        assert resp.status_code == 302, resp.text

    def post(self, path: str, data: dict | None = None):
        page = self.client.get("/login", follow_redirects=True).text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        return self.client.post(path, data={"csrf_token": csrf, **(data or {})})

    def flashes(self, resp) -> list[str]:
        if resp.status_code in (301, 302, 303):
            resp = self.client.get(resp.headers["Location"])
        return re.findall(r'<p class="flash [a-z]+" role="[a-z]+">(.*?)</p>', resp.text)

    def enrol_totp(self) -> pyotp.TOTP:
        page = self.post("/account/totp/new").text  # starting a set-up writes a row: POST only
        totp = pyotp.TOTP(
            re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
        )
        resp = self.post("/account/totp", {"code": totp.now()})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/recovery-codes/new")
        return totp


NO_2FA = pytest.mark.app_settings(require_2fa=False)


@NO_2FA
def test_the_last_owner_cannot_be_removed(client, runner, tmp_path):
    runner.add_user("alice", password=PASSWORD)
    runner.add_user("bob", password=PASSWORD)
    assert (
        post_file(client, new_token(runner, "alice"), make_wheel(tmp_path, "owned", "1.0")).status_code == 200
    )
    alice = Browser(client, "alice")
    resp = alice.post("/projects/owned/roles", {"action": "remove", "username": "alice"})
    assert "&#39;alice&#39; is the last owner of &#39;owned&#39;; add another owner first" in alice.flashes(
        resp
    )
    assert runner.invoke("project", "set-owner", "owned", "bob").exit_code == 0
    resp = alice.post("/projects/owned/roles", {"action": "remove", "username": "alice"})
    assert "alice was removed." in alice.flashes(resp)
    assert runner.invoke("project", "list").stdout.splitlines()[1] == "owned\t1\tbob\t-"


@NO_2FA
def test_a_project_scoped_token_uploads_only_to_its_project(client, runner, tmp_path):
    runner.add_user("alice", password=PASSWORD)
    alice = new_token(runner, "alice")
    for name in ("scope-mine", "scope-other"):
        assert post_file(client, alice, make_wheel(tmp_path / name, name, "1.0")).status_code == 200
    scoped = new_token(runner, "alice", "--project", "Scope_Mine")
    for name in ("scope-other", "scope-brand-new"):  # another project of the user's; one not made yet
        resp = post_file(client, scoped, make_wheel(tmp_path / name, name, "2.0"))
        assert resp.status_code == 403 and f"This API token is not valid for project '{name}'" in resp.text
    assert post_file(client, scoped, make_wheel(tmp_path / "v2", "scope-mine", "2.0")).status_code == 200
    assert len(files(client, "scope-mine")) == 2 and files(client, "scope-brand-new") == {}


@NO_2FA
def test_a_read_only_token_reads_but_does_not_upload(client, runner, tmp_path):
    runner.add_user("alice", password=PASSWORD)
    resp = post_file(client, new_token(runner, "alice", "--read-only"), make_wheel(tmp_path, "ro", "1.0"))
    assert resp.status_code == 403 and "This API token is read-only" in resp.text
    assert files(client, "ro") == {}


def test_the_last_second_factor_cannot_be_removed_while_2fa_is_required(client, runner):
    runner.add_user("lastfactor", password=PASSWORD)
    browser = Browser(client, "lastfactor")
    browser.enrol_totp()
    resp = browser.post("/account/totp/delete", {"confirmed": "1"})
    assert any("last second factor" in f for f in browser.flashes(resp))
    assert "An authenticator app is set up." in client.get("/account/security").text


@NO_2FA
def test_an_owner_yanks_unyanks_and_deletes_a_file(app, client, runner, tmp_path):
    runner.add_user("owner1", password=PASSWORD)
    runner.add_user("other", password=PASSWORD)
    token = new_token(runner, "owner1")
    for version in ("1.0", "2.0"):
        assert post_file(client, token, make_wheel(tmp_path, "yankme", version)).status_code == 200
    old = "yankme-1.0-py3-none-any.whl"

    other = Browser(app.test_client(), "other")
    resp = other.post(f"/projects/yankme/files/{old}/yank", {"reason": "mine now"})
    assert "only an owner of the project or an admin may do that" in other.flashes(resp)
    owner = Browser(client, "owner1")
    owner.post(f"/projects/yankme/files/{old}/yank", {"reason": "broken build"})
    assert files(client, "yankme")[old]["yanked"] == "broken build"
    owner.post(f"/projects/yankme/files/{old}/yank", {"action": "unyank"})
    assert all(f["yanked"] is False for f in files(client, "yankme").values())

    resp = owner.post(f"/projects/yankme/files/{old}/delete", {"confirm": "nope"})
    assert "Type the file name exactly to confirm." in owner.flashes(resp)
    store = app.extensions["privindex"].settings.store
    assert (store / "yankme" / old).exists()
    owner.post(f"/projects/yankme/files/{old}/delete", {"confirm": old})
    assert not (store / "yankme" / old).exists()
    assert list(files(client, "yankme")) == ["yankme-2.0-py3-none-any.whl"]
    tags = [line.split("\t")[1] for line in runner.invoke("audit", "--project", "yankme").stdout.splitlines()]
    assert tags[:3] == ["file:delete", "file:unyank", "file:yank"]


def test_the_runner_and_the_app_share_one_data_dir(app, runner):
    """The fixtures themselves: what the CLI writes, the app's services read at once."""
    from privindex.accounts import users

    runner.add_user("shared", password=PASSWORD)
    assert users.get_user("shared").username == "shared"
    assert runner.invoke("user", "add", "shared", "--password-stdin", input=PASSWORD + "\n").exit_code == 1


@NO_2FA
def test_search_finds_projects_by_name_and_summary_prefixes(client, runner, tmp_path):
    """The project search, on whichever database the suite runs (FTS5 on SQLite, a
    tsvector on PostgreSQL): every word typed must match, as a prefix, name or summary."""
    runner.add_user("alice", password=PASSWORD)
    token = new_token(runner, "alice")
    for name, summary in (
        ("yamlfast", "A fast YAML parser"),
        ("webget", "A small HTTP client"),
        ("webserve", "A small HTTP server"),
    ):
        wheel = make_wheel(tmp_path, name, "1.0", headers=f"Summary: {summary}\n")
        assert post_file(client, token, wheel).status_code == 200

    def found(q: str) -> set[str]:
        page = client.get("/projects", query_string={"q": q, "all": "1"}).text
        return {n for n in ("yamlfast", "webget", "webserve") if f'/projects/{n}"' in page}

    assert found("yaml") == {"yamlfast"}
    assert found("htt cli") == {"webget"}  # prefixes, all words required
    assert found("web") == {"webget", "webserve"}
    assert found("nothing-like-it") == set()
    assert client.get("/projects", query_string={"q": '"*) OR (', "all": "1"}).status_code == 200
