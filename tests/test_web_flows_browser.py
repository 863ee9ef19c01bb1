"""The account and admin flows in headless chromium at a phone's and a desktop's width:
a new token is shown once (a reload makes none) and downloads as a file, a revoke asks by
name, the password re-check carries the revoke out, the admin's confirmations name the user,
the session list names the browser. Each page these flows reach is checked like every page
(fits its width, axe-core finds nothing) and kept as a screenshot."""

from __future__ import annotations

import re

import pytest
from conftest import add_user
from playwright.sync_api import expect
from test_web_browser import PASSWORD, browser, enrol_totp, sign_in_password, web  # noqa: F401
from test_web_pages import check_page
from webclient import aged_session
from wheels import make_wheel, upload

pytestmark = pytest.mark.browser
WIDTHS = [390, 1280]


@pytest.fixture(params=WIDTHS)
def page(request, browser):  # noqa: F811
    # bypass_csp lets check_page inject axe-core (as in test_web_pages.py)
    context = browser.new_context(
        viewport={"width": request.param, "height": 900}, accept_downloads=True, bypass_csp=True
    )
    page = context.new_page()
    page.width = request.param
    yield page
    context.close()


def age_browser_sign_in(page, server) -> None:
    """As if this browser signed in 20 minutes ago: the next sensitive action re-checks."""
    cookies = page.context.cookies()
    for cookie in cookies:
        if cookie["name"] == "privindex_session":
            cookie["value"] = aged_session(cookie["value"], server)
    page.context.add_cookies(cookies)


def test_a_token_is_shown_once_and_the_recheck_carries_out_its_revoke(page, web, tmp_path):  # noqa: F811
    user, name = f"flows{page.width}", f"ci-upload-{page.width}"
    add_user(web, user, PASSWORD)
    sign_in_password(page, web, user)
    enrol_totp(page)

    page.goto(f"{web.origin}/tokens")
    page.get_by_label("Description (what is it for?)").fill(name)
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url(re.compile(r"/tokens/new$"))
    secret = page.get_by_label("Token", exact=True).input_value()
    check_page(page, "flows-token-created", page.width)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the token").click()
    assert open(download.value.path()).read().strip() == secret

    page.reload()  # what a user does by mistake: no second token, the secret is gone
    page.wait_for_url(re.compile(r"/tokens$"))
    expect(page.get_by_text("A new token is shown only once.")).to_be_visible()
    assert secret not in page.content()
    expect(page.get_by_role("button", name=re.compile("^Revoke token"))).to_have_count(1)
    check_page(page, "flows-tokens", page.width)

    age_browser_sign_in(page, web)
    page.get_by_role("button", name=f"Revoke token {name}").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    check_page(page, "flows-reauth-resume", page.width)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()

    # the click that was interrupted goes on: to the confirmation, by name
    expect(page.get_by_role("heading", name=f"Revoke token {name}")).to_be_visible()
    check_page(page, "flows-confirm-revoke", page.width)
    assert PASSWORD not in page.content()
    page.get_by_role("button", name=f"Revoke token {name}").click()
    page.wait_for_url(re.compile(r"/tokens$"))
    expect(page.get_by_text("The token was revoked.")).to_be_visible()
    expect(page.get_by_role("button", name=f"Revoke token {name}")).to_have_count(0)
    assert upload(web.url, secret, make_wheel(tmp_path, f"flows-{page.width}", "1.0")).status_code == 403


def test_an_admin_confirms_by_name_and_the_sessions_name_the_browser(page, web):  # noqa: F811
    admin, target = f"flowadmin{page.width}", f"leaver{page.width}"
    add_user(web, admin, PASSWORD, admin=True)
    add_user(web, target, PASSWORD)
    sign_in_password(page, web, admin)
    codes = enrol_totp(page)
    assert len(codes) == 8

    page.goto(f"{web.origin}/account")
    expect(page.get_by_text("Chrome on Linux")).to_be_visible()  # not the raw User-Agent
    check_page(page, "flows-account", page.width)
    page.goto(f"{web.origin}/account/security")
    check_page(page, "flows-security", page.width)
    page.get_by_role("button", name="Make new recovery codes").click()
    page.wait_for_url(re.compile(r"/account/recovery-codes/new$"))
    check_page(page, "flows-recovery-codes", page.width)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the recovery codes").click()
    saved = open(download.value.path()).read().split()
    assert len(saved) == 8 and saved != codes
    page.reload()  # shown once: the reload makes no new codes and shows none
    page.wait_for_url(re.compile(r"/account/security$"))
    expect(page.get_by_text("8 unused recovery codes left.")).to_be_visible()
    assert not any(code in page.content() for code in saved)

    page.goto(f"{web.origin}/admin/users")
    check_page(page, "flows-admin-users", page.width)
    page.get_by_role("button", name=f"Password link for {target}").click()
    page.wait_for_url(re.compile(r"/admin/users/setup-link$"))
    assert "/setup-password/" in page.get_by_role("textbox", name="Link").input_value()
    check_page(page, "flows-setup-link", page.width)
    page.get_by_role("link", name="Back to users").click()
    page.get_by_role("button", name=f"Remove {target}").click()
    expect(page.get_by_role("heading", name=f"Remove {target}")).to_be_visible()
    expect(page.get_by_text("the name cannot be taken again")).to_be_visible()
    check_page(page, "flows-confirm-remove", page.width)
    page.get_by_role("link", name="Cancel").click()  # the way back changes nothing
    page.wait_for_url(re.compile(r"/admin/users$"))
    page.get_by_role("button", name=f"Remove {target}").click()
    page.get_by_role("button", name=f"Remove {target}").click()
    expect(page.get_by_text(f"{target} is removed.")).to_be_visible()
    expect(page.get_by_role("button", name=f"Remove {target}")).to_have_count(0)


def test_the_flow_pages_in_german(page, web):  # noqa: F811
    """The same pages in German: longer words, the same checks (and the accessible names
    still contain the visible labels)."""
    admin = f"deadmin{page.width}"
    add_user(web, admin, PASSWORD, admin=True)
    add_user(web, f"kollege{page.width}", PASSWORD)
    sign_in_password(page, web, admin)
    enrol_totp(page)
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Change language").click()
    for name, path in [("account", "/account"), ("security", "/account/security"), ("tokens", "/tokens")]:
        page.goto(f"{web.origin}{path}")
        check_page(page, f"flows-de-{name}", page.width)
    page.goto(f"{web.origin}/admin/users")
    check_page(page, "flows-de-admin-users", page.width)
    page.get_by_role("button", name=f"Zweite Faktoren zurücksetzen: kollege{page.width}").click()
    expect(
        page.get_by_role("heading", name=f"Zweite Faktoren zurücksetzen: kollege{page.width}")
    ).to_be_visible()
    check_page(page, "flows-de-confirm", page.width)
