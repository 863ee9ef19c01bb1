"""The web UI's rules, checked over HTTP (no browser needed): in-process (conftest's
AppServer: the app behind requests, the CLI through click's runner), and against live
servers where the point is the process (cookies over https, start-up refusals)."""

from __future__ import annotations

import json
import subprocess
import time
from urllib.parse import urlsplit

import pytest
import requests
from conftest import add_user, app_server, populate, privindex_cli, serve_command, start_server
from webclient import PASSWORD, WebClient, age_sign_in, user_with_totp


@pytest.fixture(scope="module")
def web(tmp_path_factory, dists):
    base = tmp_path_factory.mktemp("webui")
    populate(base / "store", dists)
    with app_server(base / "store", base / "data") as server:
        yield server


def events(web, **filters) -> list[dict]:
    args = [f"--{k}={v}" for k, v in filters.items()]
    return [json.loads(line) for line in privindex_cli(web, "audit", *args, "--json").stdout.splitlines()]


def test_forms_without_csrf_token_are_refused(web):
    resp = requests.post(f"{web.url}/login", data={"username": "x", "password": "y"}, timeout=10)
    assert resp.status_code == 400
    assert "The form has expired" in resp.text


def test_html_pages_carry_security_headers(web):
    resp = requests.get(f"{web.url}/login", timeout=10)
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Frame-Options"] == "DENY"


@pytest.mark.slow  # a second server of its own
def test_session_cookie_flags(web, tmp_path):
    client = WebClient(web.url)
    add_user(web, "cookies", PASSWORD)
    resp = client.post("/login", {"username": "cookies", "password": PASSWORD}, allow_redirects=False)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = start_server(
        tmp_path / "s", tmp_path / "d", env={"PRIVINDEX_PUBLIC_URL": "https://pypi.example.test"}
    )
    try:
        cookie = requests.get(f"{https.url}/login", timeout=10).headers["Set-Cookie"]
        assert "Secure" in cookie
    finally:
        https.stop()


def test_unknown_user_and_wrong_password_look_the_same(web):
    add_user(web, "known", PASSWORD)
    client = WebClient(web.url)
    wrong = client.post("/login", {"username": "known", "password": "not the password"})
    unknown = client.post("/login", {"username": "nobody-here", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert client.flashes(wrong) == client.flashes(unknown) == ["Wrong username or password."]


def test_without_a_second_factor_only_enrolment_is_reachable(web):
    add_user(web, "no2fa", PASSWORD)
    client = WebClient(web.url)
    resp = client.login("no2fa", PASSWORD)
    assert resp.url.endswith("/account/security")
    for path in ("/tokens", "/projects", "/audit", "/account"):
        assert client.get(path).url.endswith("/account/security"), path
    resp = client.post("/tokens", {"description": "sneaky"})
    assert resp.url.endswith("/account/security")
    assert "sneaky" not in privindex_cli(web, "token", "list", "no2fa").stdout


def test_second_factor_failures_lock_out(web):
    client, totp, _codes, _at = user_with_totp(web, "guess2fa")
    other = WebClient(web.url)
    other.login("guess2fa", PASSWORD)
    for _ in range(5):
        other.post("/login/2fa/totp", {"code": "000000"})
        assert "That code is not valid." in other.flashes()
    resp = other.post("/login/2fa/totp", {"code": totp.at(time.time() + 30)})
    assert resp.status_code == 429
    assert any("Too many failed attempts" in f for f in other.flashes(resp))


def test_reauthentication_is_asked_for_sensitive_actions(web):
    client, _totp, _codes, _at = user_with_totp(web, "reauth")
    age_sign_in(client, web)

    resp = client.get("/tokens")
    assert resp.url.endswith("/tokens")  # looking is fine
    resp = client.get("/account")
    assert "/reauth?next=" in resp.url and "Confirm your password" in resp.text
    resp = client.post("/reauth", {"password": "wrong password", "next": "/account"}, page=resp.text)
    assert "That password is not right." in client.flashes(resp)
    resp = client.post("/reauth", {"password": PASSWORD, "next": "/account"}, page=resp.text)
    assert resp.url.endswith("/account") and "Change password" in resp.text


def test_password_change_ends_other_sessions(web):
    first, totp, _codes, used_at = user_with_totp(web, "twosessions")
    second = WebClient(web.url)
    second.login("twosessions", PASSWORD, totp=totp, at=used_at + 30)
    assert second.get("/tokens").url.endswith("/tokens")

    resp = first.post(
        "/account",
        {"current": PASSWORD, "password": "a new long password", "password2": "a new long password"},
    )
    assert "Password changed. You are signed out everywhere else." in first.flashes(resp)
    assert first.get("/tokens").url.endswith("/tokens")  # this session goes on
    assert "/login" in second.get("/tokens").url  # the other one has ended
    assert "user:password:change" in [e["tag"] for e in events(web, user="twosessions")]


def test_webauthn_verify_without_a_challenge_is_refused(web):
    _client, totp, _codes, _at = user_with_totp(web, "nochallenge")
    other = WebClient(web.url)
    other.login("nochallenge", PASSWORD)
    token = (
        other.session.get(f"{web.url}/login/2fa").text.split('name="csrf-token" content="')[1].split('"')[0]
    )
    resp = other.session.post(
        f"{web.url}/login/2fa/webauthn", json={"credential": {}}, headers={"X-CSRFToken": token}, timeout=10
    )
    assert resp.status_code == 400
    assert "expired" in resp.json()["error"]


def test_admin_creates_a_user_who_sets_a_password_through_a_one_time_link(web):
    admin, _totp, _codes, _at = user_with_totp(web, "boss", admin=True)
    resp = admin.post("/admin/users", {"username": "newbie"})
    link = resp.text.split('id="setup-link" class="mono-break" value="')[1].split('"')[0]
    assert link.startswith("http://localhost:")
    path = urlsplit(link).path

    newbie = WebClient(web.url)
    page = newbie.get(path)
    assert "Set a password for newbie" in page.text
    resp = newbie.post(path, {"password": "newbie password", "password2": "newbie password"}, page=page.text)
    assert "Your password is set. Sign in now." in newbie.flashes(resp)
    assert newbie.get(path).status_code == 404  # the link works once
    assert newbie.login("newbie", "newbie password").url.endswith("/account/security")

    resp = admin.post("/admin/users/newbie", {"action": "disable", "confirmed": "1"})
    assert any(f.startswith("newbie is disabled.") for f in admin.flashes(resp))
    assert "/login" in newbie.get("/account/security").url  # the session ended at once
    assert newbie.login("newbie", "newbie password").status_code == 401


def test_admin_can_reset_a_users_second_factors(web):
    _user, _totp, _codes, _at = user_with_totp(web, "lostphone")
    admin, *_ = user_with_totp(web, "boss2", admin=True)
    resp = admin.post("/admin/users/lostphone", {"action": "reset-2fa", "confirmed": "1"})
    assert "Every second factor of lostphone was removed." in admin.flashes(resp)
    again = WebClient(web.url)
    assert again.login("lostphone", PASSWORD).url.endswith("/account/security")


def test_non_admins_cannot_reach_admin_pages(web):
    client, *_ = user_with_totp(web, "plain")
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users", {"username": "evil"}).status_code == 403


def test_audit_page_shows_own_events_and_admins_see_all(web):
    client, *_ = user_with_totp(web, "auditee")
    page = client.get("/audit?user=boss").text
    assert "auditee" in page and "boss" not in page.split("<tbody>")[1]
    admin, *_ = user_with_totp(web, "boss3", admin=True)
    page = admin.get("/audit?user=auditee").text
    assert "user:2fa:add" in page and "boss3" not in page.split("<tbody>")[1]


@pytest.mark.slow  # a second server of its own
def test_anonymous_visitors_browse_a_public_index_but_not_a_private_one(web, tmp_path):
    assert "alpha" in requests.get(f"{web.url}/projects", timeout=10).text
    assert (
        "alpha-2.0-py3-none-any.whl" in requests.get(f"{web.url}/projects/alpha?tab=files", timeout=10).text
    )
    private = start_server(tmp_path / "s", tmp_path / "d", env={"PRIVINDEX_READ_ACCESS": "token"})
    try:
        resp = requests.get(f"{private.url}/projects", timeout=10)
        assert resp.url.endswith("/login?next=/projects")
    finally:
        private.stop()


@pytest.mark.slow  # a second server of its own
def test_ip_address_as_public_url_is_refused_at_start(tmp_path):
    proc = subprocess.run(
        serve_command(tmp_path / "s", tmp_path / "d"),
        env={"PRIVINDEX_PUBLIC_URL": "https://192.168.1.20", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "browsers refuse an IP address" in proc.stderr and "Traceback" not in proc.stderr


def test_upload_tokens_need_a_second_factor(web, tmp_path):
    from wheels import make_wheel, upload

    add_user(web, "plainuser", PASSWORD)
    refused = privindex_cli(web, "token", "create", "plainuser", check=False)
    assert refused.returncode == 1 and "has no second factor" in refused.stderr
    assert privindex_cli(web, "token", "create", "plainuser", "--read-only").stdout.startswith("pidx_")

    client, *_ = user_with_totp(web, "losesfactor")
    token = privindex_cli(web, "token", "create", "losesfactor").stdout.strip()
    wheel = make_wheel(tmp_path, "policy-check", "1.0")
    assert upload(web.url, token, wheel).status_code == 200
    admin, *_ = user_with_totp(web, "boss4", admin=True)
    admin.post("/admin/users/losesfactor", {"action": "reset-2fa", "confirmed": "1"})
    resp = upload(web.url, token, make_wheel(tmp_path, "policy-check", "2.0"))
    assert resp.status_code == 403
    assert "has no second factor" in resp.reason and "/account/security" in resp.reason
