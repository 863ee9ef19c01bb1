"""Passkeys in chromium with a CDP virtual authenticator (the recipe of
tests/test_web_browser.py): one with resident keys and user verification registers a
passkey and signs in with it alone; one without them is told what it lacks and still
works as a security key after the password."""

from __future__ import annotations

import re

import pytest
import test_web_browser
from conftest import add_user
from playwright.sync_api import expect
from test_web_browser import PASSWORD, audit_events, shot, sign_in_password, sign_out, virtual_key
from test_web_flows_browser import age_browser_sign_in

browser, page, web = test_web_browser.browser, test_web_browser.page, test_web_browser.web  # its fixtures

pytestmark = pytest.mark.browser

PASSKEY_CAPABLE = {"hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True}


def shots(page, name: str) -> None:
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"{name}-{width}")


def enrol_passkey(page, label: str) -> None:
    page.get_by_label("Name for a new passkey").fill(label)
    page.get_by_role("button", name="Add a passkey").click()


def test_a_passkey_registered_on_the_security_page_signs_in_alone(page, web):
    add_user(web, "pkuser", PASSWORD)
    cdp, auth_id = virtual_key(page, **PASSKEY_CAPABLE)
    sign_in_password(page, web, "pkuser")
    assert page.url.endswith("/account/security")
    enrol_passkey(page, "Laptop passkey")
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("#passkeys")).to_contain_text("Your passkeys: Laptop passkey")
    (credential,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
    assert credential["isResidentCredential"]
    shots(page, "security-with-passkey")

    sign_out(page)
    username = page.get_by_label("Username")
    assert username.get_attribute("autocomplete") == "username webauthn"  # the browser's chooser
    shots(page, "login-with-passkey-option")
    page.get_by_role("button", name="Sign in with a passkey").click()  # no username, no password
    page.wait_for_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out pkuser")).to_be_visible()
    logins = [e for e in audit_events(web, "pkuser") if e["tag"] == "user:login:passkey"]
    assert [e["details"]["label"] for e in logins] == ["Laptop passkey"]


def test_a_key_without_resident_keys_or_user_verification_is_told_what_it_lacks(page, web):
    add_user(web, "plainkey", PASSWORD)
    virtual_key(page)  # ctap2, no resident keys, no user verification
    sign_in_password(page, web, "plainkey")
    enrol_passkey(page, "Old key")
    expect(page.locator("form.passkey-enrol .js-error")).to_contain_text(
        "This key cannot be a passkey: it cannot keep a sign-in on itself"
    )
    shots(page, "security-passkey-refused")

    page.get_by_label(re.compile("Name for a new key")).fill("Old key")
    page.get_by_role("button", name="Add a security key").click()
    page.get_by_role("link", name="I have saved them").click()
    sign_out(page)
    sign_in_password(page, web, "plainkey")
    page.get_by_role("button", name="Use my security key").click()
    page.wait_for_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out plainkey")).to_be_visible()


def test_a_security_key_registered_again_becomes_a_passkey(page, web):
    add_user(web, "turner", PASSWORD)
    virtual_key(page, **PASSKEY_CAPABLE)
    sign_in_password(page, web, "turner")
    page.get_by_label(re.compile("Name for a new key")).fill("Blue key")
    page.get_by_role("button", name="Add a security key").click()
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("button", name="Make “Blue key” a passkey").click()
    expect(page.locator("#passkeys")).to_contain_text("Your passkeys: Blue key")
    expect(page.get_by_role("button", name="Make “Blue key” a passkey")).to_have_count(0)

    sign_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out turner")).to_be_visible()


# Headless chromium reports no conditional mediation (no autofill UI), so this stands in for
# the browser's chooser: it says conditional mediation is available, records the request,
# and answers it as a user picking the passkey in the username field's list would.
CHOOSER = """
PublicKeyCredential.isConditionalMediationAvailable = async () => true;
const realGet = navigator.credentials.get.bind(navigator.credentials);
navigator.credentials.get = (options) => {
  if (options.mediation !== "conditional") return realGet(options);
  console.log("conditional request, allowCredentials: " + options.publicKey.allowCredentials.length);
  const {mediation, ...picked} = options;
  return realGet(picked);
};
"""


def test_the_browsers_passkey_chooser_on_the_username_field_signs_in(page, web):
    add_user(web, "chooser", PASSWORD)
    virtual_key(page, **PASSKEY_CAPABLE)
    sign_in_password(page, web, "chooser")
    enrol_passkey(page, "Phone")
    page.get_by_role("link", name="I have saved them").click()
    sign_out(page)

    page.add_init_script(CHOOSER)
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    page.goto(f"{web.origin}/login")  # nothing clicked: the chooser's pick signs in
    page.wait_for_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out chooser")).to_be_visible()
    assert "conditional request, allowCredentials: 0" in logged


def test_the_recheck_of_a_sensitive_action_is_passed_with_a_passkey(page, web):
    """Revoking a token 20 minutes after signing in asks again: "Confirm with a passkey"
    (a UV assertion of one of the user's passkeys) passes it, no password typed, and the
    interrupted revoke goes on."""
    add_user(web, "rechecker", PASSWORD)
    virtual_key(page, **PASSKEY_CAPABLE)
    sign_in_password(page, web, "rechecker")
    enrol_passkey(page, "Laptop passkey")
    page.get_by_role("link", name="I have saved them").click()
    page.goto(f"{web.origin}/tokens")
    page.get_by_label("Description (what is it for?)").fill("nightly")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url(re.compile(r"/tokens/new$"))
    page.goto(f"{web.origin}/tokens")

    age_browser_sign_in(page, web)
    page.get_by_role("button", name="Revoke token nightly").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    shots(page, "reauth-with-passkey")
    page.get_by_role("button", name="Confirm with a passkey").click()
    expect(page.get_by_role("heading", name="Revoke token nightly")).to_be_visible()  # resumed
    page.get_by_role("button", name="Revoke token nightly").click()
    page.wait_for_url(re.compile(r"/tokens$"))
    expect(page.get_by_text("The token was revoked.")).to_be_visible()
    tags = [e["tag"] for e in audit_events(web, "rechecker")]
    assert "token:revoke" in tags and "user:login:failure" not in tags
