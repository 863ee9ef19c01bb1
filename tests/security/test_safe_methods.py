"""Issue 16.1: HEAD ran the POST branch of views that tested `method == "GET"`, and Flask-WTF
does not check CSRF on HEAD: `HEAD /login` with a form signed in, `HEAD .../delete` deleted.
Every route that accepts POST is sent HEAD and GET with a body the POST would accept; nothing
may change (database rows, store files, who is signed in)."""

from __future__ import annotations

import re

import pytest
import requests
from conftest import served
from helpers import store_files
from redteam import PASSWORD, db_rows, signed_in, signed_in_as
from safe_rules import post_rules
from webclient import _CSRF, WebClient

pytestmark = pytest.mark.slow  # a red-team run against a live server, accounts made by the real CLI


@pytest.fixture(scope="module")
def server(tmp_path_factory, dists):
    with served(tmp_path_factory.mktemp("safe-methods"), dists=dists) as srv:
        yield srv


def test_head_and_get_never_change_anything(server):
    admin, totp, _codes, _at = signed_in(server, "root", admin=True)
    victim, *_ = signed_in(server, "victim")
    link = admin.post("/admin/users", {"username": "newcomer"}).text
    setup_key = re.search(r'/setup-password/([^"]+)"', link).group(1)
    wheel = next(p for p in store_files(server) if p.startswith("alpha/") and p.endswith(".whl"))
    filename = wheel.split("/")[1]
    security = admin.get("/account/security").text
    token_page = admin.post("/tokens", {"description": "walker"}, page=admin.get("/tokens").text).text
    token_id = re.findall(r"/tokens/(\d+)/revoke", admin.get("/tokens").text)[0]
    session_id = re.findall(r"/account/sessions/(\d+)/end", admin.get("/account").text)[0]
    assert "pidx_" in token_page
    values = {
        "name": "alpha",
        "filename": filename,
        "username": "victim",
        "key": setup_key,
        "key_id": "1",
        "token_id": token_id,
        "session_id": session_id,
        "publisher_id": "1",
        "address_id": "1",
        "item_id": "1",
        "hook_id": "1",
        "delivery_id": "1",
        "number": "1",
        "version": "1.0",
        "fmt": "csv",
    }
    csrf = _CSRF.search(security).group(1)
    body = {
        "csrf_token": csrf,
        "username": "root",
        "password": PASSWORD,
        "password2": PASSWORD,
        "current": PASSWORD,
        "confirm": filename,
        "action": "disable",
        "code": totp.now(),
        "description": "sneaky",
        "role": "owner",
        "next": "/tokens",
    }

    before = (db_rows(server), store_files(server))
    rules = post_rules(server)
    assert len(rules) > 20
    for rule in rules:
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<{arg}>", values[arg]).replace(f"<int:{arg}>", values[arg])
        for method in ("HEAD", "GET"):
            for client in (admin.session, requests.Session()):  # signed in, and a stranger
                resp = client.request(method, server.url + path, data=body, timeout=10, allow_redirects=False)
                assert resp.status_code < 500, (method, path)
                assert (db_rows(server), store_files(server)) == before, f"{method} {path} changed something"
    assert signed_in_as(admin, server) and signed_in_as(victim, server)


def test_head_login_with_a_form_does_not_sign_in(server):
    from conftest import add_user

    add_user(server, "headless", PASSWORD)
    client = WebClient(server.url)
    page = client.get("/login").text
    token = _CSRF.search(page).group(1)
    client.session.head(
        f"{server.url}/login",
        data={"csrf_token": token, "username": "headless", "password": PASSWORD},
        timeout=10,
    )
    assert not signed_in_as(client, server)
    assert "/login" in client.get("/tokens").url
