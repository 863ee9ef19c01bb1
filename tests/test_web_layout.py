"""Every page of the web UI in a real browser, in every combination a team meets: signed out,
signed-in user and admin; 390 and 1280 px; light and dark; English and German. On each:

(a) no word is broken across lines inside a table cell, a button or a heading (a Range over
    each word has all its client rects on one line box; `.mono-break` text may break),
(b) nothing scrolls sideways,
(c) axe-core finds nothing,
and a full-page screenshot lands in test-artifacts/layout/ for a reviewer to look at.

One seeded server, one browser, one context per role and combination. A new page: add a
line to PAGES (its name, who sees it, its path, or a step that gets there).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import pytest
import testdb
from conftest import ROOT, Accounts, enrol_totp_cli, start_server, twine
from fake_upstream import FakeUpstream
from helpers import listed
from playwright.sync_api import Page, expect
from test_web_browser import PASSWORD, browser, virtual_key  # noqa: F401
from test_web_pages import AXE
from wheels import make_wheel

pytestmark = pytest.mark.browser

SHOTS = ROOT / "test-artifacts" / "layout"
LONG_NAME = "a-project-with-a-rather-long-name-for-small-screens"
UPSTREAM_ONLY = "upstream-only-widgets"
SEEDED: dict[str, str] = {}  # what the site fixture made that a step needs: alice's reset key
SPARE_CODES: dict[str, list[str]] = {}  # recovery codes the sign-ins have not used


@dataclass(frozen=True)
class P:
    """A page of the sweep: who sees it, and how to get there (a path, or a step)."""

    name: str
    role: str  # "anonymous", "user" or "admin"
    path: str = ""
    step: Callable[[Page, str], None] | None = None


def _password_step(page: Page, origin: str, user: str) -> None:
    """The sign-in form's first step, in any language."""
    page.goto(f"{origin}/login")
    page.locator("#username").fill(user)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action$='/login'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/login/2fa$"))


def _two_factor(page: Page, origin: str) -> None:
    _password_step(page, origin, "admin")


def _token_created(page: Page, origin: str) -> None:
    page.goto(f"{origin}/tokens")
    page.locator("input[name=description]").fill("layout check")
    page.locator("form[action$='/tokens'] button[type=submit]").first.click()
    page.wait_for_load_state("load")


def _setup_link(page: Page, origin: str) -> None:
    """An admin makes a user: the page with the one-time set-password link."""
    page.goto(f"{origin}/admin/users")
    form = page.locator("form[action$='/admin/users']")
    form.locator("input[name=username]").fill(f"newcomer-{os.urandom(3).hex()}")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def _confirm_status(page: Page, origin: str) -> None:
    page.goto(f"{origin}/projects/old-demo?tab=settings")
    form = page.locator("form:has(select[name=status])")
    form.locator("select[name=status]").select_option("quarantined")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def _security_form(action: str) -> Callable[[Page, str], None]:
    """A button of the security page that POSTs and lands on a page shown once."""

    def step(page: Page, origin: str) -> None:
        page.goto(f"{origin}/account/security")
        page.locator(f"form[action$='{action}'] button[type=submit]").first.click()
        page.wait_for_load_state("load")

    return step


def _reset_page(page: Page, origin: str) -> None:
    page.goto(f"{origin}/reset-password/{SEEDED['reset key']}")


# The pages: one line each. Other engineers add theirs here.
PAGES = [
    P("projects", "anonymous", "/projects"),
    P("login", "anonymous", "/login"),
    P("forgot-password", "anonymous", "/forgot-password"),
    P("reset-password", "anonymous", step=_reset_page),
    P("reset-link-gone", "anonymous", "/reset-password/no-such-key"),
    P("two-factor", "anonymous", step=_two_factor),
    P("not-found", "anonymous", "/projects/no-such-project/1.0/nothing"),
    P("projects", "user", "/projects"),
    P("projects-all", "user", "/projects?all=1"),
    P("search", "user", "/projects?q=demo"),
    P("project-long-readme", "user", "/projects/demo-pkg"),
    P("project-long-name", "user", f"/projects/{LONG_NAME}"),
    P("project-owned", "user", "/projects/alice-tools"),
    P("project-upstream-only", "user", f"/projects/{UPSTREAM_ONLY}"),
    P("tokens", "user", "/tokens"),
    P("token-created", "user", step=_token_created),
    P("account", "user", "/account"),
    P("security", "user", "/account/security"),
    P("audit-own", "user", "/audit"),
    P("reauth", "user", "/reauth?next=/tokens"),
    P("forbidden", "user", "/admin/users"),
    P("projects", "admin", "/projects?all=1"),
    P("project-admin", "admin", "/projects/demo-pkg"),
    P("project-archived", "admin", "/projects/old-demo"),
    P("confirm-delete", "admin", "/projects/demo-pkg/files/demo_pkg-0.9-py3-none-any.whl/delete"),
    P("security-with-key", "admin", "/account/security"),
    P("totp-setup", "admin", step=_security_form("/account/totp/new")),
    P("recovery-codes", "admin", step=_security_form("/account/recovery-codes")),
    P("audit", "admin", "/audit"),
    P("audit-page-3", "admin", "/audit?page=3"),
    P("admin-users", "admin", "/admin/users"),
    P("setup-link", "admin", step=_setup_link),
    P("confirm-status", "admin", step=_confirm_status),
    P("admin-upstream", "admin", "/admin/upstream"),
    P("admin-namespaces", "admin", "/admin/namespaces"),
    P("admin-teams", "admin", "/admin/teams"),
    P("audit-filtered", "admin", "/audit?tag=file:add&from=2026-01-01"),
    P("admin-webhooks", "admin", "/admin/webhooks"),
    P("admin-outbox", "admin", "/admin/outbox"),
    P("projects-updated", "user", "/projects?sort=updated"),
    P("projects-mine", "user", "/projects?mine=1"),
    P("search-typo", "user", "/projects?q=dmeo-pkg"),
    P("project-history", "user", "/projects/demo-pkg?tab=history"),
    P("project-files", "user", "/projects/demo-pkg?tab=files"),
    P("project-version", "user", "/projects/demo-pkg/0.9"),
    P("project-owned-settings", "user", "/projects/alice-tools?tab=settings"),
    P("project-upstream-only-version", "user", f"/projects/{UPSTREAM_ONLY}/3.2.1"),
    P("project-settings", "admin", "/projects/demo-pkg?tab=settings"),
    P("project-teams", "admin", "/projects/alice-tools?tab=settings"),
    P("project-version-admin", "admin", "/projects/demo-pkg/1.0"),
    P("confirm-delete-release", "admin", "/projects/demo-pkg/0.9/delete"),
    P("confirm-allow-upstream", "admin", "/projects/demo-pkg/upstream/allow"),
]

README = "\n\n".join(
    [
        "# Demo package\n\nA demo with **Markdown**, a table, code and many sections.",
        "| Option | Default | Meaning |\n|---|---|---|\n| `timeout` | 30 | seconds to wait |",
        "```python\nimport demo_pkg\ndemo_pkg.run(a_rather_long_argument=True, another_argument=42)\n```",
        *(
            f"## Section {i}\n\nSome prose about part {i}, with a link to "
            f"https://example.org/a/very/long/path/that/goes/on/{i} and more words."
            for i in range(1, 25)
        ),
        "### A third-level heading",
    ]
)


def _seed(data_dir, audit_rows: int) -> str:
    """Audit rows in bulk through privindex's own audit.record (a CLI call each is too slow),
    and alice's password-reset link (its mail would go nowhere); returns the link's key."""
    from privindex.accounts import password_reset, second_factors, users
    from privindex.db.connection import bound, connect
    from privindex.ops import audit

    db = connect(testdb.url_for(data_dir) or data_dir / "privindex.sqlite3")  # bound below only
    try:
        with bound(db), db.atomic():
            ctx = audit.Context(via="cli")
            for i in range(audit_rows):
                audit.record(audit.Tag.USER_LOGIN_FAILURE, ctx, subject="mallory", reason=f"bad password {i}")
            alice = users.find_user("alice")
            return second_factors.create_pending(alice, password_reset.PURPOSE, seconds=3600)
    finally:
        db.close()


def _signed_in(browser, server, user: str, code: str):  # noqa: F811
    """A new browser context signed in as user with a recovery code: (context, page).

    The sign-in itself is the subject of test_web_browser; here it only seeds the sweep, so
    one that does not land (seen once in CI under load, cause unknown) is tried again with a
    fresh context and the next code, and what the browser and the server saw is kept as a
    warning for whoever reads the run."""
    for attempt in (1, 2):
        context = browser.new_context()
        page = context.new_page()
        _password_step(page, server.origin, user)
        page.locator("#recovery-code").fill(code)
        page.locator("form[action$='/recovery'] button").click()
        try:
            page.wait_for_url(re.compile(r"/projects"), timeout=20_000)
            return context, page
        except Exception as exc:  # playwright's TimeoutError: report, then once more
            try:
                seen = f"{page.url}: {page.locator('body').inner_text(timeout=2_000)[:400]!r}"
            except Exception as unreadable:  # the page itself may be what hangs
                seen = f"{page.url}: (unreadable: {unreadable})"
            log_tail = "\n".join(server.log().splitlines()[-15:])
            context.close()
            if attempt == 2:
                raise AssertionError(f"{user} could not sign in: {seen}\n{log_tail}") from exc
            warnings.warn(f"{user}'s sign-in did not land ({seen}); server log:\n{log_tail}", stacklevel=2)
            code = SPARE_CODES[user].pop()
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):  # noqa: F811
    """The seeded server: several projects (a long README, a long name, an archived one, one
    owned by alice, one the upstream alone serves), tokens, a security key, 200+ audit rows,
    a team, a password-reset link, an unverified address whose mail waits in the outbox,
    mail and an SSO provider configured,
    several sessions; and the signed-in browser state of alice (user) and admin."""
    base = tmp_path_factory.mktemp("layout")
    upstream = FakeUpstream()
    upstream.add(UPSTREAM_ONLY, make_wheel(base / "up", UPSTREAM_ONLY, "3.2.1"))
    upstream.start()
    store = base / "store"
    store.mkdir()
    headers = "Summary: A package to try every page with\nDescription-Content-Type: text/markdown\n"
    make_wheel(store, "demo-pkg", "1.0", headers=headers, description=README)
    make_wheel(store, "demo-pkg", "0.9", headers="Summary: older\n")
    make_wheel(store, LONG_NAME, "2024.12.31.post1")
    make_wheel(store, "old-demo", "1.0")
    config = base / "privindex.toml"  # mail (to no server: nothing is sent) and an SSO button
    config.write_text(
        'smtp_url = "smtp+plain://127.0.0.1:1"\nmail_from = "privindex@example.org"\n'
        "require_verified_email = false\n"
        '[[sso_providers]]\nissuer = "http://127.0.0.1:1"\nclient_id = "privindex"\n'
        'client_secret = "unused"\nlabel = "Team ID"\n'
    )
    server = start_server(store, base / "data", "--upstream", upstream.url, config=config)
    server.origin = server.url.replace("127.0.0.1", "localhost")  # WebAuthn needs a domain
    accounts = Accounts(server.store, server.data_dir, server.env)
    accounts.user("admin", admin=True, password=PASSWORD)
    accounts.user("alice", password=PASSWORD)
    accounts.cli("project", "status", "old-demo", "archived", "--reason", "superseded by demo-pkg")
    _admin_totp, admin_codes, _ = enrol_totp_cli(server, "admin")
    _alice_totp, alice_codes, _ = enrol_totp_cli(server, "alice")
    upload = accounts.token("alice", "--description", "ci upload for alice-tools")
    accounts.token("alice", "--description", "read-only mirror", "--read-only")
    twine(server.url, upload, make_wheel(base / "up", "alice-tools", "0.1"), check=True)
    accounts.cli("team", "create", "release-crew", "--description", "the people who ship alice-tools")
    accounts.cli("team", "add", "release-crew", "alice")
    accounts.cli("team", "grant", "release-crew", "alice-tools", "--role", "maintainer")
    assert listed(server, UPSTREAM_ONLY), "the upstream-only project is fetched, so cached here"
    SEEDED["reset key"] = _seed(server.data_dir, 220)

    SPARE_CODES.update(alice=alice_codes[2:], admin=admin_codes[2:])
    states = {}
    for user, codes in (("alice", alice_codes), ("admin", admin_codes)):
        for code in codes[:2]:  # two sign-ins, each its own browser: two sessions in the list
            context, page = _signed_in(browser, server, user, code)
        if user == "alice":  # an address to verify: its mail waits in the outbox (no mail server)
            page.goto(f"{server.origin}/account")
            page.locator("#new-address").fill("alice@example.org")
            page.locator("#new-address").press("Enter")
            page.wait_for_load_state("load")
        if user == "admin":  # a security key in the list
            virtual_key(page)
            page.goto(f"{server.origin}/account/security")
            page.locator("#key-enrol-form input[name=label]").fill("YubiKey blue")
            page.locator("#key-enrol-form button").click()
            page.get_by_text("YubiKey blue").first.wait_for()
        states[user] = context.storage_state()
        context.close()
    server.states = states
    yield server
    server.stop()
    upstream.stop()


# -- what each page is checked for -----------------------------------------------------------

BROKEN_WORDS = """() => {
  const scopes = "td, th, button, a.button, h1, h2, h3, h4, h5, h6, .tabs a";
  const seen = new Set(), out = [];
  for (const el of document.querySelectorAll(scopes)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
      if (seen.has(node)) continue;
      seen.add(node);
      if (node.parentElement.closest(".mono-break, code.hash, code.details")) continue;
      // a word may end a line after a hyphen or a slash, nowhere else
      const words = /[^\\s\\-\\u2010\\/]+[\\-\\u2010\\/]?/g;
      for (let m; (m = words.exec(node.data));) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
        if (rects.length < 2) continue;
        const first = rects[0];
        if (rects.some((r) => Math.abs(r.top - first.top) > first.height / 2)) {
          const tag = el.tagName.toLowerCase() + (el.className ? "." + [...el.classList].join(".") : "");
          out.push(`${tag}: "${m[0]}" in "${el.textContent.trim().replace(/\\s+/g, " ").slice(0, 80)}"`);
        }
      }
    }
  }
  return out;
}"""

TOO_WIDE = """() => {
  const width = window.innerWidth, out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && ![...el.children].some((c) => c.getBoundingClientRect().right > width + 1)) {
      out.push(el.tagName.toLowerCase() + (el.className ? "." + [...el.classList].join(".") : "")
        + ` (right edge ${Math.round(box.right)} px): "${el.textContent.trim().slice(0, 60)}"`);
    }
  }
  return out.slice(0, 5);
}"""

AXE_RUN = """async (rules) => (
  await axe.run(document, {resultTypes: ["violations"], ...(rules && {runOnly: rules})})
).violations.map((v) => v.id + ": " + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "))"""


def check(page: Page, where: str, axe: bool) -> list[str]:
    """The problems of the page on screen, each naming the page, combination and element.
    axe-core runs in English only: its rules look at structure, names and colours, which
    German shares (the layout checks and screenshots cover German's longer words)."""
    problems = [f"{where}: broken word, {w}" for w in page.evaluate(BROKEN_WORDS)]
    if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
        problems += [
            f"{where}: scrolls sideways, {w}" for w in page.evaluate(TOO_WIDE) or ["(no element found)"]
        ]
    if axe:
        problems += [f"{where}: axe {v}" for v in page.evaluate(AXE_RUN, None)]
    return problems


COMBINATIONS = list(product([390, 1280], ["en", "de"]))


@pytest.mark.parametrize(("width", "lang"), COMBINATIONS, ids=lambda v: str(v))
def test_every_page_reads_well(browser, site, width, lang):  # noqa: F811
    """Each page is loaded once, checked and shot in the light theme, then switched to the
    dark one in place: words and widths do not change with colours, so the dark theme gets
    axe's colour rules and its screenshot (half the page loads of a context per theme)."""
    if not AXE.exists():
        message = f"{AXE} is missing: .ci/run installs it (cd tests && npm install axe-core)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for role in ("anonymous", "user", "admin"):
        state = {"anonymous": None, "user": site.states["alice"], "admin": site.states["admin"]}[role]
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme="light",
            locale=lang,
            extra_http_headers={"Accept-Language": lang},
            bypass_csp=True,  # to inject axe
            storage_state=state,
        )
        context.add_init_script(path=str(AXE))  # once per context, not sent again per page
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        try:
            for p in (p for p in PAGES if p.role == role):
                page.emulate_media(color_scheme="light")
                where = f"{p.name} ({role}, {width}px light {lang})"
                if p.step:
                    p.step(page, site.origin)
                else:
                    page.goto(site.origin + p.path)
                page.wait_for_load_state("load")
                problems += check(page, where, axe=lang == "en")
                problems += [f"{where}: script error {e}" for e in errors]
                errors.clear()
                page.screenshot(path=str(SHOTS / f"{role}-{p.name}-{width}-light-{lang}.png"), full_page=True)
                page.emulate_media(color_scheme="dark")
                if lang == "en":
                    where = f"{p.name} ({role}, {width}px dark {lang})"
                    problems += [f"{where}: axe {v}" for v in page.evaluate(AXE_RUN, ["color-contrast"])]
                page.screenshot(path=str(SHOTS / f"{role}-{p.name}-{width}-dark-{lang}.png"), full_page=True)
        finally:
            context.close()
    assert not problems, "\n".join(problems)


# -- the frame's own behaviour ---------------------------------------------------------------


def test_the_narrow_header_is_one_row_and_its_menu_opens(browser, site):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 800}, storage_state=site.states["admin"])
    page = context.new_page()
    try:
        page.goto(f"{site.origin}/projects")
        header = page.locator("header.top").bounding_box()
        assert header["height"] < 60, f"the 390 px header is {header['height']} px high"
        expect(page.locator("header .who")).to_have_text("Signed in as admin")  # in the one row
        nav = page.get_by_role("navigation", name="Main")
        expect(nav).to_be_hidden()
        menu = page.get_by_role("button", name="Menu")
        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        for entry in ("Users", "Upstream", "Namespaces", "Audit log"):
            expect(nav.get_by_role("link", name=entry, exact=True)).to_be_visible()
        expect(nav.get_by_role("button", name="Sign out admin")).to_be_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "admin-menu-open-390-light-en.png"))
        page.keyboard.press("Escape")
        expect(nav).to_be_hidden()
    finally:
        context.close()


URL_LINES = """() => {
  const out = [];
  for (const code of document.querySelectorAll(".install-line code")) {
    const walk = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      const m = /https?:\\/\\/\\S+/.exec(node.data);
      if (!m) continue;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      out.push(new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size);
    }
  }
  return out;
}"""


def test_german_project_tabs_keep_one_row_and_the_install_url_one_line_at_390_px(browser, site):  # noqa: F811
    """German's four project tabs are wider than a phone: they stay one row that scrolls,
    with the current one in view; the install commands break between words, never inside
    the index URL (a reader copying it by hand would miss half of it)."""
    context = browser.new_context(
        viewport={"width": 390, "height": 900},
        locale="de",
        extra_http_headers={"Accept-Language": "de"},
        storage_state=site.states["alice"],
    )
    page = context.new_page()
    try:
        page.goto(f"{site.origin}/projects/alice-tools?tab=settings")
        tabs = page.locator("nav.tabs a")
        expect(tabs).to_have_count(4)
        tops = {round(tabs.nth(i).bounding_box()["y"]) for i in range(4)}
        assert len(tops) == 1, f"the tabs take {len(tops)} rows"
        nav, current = page.locator("nav.tabs").bounding_box(), page.locator("nav.tabs [aria-current=page]")
        expect(current).to_have_text("Einstellungen")
        box = current.bounding_box()
        assert nav["x"] <= box["x"] and box["x"] + box["width"] <= nav["x"] + nav["width"] + 1
        assert page.evaluate(URL_LINES) == [1, 1], "an install line breaks inside the index URL"
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "user-project-owned-settings-tabs-390-light-de.png"))
    finally:
        context.close()


def test_the_theme_toggle_is_remembered(browser, site):  # noqa: F811
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    try:
        page.goto(f"{site.origin}/projects")
        background = "getComputedStyle(document.documentElement).backgroundColor"
        light = page.evaluate(background)
        page.get_by_role("button", name="Dark theme").click()
        page.goto(f"{site.origin}/login")  # another page: the choice is kept
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert page.evaluate(background) != light
        assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
        page.get_by_role("button", name="Light theme").click()
        assert page.evaluate(background) == light
    finally:
        context.close()


def test_clicking_a_sha256_throws_nothing_and_its_copy_button_copies_it(browser, site):  # noqa: F811
    context = browser.new_context(storage_state=site.states["alice"])
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{site.origin}/projects/demo-pkg?tab=files")  # hashes live on the Files tab
        digest = page.locator("td[data-label='SHA-256'] code").first
        digest.click()
        page.get_by_role("button", name=re.compile("Copy the SHA-256 of demo_pkg-1.0")).click()
        expect(page.get_by_role("button", name=re.compile("Copy the SHA-256 of demo_pkg-1.0"))).to_have_text(
            "Copied"
        )
        assert page.evaluate("navigator.clipboard.readText()") == digest.inner_text().strip()
        assert errors == []
    finally:
        context.close()


def test_a_refused_security_key_says_so_and_offers_the_other_ways(browser, site):  # noqa: F811
    """The admin's key is there but the person says no: the page says it in German and links
    to the recovery-code form, not the browser's English DOMException text."""
    context = browser.new_context(locale="de", extra_http_headers={"Accept-Language": "de"})
    page = context.new_page()
    try:
        cdp, _id = virtual_key(page)
        cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": _id})
        cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "usb",
                    "automaticPresenceSimulation": True,
                    "isUserConsenting": False,
                }
            },
        )
        _password_step(page, site.origin, "admin")
        page.locator("#key-login").click()
        alert = page.locator(".js-error")
        expect(alert).to_contain_text("Der Sicherheitsschlüssel wurde nicht verwendet", timeout=70_000)
        assert "NotAllowedError" not in alert.inner_text() and "The operation" not in alert.inner_text()
        expect(page.get_by_role("link", name="Einen Wiederherstellungscode verwenden")).to_be_visible()
    finally:
        context.close()
