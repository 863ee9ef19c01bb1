"""Attacks that already fail, kept as tests so a later change cannot reopen them: forged
forms (CSRF), skipping the second factor, escaping a token's scope, reading a private index,
open redirects, stored XSS, weak passwords, and HTTPS pages without HSTS."""

from __future__ import annotations

import html

import pytest
import requests
from conftest import add_user, privindex_cli, served, start_server, twine
from redteam import PASSWORD, signed_in, signed_in_as
from safe_rules import post_rules
from webclient import WebClient
from wheels import make_wheel

pytestmark = pytest.mark.slow  # a red-team run against a live server, accounts made by the real CLI


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory.mktemp("attacks"), env={"PRIVINDEX_READ_ACCESS": "token"}) as srv:
        yield srv


def test_every_cookie_authenticated_post_needs_the_csrf_token(server):
    client, *_ = signed_in(server, "csrfvictim", admin=True)
    checked = 0
    for rule in post_rules(server):
        if not rule.endpoint.startswith("web."):
            continue  # the upload API authenticates each request with a token, not a cookie
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        for kwargs in ({"data": {"password": PASSWORD}}, {"json": {"credential": {}}}):
            resp = client.session.post(server.url + path, timeout=10, allow_redirects=False, **kwargs)
            assert resp.status_code == 400 and "The form has expired" in resp.text, path
        checked += 1
    assert checked >= 20
    assert signed_in_as(client, server)


def test_the_password_alone_reaches_nothing(server):
    _client, *_ = signed_in(server, "halfway")
    half = WebClient(server.url)
    assert half.login("halfway", PASSWORD).url.endswith("/login/2fa")
    for path in ("/account", "/account/security", "/tokens", "/audit", "/admin/users", "/projects"):
        resp = half.get(path, allow_redirects=False)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path
    page = half.get("/login/2fa").text
    resp = half.post("/tokens", {"description": "sneaky"}, page=page)
    assert "/login" in resp.url
    resp = half.post("/account/keys/options", page=page)
    assert "/login" in resp.url
    assert "sneaky" not in privindex_cli(server, "token", "list", "halfway").stdout


def test_a_project_scoped_token_cannot_upload_elsewhere(server, tmp_path):
    signed_in(server, "scoped")
    wide = privindex_cli(server, "token", "create", "scoped").stdout.strip()
    assert twine(server.url, wide, make_wheel(tmp_path, "mine", "1.0")).returncode == 0
    narrow = privindex_cli(server, "token", "create", "scoped", "--project", "mine").stdout.strip()
    proc = twine(server.url, narrow, make_wheel(tmp_path, "theirs", "1.0"))
    assert proc.returncode != 0 and "not valid for project 'theirs'" in proc.output
    reader = privindex_cli(server, "token", "create", "scoped", "--read-only").stdout.strip()
    proc = twine(server.url, reader, make_wheel(tmp_path, "mine", "2.0"))
    assert proc.returncode != 0 and "read-only" in proc.output


def test_a_private_index_shows_nothing_without_a_token(server, tmp_path):
    signed_in(server, "private")
    token = privindex_cli(server, "token", "create", "private").stdout.strip()
    twine(server.url, token, make_wheel(tmp_path, "secretpkg", "1.0"), check=True)
    for path in ("/simple/", "/simple/secretpkg/", "/packages/secretpkg-1.0-py3-none-any.whl"):
        resp = requests.get(server.url + path, timeout=10)
        assert resp.status_code == 401 and "secretpkg" not in resp.text, path
    for path in ("/projects", "/projects/secretpkg"):
        resp = requests.get(server.url + path, timeout=10, allow_redirects=False)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "http:evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_never_leads_off_site(server, target):
    add_user(server, f"hop{abs(hash(target)) % 10**6}", PASSWORD)
    client = WebClient(server.url)
    resp = client.post(
        "/login",
        {"username": f"hop{abs(hash(target)) % 10**6}", "password": PASSWORD, "next": target},
        allow_redirects=False,
    )
    location = resp.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "evil" not in location


def test_token_descriptions_are_not_markup(server):
    client, *_ = signed_in(server, "xss")
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    client.post("/tokens", {"description": evil}, page=client.get("/tokens").text)
    page = client.get("/tokens").text
    assert "<script>alert" not in page and html.escape(evil) in page
    page = client.get("/audit").text
    assert "<script>alert" not in page and "onerror=alert(2)" in page  # shown, as text


def test_weak_passwords_are_refused_with_a_reason(server):
    proc = privindex_cli(
        server, "user", "add", "weakling", "--password-stdin", stdin="password1\n", check=False
    )
    assert proc.returncode == 1 and "too easy to guess" in proc.stderr and "words" in proc.stderr
    proc = privindex_cli(
        server, "user", "add", "weakling", "--password-stdin", stdin="privindex2024\n", check=False
    )
    assert proc.returncode == 1 and "too easy to guess" in proc.stderr
    client, *_ = signed_in(server, "changer")
    resp = client.post("/account", {"current": PASSWORD, "password": "changer123", "password2": "changer123"})
    assert resp.status_code == 400 and any("too easy to guess" in f for f in client.flashes(resp))
    assert client.login("changer", PASSWORD)  # the old password still works


def test_hsts_only_over_https(server, tmp_path):
    assert "Strict-Transport-Security" not in requests.get(f"{server.url}/login", timeout=10).headers
    https = start_server(
        tmp_path / "s", tmp_path / "d", env={"PRIVINDEX_PUBLIC_URL": "https://pypi.example.test"}
    )
    try:
        headers = requests.get(f"{https.url}/login", timeout=10).headers
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        https.stop()


def test_ids_too_large_for_the_database_are_a_404(server):
    client, *_ = signed_in(server, "bigids")
    page = client.get("/account").text
    for path in ("/account/sessions/{}/end", "/tokens/{}/revoke", "/account/keys/{}/delete"):
        assert client.post(path.format(10**22), page=page).status_code == 404, path
    assert signed_in_as(client, server)
