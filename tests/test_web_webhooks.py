"""Webhooks and the outbox in a real browser at 390 and 1280 px (no horizontal scrolling,
no axe-core violations, screenshots in test-artifacts/screenshots/): an owner adds a hook on
the project's page and copies its secret once, sees its delivery log, an admin finds a failed
delivery on the Outbox page of the admin menu and sends it again; and, over plain HTTP, who may not."""

from __future__ import annotations

import re

import pytest
from conftest import add_user, free_port, privindex_cli, start_server, wait_until
from fake_receiver import FakeReceiver
from playwright.sync_api import expect
from test_web_browser import PASSWORD, browser, sign_in_password  # noqa: F401
from test_web_pages import AXE, check_page
from webclient import WebClient
from wheels import make_wheel

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("webhooks")
    store = base / "store"
    store.mkdir()
    for version in ("1.0", "1.1", "1.2", "1.3"):
        make_wheel(store, "demo-pkg", version)
    receiver_port = free_port()  # the receivers' (a bare host would allow port 80 only)
    env = {
        "PRIVINDEX_REQUIRE_2FA": "false",
        "PRIVINDEX_WEBHOOK_ALLOWED_HOSTS": f"127.0.0.1:{receiver_port}",
        "PRIVINDEX_OUTBOX_POLL_SECONDS": "0.2",
        "PRIVINDEX_OUTBOX_MAX_ATTEMPTS": "1",
    }
    server = start_server(store, base / "data", env=env)
    server.origin = server.url.replace("127.0.0.1", "localhost")
    server.receiver_port = receiver_port
    add_user(server, "admin", PASSWORD, admin=True)
    add_user(server, "bob", PASSWORD)
    yield server
    server.stop()


@pytest.mark.parametrize("width", [390, 1280])
def test_an_owner_adds_a_hook_sees_its_log_and_an_admin_sends_a_failed_one_again(browser, site, width):  # noqa: F811
    if not AXE.exists():
        pytest.skip(f"{AXE} is missing")
    receiver = FakeReceiver(port=site.receiver_port)
    o = site.origin
    page = browser.new_context(viewport={"width": width, "height": 800}, bypass_csp=True).new_page()
    try:
        sign_in_password(page, site, "admin")
        page.wait_for_url(re.compile(r"/projects$"))
        page.goto(f"{o}/projects/demo-pkg?tab=settings")
        section = page.locator("#webhooks")
        section.get_by_label("Payload URL (http or https)").fill(receiver.url)
        section.get_by_role("checkbox", name="file.uploaded").uncheck()
        section.get_by_role("button", name="Add webhook").click()
        expect(page.get_by_role("heading", name="Your new webhook")).to_be_visible()
        receiver.secret = page.get_by_label("Secret").input_value()
        assert len(receiver.secret) >= 40
        check_page(page, "webhook-created", width)

        version = "1.0" if width == 390 else "1.1"
        privindex_cli(site, "project", "yank", "demo-pkg", version, "--reason", "broken build")
        [got] = receiver.wait_for(1)
        assert got.genuine and got.json["event"] == "file.yanked"
        page.goto(f"{o}/projects/demo-pkg?tab=settings")
        hook = page.locator("#webhooks .webhook").last
        wait_until(lambda: "delivered" in (page.reload() and hook.inner_text()), 10)
        expect(hook.get_by_role("cell", name="HTTP 204")).to_have_count(1)
        assert page.get_by_label("Secret").count() == 0  # shown once, never again
        check_page(page, "project-webhooks", width)

        receiver.answers = [500]
        privindex_cli(site, "project", "delete", "demo-pkg", "1.2" if width == 390 else "1.3", "--yes")
        receiver.wait_for(2)
        if width == 390:
            page.get_by_role("button", name="Menu").click()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox", exact=True).click()
        page.wait_for_url(re.compile(r"/admin/outbox$"))
        row = page.locator("tbody tr", has_text="file.deleted")
        wait_until(lambda: "failed" in (page.reload() and row.inner_text()), 10)
        expect(row).to_contain_text("HTTP 500")
        check_page(page, "admin-outbox", width)
        row.get_by_role("button", name="Send again").click()
        expect(page.get_by_text(re.compile(r"Delivery \d+ will be sent again in a moment."))).to_be_visible()
        third = receiver.wait_for(3)[2]
        assert third.genuine and third.status == 204 and third.body == receiver.received[1].body

        page.goto(f"{o}/admin/webhooks")
        expect(page.get_by_text("No webhooks.")).to_be_visible()
        check_page(page, "admin-webhooks", width)
        page.get_by_role("link", name="Outbox: deliveries waiting or failed").click()
        expect(page.get_by_text("Nothing is waiting.")).to_be_visible()

        page.goto(f"{o}/projects/demo-pkg?tab=settings")
        page.locator("#webhooks").get_by_role("button", name=re.compile("Remove webhook")).first.click()
        expect(
            page.get_by_text(re.compile(r"The webhook to http://127\.0\.0\.1:\d+/… is removed\."))
        ).to_be_visible()
    finally:
        page.context.close()
        receiver.stop()


def test_only_owners_and_admins_manage_hooks_and_only_admins_see_the_outbox(site):
    bob = WebClient(site.url)
    bob.login("bob", PASSWORD)
    page = bob.get("/projects/demo-pkg").text
    assert 'id="webhooks"' not in page
    assert (
        bob.post("/projects/demo-pkg/webhooks", {"url": "https://ci.example.org/h"}, page=page).status_code
        == 403
    )
    assert bob.get("/admin/outbox").status_code == 403
    assert bob.get("/admin/webhooks").status_code == 403
    assert bob.post("/admin/webhooks", {"url": "https://ci.example.org/h"}, page=page).status_code == 403

    admin = WebClient(site.url)
    admin.login("admin", PASSWORD)
    page = admin.get("/projects/demo-pkg").text
    resp = admin.post(
        "/projects/demo-pkg/webhooks", {"url": "http://10.1.2.3/hook", "events": "file.yanked"}, page=page
    )
    assert admin.flashes(resp) == [
        "10.1.2.3 is at 10.1.2.3, not a public address; an admin may allow the host with the "
        "webhook_allowed_hosts setting"
    ]
    resp = admin.post(
        "/projects/demo-pkg/webhooks", {"url": "https://ci.example.org/h", "events": "nope"}, page=page
    )
    assert admin.flashes(resp)[0].startswith("choose one or more events of: release.published")
