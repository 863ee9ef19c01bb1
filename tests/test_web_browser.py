"""The web UI in a real browser: Debian's chromium driven by Playwright, with a virtual
security key from Chrome's DevTools WebAuthn domain. Screenshots of the main pages are
saved in test-artifacts/screenshots/ for a reviewer to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time

import pyotp
import pytest
import requests
import testdb
from conftest import ROOT, add_user, privindex_cli, run
from playwright.sync_api import expect
from wheels import make_wheel

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory, dists):
    """A server of this module's own (the sign-in rate limits are per database)."""
    from conftest import populate, start_server

    base = tmp_path_factory.mktemp("web")
    populate(base / "store", dists)
    server = start_server(base / "store", base / "data")
    server.origin = server.url.replace("127.0.0.1", "localhost")  # WebAuthn needs a domain
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def virtual_key(page, **options: bool) -> tuple[object, str]:
    """A CTAP2 key without resident keys or user verification unless options say so."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    auth_id = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": False,
                "isUserVerified": False,
                "automaticPresenceSimulation": True,
                **options,
            }
        },
    )["authenticatorId"]
    return cdp, auth_id


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in_password(page, web, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{web.origin}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page) -> None:
    page.get_by_role("button", name=re.compile("Sign out")).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def recovery_codes(page) -> list[str]:
    return [c.strip() for c in page.locator("ul.codes code").all_inner_texts()]


def audit_events(web, user: str) -> list[dict]:
    import json

    out = privindex_cli(web, "audit", "--user", user, "--json").stdout
    return [json.loads(line) for line in out.splitlines()]


def test_security_key_enrol_sign_out_and_sign_in(page, web):
    add_user(web, "keyuser", PASSWORD)
    cdp, auth_id = virtual_key(page)
    sign_in_password(page, web, "keyuser")
    # require_2fa: the only place to go is the enrolment page
    assert page.url.endswith("/account/security")
    expect(page.get_by_text("This server requires a second factor")).to_be_visible()
    shot(page, "security-before-enrolment")
    page.goto(f"{web.origin}/tokens")
    assert page.url.endswith("/account/security")

    page.get_by_label(re.compile("Name for a new key")).fill("YubiKey blue")
    page.get_by_role("button", name="Add a security key").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = recovery_codes(page)
    assert len(codes) == 8 and all(re.fullmatch(r"[0-9a-f]{4}(-[0-9a-f]{4}){3}", c) for c in codes)
    shot(page, "recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_role("cell", name="YubiKey blue", exact=True)).to_be_visible()
    shot(page, "security-with-key")

    sign_out(page)
    sign_in_password(page, web, "keyuser")
    assert page.url.endswith("/login/2fa")
    shot(page, "two-factor-choice")
    page.get_by_role("button", name="Use my security key").click()
    page.wait_for_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out keyuser")).to_be_visible()
    sign_count = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"][0][
        "signCount"
    ]
    assert sign_count >= 2  # once at enrolment, once at sign-in

    tags = [(e["tag"], e["details"].get("method")) for e in audit_events(web, "keyuser")]
    assert ("user:2fa:add", "webauthn") in tags
    assert ("user:login:success", "webauthn") in tags


def test_a_cloned_key_whose_counter_goes_back_is_refused_and_audited(page, web):
    add_user(web, "cloned", PASSWORD)
    virtual_key(page)
    sign_in_password(page, web, "cloned")
    page.get_by_label(re.compile("Name for a new key")).fill("key")
    page.get_by_role("button", name="Add a security key").click()
    page.get_by_role("link", name="I have saved them").click()
    sign_out(page)
    # the server has seen a much higher counter than this authenticator will send
    with testdb.connect(web.data_dir) as db:
        db.execute("UPDATE security_key SET sign_count = 1000 WHERE label = 'key'")
    sign_in_password(page, web, "cloned")
    page.get_by_role("button", name="Use my security key").click()
    expect(page.get_by_text("The security key was not accepted.")).to_be_visible()
    assert page.url.endswith("/login/2fa")
    assert "webauthn:sign-count-regression" in [e["tag"] for e in audit_events(web, "cloned")]


def _totp_secret(page) -> str:
    return page.locator("#totp-secret").inner_text().replace(" ", "")


def test_totp_enrol_sign_in_and_replay_refused(page, web):
    add_user(web, "totpuser", PASSWORD)
    sign_in_password(page, web, "totpuser")
    page.get_by_role("button", name="Set up an authenticator app").click()
    shot(page, "totp-setup")
    secret = _totp_secret(page)
    totp = pyotp.TOTP(secret)
    now = time.time()
    page.get_by_label("The 6-digit code the app shows now").fill(totp.at(now))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_text("An authenticator app is set up.")).to_be_visible()
    sign_out(page)

    # the code used to confirm may not sign in; the next time step's may (±1 step window)
    next_code = totp.at(now + 30)
    sign_in_password(page, web, "totpuser")
    page.get_by_label("6-digit code").fill(totp.at(now))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not valid.")).to_be_visible()
    page.get_by_label("6-digit code").fill(next_code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/projects$"))
    sign_out(page)

    # the same code again, a moment later: refused even though it is still in the window
    sign_in_password(page, web, "totpuser")
    page.get_by_label("6-digit code").fill(next_code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not valid.")).to_be_visible()
    reasons = [
        e["details"].get("reason") for e in audit_events(web, "totpuser") if e["tag"] == "user:login:failure"
    ]
    assert reasons.count("invalid_totp") == 2


def enrol_totp(page) -> list[str]:
    """Set up an authenticator app from the security page; returns the recovery codes."""
    page.get_by_role("button", name="Set up an authenticator app").click()
    totp = pyotp.TOTP(_totp_secret(page))
    page.get_by_label("The 6-digit code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = recovery_codes(page)
    page.get_by_role("link", name="I have saved them").click()
    return codes


def test_recovery_code_works_once(page, web):
    add_user(web, "recover", PASSWORD)
    sign_in_password(page, web, "recover")
    code = enrol_totp(page)[3]
    sign_out(page)

    sign_in_password(page, web, "recover")
    page.get_by_label("One of the recovery codes you saved").fill(code.upper())
    page.get_by_role("button", name="Use recovery code").click()
    page.wait_for_url(re.compile(r"/projects$"))
    page.goto(f"{web.origin}/account/security")
    expect(page.get_by_text("7 unused recovery codes left.")).to_be_visible()
    sign_out(page)

    sign_in_password(page, web, "recover")
    page.get_by_label("One of the recovery codes you saved").fill(code)
    page.get_by_role("button", name="Use recovery code").click()
    expect(page.get_by_text("That code is not valid.")).to_be_visible()
    tags = [e["tag"] for e in audit_events(web, "recover")]
    assert tags.count("user:recovery-code:use") == 1


def test_token_created_in_the_ui_uploads_with_twine(page, web, dists, tmp_path):
    add_user(web, "uploader", PASSWORD)
    sign_in_password(page, web, "uploader")
    enrol_totp(page)

    page.get_by_role("link", name="Tokens").click()
    shot(page, "tokens")
    page.get_by_label("Description (what is it for?)").fill("laptop twine")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("Token", exact=True).input_value()
    assert token.startswith("pidx_")
    assert "password = " + token in page.locator("#pypirc").inner_text()
    shot(page, "token-created")

    wheel = make_wheel(tmp_path, "uiupload", "1.0")
    proc = run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            f"{web.url}/legacy/",
            "-u",
            "__token__",
            "-p",
            token,
            str(wheel),
        ],
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = requests.get(f"{web.url}/simple/uiupload/", timeout=10).text
    assert wheel.name in listing

    page.goto(f"{web.origin}/projects/uiupload?tab=files")
    expect(page.get_by_role("link", name=wheel.name, exact=True)).to_be_visible()
    expect(page.get_by_text("by uploader with the token “laptop twine”")).to_be_visible()
    shot(page, "project")
    page.goto(f"{web.origin}/tokens")
    expect(page.get_by_role("cell", name="laptop twine", exact=True)).to_be_visible()
    page.goto(f"{web.origin}/audit")
    shot(page, "audit")


def test_lockout_after_repeated_failures(browser, fresh_server):
    server = fresh_server()
    server.origin = server.url.replace("127.0.0.1", "localhost")
    add_user(server, "locked", PASSWORD)
    page = browser.new_page()
    try:
        for _ in range(10):
            sign_in_password(page, server, "locked", "wrong password!")
            expect(page.get_by_text("Wrong username or password.")).to_be_visible()
        sign_in_password(page, server, "locked")  # even the right password is refused now
        expect(
            page.get_by_text(re.compile(r"Too many failed attempts. Try again in [0-9]+ minutes?\."))
        ).to_be_visible()
        assert page.url.endswith("/login")
        shot(page, "lockout")
    finally:
        page.close()
