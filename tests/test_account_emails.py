"""The account page's email addresses, in-process (Flask's test client; the mail a user reads
is the outbox row it would be sent from): a stale session cannot move them, every change is
told to the address notices went to before it, and verification mails are rate limited."""

from __future__ import annotations

import json

import pytest

from privindex.accounts import emails, users
from privindex.db.models import EmailAddress, OutboxItem
from privindex.ops import audit

PW = "correct horse battery staple 42"
MAIL_ON = {"require_2fa": False, "smtp_url": "smtp://127.0.0.1:1", "mail_from": "pidx@example.org"}


def mails() -> list[dict]:
    return [json.loads(i.payload) for i in OutboxItem.select().order_by(OutboxItem.id) if i.kind == "mail"]


def signed_in(app, name: str, address: str | None = "old@example.org"):
    user = users.create_user(name, PW, audit.CLI)
    if address:
        emails.add_address(user, address, audit.CLI, verified=True)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": name, "password": PW}).status_code == 302
    return client


def address_id(address: str) -> int:
    return EmailAddress.get(EmailAddress.address == address).id


@pytest.mark.app_settings(**MAIL_ON)
def test_a_stale_session_cannot_add_send_make_primary_or_remove_an_address(app):
    client = signed_in(app, "vic")
    emails.add_address(users.get_user("vic"), "new@example.org", audit.CLI, verified=True)
    with client.session_transaction() as s:
        s["auth_at"] = 0  # signed in long ago
    before = len(mails())
    for path, form in (
        ("/account/emails", {"address": "mallory@evil.example"}),
        (f"/account/emails/{address_id('new@example.org')}/send", {}),
        (f"/account/emails/{address_id('new@example.org')}/primary", {}),
        (f"/account/emails/{address_id('old@example.org')}/remove", {}),
    ):
        answer = client.post(path, data=form)
        assert answer.status_code == 200 and b'name="password"' in answer.data, path  # asks again
    assert [(a.address, a.is_primary) for a in emails.addresses(users.get_user("vic"))] == [
        ("old@example.org", True),
        ("new@example.org", False),
    ]
    assert len(mails()) == before


@pytest.mark.app_settings(**MAIL_ON)
def test_adding_promoting_and_removing_an_address_is_told_to_the_previous_primary(app):
    client = signed_in(app, "vic")
    client.post("/account/emails", data={"address": "new@example.org"})
    added = mails()[-2]  # then the verification link to the new address
    assert added["to"] == "old@example.org" and "new@example.org was added" in added["text"]
    emails.verify(emails.verification_key(users.get_user("vic"), address_id("new@example.org")), audit.CLI)

    client.post(f"/account/emails/{address_id('new@example.org')}/primary")
    promoted = mails()[-1]
    assert promoted["to"] == "old@example.org" and "now go to new@example.org" in promoted["text"]

    client.post(f"/account/emails/{address_id('old@example.org')}/remove")
    removed = mails()[-1]
    assert removed["to"] == "new@example.org" and "old@example.org was removed" in removed["text"]


@pytest.mark.app_settings(**MAIL_ON)
def test_verification_mails_are_limited_per_account_and_per_address(app):
    client = signed_in(app, "m", address=None)
    assert client.post("/account/emails", data={"address": "target@victim.example"}).status_code == 302
    target = address_id("target@victim.example")
    answers = [client.post(f"/account/emails/{target}/send").status_code for _ in range(5)]
    assert answers == [302] * 4 + [429]  # the add's mail was the first of 5 per hour
    assert len([m for m in mails() if m["to"] == "target@victim.example"]) == 5

    # another account cannot take over the flood: the address has had its 5
    other = signed_in(app, "n", address=None)
    assert other.post("/account/emails", data={"address": "target@victim.example"}).status_code == 429
    assert len([m for m in mails() if m["to"] == "target@victim.example"]) == 5
