"""The web UI's flows over real HTTP against a live server: confirmations that name their
object, the password re-check that carries the interrupted action out, pages that show a
secret once (a reload makes nothing), an admin's user actions, and readable devices."""

from __future__ import annotations

import json
import re

import pytest
from conftest import audit_json, privindex_cli
from test_web import web  # noqa: F401  (the module's live server)
from webclient import PASSWORD, WebClient, age_sign_in, hidden_fields, user_with_totp
from wheels import make_wheel, upload

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def new_token(client: WebClient, description: str) -> tuple[str, str]:
    """Create a token in the UI: (its secret as the page showed it, that page's HTML)."""
    resp = client.post("/tokens", {"description": description, "scope": "user"})
    secret = re.search(r'id="new-token" class="mono-break" value="(pidx_[^"]+)"', resp.text).group(1)
    return secret, resp.text


def token_ids(client: WebClient) -> list[int]:
    return [int(n) for n in re.findall(r'action="/tokens/(\d+)/revoke"', client.get("/tokens").text)]


def test_a_new_token_is_shown_once_and_a_reload_makes_no_other(web):  # noqa: F811
    client, *_ = user_with_totp(web, "reloader")
    secret, page = new_token(client, "laptop twine")
    assert client.last.url.endswith("/tokens/new")  # redirected after the POST
    assert secret in page and "laptop twine" in page
    assert 'download="privindex-token.txt"' in page

    again = client.get("/tokens/new")  # the reload
    assert again.url.endswith("/tokens") and secret not in again.text
    assert any("shown only once" in f for f in client.flashes(again))
    assert len(token_ids(client)) == 1
    assert [e["tag"] for e in audit_json(web, "--user", "reloader")].count("token:create") == 1


def test_recovery_codes_and_a_password_link_are_shown_once(web):  # noqa: F811
    client, *_ = user_with_totp(web, "codesonce")
    page = client.post("/account/recovery-codes", page=client.get("/account/security").text)
    codes = re.findall(r"<li><code>([0-9a-f-]{19})</code></li>", page.text)
    assert page.url.endswith("/account/recovery-codes/new") and len(codes) == 8
    assert 'download="privindex-recovery-codes.txt"' in page.text
    again = client.get("/account/recovery-codes/new")
    assert again.url.endswith("/account/security") and not set(codes) & set(again.text.split())

    admin, *_ = user_with_totp(web, "linkmaker", admin=True)
    page = admin.post("/admin/users", {"username": "linkee"})
    assert page.url.endswith("/admin/users/setup-link") and "/setup-password/" in page.text
    again = admin.get("/admin/users/setup-link")
    assert again.url.endswith("/admin/users") and "/setup-password/" not in again.text
    assert 'name="action" value="password-link"' in again.text  # one user made, listed once
    assert again.text.count(">linkee<") == 1


def test_revoking_a_token_asks_by_name_first_and_changes_nothing_until_confirmed(web, tmp_path):  # noqa: F811
    client, *_ = user_with_totp(web, "confirmer")
    secret, _page = new_token(client, "ci-upload")
    (token_id,) = token_ids(client)

    page = client.post(f"/tokens/{token_id}/revoke", page=client.get("/tokens").text)
    assert "<h1>Revoke token ci-upload</h1>" in page.text
    assert '<button type="submit" class="danger">Revoke token ci-upload</button>' in page.text
    assert "refused from now on" in page.text and 'href="/tokens"' in page.text  # the way back
    assert upload(web.url, secret, make_wheel(tmp_path, "confirmed-pkg", "1.0")).status_code == 200

    form = hidden_fields(page.text, f"/tokens/{token_id}/revoke")
    done = client.post(f"/tokens/{token_id}/revoke", form, page=page.text)
    assert "The token was revoked." in client.flashes(done)
    assert upload(web.url, secret, make_wheel(tmp_path, "confirmed-pkg", "2.0")).status_code == 403


def test_after_the_password_re_check_the_revoke_is_carried_out(web, tmp_path):  # noqa: F811
    client, *_ = user_with_totp(web, "resumer")
    secret, _page = new_token(client, "old laptop")
    (token_id,) = token_ids(client)
    tokens_page = client.get("/tokens").text
    age_sign_in(client, web)

    page = client.post(f"/tokens/{token_id}/revoke", {"confirmed": "1"}, page=tokens_page)
    assert "Confirm your password" in page.text and "goes on from where it stopped" in page.text
    assert upload(web.url, secret, make_wheel(tmp_path, "resumed-pkg", "1.0")).status_code == 200

    wrong = client.post(
        "/reauth", {**hidden_fields(page.text, "/reauth"), "password": "not it"}, page=page.text
    )
    assert (
        wrong.status_code == 401 and hidden_fields(wrong.text, "/reauth")["confirmed"] == "1"
    )  # still carried
    done = client.post(
        "/reauth", {**hidden_fields(wrong.text, "/reauth"), "password": PASSWORD}, page=wrong.text
    )
    assert done.url.endswith("/tokens") and "The token was revoked." in client.flashes(done)
    assert upload(web.url, secret, make_wheel(tmp_path, "resumed-pkg", "2.0")).status_code == 403
    revoked = [e for e in audit_json(web, "--user", "resumer") if e["tag"] == "token:revoke"]
    assert len(revoked) == 1


def test_a_click_interrupted_by_the_re_check_goes_on_to_its_confirmation(web):  # noqa: F811
    client, *_ = user_with_totp(web, "clicker")
    new_token(client, "nightly")
    (token_id,) = token_ids(client)
    age_sign_in(client, web)
    page = client.post(f"/tokens/{token_id}/revoke", page=client.get("/tokens").text)
    page = client.post(
        "/reauth", {**hidden_fields(page.text, "/reauth"), "password": PASSWORD}, page=page.text
    )
    assert "<h1>Revoke token nightly</h1>" in page.text
    assert PASSWORD not in page.text  # the re-check's password is never written back
    assert set(hidden_fields(page.text, f"/tokens/{token_id}/revoke")) == {"confirmed"}
    assert token_ids(client) == [token_id]  # nothing yet: the confirmation comes first


def test_a_stale_or_forged_resume_is_not_carried_out(web):  # noqa: F811
    """A re-check form older than 10 minutes, or whose address is not signed by this
    server, signs the password in but carries nothing out, and says so."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from privindex.web.blueprint import secret_key

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return super().get_timestamp() - 11 * 60

    client, *_ = user_with_totp(web, "latecomer")
    new_token(client, "keep it")
    (token_id,) = token_ids(client)
    path = f"/tokens/{token_id}/revoke"
    stale = URLSafeTimedSerializer(secret_key(web.data_dir), salt="reauth-resume", signer=Earlier).dumps(path)
    forged = URLSafeTimedSerializer(b"not the key", salt="reauth-resume").dumps(path)
    for resume in (stale, forged):
        age_sign_in(client, web)
        form = {"password": PASSWORD, "next": "/tokens", "resume": resume, "confirmed": "1"}
        resp = client.post("/reauth", form, page=client.get("/tokens").text)
        assert resp.url.endswith("/tokens") and token_ids(client) == [token_id]
        assert "That was more than 10 minutes ago: please do it again." in client.flashes(resp)


def test_a_resumed_form_is_refused_without_its_own_csrf_check(web):  # noqa: F811
    """The re-check replays through the view: a forged resume without a valid CSRF token
    is refused like any other POST."""
    client, *_ = user_with_totp(web, "forged")
    new_token(client, "keep me")
    (token_id,) = token_ids(client)
    age_sign_in(client, web)
    page = client.post(f"/tokens/{token_id}/revoke", {"confirmed": "1"}, page=client.get("/tokens").text)
    fields = {**hidden_fields(page.text, "/reauth"), "password": PASSWORD, "csrf_token": "forged"}
    assert "resume" in fields and fields["confirmed"] == "1"
    resp = client.session.post(f"{web.url}/reauth", data=fields, timeout=30)
    assert resp.status_code == 400 and "The form has expired" in resp.text
    assert len(token_ids(client)) == 1


def test_an_ended_session_says_so_and_returns_to_the_page_after_sign_in(web):  # noqa: F811
    client, totp, _codes, used_at = user_with_totp(web, "wanderer")
    new_token(client, "still here")
    (token_id,) = token_ids(client)
    tokens_page = client.get("/tokens").text
    privindex_cli(web, "user", "sign-out", "wanderer")

    referer = {"Referer": f"{web.url}/tokens"}  # as a browser sends it (same-origin policy)
    resp = client.post(f"/tokens/{token_id}/revoke", page=tokens_page, headers=referer)
    assert "/login" in resp.url and "Your session has ended. Please sign in again." in client.flashes(resp)
    assert hidden_fields(resp.text, "/login")["next"] == "/tokens"  # the page, not the POST address
    form = {**hidden_fields(resp.text, "/login"), "username": "wanderer", "password": PASSWORD}
    second = client.post("/login", form, page=resp.text)
    back = client.post("/login/2fa/totp", {"code": totp.at(used_at + 30)}, page=second.text)
    assert back.url.endswith("/tokens") and token_ids(client) == [token_id]  # nothing was done


def test_admin_ends_sessions_toggles_admin_and_removes_a_user_audited(web):  # noqa: F811
    admin, *_ = user_with_totp(web, "chief", admin=True)
    target, *_ = user_with_totp(web, "deputy")
    privindex_cli(web, "token", "create", "deputy")
    users_page = admin.get("/admin/users").text
    assert (
        'aria-label="Remove deputy"' in users_page
        and 'aria-label="Grant admin rights to deputy"' in users_page
    )

    page = admin.post("/admin/users/deputy", {"action": "end-sessions"}, page=users_page)
    assert "End sessions of deputy" in page.text
    assert target.get("/tokens").url.endswith("/tokens")  # nothing happened yet
    done = admin.post("/admin/users/deputy", hidden_fields(page.text, "/admin/users/deputy"), page=page.text)
    assert "1 session of deputy was ended." in admin.flashes(done)
    assert "/login" in target.get("/tokens").url

    target.login("deputy", PASSWORD)  # signs in again (TOTP next); the admin grants admin
    admin.post("/admin/users/deputy", {"action": "make-admin", "confirmed": "1"}, page=users_page)
    assert "deputy is an admin now." in admin.flashes()
    admin.post("/admin/users/deputy", {"action": "revoke-admin", "confirmed": "1"}, page=users_page)
    assert "deputy is no longer an admin." in admin.flashes()
    refused = admin.post("/admin/users/chief", {"action": "revoke-admin", "confirmed": "1"}, page=users_page)
    assert "You cannot do that to your own account here." in admin.flashes(refused)

    page = admin.post("/admin/users/deputy", {"action": "remove"}, page=users_page)
    assert "Remove deputy" in page.text and "the name cannot be taken again" in page.text
    done = admin.post("/admin/users/deputy", hidden_fields(page.text, "/admin/users/deputy"), page=page.text)
    assert "deputy is removed. 1 API token was revoked, 0 project roles removed." in admin.flashes(done)
    assert ">removed<" in done.text

    tags = [(e["tag"], e["actor"]) for e in audit_json(web, "--user", "deputy")]
    for tag in (
        "user:session:revoked",
        "user:admin:grant",
        "user:admin:revoke",
        "user:remove",
        "token:revoke",
    ):
        assert (tag, "chief") in tags, tag
    ended = next(e for e in audit_json(web, "--user", "deputy") if e["tag"] == "user:session:revoked")
    assert ended["details"]["reason"] in ("admin", "removed")


def test_the_session_list_names_browser_and_system(web):  # noqa: F811
    _first, totp, _codes, used_at = user_with_totp(web, "firefoxer")
    client = WebClient(web.url)
    client.session.headers["User-Agent"] = FIREFOX
    client.login("firefoxer", PASSWORD, totp=totp, at=used_at + 30)
    page = client.get("/account").text
    assert ">Firefox on Windows</span> <strong>(this browser)</strong>" in page
    assert ">Python Requests</span>" in page  # the other session, signed in by requests
    assert 'aria-label="Sign out of this browser"' in page
    assert 'aria-label="End session on Python Requests"' in page


def test_the_cli_grants_and_revokes_admin_as_the_web_does(runner):
    """`privindex user admin` (the web's "Grant admin"), audited alike; the last admin stays."""
    runner.add_user("root", "--admin", password=PASSWORD)
    runner.add_user("helper", password=PASSWORD)
    assert runner.invoke("user", "admin", "helper").exit_code == 0
    assert "helper\tadmin" in runner.invoke("user", "list").output
    assert runner.invoke("user", "admin", "helper", "--revoke").exit_code == 0
    last = runner.invoke("user", "admin", "root", "--revoke")
    assert last.exit_code == 1 and "'root' is the last admin; make another admin first" in last.output
    tags = [
        json.loads(line)["tag"]
        for line in runner.invoke("audit", "--user", "helper", "--json").output.splitlines()
    ]
    assert "user:admin:grant" in tags and "user:admin:revoke" in tags


def test_devices_are_named_in_words_whatever_the_user_agent(app):
    from privindex.web.devices import describe

    with app.test_request_context():
        assert (
            describe(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
            )
            == "Safari on iOS"
        )
        assert describe(FIREFOX) == "Firefox on Windows"
        assert describe("curl/8.5.0") == "curl"
        assert describe(None) == describe("") == describe("\x00garbage" * 500) == "unknown device"


@pytest.mark.app_settings(require_2fa=False)
def test_a_shown_once_secret_is_never_in_the_database_in_clear(app):
    """The pending row holds ciphertext; its key is in the browser's session alone."""
    from privindex.accounts import users
    from privindex.db.models import PendingAuth
    from privindex.ops import audit

    users.create_user("tokenmaker", PASSWORD, audit.CLI)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    client.post("/login", data={"username": "tokenmaker", "password": PASSWORD})
    made = client.post("/tokens", data={"description": "ci", "scope": "user"})
    assert made.status_code == 302 and made.headers["Location"].endswith("/tokens/new")
    held = [row.data for row in PendingAuth.select() if row.purpose == "shown-once:token"]
    assert len(held) == 1 and "pidx_" not in held[0] and '"ci"' not in held[0]
    page = client.get("/tokens/new").get_data(as_text=True)
    assert re.search(r'value="pidx_[^"]+"', page)
    assert client.get("/tokens/new").status_code == 302  # once
