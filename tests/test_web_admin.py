"""The admins' upstream page and the audit log in words (issue 26): a live server in front of
the fake upstream for reachability, cache size and refused names; twine uploads for the
token in the audit trail; Flask's test client for the filters and the translations."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from conftest import pip, privindex_cli, start_server, twine
from fake_upstream import FakeUpstream
from test_app import PASSWORD, sign_in
from test_web_browser import browser  # noqa: F401 (the chromium fixture)
from webclient import user_with_totp

from privindex.accounts import users
from privindex.db.models import AuditEvent
from privindex.ops import audit, audit_words

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"


def _wheel(dists, project: str, version: str):
    return next(p for p in dists.files[project] if p.name.endswith(".whl") and f"-{version}-" in p.name)


def _number(page: str, css_class: str) -> int:
    return int(re.search(rf'class="{css_class}">([\d,]+)', page).group(1).replace(",", ""))


@pytest.mark.slow  # real servers in front of a fake upstream; pip, twine
def test_the_upstream_page_says_whether_the_upstream_answers_and_what_the_cache_holds(tmp_path, dists):
    fake = FakeUpstream()
    fake.add("alpha", _wheel(dists, "alpha", "2.0"))
    fake.start()
    secret_url = fake.url.replace("http://", "http://mirror:s3cret-pass@")
    store, data = tmp_path / "store", tmp_path / "data"
    env = {"PRIVINDEX_UPSTREAM_PAGE_TTL": "0"}  # every page read asks the upstream
    server = start_server(store, data, "--upstream", secret_url, env=env)
    try:
        admin, *_ = user_with_totp(server, "root", admin=True)
        page = admin.get("/admin/upstream").text
        assert "Nothing was fetched from the upstream yet." in page

        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "one"), "alpha")
        page = admin.get("/admin/upstream").text
        assert "The upstream answers." in page
        last_ok = re.search(rf"Last successful fetch</dt><dd>{WHEN}</dd>", page)
        assert last_ok
        cached = [p for p in (data / "upstream" / "files").glob("*/*") if not p.name.startswith(".")]
        assert len(cached) == 1
        assert _number(page, "cache-files") == len(cached)
        assert _number(page, "cache-bytes") == sum(p.stat().st_size for p in cached)

        fake.stop()  # connection refused from now on; pip still gets the cached page
        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "two"), "alpha")
        page = admin.get("/admin/upstream").text
        assert "The upstream did not answer the last fetch." in page
        error = re.search(
            rf'Last error</dt>\s*<dd>({WHEN}): <span class="upstream-error">([^<]+)</span>', page
        )
        assert error, page
        assert "s3cret-pass" not in page  # the upstream's credentials are never shown

        # a first upload of a name the upstream has is refused, and listed for the admins
        uploader, *_ = user_with_totp(server, "carol")
        token = privindex_cli(server, "token", "create", "carol").stdout.strip()
        assert twine(server.url, token, _wheel(dists, "alpha", "1.0")).returncode != 0
        page = admin.get("/admin/upstream").text
        refused = page.split("Refused names")[1].split("</section>")[0]
        assert re.search(
            rf'<a href="/projects/alpha">alpha</a></td>\s*<td data-label="Last refused">{WHEN}', refused
        )
    finally:
        server.stop()
    # another process (here: the next server, whose own fetches all fail) shows what this one saw
    server = start_server(store, data, "--upstream", secret_url, env=env)
    try:
        admin, *_ = user_with_totp(server, "root2", admin=True)
        page = admin.get("/admin/upstream").text
        assert "The upstream did not answer the last fetch." in page
        assert last_ok.group(0) in page
    finally:
        server.stop()


@pytest.mark.slow  # a real server, twine
def test_an_uploads_audit_row_names_its_token_and_the_token_filter_narrows_the_log(tmp_path, dists):
    server = start_server(tmp_path / "store", tmp_path / "data")
    try:
        carol, *_ = user_with_totp(server, "carol")
        ci = privindex_cli(server, "token", "create", "carol", "--description", "ci-upload")
        laptop = privindex_cli(server, "token", "create", "carol", "--description", "laptop")
        ci_id = int(ci.stderr.split("token ", 1)[1].split()[0])
        assert twine(server.url, ci.stdout.strip(), _wheel(dists, "alpha", "1.0")).returncode == 0
        assert twine(server.url, laptop.stdout.strip(), _wheel(dists, "alpha", "2.0")).returncode == 0

        page = carol.get("/audit?tag=file:add").text
        assert "Uploaded alpha-1.0-py3-none-any.whl (version 1.0) to alpha." in page
        assert f"With the API token “ci-upload” (id {ci_id})." in page
        assert "With the API token “laptop”" in page
        assert ci.stdout.strip() not in page and laptop.stdout.strip() not in page

        for token in ("ci-upload", str(ci_id), f"#{ci_id}", "CI-Upload"):
            page = carol.get("/audit", params={"token": token}).text
            assert "alpha-1.0-py3-none-any.whl" in page and "alpha-2.0" not in page, token
            assert f'value="{token}"' in page  # the filter stays in the form (and the URL)
        assert "No events match these filters." in carol.get("/audit?token=nothing-like-it").text
    finally:
        server.stop()


def _event(ts: float, subject: str) -> None:
    AuditEvent.create(ts=ts, tag=audit.Tag.USER_CREATE.value, subject=subject, details='{"via": "cli"}')


def _day(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.app_settings(require_2fa=False)
def test_dates_narrow_the_audit_log_and_a_bad_date_is_a_clear_400(app, client):
    users.create_user("boss", PASSWORD, audit.CLI, is_admin=True)
    _event(_day("2026-01-01T23:59:59"), "new-years-eve")
    _event(_day("2026-01-02T00:00:00"), "first-minute")
    _event(_day("2026-01-02T23:59:59"), "last-second")
    _event(_day("2026-01-03T00:00:00"), "next-day")
    sign_in(client, "boss")

    page = client.get("/audit?from=2026-01-02&to=2026-01-02").text
    assert "Created the user first-minute." in page and "Created the user last-second." in page
    assert "new-years-eve" not in page and "next-day" not in page
    assert "2 events." in page
    page = client.get("/audit?from=2026-01-03").text
    assert "next-day" in page and "last-second" not in page
    page = client.get("/audit?to=2026-01-01").text
    assert "new-years-eve" in page and "first-minute" not in page
    assert 'value="2026-01-01"' in page  # kept in the form

    bad = client.get("/audit?from=yesterday")
    assert bad.status_code == 400
    assert "The start date must be a date like 2026-12-31." in bad.text


@pytest.mark.app_settings(require_2fa=False)
def test_german_readers_see_the_events_in_german(app, client):
    users.create_user("chef", PASSWORD, audit.CLI, is_admin=True)
    sign_in(client, "chef")
    page = client.get("/audit?tag=user:create", headers={"Accept-Language": "de"}).text
    assert "Administrator chef angelegt." in page
    assert "Created the user" not in page
    page = client.get("/audit?tag=user:login:success", headers={"Accept-Language": "fr"}).text
    assert "chef s’est connecté avec un mot de passe." in page


def test_every_audit_tag_has_a_sentence_and_a_name():
    for tag in audit.Tag:
        words = audit_words.sentence(tag.value, "someone", "some-project", {})
        assert words and words != tag.value and "%(" not in words, tag
        assert audit_words.tag_name(tag), tag


@pytest.mark.app_settings(require_2fa=False)
def test_filtering_20000_events_by_token_uses_an_index(app):
    from privindex.db.connection import database, is_postgres

    now = time.time()
    with database.atomic():
        AuditEvent.insert_many(
            [{"ts": now - i, "tag": "file:add", "token_id": i % 50, "details": "{}"} for i in range(20_000)]
        ).execute()
    query = audit.query(token_ids=[7], limit=50)
    sql, params = query.sql()
    if not is_postgres(database):
        plan = " ".join(str(row) for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "audit_event_token" in plan, plan
    else:
        database.execute_sql("ANALYZE audit_event")
        plan = " ".join(r[0] for r in database.execute_sql("EXPLAIN " + sql, params))
        assert "audit_event_token" in plan, plan
    assert audit.count(token_ids=[7]) == 400


@pytest.mark.browser
@pytest.mark.slow  # a server in front of a fake upstream, twine, chromium
def test_the_admin_pages_fit_phones_and_desktops_and_pass_axe(tmp_path, dists, browser):  # noqa: F811
    """The upstream page (cache, an error, a refused name) and the audit log (an upload with
    its token) at 390 and 1280 px, in English and German: no sideways scroll, axe-core finds
    nothing; screenshots in test-artifacts/screenshots/."""
    from conftest import add_user, enrol_totp_cli
    from playwright.sync_api import expect
    from test_web_browser import sign_in_password
    from test_web_pages import AXE, check_page
    from web_pages import ADMIN_PAGES

    if not AXE.exists():
        pytest.skip(f"{AXE} is missing: .ci/run installs it (cd tests && npm install axe-core)")
    fake = FakeUpstream()
    fake.add("alpha", _wheel(dists, "alpha", "2.0"))
    fake.start()
    env = {"PRIVINDEX_UPSTREAM_PAGE_TTL": "0"}
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", fake.url, env=env)
    try:
        pip("download", "--no-deps", "--index-url", server.index_url, "-d", str(tmp_path / "dl"), "alpha")
        user_with_totp(server, "carol")
        token = privindex_cli(server, "token", "create", "carol", "--description", "ci-upload").stdout.strip()
        assert twine(server.url, token, _wheel(dists, "beta-pkg", "0.1")).returncode == 0
        fake.stop()
        assert twine(server.url, token, _wheel(dists, "alpha", "1.0")).returncode != 0  # refused
        add_user(server, "admin", PASSWORD, admin=True)
        _totp, codes, _out = enrol_totp_cli(server, "admin")
        server.origin = server.url
        for width, code in ((390, codes[0]), (1280, codes[1])):
            context = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True)
            page = context.new_page()
            sign_in_password(page, server, "admin")
            page.get_by_label("One of the recovery codes you saved").fill(code)
            page.get_by_role("button", name="Use recovery code").click()
            page.wait_for_url(re.compile(r"/projects$"))
            for path, name in ADMIN_PAGES:
                page.goto(server.url + path)
                check_page(page, name, width)
            page.goto(server.url + "/audit?tag=file:add")
            expect(page.get_by_text("With the API token “ci-upload”")).to_be_visible()
            page.get_by_label("Language").select_option("de")
            page.get_by_role("button", name="Change language").click()
            for path, name in (p for p in ADMIN_PAGES if p[1] in ("admin-upstream", "audit")):
                page.goto(server.url + path)
                check_page(page, f"de-{name}", width)
            expect(page.get_by_text("Administrator admin angelegt.")).to_be_visible()
            page.get_by_label("Sprache").select_option("en")
            page.get_by_role("button", name="Sprache wechseln").click()
            context.close()
    finally:
        server.stop()


@pytest.mark.app_settings(require_2fa=False)
def test_the_namespace_page_never_sends_an_admin_to_the_command_line(app, client, runner):
    users.create_user("boss", PASSWORD, audit.CLI, is_admin=True)
    sign_in(client, "boss")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/namespaces").text).group(1)
    for owners, said in (("ghost", "there is no user &#39;ghost&#39;"), ("", "needs at least one owner")):
        form = {"csrf_token": csrf, "name": "acme", "owners": owners}
        page = client.post("/admin/namespaces", data=form, follow_redirects=True).text
        assert said in page and "privindex" not in page.split("<main")[1].split("</main>")[0]
    client.post("/admin/namespaces", data={"csrf_token": csrf, "name": "acme", "owners": "boss"})
    page = client.post(
        "/admin/namespaces",
        data={"csrf_token": csrf, "name": "acme", "owners": "boss"},
        follow_redirects=True,
    ).text
    assert "already granted" in page and "privindex namespace list" not in page
    # the command line keeps its hint
    result = runner.invoke("namespace", "grant", "acme", "--owner", "boss")
    assert "already granted (see: privindex namespace list)" in result.output


def test_upstream_only_names_are_listed_for_search_until_a_name_is_local(make_app, dists):
    """Sources.upstream_only_names: what the projects list searches beside local projects."""
    from privindex.db.connection import bound
    from privindex.upstream import source_rules

    fake = FakeUpstream()
    fake.add("alpha", _wheel(dists, "alpha", "2.0"))
    fake.add("beta-pkg", _wheel(dists, "beta-pkg", "0.1"))
    fake.start()
    try:
        app = make_app(upstream_url=fake.url)
        sources = app.extensions["privindex"].sources
        with bound(app.extensions["privindex"].database):
            assert sources.upstream_only_names() == []  # nothing fetched: nothing listed
            sources.cache.project("alpha")
            sources.cache.project("beta-pkg")
            assert sources.upstream_only_names() == [("alpha", "alpha"), ("beta-pkg", "beta-pkg")]
            source_rules.claim("beta-pkg", audit.CLI)
            sources.reload()
            assert sources.upstream_only_names() == [("alpha", "alpha")]
    finally:
        fake.stop()
