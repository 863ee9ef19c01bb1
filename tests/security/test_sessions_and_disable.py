"""Issue 16.3 and 16.5: sign-out ended nothing on the server (a copied cookie worked for 12 h)
and re-enabling a user revived its old tokens. Sessions are now rows on the server; disabling
ends every credential for good."""

from __future__ import annotations

import re
import time

import pytest
import requests
import testdb
from conftest import privindex_cli, served
from redteam import PASSWORD, events, signed_in, signed_in_as
from webclient import WebClient

pytestmark = pytest.mark.slow  # a red-team run against a live server, accounts made by the real CLI


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory.mktemp("sessions"), env={"PRIVINDEX_READ_ACCESS": "token"}) as srv:
        yield srv


def copy_of(client: WebClient, server) -> WebClient:
    """Another client holding the same cookie (stolen, or a second tab)."""
    thief = WebClient(server.url)
    thief.session.cookies.update(client.session.cookies.get_dict())
    return thief


def db(server, sql: str, *args) -> None:
    with testdb.connect(server.data_dir) as conn:
        conn.execute(sql, args)


def test_a_copied_cookie_is_refused_after_sign_out(server):
    client, *_ = signed_in(server, "copycat")
    thief = copy_of(client, server)
    assert signed_in_as(thief, server)
    client.post("/logout", page=client.get("/account/security").text)
    assert not signed_in_as(client, server)
    assert not signed_in_as(thief, server)


def test_account_page_lists_sessions_and_ends_one(server):
    first, totp, _codes, used_at = signed_in(server, "twodevices")
    second = WebClient(server.url)
    second.session.headers["User-Agent"] = "SecondLaptop/1.0"
    second.login("twodevices", PASSWORD, totp=totp, at=used_at + 30)
    page = first.get("/account").text
    assert "SecondLaptop/1.0" in page and "(this browser)" in page
    ids = re.findall(r"/account/sessions/(\d+)/end", page)
    assert len(ids) == 2
    other = next(i for i in ids if f"sessions/{i}/end" in page.split("SecondLaptop/1.0", 1)[1][:600])
    first.post(f"/account/sessions/{other}/end", {"confirmed": "1"}, page=page)
    assert not signed_in_as(second, server) and signed_in_as(first, server)
    revoked = events(server, "twodevices", "user:session:revoked")
    assert len(revoked) == 1 and revoked[0]["actor"] == "twodevices"


def test_sign_out_everywhere_and_from_the_cli(server):
    first, totp, codes, used_at = signed_in(server, "everywhere")
    second = WebClient(server.url)
    second.login("everywhere", PASSWORD, totp=totp, at=used_at + 30)
    first.post("/account/sessions/end-all", page=first.get("/account").text)
    assert not signed_in_as(first, server) and not signed_in_as(second, server)

    third = WebClient(server.url)
    third.login("everywhere", PASSWORD)
    third.post("/login/2fa/recovery", {"code": codes[0]}, page=third.get("/login/2fa").text)
    assert signed_in_as(third, server)
    out = privindex_cli(server, "user", "sign-out", "everywhere")
    assert "ended 1 web session of everywhere" in out.stderr
    assert not signed_in_as(third, server)
    assert [e["details"]["via"] for e in events(server, "everywhere", "user:session:revoked")][:2] == [
        "cli",
        "web",
    ]


def test_idle_and_old_sessions_end(server):
    client, *_ = signed_in(server, "sleepy")
    db(
        server,
        "UPDATE web_session SET last_seen_at = ? WHERE user_id = "
        "(SELECT id FROM user WHERE username = 'sleepy')",
        time.time() - 121 * 60,
    )
    assert not signed_in_as(client, server)  # session_idle_minutes = 120
    client, *_ = signed_in(server, "marathon")
    db(
        server,
        "UPDATE web_session SET created_at = ? WHERE user_id = "
        "(SELECT id FROM user WHERE username = 'marathon')",
        time.time() - 12 * 3600 - 1,
    )
    assert not signed_in_as(client, server)  # 12 h whatever the activity


def test_cookies_from_before_server_side_sessions_stop_working(server):
    """flask-login used to store '<user id>:<session version>' as the id; such a cookie, even
    correctly signed, names no session row."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    from privindex.web.blueprint import secret_key

    signed_in(server, "oldcookie")
    app = Flask("t")
    app.secret_key = secret_key(server.data_dir)
    forged = (
        SecureCookieSessionInterface()
        .get_signing_serializer(app)
        .dumps({"_user_id": "1:1", "_fresh": True, "auth_at": time.time()})
    )
    resp = requests.get(
        f"{server.url}/account/security",
        cookies={"privindex_session": forged},
        timeout=10,
        allow_redirects=False,
    )
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_re_enabling_does_not_revive_tokens_sessions_or_links(server):
    client, totp, _codes, used_at = signed_in(server, "leaver")
    token = privindex_cli(server, "token", "create", "leaver", "--read-only").stdout.strip()
    assert requests.get(server.index_url, auth=("__token__", token), timeout=10).status_code == 200
    admin, *_ = signed_in(server, "boss", admin=True)
    link_page = admin.post("/admin/users/leaver", {"action": "password-link"}).text
    link_path = re.search(r'value="http://[^/]+(/setup-password/[^"]+)"', link_page).group(1)
    half = WebClient(server.url)
    assert half.login("leaver", PASSWORD).url.endswith("/login/2fa")  # password done, 2FA pending

    out = privindex_cli(server, "user", "disable", "leaver").stderr
    assert "its 1 API token was revoked" in out
    out = privindex_cli(server, "user", "enable", "leaver").stderr
    assert "enabled leaver; its 1 API token was revoked when it was disabled: issue new ones" in out
    # enabling an enabled user changes nothing, and says so: its tokens stay valid
    fresh = privindex_cli(server, "token", "create", "leaver", "--read-only").stdout.strip()
    again = privindex_cli(server, "user", "enable", "leaver", check=False)
    assert again.returncode == 1 and "'leaver' is not disabled" in again.stderr
    assert requests.get(server.index_url, auth=("__token__", fresh), timeout=10).status_code == 200

    assert requests.get(server.index_url, auth=("__token__", token), timeout=10).status_code == 401
    assert not signed_in_as(client, server)
    assert requests.get(server.url + link_path, timeout=10).status_code == 404
    resp = half.post("/login/2fa/totp", {"code": totp.at(used_at + 90)}, page=half.get("/login").text)
    assert not signed_in_as(half, server) and "/login" in resp.url
    revokes = events(server, "leaver", "token:revoke")
    assert revokes and revokes[0]["details"]["reason"] == "user_disabled"

    # the web says so too (for the token issued after re-enabling)
    resp = admin.post("/admin/users/leaver", {"action": "disable", "confirmed": "1"})
    resp = admin.post("/admin/users/leaver", {"action": "enable"})
    assert "leaver is enabled. Its 1 API token was revoked; issue new ones." in admin.flashes(resp)
