"""create_app wires one database to one app: two apps in one process stay apart."""

from __future__ import annotations

import base64
import re
import threading

import pytest

from privindex.accounts import api_tokens, users
from privindex.db.models import User
from privindex.ops import audit

PASSWORD = "correct horse battery"


def sign_in(client, username: str):
    page = client.get("/login").text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    return client.post("/login", data={"csrf_token": csrf, "username": username, "password": PASSWORD})


def basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


def test_two_apps_in_one_process_keep_their_users_and_tokens_apart(make_app):
    one = make_app("one", read_access="token", require_2fa=False)
    two = make_app("two", read_access="token", require_2fa=False)
    made = {}
    for app, name in ((one, "ann"), (two, "bob")):
        with app.app_context():
            user = users.create_user(name, PASSWORD, audit.CLI)
            made[name] = api_tokens.create_token(user, audit.CLI, require_2fa=False)[1]
    with one.app_context():
        assert [u.username for u in User.select()] == ["ann"]
    with two.app_context():
        assert [u.username for u in User.select()] == ["bob"]

    c1, c2 = one.test_client(), two.test_client()
    for _ in range(3):  # interleaved: each answer comes from its own app's database
        assert c1.get("/simple/", headers=basic(made["ann"])).status_code == 200
        assert c2.get("/simple/", headers=basic(made["ann"])).status_code == 401
        assert c2.get("/simple/", headers=basic(made["bob"])).status_code == 200
        assert c1.get("/simple/", headers=basic(made["bob"])).status_code == 401
    assert sign_in(c1, "ann").status_code == 302 and sign_in(c2, "bob").status_code == 302
    assert sign_in(one.test_client(), "bob").status_code == 401
    assert sign_in(two.test_client(), "ann").status_code == 401


def test_two_apps_answering_from_many_threads_at_once_stay_apart(make_app):
    apps = {"ann": make_app("one", read_access="token"), "bob": make_app("two", read_access="token")}
    tokens = {}
    for name, app in apps.items():
        with app.app_context():
            tokens[name] = api_tokens.create_token(
                users.create_user(name, PASSWORD, audit.CLI), audit.CLI, require_2fa=False
            )[1]
    wrong: list[tuple] = []

    def hammer(app_name: str, token_name: str, expected: int):
        client = apps[app_name].test_client()  # a new thread: an empty context, like waitress's
        for _ in range(25):
            status = client.get("/simple/", headers=basic(tokens[token_name])).status_code
            if status != expected:
                wrong.append((app_name, token_name, status))

    threads = [
        threading.Thread(target=hammer, args=args)
        for args in [("ann", "ann", 200), ("bob", "bob", 200), ("ann", "bob", 401), ("bob", "ann", 401)] * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_outside_any_app_the_database_is_not_guessed(make_app):
    make_app("one")
    with pytest.raises(AttributeError, match="no privindex database is bound here"):
        User.select().count()
