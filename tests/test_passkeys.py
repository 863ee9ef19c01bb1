"""Passkey rules on the server (Flask's test client and the services), with a software
authenticator: the answers a browser would never send (no user-verified flag, a user
handle nobody has) are refused and audited; a disabled user cannot sign in with one.
The real ceremony in chromium: tests/test_passkeys_browser.py."""

from __future__ import annotations

import json
import re

import pytest
from soft_key import SoftKey

from privindex.accounts import passkeys, second_factors, users
from privindex.auth import ratelimit
from privindex.db.models import AuditEvent, PasskeyChallenge
from privindex.ops import audit

PASSWORD = "correct horse battery"


@pytest.fixture
def conf(app):
    return app.extensions["privindex"].settings


def _user_with_passkey(conf, name: str = "alice") -> tuple[object, SoftKey]:
    user = users.create_user(name, PASSWORD, audit.CLI)
    key = SoftKey(conf.rp_id, conf.origin)
    options, pending = second_factors.registration_options(user, conf.rp_id, passkey=True)
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    passkeys.enrol(user, pending, "laptop", key.register(options), conf.rp_id, conf.origin, audit.CLI)
    return user, key


def _csrf(client) -> dict:
    page = client.get("/login").get_data(as_text=True)
    return {"X-CSRFToken": re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)}


def _sign_in(client, key: SoftKey, **claim):
    headers = _csrf(client)
    options = client.post("/login/passkey/options", headers=headers).get_json()
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    return client.post("/login/passkey", json={"credential": key.sign_in(options, **claim)}, headers=headers)


def _signed_in(client) -> bool:
    return client.get("/account/security").status_code == 200


def _failures() -> list[str]:
    rows = AuditEvent.select().where(AuditEvent.tag == "user:login:failure").order_by(AuditEvent.id)
    return [row.details for row in rows]


def test_a_passkey_with_user_verification_signs_in_alone(client, conf):
    _user, key = _user_with_passkey(conf)
    resp = _sign_in(client, key)
    assert resp.status_code == 200 and resp.get_json()["redirect"].endswith("/projects")
    assert _signed_in(client)
    event = AuditEvent.select().where(AuditEvent.tag == "user:login:passkey").get()
    assert event.subject == "alice" and '"label": "laptop"' in event.details


def test_an_answer_without_user_verification_is_refused(client, conf):
    _user, key = _user_with_passkey(conf)
    key.uv = False  # possession only: one factor
    resp = _sign_in(client, key)
    assert resp.status_code == 400
    assert "PIN or fingerprint" in resp.get_json()["error"]
    assert not _signed_in(client)
    assert "no_user_verification" in _failures()[-1]


def test_an_unknown_user_handle_is_refused(client, conf):
    _user, key = _user_with_passkey(conf)
    resp = _sign_in(client, key, user_handle=b"\x01" * 64)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "This passkey is not registered here."
    assert not _signed_in(client)
    assert "unknown_passkey" in _failures()[-1]


def test_a_disabled_user_cannot_sign_in_with_a_passkey(client, conf):
    user, key = _user_with_passkey(conf)
    users.set_disabled(user, True, audit.CLI)
    resp = _sign_in(client, key)
    assert resp.status_code == 400 and not _signed_in(client)
    assert "disabled" in _failures()[-1]


def test_a_challenge_signs_in_once(client, conf):
    _user, key = _user_with_passkey(conf)
    headers = _csrf(client)
    options = client.post("/login/passkey/options", headers=headers).get_json()
    answer = key.sign_in(options)
    assert client.post("/login/passkey", json={"credential": answer}, headers=headers).status_code == 200
    client.post("/logout", headers=headers)
    again = client.post("/login/passkey", json={"credential": answer}, headers=_csrf(client))
    assert again.status_code == 400 and "expired" in again.get_json()["error"]


def test_passkey_options_are_limited_per_client_address(client, conf):
    """Each call writes a challenge row before anyone is known: past the limit, a 429 that
    writes none, and other addresses are not held back."""
    headers = _csrf(client)
    allowed = int(ratelimit.PASSKEY_OPTIONS_PER_ADDRESS.split()[0])
    for _ in range(allowed):
        assert client.post("/login/passkey/options", headers=headers).status_code == 200
    rows = PasskeyChallenge.select().count()
    refused = client.post("/login/passkey/options", headers=headers)
    assert refused.status_code == 429 and "Too many requests" in refused.get_json()["error"]
    assert PasskeyChallenge.select().count() == rows
    other = client.post("/login/passkey/options", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 200


def test_a_key_without_user_verification_cannot_be_registered_as_a_passkey(conf):
    user = users.create_user("bob", PASSWORD, audit.CLI)
    key = SoftKey(conf.rp_id, conf.origin, uv=False)
    options, pending = second_factors.registration_options(user, conf.rp_id, passkey=True)
    with pytest.raises(second_factors.KeyRejected, match="cannot be a passkey"):
        passkeys.enrol(user, pending, "old key", key.register(options), conf.rp_id, conf.origin, audit.CLI)
    assert second_factors.user_keys(user) == []


def test_a_security_key_signs_in_alone_only_once_registered_again_as_a_passkey(client, conf):
    user = users.create_user("carol", PASSWORD, audit.CLI)
    key = SoftKey(conf.rp_id, conf.origin)
    options, pending = second_factors.registration_options(user, conf.rp_id)
    second_factors.enrol_key(user, pending, "blue", key.register(options), conf.rp_id, conf.origin, audit.CLI)
    assert _sign_in(client, key).status_code == 400  # a second factor only

    (old,) = second_factors.user_keys(user)
    options, pending = second_factors.registration_options(user, conf.rp_id, passkey=True)
    assert options["excludeCredentials"] == []  # the plain key may be registered again
    passkey = SoftKey(conf.rp_id, conf.origin)
    passkeys.enrol(
        user, pending, "", passkey.register(options), conf.rp_id, conf.origin, audit.CLI, replace=old.id
    )
    (turned,) = second_factors.user_keys(user)
    assert (turned.id, turned.label, turned.discoverable) == (old.id, "blue", True)
    assert _sign_in(client, passkey).status_code == 200 and _signed_in(client)


def test_turning_a_key_that_is_not_there_into_a_passkey_is_a_400(client, conf):
    _user, key = _user_with_passkey(conf)
    assert _sign_in(client, key).status_code == 200
    headers = _csrf(client)
    for replace in ["9" * 30, "-1", "x", 12345]:
        client.post("/account/passkeys/options", headers=headers)
        resp = client.post("/account/passkeys", json={"replace": replace, "credential": {}}, headers=headers)
        assert resp.status_code == 400, replace


def test_the_recheck_takes_only_the_users_own_passkey_with_user_verification(client, conf):
    """The 15-minute re-check with a passkey: another user's passkey, or an answer without
    user verification, is refused (401, audited); the user's own passes it."""
    _alice, key = _user_with_passkey(conf)
    _bob, bobs_key = _user_with_passkey(conf, "bob")
    assert _sign_in(client, key).status_code == 200
    with client.session_transaction() as session:
        session["auth_at"] = 0  # signed in long ago: the re-check is due
    page = client.get("/reauth?next=/tokens").get_data(as_text=True)
    assert "Confirm with a passkey" in page
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def confirm(signer: SoftKey):
        options = client.post("/reauth/passkey/options", headers={"X-CSRFToken": token}).get_json()
        assert options["userVerification"] == "required" and len(options["allowCredentials"]) == 1
        answer = json.dumps(signer.sign_in(options))
        return client.post("/reauth", data={"csrf_token": token, "next": "/tokens", "passkey": answer})

    assert confirm(bobs_key).status_code == 401
    key.uv = False
    refused = confirm(key)
    assert refused.status_code == 401 and "The passkey was not accepted." in refused.get_data(as_text=True)
    key.uv = True
    passed = confirm(key)
    assert passed.status_code == 302 and passed.headers["Location"].endswith("/tokens")
    reasons = [f for f in _failures() if "invalid_passkey_reauth" in f]
    assert len(reasons) == 2


@pytest.mark.app_settings(require_2fa=True, smtp_url="smtp://127.0.0.1:1", mail_from="pidx@example.org")
def test_no_passkey_before_a_verified_primary_address(app):
    """As for TOTP and security keys: a second factor comes after a verified address."""
    password = "correct horse battery staple 42"
    users.create_user("newbie", password, audit.CLI)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "newbie", "password": password}).status_code == 302
    for path in ("/account/passkeys/options", "/account/passkeys"):
        refused = client.post(path, json={})
        assert refused.status_code == 403
        assert refused.get_json()["error"] == "Verify your primary email address first."
