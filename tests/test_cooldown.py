"""The cooldown, the 2026 way (issue 27, item 6): upstream_min_age hides freshly published
upstream versions; an admin exempts a named project for a security fix, pip sees the fix at
once, and the project page says what the cooldown hides and when it shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
from conftest import pip, privindex_cli, start_server, uv, wait_until
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from test_web_browser import browser  # noqa: F401
from wheels import make_wheel

OLD = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def upstream(tmp_path):
    fake = FakeUpstream()
    fake.add("patched", make_wheel(tmp_path / "up", "patched", "1.0"), uploaded=OLD)
    fake.add("patched", make_wheel(tmp_path / "up", "patched", "1.1"))  # the fix, minutes old
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def guarded(tmp_path, upstream):
    server = start_server(
        tmp_path / "store",
        tmp_path / "data",
        "--upstream",
        upstream.url,
        env={"PRIVINDEX_UPSTREAM_MIN_AGE": "259200", "PRIVINDEX_UPSTREAM_PAGE_TTL": "0"},
    )
    yield server
    server.stop()


def _installed(server, target) -> str:
    pip("install", "--index-url", server.index_url, "--target", str(target), "--upgrade", "patched")
    return (target / "patched" / "__init__.py").read_text()


@pytest.mark.slow  # what uv resolves
def test_an_exempted_name_gets_its_fresh_version_at_once_and_loses_it_when_unexempted(guarded, tmp_path):
    assert "'1.0'" in _installed(guarded, tmp_path / "before")  # 1.1 is three days from showing

    done = privindex_cli(guarded, "cache", "exempt", "Patched", "--until", "2099-01-01")
    assert "patched: past the cooldown until 2099-01-01" in done.stderr
    wait_until(lambda: len(listed(guarded, "patched")) == 2, timeout=10)  # the server follows
    assert "'1.1'" in _installed(guarded, tmp_path / "after")

    page = requests.get(f"{guarded.index_url}patched/", headers={"Accept": V1_JSON}, timeout=10).json()
    assert all(f.get("upload-time") for f in page["files"])  # what uv's exclude-newer reads
    pinned = tmp_path / "uv"
    uv(
        "pip",
        "install",
        "--index-url",
        guarded.index_url,
        "--target",
        str(pinned),
        "--exclude-newer",
        "2021-01-01T00:00:00Z",
        "patched",
    )
    assert "'1.0'" in (pinned / "patched" / "__init__.py").read_text()  # the client's own cut still holds

    privindex_cli(guarded, "cache", "unexempt", "patched")
    wait_until(lambda: set(listed(guarded, "patched")) == {"patched-1.0-py3-none-any.whl"}, timeout=10)

    lines = privindex_cli(guarded, "audit", "--json").stdout.splitlines()
    tags = [(e["tag"], e["subject"]) for e in map(json.loads, lines)]
    assert ("upstream:exempt", "patched") in tags and ("upstream:unexempt", "patched") in tags


def test_an_exemption_ending_in_the_past_is_refused(guarded):
    refused = privindex_cli(guarded, "cache", "exempt", "patched", "--until", "2001-01-01", check=False)
    assert refused.returncode == 1
    assert "--until 2001-01-01 00:00 is in the past; give a later date" in refused.stderr
    assert set(listed(guarded, "patched")) == {"patched-1.0-py3-none-any.whl"}


def test_the_project_page_says_which_newer_versions_the_cooldown_hides(guarded):
    listed(guarded, "patched")  # pip's first read caches the page
    html = requests.get(f"{guarded.url}/projects/patched?tab=history", timeout=10).text
    assert "Newer upstream versions hidden by the cooldown" in html
    assert "1.1" in html and "visible from" in html


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_cooldown_note_fits_the_screen_and_passes_axe(guarded, browser, width):  # noqa: F811
    from test_web_pages import AXE, check_page

    if not AXE.exists():
        pytest.skip(f"{AXE} is missing (cd tests && npm install axe-core)")
    listed(guarded, "patched")
    page = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True).new_page()
    try:
        page.goto(f"{guarded.url}/projects/patched?tab=history")
        check_page(page, "project-upstream-cooldown", width)
    finally:
        page.context.close()


def test_an_exemption_lapses_at_its_date():
    from privindex.upstream.cooldown import is_exempt

    exemptions = {"until-100": 100.0, "for-good": None}
    assert is_exempt(exemptions, "until-100", 99.0) and not is_exempt(exemptions, "until-100", 100.0)
    assert is_exempt(exemptions, "for-good", 1e12) and not is_exempt(exemptions, "other", 0.0)
