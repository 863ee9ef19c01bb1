"""Issue 24.8: sessions and factors to OWASP ASVS 5.0 (V6, V7) and NIST SP 800-63B-4 AAL2.

The session cookie is `__Host-` prefixed over https; a factor change offers to end the
user's other sessions; an admin's 2FA reset ends the user's sessions; sessions end after
an hour idle or session_max_hours, and the sign-in page says so; a stranger's wrong
passwords cannot keep the user out of a browser they signed in with before.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
import testdb
from conftest import add_user, start_server
from playwright.sync_api import expect
from redteam import PASSWORD, events, signed_in, signed_in_as
from test_web_browser import browser, shot, sign_in_password, virtual_key  # noqa: F401  (browser: a fixture)
from webclient import WebClient

from privindex.config import ConfigError, load_settings

pytestmark = pytest.mark.slow  # a red-team run against a live server, accounts made by the real CLI

OFFER = "Sign out my other sessions"
ENDED = "Your session has ended. Please sign in again."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("asvs")
    srv = start_server(base / "store", base / "data")
    srv.origin = srv.url.replace("127.0.0.1", "localhost")  # WebAuthn needs a domain
    yield srv
    srv.stop()


def db(server, sql: str, *args) -> None:
    with testdb.connect(server.data_dir) as conn:
        conn.execute(sql, args)


def user_id(server, name: str) -> int:
    return testdb.query(server.data_dir, 'SELECT id FROM "user" WHERE username = ?', (name,))[0][0]


def cookie_parts(set_cookie: str) -> tuple[str, set[str]]:
    """The cookie's name and its attributes (lower-case, values kept)."""
    first, *attrs = [p.strip() for p in set_cookie.split(";")]
    return first.split("=", 1)[0], {a.lower() for a in attrs}


def set_cookies(resp: requests.Response) -> dict[str, tuple[str, set[str]]]:
    """Every Set-Cookie of an answer: name -> (name=value, attributes)."""
    out = {}
    for header in resp.raw.headers.getlist("Set-Cookie"):
        name, attrs = cookie_parts(header)
        out[name] = (header.split(";", 1)[0], attrs)
    return out


# -- 1. the __Host- prefix over https ------------------------------------------------------------


def test_cookies_have_the_host_prefix_behind_an_https_proxy(tmp_path):
    """public_url https:// behind a trusted proxy (X-Forwarded-Proto: https, as the README's
    nginx sends): every cookie is __Host-, Secure, Path=/, without Domain; and the
    browser's next request, carrying the session cookie, is signed in."""
    srv = start_server(
        tmp_path / "store",
        tmp_path / "data",
        env={
            "PRIVINDEX_PUBLIC_URL": "https://pypi.example.lan",
            "PRIVINDEX_TRUSTED_PROXY": "127.0.0.1",
            "PRIVINDEX_REQUIRE_2FA": "false",
        },
    )
    try:
        add_user(srv, "tls", PASSWORD)
        proxied = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "pypi.example.lan",
            "X-Forwarded-For": "192.0.2.7",
            "Referer": "https://pypi.example.lan/login",
        }
        page = requests.get(f"{srv.url}/login", headers=proxied, timeout=10)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        signed = requests.post(
            f"{srv.url}/login",
            timeout=10,
            allow_redirects=False,
            headers={**proxied, "Cookie": set_cookies(page)["__Host-privindex_session"][0]},
            data={"csrf_token": csrf, "username": "tls", "password": PASSWORD},
        )
        assert signed.status_code == 302
        made = {**set_cookies(page), **set_cookies(signed)}
        assert set(made) == {"__Host-privindex_session", "__Host-privindex_device"}
        for _pair, attrs in made.values():
            assert {"secure", "path=/", "httponly", "samesite=lax"} <= attrs
            assert not any(a.startswith("domain") for a in attrs)
        session = made["__Host-privindex_session"][0]
        account = requests.get(
            f"{srv.url}/account/security",
            headers={**proxied, "Cookie": session},
            timeout=10,
            allow_redirects=False,
        )
        assert account.status_code == 200
        # the bare name is not the session cookie here
        bare = session.replace("__Host-", "", 1)
        assert (
            requests.get(
                f"{srv.url}/account/security",
                headers={**proxied, "Cookie": bare},
                timeout=10,
                allow_redirects=False,
            ).status_code
            == 302
        )
    finally:
        srv.stop()


def test_plain_http_on_localhost_keeps_cookies_browsers_accept(server):
    """Browsers refuse __Host- without Secure, and Secure over plain http: no prefix there."""
    add_user(server, "plainhttp", PASSWORD)
    client = WebClient(server.url)
    made = set_cookies(client.get("/login"))
    resp = client.post("/login", {"username": "plainhttp", "password": PASSWORD}, allow_redirects=False)
    made.update(set_cookies(resp))
    assert set(made) == {"privindex_session", "privindex_device"}
    for name, (_pair, attrs) in made.items():
        assert not name.startswith("__Host-")
        assert "secure" not in attrs and "path=/" in attrs and "httponly" in attrs
        assert not any(a.startswith("domain") for a in attrs)


# -- 2. a factor change offers "sign out my other sessions" --------------------------------------


def add_key_row(server, name: str) -> int:
    """A security key for the user, written where the browser ceremony would put it (the
    ceremony itself is test_web_browser.py's)."""
    db(
        server,
        "INSERT INTO security_key (user_id, label, credential_id, public_key, sign_count, transports, "
        "aaguid, created_at) VALUES (?, ?, ?, ?, 0, '[]', '', ?)",
        user_id(server, name),
        "spare key",
        f"cred-{name}".encode(),
        b"pk",
        time.time(),
    )
    return testdb.query(
        server.data_dir, "SELECT id FROM security_key WHERE user_id = ?", (user_id(server, name),)
    )[0][0]


def regenerate_codes(client, server, name):
    return client.post("/account/recovery-codes", page=client.get("/account/security").text)


def replace_totp(client, server, name):
    client.enrol_totp()
    return client.last


def remove_totp(client, server, name):
    add_key_row(server, name)  # the last second factor cannot be removed
    return client.post("/account/totp/delete", {"confirmed": "1"}, page=client.get("/account/security").text)


def remove_key(client, server, name):
    key = add_key_row(server, name)
    return client.post(
        f"/account/keys/{key}/delete", {"confirmed": "1"}, page=client.get("/account/security").text
    )


@pytest.mark.parametrize(
    "change", [regenerate_codes, replace_totp, remove_totp, remove_key], ids=lambda f: f.__name__
)
def test_a_factor_change_offers_to_end_the_other_sessions(server, change):
    name = change.__name__.replace("_", "")
    here, _totp, codes, _at = signed_in(server, name)
    elsewhere = WebClient(server.url)
    elsewhere.login(name, PASSWORD)
    elsewhere.post("/login/2fa/recovery", {"code": codes[0]}, page=elsewhere.get("/login/2fa").text)
    assert signed_in_as(elsewhere, server)
    assert OFFER not in here.get("/account/security").text  # nothing changed yet: no offer

    landed = change(here, server, name)
    assert landed.status_code == 200 and OFFER in landed.text
    assert "still signed in on 1 other device or browser" in landed.text
    ended = here.post("/account/sessions/end-others", page=landed.text)
    assert "1 other session was ended." in here.flashes(ended)
    assert not signed_in_as(elsewhere, server)
    assert signed_in_as(here, server)
    assert OFFER not in here.get("/account/security").text  # offered once
    revoked = events(server, name, "user:session:revoked")
    assert revoked[0]["details"]["reason"] == "sign_out_others" and revoked[0]["details"]["sessions"] == 1
    assert revoked[0]["actor"] == name


def test_the_offer_needs_other_sessions(server):
    here, *_ = signed_in(server, "alone")
    landed = regenerate_codes(here, server, "alone")
    assert "recovery-codes" in landed.text and OFFER not in landed.text


def test_a_password_change_ends_the_other_sessions_at_once(server):
    here, totp, _codes, used_at = signed_in(server, "newpass")
    elsewhere = WebClient(server.url)
    elsewhere.login("newpass", PASSWORD, totp=totp, at=used_at + 30)
    assert signed_in_as(elsewhere, server)
    new = "a much longer passphrase 2026"
    resp = here.post(
        "/account", {"current": PASSWORD, "password": new, "password2": new}, page=here.get("/account").text
    )
    assert "Password changed. You are signed out everywhere else." in here.flashes(resp)
    assert not signed_in_as(elsewhere, server) and signed_in_as(here, server)


def test_an_admin_reset_of_second_factors_ends_every_session_of_the_user(server):
    victim, *_ = signed_in(server, "lostfactors")
    admin, *_ = signed_in(server, "resetter", admin=True)
    admin.post(
        "/admin/users/lostfactors",
        {"action": "reset-2fa", "confirmed": "1"},
        page=admin.get("/admin/users").text,
    )
    resp = victim.get("/account/security")
    assert resp.url.split("?")[0].endswith("/login") and ENDED in victim.flashes(resp)
    assert events(server, "lostfactors", "user:session:revoked")[0]["details"]["reason"] == "2fa_reset"


def test_typing_the_password_again_gives_the_session_a_new_key(server):
    """ASVS 7.2.4: a cookie copied before the re-authentication is worth nothing after it."""
    client, *_ = signed_in(server, "reauther")
    copy = WebClient(server.url)
    copy.session.cookies.update(client.session.cookies.get_dict())
    resp = client.post("/reauth", {"password": PASSWORD, "next": "/account"}, page=client.get("/reauth").text)
    assert resp.url.endswith("/account") and resp.status_code == 200
    assert signed_in_as(client, server) and not signed_in_as(copy, server)
    assert (
        len(
            testdb.query(
                server.data_dir,
                "SELECT id FROM web_session WHERE user_id = ?",
                (user_id(server, "reauther"),),
            )
        )
        == 1
    )  # the same session, not a second one


# -- 3. lifetimes -----------------------------------------------------------------------------------


def test_an_hour_idle_ends_a_session_and_the_sign_in_page_says_so(server):
    client, *_ = signed_in(server, "idler")
    db(
        server,
        "UPDATE web_session SET last_seen_at = ? WHERE user_id = ?",
        time.time() - 61 * 60,
        user_id(server, "idler"),
    )
    resp = client.get("/account")
    assert resp.url.split("?")[0].endswith("/login") and ENDED in client.flashes(resp)
    assert ENDED not in client.get("/login").text  # said once


def test_a_fresh_visitor_is_not_told_a_session_ended(server):
    visitor = WebClient(server.url)
    assert ENDED not in visitor.get("/account").text


def test_session_max_hours_ends_a_session_however_active(tmp_path):
    srv = start_server(
        tmp_path / "store",
        tmp_path / "data",
        env={"PRIVINDEX_SESSION_MAX_HOURS": "2", "PRIVINDEX_SESSION_IDLE_MINUTES": "30"},
    )
    try:
        client, *_ = signed_in(srv, "longday")
        uid = user_id(srv, "longday")
        db(srv, "UPDATE web_session SET created_at = ? WHERE user_id = ?", time.time() - 2 * 3600 + 60, uid)
        assert signed_in_as(client, srv)
        db(srv, "UPDATE web_session SET last_seen_at = ? WHERE user_id = ?", time.time() - 29 * 60, uid)
        assert signed_in_as(client, srv)
        db(srv, "UPDATE web_session SET created_at = ? WHERE user_id = ?", time.time() - 2 * 3600 - 1, uid)
        resp = client.get("/account")
        assert "/login" in resp.url and ENDED in client.flashes(resp)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"PRIVINDEX_SESSION_MAX_HOURS": "25"}, "PRIVINDEX_SESSION_MAX_HOURS: must be 1 to 24, got 25"),
        ({"PRIVINDEX_SESSION_MAX_HOURS": "0"}, "PRIVINDEX_SESSION_MAX_HOURS: must be 1 to 24, got 0"),
        (
            {"PRIVINDEX_SESSION_MAX_HOURS": "2", "PRIVINDEX_SESSION_IDLE_MINUTES": "121"},
            "PRIVINDEX_SESSION_IDLE_MINUTES: must be 1 to 120 (session_max_hours), got 121",
        ),
    ],
)
def test_session_limits_are_checked(environ, message):
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert str(err.value) == message


def test_defaults_meet_aal2():
    settings = load_settings(environ={})
    assert settings.session_idle_minutes <= 60 and settings.session_max_hours <= 24


# -- 4. no lock-out by a stranger ---------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own: every client here shares 127.0.0.1, whose limit it fills."""
    srv = start_server(tmp_path / "store", tmp_path / "data")
    yield srv
    srv.stop()


def test_a_strangers_wrong_passwords_do_not_lock_out_a_known_browser(own_server):
    """Anyone may fill the per-user and per-address password limits (here from the same
    address as the user); the browser the user signed in with before has a limit of its own."""
    laptop, totp, _codes, used_at = signed_in(own_server, "target")
    laptop.post("/logout", page=laptop.get("/account/security").text)
    stranger = WebClient(own_server.url)
    for _ in range(10):
        assert stranger.login("target", "guess").status_code == 401
    assert stranger.login("target", PASSWORD).status_code == 429  # the real password too: limited
    assert WebClient(own_server.url).login("target", PASSWORD).status_code == 429  # any new browser

    resp = laptop.login("target", PASSWORD, totp=totp, at=used_at + 30)
    assert resp.status_code == 200 and signed_in_as(laptop, own_server)
    # the known browser's own limit still holds against guessing
    laptop.post("/logout", page=laptop.get("/account/security").text)
    for _ in range(10):
        assert laptop.login("target", "guess").status_code == 401
    assert laptop.login("target", PASSWORD).status_code == 429


def test_a_device_cookie_helps_only_the_user_it_names(own_server):
    """A browser that signed in as one user gets no own limit for another name."""
    laptop, *_ = signed_in(own_server, "owner")
    add_user(own_server, "neighbour", PASSWORD)
    laptop.post("/logout", page=laptop.get("/account/security").text)
    for _ in range(10):
        assert WebClient(own_server.url).login("neighbour", "guess").status_code in (401, 429)
    assert laptop.login("neighbour", PASSWORD).status_code == 429


# -- in a real browser: adding a security key ----------------------------------------------------


@pytest.mark.browser
def test_adding_a_key_in_the_browser_offers_to_end_the_other_sessions(browser, server):  # noqa: F811
    """The key ceremony is JavaScript: the offer waits for the page the user goes to next.
    Screenshots at phone and desktop width go to test-artifacts/screenshots/."""
    add_user(server, "keyadder", PASSWORD)
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = phone.new_page()
        sign_in_password(other, server, "keyadder")
        page = desk.new_page()
        virtual_key(page)
        sign_in_password(page, server, "keyadder")
        page.get_by_label(re.compile("Name for a new key")).fill("YubiKey green")
        page.get_by_role("button", name="Add a security key").click()
        page.get_by_role("link", name="I have saved them").click()
        offer = page.get_by_role("button", name=OFFER)
        expect(offer).to_be_visible()
        expect(page.get_by_text("still signed in on 1 other device or browser")).to_be_visible()
        shot(page, "sign-out-offer-1280")
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "sign-out-offer-390")
        offer.click()
        expect(page.get_by_text("1 other session was ended.")).to_be_visible()
        expect(page.get_by_role("cell", name=re.compile(r"\(this browser\)"))).to_be_visible()
        shot(page, "account-after-sign-out-offer-390")

        other.goto(f"{server.origin}/account/security")
        expect(other.get_by_text(ENDED)).to_be_visible()
        expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
        shot(other, "session-ended-390")
    finally:
        phone.close()
        desk.close()
