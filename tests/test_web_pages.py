"""Every page in a real browser at a phone's width (390 px) and a desktop's (1280 px): no
horizontal scrolling, no axe-core violations, a screenshot of each in
test-artifacts/screenshots/. And signing in with the keyboard alone.

axe-core comes from npm into tests/node_modules (.ci/run installs it there).
"""

from __future__ import annotations

import os
import re
import time

import pytest
from conftest import ROOT, add_user, enrol_totp_cli, privindex_cli
from playwright.sync_api import expect
from test_web_browser import PASSWORD, SHOTS, browser, enrol_totp, sign_in_password  # noqa: F401
from wheels import make_wheel

pytestmark = pytest.mark.browser

AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
README = """# Demo package

A demo with **Markdown**, a list and code:

- one
- two

```python
import demo_pkg
```

<script>document.title = "pwned"</script>
"""
HEADERS = (
    "Summary: A package to try the browser with\nDescription-Content-Type: text/markdown\n"
    "Project-URL: Source, https://example.org/demo\nProject-URL: Evil, javascript:alert(1)\n"
    "Classifier: Programming Language :: Python :: 3\nClassifier: License :: OSI Approved :: MIT License\n"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server with a described project (a long filename included), an archived one, an
    admin with an authenticator app, and a token that uploaded a file."""
    from conftest import start_server

    base = tmp_path_factory.mktemp("pages")
    store = base / "store"
    store.mkdir()
    make_wheel(store, "demo-pkg", "1.0", headers=HEADERS, description=README)
    make_wheel(store, "demo-pkg", "0.9", headers="Summary: older\n")
    make_wheel(store, "a-project-with-a-rather-long-name-for-small-screens", "2024.12.31.post1")
    make_wheel(store, "old-demo", "1.0")
    server = start_server(store, base / "data")
    reason = "superseded by demo-pkg, which does the same with fewer dependencies and a longer name"
    privindex_cli(server, "project", "status", "old-demo", "archived", "--reason", reason)
    server.origin = server.url.replace("127.0.0.1", "localhost")
    add_user(server, "admin", PASSWORD, admin=True)
    server.totp, server.codes, _out = enrol_totp_cli(server, "admin")
    yield server
    server.stop()


def check_page(page, name: str, width: int) -> None:
    """The page fits its width and axe-core finds nothing; a screenshot for reviewers."""
    page.wait_for_load_state("load")
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert fits, f"{name} at {width} px is {scroll} px wide"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document)).violations.map("
        "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    assert result == [], f"{name} at {width} px: {result}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{width}-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def signed_in(browser, site):  # noqa: F811
    """The browser state of a signed-in admin (one sign-in, with a recovery code, for the
    whole sweep: a TOTP code signs in once per time step)."""
    context = browser.new_context()
    page = context.new_page()
    sign_in_password(page, site, "admin")
    page.get_by_label("One of the recovery codes you saved").fill(site.codes[0])
    page.get_by_role("button", name="Use recovery code").click()
    page.wait_for_url(re.compile(r"/projects$"))
    state = context.storage_state()
    context.close()
    return state


@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_fits_the_screen_and_passes_axe(browser, site, signed_in, width):  # noqa: F811
    if not AXE.exists():  # like chromium: required in CI, skipped on a machine without it
        message = f"{AXE} is missing: .ci/run installs it (cd tests && npm install axe-core)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    # bypass_csp lets axe be injected; it also means a script that slipped through the
    # description sanitiser would run, which the title check below would see
    def new_page(**kwargs):
        return browser.new_context(
            viewport={"width": width, "height": 800}, bypass_csp=True, **kwargs
        ).new_page()

    o = site.origin
    page = new_page()
    try:
        page.goto(f"{o}/projects")
        check_page(page, "projects-anonymous", width)
        page.goto(f"{o}/login")
        check_page(page, "login", width)
        sign_in_password(page, site, "admin")
        page.wait_for_url(re.compile(r"/login/2fa$"))
        expect(page.get_by_label("6-digit code")).to_be_focused()
        check_page(page, "two-factor", width)
    finally:
        page.context.close()
    page = new_page(storage_state=signed_in)
    try:
        page.goto(f"{o}/projects?all=1")
        check_page(page, "projects", width)
        page.goto(f"{o}/projects?q=demo")
        expect(page.get_by_role("link", name="demo-pkg")).to_be_visible()
        expect(page.get_by_text("A package to try the browser with")).to_be_visible()
        check_page(page, "search", width)
        page.goto(f"{o}/projects/demo-pkg")
        expect(page.get_by_role("heading", name="Demo package")).to_be_visible()
        assert page.title() != "pwned"
        assert page.get_by_role("link", name="Evil").count() == 0
        expect(page.get_by_role("link", name="Source")).to_have_attribute("href", "https://example.org/demo")
        check_page(page, "project", width)
        page.goto(f"{o}/projects/a-project-with-a-rather-long-name-for-small-screens")
        check_page(page, "project-long-name", width)
        page.goto(f"{o}/projects/demo-pkg/files/demo_pkg-0.9-py3-none-any.whl/delete")
        check_page(page, "confirm-delete", width)
        page.goto(f"{o}/projects/old-demo")
        expect(page.get_by_text("This project is archived: it takes no new uploads")).to_be_visible()
        check_page(page, "project-archived", width)
        page.goto(f"{o}/projects/old-demo?tab=settings")
        page.get_by_label("Status", exact=True).select_option("quarantined")
        page.get_by_role("button", name="Change the status").click()
        expect(page.get_by_role("heading", name="Quarantine old-demo?")).to_be_visible()
        check_page(page, "confirm-status", width)
        for path, name in (
            ("/tokens", "tokens"),
            ("/account", "account"),
            ("/account/security", "security"),
            ("/audit", "audit"),
            ("/admin/users", "admin-users"),
        ):
            page.goto(o + path)
            check_page(page, name, width)
        page.goto(f"{o}/audit?user=admin&tag=user:2fa:add")
        expect(page.get_by_text("Added an authenticator app as a second factor of admin.")).to_be_visible()
        csv_export = page.request.get(
            page.get_by_role("link", name="CSV").get_attribute("href")
            if page.get_by_role("link", name="CSV").get_attribute("href").startswith("http")
            else o + page.get_by_role("link", name="CSV").get_attribute("href")
        )
        assert csv_export.ok and csv_export.text().startswith("id,time,tag,actor")
        assert "user:2fa:add" in csv_export.text() and "user:login:success" not in csv_export.text()
        page.goto(f"{o}/tokens")
        page.get_by_label("Description (what is it for?)").fill("page check")
        page.get_by_role("button", name="Create token").click()
        check_page(page, "token-created", width)
        page.goto(f"{o}/tokens")
        expect(page.get_by_role("cell", name="page check").first).to_be_visible()
        check_page(page, "tokens-listed", width)
    finally:
        page.context.close()


def test_sign_in_with_the_keyboard_alone(browser, site):  # noqa: F811
    """Tab to the fields, type, Enter: the second-factor page puts the caret in the code
    field, so a password manager's or the user's next keystrokes land there."""
    page = browser.new_page()
    try:
        page.goto(f"{site.origin}/login")
        expect(page.get_by_label("Username")).to_be_focused()
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/login/2fa$"))
        code = page.get_by_label("6-digit code")
        expect(code).to_be_focused()
        assert code.get_attribute("autocomplete") == "one-time-code"
        page.keyboard.type(site.totp.at(time.time() + 30))  # the enrolment used this step's code
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/projects$"))
        expect(page.get_by_role("button", name="Sign out admin")).to_be_visible()
    finally:
        page.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_an_admin_grants_and_revokes_a_namespace_in_the_browser(browser, site, signed_in, width):  # noqa: F811
    """The namespaces page (grant, list, revoke) and the project page's namespace line."""
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing")
    o = site.origin
    page = browser.new_context(
        viewport={"width": width, "height": 800}, bypass_csp=True, storage_state=signed_in
    ).new_page()
    try:
        page.goto(f"{o}/admin/namespaces")
        expect(page.get_by_text("No namespace is granted.")).to_be_visible()
        page.get_by_label("Prefix").fill("demo-a-b-c")  # deeper than namespace_max_depth (2)
        page.get_by_label("Owners (usernames, separated by spaces or commas)").fill("admin")
        page.get_by_role("button", name="Grant", exact=True).click()
        expect(
            page.get_by_text("'demo-a-b-c' has 3 hyphens, and a namespace may have at most 2")
        ).to_be_visible()
        expect(page.get_by_text("No namespace is granted.")).to_be_visible()
        check_page(page, "admin-namespaces-too-deep", width)
        page.get_by_label("Prefix").fill("Demo")
        page.get_by_label("Owners (usernames, separated by spaces or commas)").fill("admin")
        page.get_by_role("button", name="Grant", exact=True).click()
        expect(
            page.get_by_text("The namespace demo is granted: names under it are local now.")
        ).to_be_visible()
        expect(page.locator("tbody tr").first).to_contain_text("demo")
        check_page(page, "admin-namespaces", width)
        page.goto(f"{o}/projects/demo-pkg")
        expect(page.get_by_text("In namespace demo (owned by admin)")).to_be_visible()
        check_page(page, "project-in-namespace", width)
        page.goto(f"{o}/admin/namespaces")
        page.get_by_role("button", name="Revoke").click()
        expect(page.get_by_text("The namespace demo is revoked.")).to_be_visible()
        expect(page.get_by_text("No namespace is granted.")).to_be_visible()
    finally:
        page.context.close()
