"""Project pages as a team uses them (issue 26): install lines for this server as the
browser reached it, tabs, per-version pages, whole-release yank and delete, README
headings and images, dangerous actions behind a confirmation that names the project,
upstream-only pages, and the project list (all projects, sort, typo-tolerant search).

One real server (waitress on loopback) in front of a fake upstream, a private index
behind a trusted proxy's headers; people sign in with a password (no second factor).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
import requests
from conftest import add_user, audit_json, privindex_cli, start_server, wait_until
from fake_upstream import FakeUpstream
from playwright.sync_api import expect
from test_web_browser import browser  # noqa: F401
from webclient import WebClient
from wheels import make_wheel

PASSWORD = "correct horse battery staple 26"
README = """# Widgets guide

Widgets for everyone.

##### Small print

![build status](https://ci.example/badge.svg)
[![coverage](https://ci.example/coverage.svg)](https://ci.example/report)
![local picture](docs/pic.png)
"""
HEADERS = "Summary: Widgets <b>for</b> teams\nDescription-Content-Type: text/markdown\n"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    fake = FakeUpstream()
    folder = tmp_path_factory.mktemp("upstream-wheels")
    fake.add("far-away", make_wheel(folder, "far-away", "3.1"), uploaded=datetime(2024, 5, 1, tzinfo=UTC))
    fake.add("far-away", make_wheel(folder, "far-away", "3.2"), uploaded=datetime(2024, 6, 1, tzinfo=UTC))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory, fake):
    base = tmp_path_factory.mktemp("projects-ui")
    store = base / "store"
    store.mkdir()
    (store / "acme-widgets").mkdir()
    for version in ("1.0", "1.1", "2.0"):
        make_wheel(store / "acme-widgets", "acme-widgets", version, headers=HEADERS, description=README)
    make_wheel(store, "acme-lib", "1.2.0", headers="Summary: the library\n")
    server = start_server(
        store,
        base / "data",
        "--upstream",
        fake.url,
        env={
            "PRIVINDEX_REQUIRE_2FA": "false",
            "PRIVINDEX_READ_ACCESS": "token",
            "PRIVINDEX_TRUSTED_PROXY": "127.0.0.1",
        },
    )
    add_user(server, "admin", PASSWORD, admin=True)
    add_user(server, "newbie", PASSWORD)
    yield server
    server.stop()


def signed_in(site, name: str = "admin") -> WebClient:
    web = WebClient(site.url)
    assert web.login(name, PASSWORD).ok
    return web


def text(page: str) -> str:
    """A page's words, tags removed, entities read."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_install_lines_name_this_server_as_the_browser_reached_it_with_a_token_placeholder(site):
    web = signed_in(site)
    direct = web.get("/projects/acme-widgets").text
    host = site.url.removeprefix("http://")
    line = f"pip install --index-url http://__token__:YOUR-TOKEN@{host}/simple/ acme-widgets"
    assert line in html.unescape(direct)
    assert f'data-copy="{html.escape(line)}"' in direct  # a copy button for it
    assert f"uv pip install --index-url http://__token__:YOUR-TOKEN@{host}/simple/ acme-widgets" in (
        html.unescape(direct)
    )
    proxied = web.get(
        "/projects/acme-widgets", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pkgs.example"}
    ).text
    assert "pip install --index-url https://__token__:YOUR-TOKEN@pkgs.example/simple/ acme-widgets" in (
        html.unescape(proxied)
    )
    assert "pidx_" not in direct + proxied  # a placeholder, never a real token
    version_page = html.unescape(web.get("/projects/acme-widgets/1.1").text)
    assert "acme-widgets==1.1" in version_page
    assert 'aria-label="Copy the pip command for acme-widgets==1.1"' in version_page


def test_tabs_split_description_history_files_and_settings(site):
    web = signed_in(site)
    page = web.get("/projects/acme-widgets").text
    assert re.search(r'<a href="/projects/acme-widgets" aria-current="page">Description</a>', page)
    for tab in ("history", "files", "settings"):
        assert f'href="/projects/acme-widgets?tab={tab}"' in page
    history = web.get("/projects/acme-widgets?tab=history").text
    assert [m for m in re.findall(r'<h3 id="[^"]+"><a href="/projects/acme-widgets/([^"]+)">', history)] == [
        "2.0",
        "1.1",
        "1.0",
    ]
    assert "Widgets guide" not in history  # the README stays on its own tab
    files = web.get("/projects/acme-widgets?tab=files").text
    assert "acme_widgets-2.0-py3-none-any.whl" in files and "acme_widgets-1.0-py3-none-any.whl" not in files
    assert web.get("/projects/acme-widgets?tab=nonsense").status_code == 404
    newbie = signed_in(site, "newbie")
    assert "?tab=settings" not in newbie.get("/projects/acme-widgets").text
    assert (
        newbie.get("/projects/acme-widgets?tab=settings", allow_redirects=False)
        .headers["Location"]
        .endswith("/projects/acme-widgets")
    )


def test_a_version_has_its_own_page_with_files_hashes_and_description(site):
    web = signed_in(site)
    page = web.get("/projects/acme-widgets/1.1")
    assert page.status_code == 200
    words = text(page.text)
    assert "acme_widgets-1.1-py3-none-any.whl" in words and "acme_widgets-2.0" not in words
    assert "The latest version is 2.0" in words
    sha = re.search(r'<code class="mono-break">([0-9a-f]{64})</code>', page.text).group(1)
    assert f'data-copy="{sha}"' in page.text
    assert 'aria-label="Copy the SHA-256 of acme_widgets-1.1-py3-none-any.whl"' in page.text
    assert "Widgets guide" in words
    assert (
        web.get("/projects/acme-widgets/1.1.0", allow_redirects=False)
        .headers["Location"]
        .endswith("/projects/acme-widgets/1.1")
    )
    assert web.get("/projects/Acme_Widgets/1.1", allow_redirects=False).status_code == 301
    assert web.get("/projects/acme-widgets/9.9").status_code == 404
    assert web.get("/projects/acme-widgets/not-a-version").status_code == 404


def test_readme_headings_sit_one_level_down_and_no_image_silently_vanishes(site):
    page = signed_in(site).get("/projects/acme-widgets").text
    assert re.search(r"<h2[^>]*>Widgets guide</h2>", page)
    assert re.search(r"<h6[^>]*>Small print</h6>", page)
    assert page.count("<h1") == 1  # the page's own
    assert '<a class="readme-image-link" href="https://ci.example/badge.svg"' in page
    assert "[Image: build status]" in page
    assert "[Image: coverage]" in page  # inside its link: a label, not a second link
    assert "[Image left out: local picture]" in page
    assert "<img" not in page


def test_whole_release_yank_with_a_reason_returns_to_the_release(site):
    newbie = signed_in(site, "newbie")
    refused = newbie.post(
        "/projects/acme-widgets/1.0/yank",
        {"reason": "nope", "back": "/projects/acme-widgets?tab=history"},
        page=newbie.get("/projects/acme-widgets").text,
    )
    assert "only an owner of the project or an admin may do that" in newbie.flashes(refused)
    web = signed_in(site)
    page = web.get("/projects/acme-widgets/1.0").text
    assert 'Yank release<span class="visually-hidden"> 1.0 of acme-widgets</span>' in page
    answer = web.post(
        "/projects/acme-widgets/1.0/yank",
        {"reason": "broken   build", "back": "/projects/acme-widgets/1.0"},
        page=page,
        allow_redirects=False,
    )
    assert answer.headers["Location"].endswith("/projects/acme-widgets/1.0#release-1.0")
    shown = web.get("/projects/acme-widgets/1.0")
    assert "1.0 of acme-widgets was yanked." in web.flashes(shown)
    words = text(shown.text)
    assert "This release is yanked" in words and "Reason: broken build" in words
    history = text(web.get("/projects/acme-widgets?tab=history").text)
    assert re.search(r"1\.0 yanked", history)
    assert [
        e["subject"] for e in audit_json(site, "--project", "acme-widgets") if e["tag"] == "file:yank"
    ] == ["acme_widgets-1.0-py3-none-any.whl"]
    # somewhere else than this project's pages is not a place to go back to
    off_site = web.post(
        "/projects/acme-widgets/1.0/yank",
        {"action": "unyank", "back": "https://evil.example/"},
        page=page,
        allow_redirects=False,
    )
    assert off_site.headers["Location"].endswith("/projects/acme-widgets?tab=history#release-1.0")
    another = web.post(
        "/projects/acme-widgets/1.0/yank",
        {"reason": "x", "back": "/projects/acme-widgets-evil/1.0"},
        page=page,
        allow_redirects=False,
    )
    assert another.headers["Location"].endswith("/projects/acme-widgets?tab=history#release-1.0")


def test_deleting_a_release_takes_its_name_and_version_typed(site):
    make_wheel(site.store, "acme-lib", "0.1")
    web = signed_in(site)
    wait_until(lambda: "/projects/acme-lib/0.1" in web.get("/projects/acme-lib?tab=history").text, 20)
    history = web.get("/projects/acme-lib?tab=history").text
    assert 'Delete release<span class="visually-hidden"> 0.1 of acme-lib</span>' in history
    assert web.get("/projects/acme-lib/7.7/delete").status_code == 404
    confirm = web.get("/projects/acme-lib/0.1/delete").text
    assert "Type “acme-lib 0.1” to confirm" in html.unescape(confirm)
    wrong = web.post("/projects/acme-lib/0.1/delete", {"confirm": "acme-lib"}, page=confirm)
    assert "Type the project name and version exactly to confirm." in web.flashes(wrong)
    assert (site.store / "acme_lib-0.1-py3-none-any.whl").exists()
    done = web.post("/projects/acme-lib/0.1/delete", {"confirm": "acme-lib 0.1"}, page=confirm)
    assert "0.1 of acme-lib was deleted (1 file)." in web.flashes(done)
    assert not (site.store / "acme_lib-0.1-py3-none-any.whl").exists()
    assert web.get("/projects/acme-lib/0.1").status_code == 404


def test_allowing_the_upstream_is_never_primary_and_goes_through_a_confirmation(site):
    web = signed_in(site)
    settings = web.get("/projects/acme-lib?tab=settings").text
    assert 'value="allow"' not in settings  # no one-click allow on the project page
    link = re.search(
        r'<a class="button danger" href="([^"]+)" aria-label="Allow the upstream\'s files for acme-lib"',
        settings,
    )
    assert link
    confirm = web.get(html.unescape(link.group(1))).text
    words = text(confirm)
    assert "Allow the upstream's files for acme-lib?" in words
    assert "This reopens dependency confusion for acme-lib" in words
    assert signed_in(site, "newbie").get(html.unescape(link.group(1))).status_code == 403
    assert (
        "aria-label=\"Allow the upstream's files for acme-lib\">Allow the upstream's files</button>"
        in confirm
    )
    assert 'name="confirmed" value="1"' in confirm  # this page is the confirmation
    # the admin page's own allow button asks first, naming the project; nothing changes yet
    asked = web.post("/admin/upstream", {"name": "acme-lib", "action": "allow"}, page=confirm)
    assert "This reopens dependency confusion for acme-lib" in text(asked.text)
    assert (
        "the upstream's files are listed after the local ones"
        not in web.get("/projects/acme-lib?tab=history").text
    )
    allowed = web.post(
        "/admin/upstream",
        {"name": "acme-lib", "action": "allow", "back": "project", "confirmed": "1"},
        page=confirm,
    )
    assert "The upstream's files for acme-lib are merged after the local ones." in web.flashes(allowed)
    assert (
        "the upstream's files are listed after the local ones"
        in web.get("/projects/acme-lib?tab=history").text
    )
    web.post("/admin/upstream", {"name": "acme-lib", "action": "revoke", "back": "project"}, page=confirm)


def test_an_upstream_only_project_says_so_lists_its_versions_and_is_found(site, fake):
    web = signed_in(site)
    created = privindex_cli(site, "token", "create", "admin", "--read-only").stdout
    token = re.search(r"(pidx_[A-Za-z0-9_-]+)", created).group(1)
    # a read through the index caches the upstream's page
    assert requests.get(f"{site.url}/simple/far-away/", auth=("__token__", token), timeout=30).ok
    page = web.get("/projects/far-away")
    assert page.status_code == 200
    words = text(page.text)
    assert "Served from the upstream index, cached here" in words
    assert "3.2" in words and "3.1" in words
    assert "No files" not in words and "Releases 0" not in words
    assert 'name="username"' not in page.text  # no maintainers form
    assert "far_away-3.2-py3-none-any.whl" in text(web.get("/projects/far-away/3.2").text)
    found = web.get("/projects?q=far-awy").text
    assert 'href="/projects/far-away"' in found and "upstream, cached here" in found


def test_the_list_shows_all_projects_first_sorts_and_forgives_a_typo(site):
    web = signed_in(site)
    listing = web.get("/projects").text
    assert re.search(r'aria-current="page">All projects<', listing)
    assert re.search(r"\d+ projects\.", text(listing))
    assert "Last upload" in listing
    by_name = re.findall(r'<h2><a href="/projects/([^"]+)">', listing)
    assert by_name == sorted(by_name)
    web.get("/projects/acme-lib")  # nothing changes by looking
    for typo in ("widgts", "wigdets", "acme-wdigets"):  # a letter missing, two swapped
        assert 'href="/projects/acme-widgets"' in web.get(f"/projects?q={typo}").text, typo
    assert 'href="/projects/acme-widgets"' not in web.get("/projects?q=wgdts").text  # two typos
    marked = web.get("/projects?q=widgets").text
    assert "acme-<mark>widgets</mark>" in marked.lower()
    assert "Widgets &lt;b&gt;for&lt;/b&gt; teams" in marked.replace("<mark>", "").replace("</mark>", "")
    hostile = web.get("/projects?q=%3Cscript%3Ewidgets").text
    assert "<script>widgets" not in hostile
    assert web.get("/projects?sort=sideways").status_code == 400


def test_a_user_with_no_projects_sees_how_to_upload_the_first(site):
    newbie = signed_in(site, "newbie")
    mine = newbie.get("/projects?mine=1").text
    words = text(mine)
    assert "You have 0 projects." in words and "Upload your first project" in words
    assert f"twine upload --repository-url {site.url}/legacy/ -u __token__ dist/*" in words
    assert "No projects here yet" not in words


def _described_project(app) -> None:
    """acme-widgets 1.0 with the README above, in an in-process app's store and index."""
    store = app.extensions["privindex"].settings.store
    store.mkdir(parents=True, exist_ok=True)
    make_wheel(store, "acme-widgets", "1.0", headers=HEADERS, description=README)
    app.extensions["privindex"].index.refresh()


@pytest.mark.app_settings(readme_images="show")
def test_readme_images_shown_when_the_setting_says_so_and_the_policy_lets_them_load(app, client):
    _described_project(app)
    page = client.get("/projects/acme-widgets")
    assert re.search(r'<img [^>]*src="https://ci\.example/badge\.svg"', page.text)
    assert "[Image left out: local picture]" in page.text  # a relative address cannot load here
    assert "img-src 'self' data: https:;" in page.headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in client.get("/projects").headers["Content-Security-Policy"]


@pytest.mark.app_settings(readme_images="hide")
def test_readme_images_hidden_leave_a_note_in_their_place(app, client):
    _described_project(app)
    page = client.get("/projects/acme-widgets")
    assert "[Image left out: build status]" in page.text and "[Image left out: coverage]" in page.text
    assert "ci.example/badge.svg" not in page.text and "<img" not in page.text
    assert "img-src 'self' data:;" in page.headers["Content-Security-Policy"]


def test_readme_images_setting_is_checked_and_named(tmp_path):
    from privindex.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="readme_images"):
        Settings(readme_images="always")


@pytest.mark.browser
def test_in_a_browser_the_install_line_copies_and_a_release_yank_stays_where_it_was(site, browser):  # noqa: F811
    make_wheel(site.store / "acme-widgets", "acme-widgets", "0.5", headers=HEADERS, description=README)
    context = browser.new_context(
        viewport={"width": 1280, "height": 600}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    try:
        page.goto(f"{site.url}/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r"/projects$"))

        page.goto(f"{site.url}/projects/acme-widgets")
        page.get_by_role("button", name="Copy the pip command for acme-widgets").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        host = site.url.removeprefix("http://")
        assert copied == f"pip install --index-url http://__token__:YOUR-TOKEN@{host}/simple/ acme-widgets"

        wait_until(
            lambda: "/projects/acme-widgets/0.5" in requests_page(page, "/projects/acme-widgets?tab=history"),
            20,
        )
        page.goto(f"{site.url}/projects/acme-widgets?tab=history")
        release = page.locator('[id="release-0.5"]')
        release.get_by_label("Reason for yanking 0.5 of acme-widgets").fill("a test build")
        release.get_by_role("button", name="Yank release 0.5 of acme-widgets").click()
        page.wait_for_url(re.compile(r"\?tab=history#release-0\.5$"))
        expect(release.get_by_text("yanked", exact=True)).to_be_visible()
        assert page.evaluate("window.scrollY") > 0  # not back at the top
        box = release.bounding_box()
        assert 0 <= box["y"] < 600, box  # the release acted on is on the screen
        expect(release.get_by_role("button", name="Unyank release 0.5 of acme-widgets")).to_be_in_viewport()
    finally:
        context.close()


def requests_page(page, path: str) -> str:
    """A page's HTML fetched with the browser's cookies (no navigation)."""
    return page.request.get(page.url.split("/projects")[0] + path).text()
