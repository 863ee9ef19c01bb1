"""Project status markers (PEP 792) against a live server: what pip, uv and twine see of an
archived, deprecated or quarantined project, the pages' keys and meta tags, a quarantined
upstream project never served from the cache, the CLI, the permission rule, the audit trail."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import requests
from conftest import Accounts, pip, privindex_cli, start_server, twine, uv, wait_until
from fake_upstream import FakeUpstream
from helpers import V1_JSON
from webclient import WebClient
from wheels import make_wheel

from privindex.packages.pages import API_VERSION

NO_2FA = {"PRIVINDEX_REQUIRE_2FA": "false"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A server with alice (who uploads) and root (an admin), and a wheel folder."""
    base = tmp_path_factory.mktemp("status")
    (base / "store").mkdir()
    server = start_server(base / "store", base / "data", env=NO_2FA)
    accounts = Accounts(server.store, server.data_dir, server.env)
    passwords = {name: accounts.user(name, admin=name == "root") for name in ("alice", "bob", "root")}
    server.passwords = passwords  # for the web UI's sign-in
    yield server, accounts.token("alice"), base / "wheels"
    server.stop()


def json_page(server, name: str) -> dict:
    resp = requests.get(f"{server.index_url}{name}/", headers={"Accept": V1_JSON}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def set_status(server, name: str, status: str, *reason: str) -> None:
    """The operator's command, then wait until the running server shows it."""
    privindex_cli(server, "project", "status", name, status, *(("--reason", reason[0]) if reason else ()))
    wait_until(lambda: json_page(server, name)["project-status"]["status"] == status, 10)


def status_options(page: str) -> list[str]:
    """The statuses the project page offers the signed-in user."""
    select = re.search(r'<select id="status" name="status">(.*?)</select>', page, re.S)
    return re.findall(r'<option value="([a-z]+)"', select.group(1)) if select else []


def install(server, target, name: str, check: bool = True, tool=pip):
    """pip (or uv: tool=uv) install name into target from the server."""
    args = ("install", "--no-deps", "--index-url", server.index_url, "--target", str(target), name)
    return pip(*args, check=check) if tool is pip else uv("pip", *args, check=check)


@pytest.mark.slow  # pip, uv and twine
def test_a_quarantined_project_lists_no_files_serves_none_and_pip_and_uv_cannot_install_it(world, tmp_path):
    server, alice, wheels = world
    twine(server.url, alice, make_wheel(wheels, "haunted", "1.0"), check=True)
    page = json_page(server, "haunted")
    assert page["meta"]["api-version"] == API_VERSION and page["project-status"] == {"status": "active"}
    file_url = requests.compat.urljoin(f"{server.index_url}haunted/", page["files"][0]["url"])
    install(server, tmp_path / "before", "haunted")

    set_status(server, "haunted", "quarantined", "malware found in 1.0")

    page = json_page(server, "haunted")
    assert page["project-status"] == {"status": "quarantined", "reason": "malware found in 1.0"}
    assert page["files"] == [] and page["versions"] == ["1.0"]
    html = requests.get(f"{server.index_url}haunted/", timeout=10).text
    assert f'<meta name="pypi:repository-version" content="{API_VERSION}">' in html
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert '<meta name="pypi:project-status-reason" content="malware found in 1.0">' in html
    assert "<a " not in html
    for url in (file_url, file_url + ".metadata"):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 404 and "haunted is quarantined" in resp.text
    assert requests.get(f"{server.url}/pypi/haunted/json", timeout=10).status_code == 404  # no JSON answer

    proc = install(server, tmp_path / "after", "haunted", check=False)
    assert proc.returncode != 0 and "No matching distribution found for haunted" in proc.stderr
    proc = install(server, tmp_path / "uv", "haunted", check=False, tool=uv)
    assert proc.returncode != 0 and "haunted" in proc.stderr and not (tmp_path / "uv" / "haunted").exists()

    set_status(server, "haunted", "active")  # the admin lifts it: installable again
    assert (
        '<meta name="pypi:project-status"' not in requests.get(f"{server.index_url}haunted/", timeout=10).text
    )
    install(server, tmp_path / "lifted", "haunted")
    assert (tmp_path / "lifted" / "haunted" / "__init__.py").exists()
    assert requests.get(f"{server.url}/pypi/haunted/json", timeout=10).json()["info"]["version"] == "1.0"


@pytest.mark.slow  # what twine says
@pytest.mark.parametrize("status", ["archived", "quarantined"])
def test_twine_upload_to_an_archived_or_quarantined_project_is_refused_and_lists_nothing(world, status):
    server, alice, wheels = world
    name = f"closed-{status}"
    twine(server.url, alice, make_wheel(wheels, name, "1.0"), check=True)
    set_status(server, name, status, "moved elsewhere")

    proc = twine(server.url, alice, make_wheel(wheels, name, "2.0"))
    assert proc.returncode != 0 and "403" in proc.output
    assert f"is {status} and takes no" in proc.output and "moved elsewhere" in proc.output
    assert json_page(server, name)["versions"] == ["1.0"]
    audit = privindex_cli(server, "audit", "--project", name, "--json").stdout
    refused = [json.loads(line) for line in audit.splitlines() if '"upload:refused"' in line]
    assert refused and status in refused[0]["details"]["reason"]


@pytest.mark.slow  # pip installs, twine uploads
def test_an_archived_project_still_installs_and_a_deprecated_one_takes_uploads(world, tmp_path):
    server, alice, wheels = world
    twine(server.url, alice, make_wheel(wheels, "old-lib", "1.0"), check=True)
    set_status(server, "old-lib", "archived")
    install(server, tmp_path / "pip", "old-lib")
    install(server, tmp_path / "uv", "old-lib", tool=uv)
    assert (tmp_path / "uv" / "old_lib" / "__init__.py").exists()
    html = requests.get(f"{server.index_url}old-lib/", timeout=10).text
    assert '<meta name="pypi:project-status" content="archived">' in html and "old_lib-1.0" in html

    set_status(server, "old-lib", "deprecated", "use new-lib")
    assert json_page(server, "old-lib")["project-status"] == {"status": "deprecated", "reason": "use new-lib"}
    twine(server.url, alice, make_wheel(wheels, "old-lib", "1.1"), check=True)
    assert json_page(server, "old-lib")["versions"] == ["1.0", "1.1"]


def test_the_cli_refuses_what_is_no_status_or_no_project_and_audits_each_change(world):
    server, alice, wheels = world
    twine(server.url, alice, make_wheel(wheels, "audited", "1.0"), check=True)
    bad = privindex_cli(server, "project", "status", "audited", "haunted", check=False)
    assert bad.returncode != 0 and "active" in bad.stderr and "quarantined" in bad.stderr
    none = privindex_cli(server, "project", "status", "no-such-thing", "archived", check=False)
    assert none.returncode != 0 and "there is no project 'no-such-thing'" in none.stderr

    done = privindex_cli(server, "project", "status", "Audited", "archived", "--reason", "done\nfor good")
    assert "audited is now archived" in done.stderr.lower()
    again = privindex_cli(server, "project", "status", "audited", "archived", "--reason", "done for good")
    assert "already archived" in again.stderr
    events = [
        json.loads(line)
        for line in privindex_cli(server, "audit", "--project", "audited", "--json").stdout.splitlines()
        if '"project:status"' in line
    ]
    assert len(events) == 1  # the second changed nothing
    assert events[0]["details"] == {
        "status": "archived",
        "old_status": "active",
        "reason": "done for good",  # one line: it goes into meta tags
        "via": "cli",
    }


def test_a_quarantined_upstream_project_is_never_served_from_the_cache(tmp_path, dists):
    fake = FakeUpstream()
    wheel = make_wheel(tmp_path / "wheels", "shady", "1.0")
    fake.add("shady", wheel)
    fake.start()
    store = tmp_path / "store"
    store.mkdir()
    server = start_server(
        store, tmp_path / "data", "--upstream", fake.url, env={**NO_2FA, "PRIVINDEX_UPSTREAM_PAGE_TTL": "0"}
    )
    try:
        install(server, tmp_path / "one", "shady")
        file_url = requests.compat.urljoin(
            f"{server.index_url}shady/", json_page(server, "shady")["files"][0]["url"]
        )
        assert requests.get(file_url, timeout=10).content == wheel.read_bytes()  # cached now

        fake.statuses["shady"] = {"status": "quarantined", "reason": "typosquat"}
        page = json_page(server, "shady")
        assert (
            page["project-status"] == {"status": "quarantined", "reason": "typosquat"} and page["files"] == []
        )
        resp = requests.get(file_url, timeout=10)
        assert resp.status_code == 404 and "quarantined" in resp.text
        proc = install(server, tmp_path / "two", "shady", check=False)
        assert proc.returncode != 0 and "No matching distribution found for shady" in proc.stderr

        fake.statuses["shady"] = {"status": "no-such-status"}  # unknown: active, as the PEP reads
        assert json_page(server, "shady")["project-status"] == {"status": "active"}
        assert requests.get(file_url, timeout=10).status_code == 200
    finally:
        server.stop()
        fake.stop()


def test_owners_archive_and_deprecate_but_only_admins_quarantine_or_lift_it(app):
    from privindex.accounts.users import AccountError, create_user
    from privindex.db.models import DistFile
    from privindex.ops import audit
    from privindex.packages import project_status
    from privindex.packages.projects import set_role

    owner = create_user("owner", "a-long-password-1", audit.CLI)
    admin = create_user("boss", "a-long-password-2", audit.CLI, is_admin=True)
    DistFile.create(
        path="p/p-1.0.tar.gz",
        filename="p-1.0.tar.gz",
        project="p",
        name="p",
        version="1.0",
        size=1,
        mtime_ns=1,
        sha256="0" * 64,
        upload_time=0,
    )
    set_role("p", "owner", "owner", audit.CLI)
    as_owner, as_admin = audit.Context(actor=owner), audit.Context(actor=admin)
    quarantined = project_status.parse("quarantined", "bad")

    assert project_status.set_status("p", project_status.parse("archived"), as_owner)
    assert project_status.set_status("p", project_status.parse("deprecated", "use q"), as_owner)
    with pytest.raises(AccountError, match="only an admin may quarantine"):
        project_status.set_status("p", quarantined, as_owner)
    assert project_status.set_status("p", quarantined, as_admin)
    with pytest.raises(AccountError, match="only an admin"):
        project_status.set_status("p", project_status.parse("active"), as_owner)
    assert project_status.current("p") == quarantined


def test_the_upstreams_marker_is_parsed_into_our_types_from_json_and_html():
    from privindex.packages.project_status import ACTIVE, ProjectStatus, Status
    from privindex.upstream.client import parse_html, parse_json

    base = "https://upstream.example/simple/x/"
    doc = {"name": "x", "files": [], "project-status": {"status": "archived", "reason": "old\x1b[31m"}}
    assert parse_json("x", doc, base).status == ProjectStatus(Status.ARCHIVED, "old\\x1b[31m")
    for odd in ({"status": 3}, {"status": "Quarantined "}, "quarantined", {"reason": "r"}, None):
        assert parse_json("x", {"name": "x", "files": [], "project-status": odd}, base).status is ACTIVE
    html = (
        '<html><head><meta name="pypi:project-status" content="quarantined">'
        '<meta name="pypi:project-status-reason" content="the project is haunted"></head></html>'
    )
    assert parse_html("x", html, base).status == ProjectStatus(Status.QUARANTINED, "the project is haunted")
    assert parse_html("x", "<html></html>", base).status is ACTIVE


def test_the_cached_page_follows_a_status_change(tmp_path, dists):
    """The page cache is keyed on object identity: a status set by the CLI re-renders."""
    store = tmp_path / "store"
    shutil.copytree(dists.folder, store)
    server = start_server(store, tmp_path / "data", env=NO_2FA)
    try:
        before = requests.get(f"{server.index_url}alpha/", timeout=10)
        assert re.search(r"alpha-2\.0", before.text)
        set_status(server, "alpha", "quarantined")
        again = requests.get(
            f"{server.index_url}alpha/", headers={"If-None-Match": before.headers["ETag"]}, timeout=10
        )
        assert again.status_code == 200 and "alpha-2.0" not in again.text
    finally:
        server.stop()


def test_the_project_page_shows_the_status_and_owners_and_admins_change_it_after_a_confirmation(world):
    server, alice, wheels = world
    twine(server.url, alice, make_wheel(wheels, "web-lib", "1.0"), check=True)
    owner, admin, other = (WebClient(server.url) for _ in range(3))
    for client, name in ((owner, "alice"), (admin, "root"), (other, "bob")):
        client.login(name, server.passwords[name])

    page = owner.get("/projects/web-lib?tab=settings").text
    assert status_options(page) == ["active", "archived", "deprecated"]
    confirm = owner.post("/projects/web-lib/status", {"status": "archived", "reason": "done"}, page=page)
    assert "Archive web-lib?" in confirm.text and "Uploads to it are refused" in confirm.text
    assert json_page(server, "web-lib")["project-status"] == {"status": "active"}  # nothing yet
    done = owner.post(
        "/projects/web-lib/status",
        {"status": "archived", "reason": "done", "confirm": "web-lib"},
        page=confirm.text,
    )
    assert owner.flashes(done) == ["web-lib is now archived."]
    assert json_page(server, "web-lib")["project-status"] == {
        "status": "archived",
        "reason": "done",
    }  # at once
    audit = privindex_cli(server, "audit", "--project", "web-lib", "--json").stdout.splitlines()
    event = next(json.loads(line) for line in audit if '"project:status"' in line)
    assert event["actor"] == "alice" and event["details"] == {
        "status": "archived",
        "old_status": "active",
        "reason": "done",
        "via": "web",
    }

    seen = other.get("/projects/web-lib").text
    assert "This project is archived: it takes no new uploads" in seen and "Reason: done" in seen
    assert 'name="status"' not in seen  # bob may not change it

    refused = owner.post(
        "/projects/web-lib/status", {"status": "quarantined", "confirm": "web-lib"}, page=page
    )
    assert owner.flashes(refused) == ["only an admin may quarantine a project or lift a quarantine"]
    page = admin.get("/projects/web-lib?tab=settings").text
    assert "quarantined" in status_options(page)
    confirm = admin.post("/projects/web-lib/status", {"status": "quarantined"}, page=page)
    assert "Quarantine web-lib?" in confirm.text and "its files will not be downloadable" in confirm.text
    admin.post("/projects/web-lib/status", {"status": "quarantined", "confirm": "web-lib"}, page=confirm.text)
    assert json_page(server, "web-lib")["files"] == []
    quarantined = owner.get("/projects/web-lib?tab=files").text
    assert 'name="status"' not in quarantined  # the owner cannot lift it
    assert "web_lib-1.0-py3-none-any.whl" in quarantined and "/packages/web-lib/" not in quarantined  # named
