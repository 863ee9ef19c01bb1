"""Teams (issue 29): a team holds owner or maintainer roles on projects and namespaces, and
its members may do what the role allows, exactly as if the role were theirs; leaving the team
takes the rights away at once.

The rules are asked directly (services on a real database); the public index's 2025
incident (team rights that outlived membership) is replayed against a real `privindex serve`
with twine and a signed-in web session; the CLI is the real one.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import add_user, app_server
from test_app import sign_in
from webclient import PASSWORD, WebClient
from wheels import make_wheel, upload

from privindex.accounts import namespaces, permissions, removal, teams, users
from privindex.accounts.users import AccountError
from privindex.db.models import AuditEvent, Project, Team
from privindex.ops import audit
from privindex.packages import projects


def as_user(user) -> audit.Context:
    return audit.Context(actor=user)


@pytest.fixture
def people(app):
    """An admin, the owner of `widgets`, and carol, who holds no role of her own."""
    admin = users.create_user("admin", None, audit.CLI, is_admin=True)
    owner = users.create_user("olga", None, audit.CLI)
    carol = users.create_user("carol", None, audit.CLI)
    projects.ensure_project("widgets", audit.CLI)
    projects.set_role("widgets", "olga", "owner", audit.CLI)
    return admin, owner, carol


def tags() -> list[str]:
    return [
        e.tag for e in AuditEvent.select().where(AuditEvent.tag.startswith("team:")).order_by(AuditEvent.id)
    ]


def test_a_maintainer_team_lets_its_members_upload_but_not_manage(people):
    admin, _, carol = people
    assert permissions.user_role(carol, Project.get(name="widgets")) is None
    teams.create_team("builders", "CI people", as_user(admin))
    teams.grant("builders", "maintainer", as_user(admin), project="widgets")
    teams.add_member("builders", "carol", as_user(admin))

    permissions.check_upload(carol, read_only=False, scope={"widgets"}, name="widgets")
    assert not permissions.can_manage(carol, "widgets")  # no yank, delete, roles, publishers, settings
    assert not permissions.can_set_status(carol, "widgets", "active", "archived")


def test_an_owner_team_gives_every_owner_action_but_never_quarantine(people):
    admin, _, carol = people
    teams.create_team("core", "", as_user(admin))
    teams.grant("core", "owner", as_user(admin), project="Widgets")  # any spelling of the name
    teams.add_member("core", "carol", as_user(admin))

    assert permissions.user_role(carol, Project.get(name="widgets")) == "owner"
    assert permissions.can_manage(carol, "widgets")  # yank, delete, roles, publishers, settings
    assert permissions.can_set_status(carol, "widgets", "active", "archived")
    assert not permissions.can_set_status(carol, "widgets", "active", "quarantined")
    permissions.check_upload(carol, read_only=False, scope=None, name="widgets")
    with pytest.raises(permissions.UploadDenied, match="read-only"):
        permissions.check_upload(carol, read_only=True, scope=None, name="widgets")
    assert not permissions.can_manage(carol, "gadgets")  # the role is on widgets only


def test_the_higher_of_a_users_own_role_and_a_teams_counts(people):
    admin, _, carol = people
    projects.set_role("widgets", "carol", "maintainer", audit.CLI)
    teams.create_team("core", "", as_user(admin))
    teams.grant("core", "owner", as_user(admin), project="widgets")
    teams.add_member("core", "carol", as_user(admin))
    assert permissions.can_manage(carol, "widgets")
    teams.remove_member("core", "carol", as_user(admin))
    assert not permissions.can_manage(carol, "widgets")
    permissions.check_upload(carol, read_only=False, scope=None, name="widgets")  # her own role stays


def test_leaving_the_team_or_losing_the_role_takes_the_rights_at_once(people):
    admin, _, carol = people
    teams.create_team("core", "", as_user(admin))
    teams.grant("core", "owner", as_user(admin), project="widgets")
    teams.add_member("core", "carol", as_user(admin))
    assert permissions.can_manage(carol, "widgets")

    teams.remove_member("core", "carol", as_user(admin))
    assert not permissions.can_manage(carol, "widgets")
    with pytest.raises(permissions.UploadDenied, match="isn't allowed to upload"):
        permissions.check_upload(carol, read_only=False, scope={"widgets"}, name="widgets")

    teams.add_member("core", "carol", as_user(admin))
    teams.revoke("core", as_user(admin), project="widgets")
    assert not permissions.can_manage(carol, "widgets")
    with pytest.raises(permissions.UploadDenied):
        permissions.check_upload(carol, read_only=False, scope=None, name="widgets")

    teams.grant("core", "owner", as_user(admin), project="widgets")
    teams.delete_team("core", as_user(admin))
    assert not permissions.can_manage(carol, "widgets")
    assert tags() == [
        "team:create",
        "team:role:grant",
        "team:member:add",
        "team:member:remove",
        "team:member:add",
        "team:role:revoke",
        "team:role:grant",
        "team:delete",
    ]


def test_a_project_keeps_an_owner_whether_owners_are_people_or_a_team(people):
    """Warehouse's rule (a project keeps at least one owner) counts a team's owners too:
    olga may step down while the team owns widgets, and then no change to the team may
    leave widgets without an owner. A refused change changes nothing."""
    admin, olga, carol = people
    teams.create_team("core", "", as_user(admin))
    teams.grant("core", "owner", as_user(admin), project="widgets")
    teams.add_member("core", "carol", as_user(admin))
    projects.remove_role("widgets", "olga", audit.CLI)  # was refused: she was the last direct owner
    assert permissions.user_role(olga, Project.get(name="widgets")) is None

    refusals = {
        "remove the last member": lambda: teams.remove_member("core", "carol", as_user(admin)),
        "revoke the role": lambda: teams.revoke("core", as_user(admin), project="widgets"),
        "make it maintainer": lambda: teams.grant("core", "maintainer", as_user(admin), project="widgets"),
        "delete the team": lambda: teams.delete_team("core", as_user(admin)),
    }
    for what, change in refusals.items():
        with pytest.raises(AccountError, match="leave widgets without an owner"):
            change()
        assert permissions.user_role(carol, Project.get(name="widgets")) == "owner", what
    assert tags()[-1] == "team:member:add"  # nothing refused was recorded

    projects.set_role("widgets", "olga", "owner", audit.CLI)  # another owner: now each may go
    teams.remove_member("core", "carol", as_user(admin))
    teams.delete_team("core", as_user(admin))
    with pytest.raises(AccountError, match="'olga' is the last owner of 'widgets'"):
        projects.set_role("widgets", "olga", "maintainer", audit.CLI)
    assert permissions.user_role(olga, Project.get(name="widgets")) == "owner"


def test_a_team_role_on_a_namespace_lets_members_create_and_act_on_projects_under_it(people, app):
    admin, _, carol = people
    namespaces.grant("acme", ["admin"], False, audit.CLI, max_depth=2)
    with pytest.raises(permissions.NamespaceReserved):
        permissions.check_upload(carol, read_only=False, scope=None, name="acme-tools")
    teams.create_team("acme-devs", "", as_user(admin))
    teams.grant("acme-devs", "maintainer", as_user(admin), namespace="acme")
    teams.add_member("acme-devs", "carol", as_user(admin))

    permissions.check_upload(carol, read_only=False, scope=None, name="acme-tools")  # a new name
    projects.ensure_project("acme-lib", audit.CLI)
    permissions.check_upload(carol, read_only=False, scope=None, name="acme-lib")  # an existing one
    assert not permissions.can_manage(carol, "acme-lib")
    assert permissions.projects_with_role(carol) == {"acme-lib"}  # her "My projects"
    projects.ensure_project("acmecorp", audit.CLI)  # not under acme
    with pytest.raises(permissions.UploadDenied):
        permissions.check_upload(carol, read_only=False, scope=None, name="acmecorp")
    assert [(r.team, r.role, r.target) for r in teams.teams_of_project("acme-lib")] == [
        ("acme-devs", "maintainer", "acme-*")
    ]

    teams.remove_member("acme-devs", "carol", as_user(admin))
    with pytest.raises(permissions.NamespaceReserved):
        permissions.check_upload(carol, read_only=False, scope=None, name="acme-tools")


def test_owners_manage_teams_of_their_projects_only_and_never_namespaces(people):
    admin, owner, carol = people
    projects.ensure_project("gadgets", audit.CLI)
    with pytest.raises(AccountError, match="only an admin"):
        teams.create_team("free", "", as_user(owner))  # a bare team is an admin's
    teams.create_team_for_project("widget-crew", "", "widgets", "maintainer", as_user(owner))
    teams.add_member("widget-crew", "carol", as_user(owner))
    assert permissions.user_role(carol, Project.get(name="widgets")) == "maintainer"
    with pytest.raises(AccountError, match="only an admin"):
        teams.create_team_for_project("gadget-crew", "", "gadgets", "owner", as_user(owner))
    with pytest.raises(AccountError, match="only an admin"):
        teams.grant("widget-crew", "owner", as_user(owner), project="gadgets")
    namespaces.grant("acme", ["olga"], False, audit.CLI, max_depth=2)
    with pytest.raises(AccountError, match="only an admin"):
        teams.grant("widget-crew", "owner", as_user(owner), namespace="acme")
    # once the team also holds a role elsewhere, its membership is no longer hers to change
    teams.grant("widget-crew", "maintainer", as_user(admin), project="gadgets")
    with pytest.raises(AccountError, match="only an admin"):
        teams.remove_member("widget-crew", "carol", as_user(owner))
    with pytest.raises(AccountError, match="only an admin"):
        teams.add_member("widget-crew", "olga", as_user(carol))  # a maintainer is not an owner
    assert permissions.user_role(carol, Project.get(name="gadgets")) == "maintainer"


def test_an_owner_cannot_grant_a_role_to_a_team_she_does_not_manage(people):
    admin, owner, carol = people
    # an admin's team, made for a namespace but without a role yet: olga may not give it one
    # (she would join it next and inherit what the admin grants it)
    teams.create_team("platform", "", as_user(admin))
    with pytest.raises(AccountError, match="only an admin"):
        teams.grant("platform", "maintainer", as_user(owner), project="widgets")
    with pytest.raises(AccountError, match="only an admin"):
        teams.add_member("platform", "olga", as_user(owner))
    # nor to another owner's team: its owner would lose it
    users.create_user("bert", None, audit.CLI)
    projects.ensure_project("bproj", audit.CLI)
    projects.set_role("bproj", "bert", "owner", audit.CLI)
    teams.create_team_for_project("widget-crew", "", "widgets", "maintainer", as_user(owner))
    with pytest.raises(AccountError, match="only an admin"):
        teams.grant("widget-crew", "maintainer", as_user(users.get_user("bert")), project="bproj")
    teams.add_member("widget-crew", "carol", as_user(owner))  # still hers
    assert [r.target for r in teams.describe(teams.get_team("platform")).roles] == []
    # admins are unaffected; an owner may still take any team off her project
    teams.grant("platform", "maintainer", as_user(admin), project="widgets")
    teams.revoke("platform", as_user(owner), project="widgets")


def test_bad_requests_say_why_and_change_nothing(people):
    admin, *_ = people
    teams.create_team("core", "", as_user(admin))
    before = AuditEvent.select().count()
    for attempt, message in [
        (lambda: teams.create_team("Core", "", as_user(admin)), "already exists"),
        (lambda: teams.create_team("no spaces", "", as_user(admin)), "a team name has"),
        (lambda: teams.create_team("long", "x" * 501, as_user(admin)), "at most 500 characters"),
        (lambda: teams.add_member("core", "nobody", as_user(admin)), "there is no user"),
        (lambda: teams.add_member("nope", "carol", as_user(admin)), "there is no team"),
        (lambda: teams.remove_member("core", "carol", as_user(admin)), "not a member"),
        (lambda: teams.grant("core", "admin", as_user(admin), project="widgets"), "a role is one of"),
        (lambda: teams.grant("core", "owner", as_user(admin), project="ghost"), "there is no project"),
        (lambda: teams.grant("core", "owner", as_user(admin), namespace="ghost"), "there is no namespace"),
        (lambda: teams.grant("core", "owner", as_user(admin)), "give a project or a namespace"),
        (lambda: teams.revoke("core", as_user(admin), project="widgets"), "has no role on"),
    ]:
        with pytest.raises(AccountError, match=message):
            attempt()
    assert AuditEvent.select().count() == before
    assert [t.name for t in teams.list_teams()] == ["core"]


def test_removing_a_user_takes_them_out_of_their_teams(people):
    admin, _, carol = people
    teams.create_team("core", "", as_user(admin))
    teams.add_member("core", "carol", as_user(admin))
    removal.remove_user(carol, audit.CLI)
    assert teams.list_teams()[0].members == ()


# -- the 2025 incident, against a real server -------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("teams")
    with app_server(base / "store", base / "data", require_2fa=False) as server:  # the rules, in-process
        add_user(server, "olga", PASSWORD)
        add_user(server, "carol", PASSWORD)
        yield server


def test_removed_from_the_team_the_members_token_and_web_session_are_refused_at_once(
    site, accounts, tmp_path
):
    acc = accounts(site)
    first = make_wheel(tmp_path, "incident", "1.0")
    assert upload(site.url, acc.token("olga"), first).status_code == 200
    acc.cli("team", "create", "release-crew", "--description", "people who ship incident")
    acc.cli("team", "grant", "release-crew", "incident", "--role", "owner")
    acc.cli("team", "add", "release-crew", "carol")
    # carol's token scoped to the project, and her web session, both work through the team
    token = acc.token("carol", "--project", "incident")
    uploaded = upload(site.url, token, make_wheel(tmp_path, "incident", "1.1"))
    assert uploaded.status_code == 200, uploaded.text
    web = WebClient(site.url)
    assert web.login("carol", PASSWORD).ok
    page = web.get("/projects/incident").text
    assert "maintained by team" in page and "release-crew" in page
    yank = {"reason": "bad build", "back": "/projects/incident"}
    web.post("/projects/incident/1.0/yank", yank, page=page)
    assert "1.0 of incident was yanked." in web.flashes()

    removed = acc.cli("team", "remove", "release-crew", "carol")
    assert "no longer count for them" in removed.stderr
    refused = upload(site.url, token, make_wheel(tmp_path, "incident", "1.2"))
    assert refused.status_code >= 400
    assert "isn't allowed to upload to project 'incident'" in refused.reason + refused.text
    web.post("/projects/incident/1.1/yank", yank, page=web.get("/projects/incident").text)
    assert "only an owner of the project or an admin may do that" in web.flashes()
    events = [json.loads(line) for line in acc.cli("audit", "--json").stdout.splitlines()]
    assert [e["tag"] for e in events if e["tag"].startswith("team:")][::-1] == [  # newest first
        "team:create",
        "team:role:grant",
        "team:member:add",
        "team:member:remove",
    ]
    listing = acc.cli("team", "list").stdout.splitlines()
    assert listing[1].split("\t") == ["release-crew", "", "owner:incident", "people who ship incident"]


def test_the_cli_says_what_to_do_next_on_errors(site, accounts):
    acc = accounts(site)
    missing = acc.cli("team", "add", "ghosts", "carol", check=False)
    assert missing.returncode != 0
    assert "there is no team 'ghosts' (see: privindex team list)" in missing.stderr
    acc.cli("team", "create", "docs")
    neither = acc.cli("team", "grant", "docs", "--role", "owner", check=False)
    assert "give a project or a namespace (PROJECT or --namespace PREFIX)" in neither.stderr


# -- the web pages, through the Flask client -------------------------------------------------


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def main_text(page: str) -> str:
    return page.split("<main")[1].split("</main>")[0]


@pytest.mark.app_settings(require_2fa=False)
def test_the_admin_teams_page_creates_a_team_adds_members_and_gives_roles(app, client):
    users.create_user("boss", PASSWORD, audit.CLI, is_admin=True)
    users.create_user("carol", PASSWORD, audit.CLI)
    projects.ensure_project("widgets", audit.CLI)
    sign_in(client, "boss")
    page = client.get("/admin/teams").text
    assert "No team yet." in page and 'href="/admin/teams"' in page  # in the admin menu
    token = csrf(page)

    def post(path: str, **form: str) -> str:
        return client.post(path, data={"csrf_token": token, **form}, follow_redirects=True).text

    assert "The team core is created" in post("/admin/teams", name="Core", description="the core crew")
    assert "carol joined the team core." in post(
        "/teams/members", team="core", username="carol", action="add"
    )
    page = post("/teams/roles", team="core", project="Widgets", role="owner", action="grant")
    assert "The team core is now owner." in page
    shown = main_text(page)
    assert "the core crew" in shown and "carol" in shown and 'href="/projects/widgets"' in shown
    assert permissions.can_manage(users.get_user("carol"), "widgets")
    # bad input: one line in the page, nothing changed, never a command-line hint
    for form, said in [
        ({"team": "core", "username": "ghost", "action": "add"}, "there is no user &#39;ghost&#39;"),
        ({"team": "ghosts", "username": "carol", "action": "add"}, "there is no team &#39;ghosts&#39;"),
    ]:
        page = post("/teams/members", **form)
        assert said in page and "privindex" not in main_text(page)
    page = post("/teams/roles", team="core", project="nope", role="owner", action="grant")
    assert "there is no project &#39;nope&#39;" in page
    page = post("/teams/roles", team="core", project="widgets", action="revoke")  # its only owner
    assert "that would leave widgets without an owner; add another owner first" in page
    assert permissions.can_manage(users.get_user("carol"), "widgets")
    users.create_user("olga", None, audit.CLI)
    projects.set_role("widgets", "olga", "owner", audit.CLI)
    assert "The team core no longer has a role there." in post(
        "/teams/roles", team="core", project="widgets", action="revoke"
    )
    assert not permissions.can_manage(users.get_user("carol"), "widgets")
    assert "The team core is deleted" in post("/teams/delete", team="core")
    assert "No team yet." in client.get("/admin/teams").text
    assert "Noch kein Team." in client.get("/admin/teams", headers={"Accept-Language": "de"}).text
    page = client.get("/audit?tag=team:delete", headers={"Accept-Language": "fr"}).text
    assert "Équipe core supprimée." in page


@pytest.mark.app_settings(require_2fa=False)
def test_an_owner_manages_the_teams_of_a_project_in_its_settings_and_readers_see_them(app, client):
    users.create_user("olga", PASSWORD, audit.CLI)
    users.create_user("carol", PASSWORD, audit.CLI)
    projects.ensure_project("widgets", audit.CLI)
    projects.set_role("widgets", "olga", "owner", audit.CLI)
    sign_in(client, "olga")
    assert client.get("/admin/teams").status_code == 403
    page = client.get("/projects/widgets?tab=settings").text
    assert 'id="teams-h"' in page
    token = csrf(page)

    def post(path: str, **form: str) -> str:
        return client.post(path, data={"csrf_token": token, **form}, follow_redirects=True).text

    page = post("/projects/widgets/teams", name="widget-crew", description="", role="maintainer")
    assert "The team widget-crew is created with a role on widgets." in page
    page = post("/teams/members", team="widget-crew", username="carol", action="add", from_project="widgets")
    assert "carol joined the team widget-crew." in page
    assert "maintained by team widget-crew (maintainer)" in page
    assert permissions.user_role(users.get_user("carol"), Project.get(name="widgets")) == "maintainer"
    # a team of someone else's project is not hers to change
    teams.create_team("ops", "", audit.CLI)
    teams.grant("ops", "owner", audit.CLI, namespace=None, project="widgets")
    projects.ensure_project("gadgets", audit.CLI)
    teams.grant("ops", "owner", audit.CLI, project="gadgets")
    page = post("/teams/members", team="ops", username="carol", action="add", from_project="widgets")
    assert "only an admin or an owner of the team&#39;s projects may do this" in page
    assert teams.describe(Team.get(name="ops")).members == ()
    # a reader (signed out) sees the teams beside the project's people, no settings
    client.post("/logout", data={"csrf_token": token})
    page = client.get("/projects/widgets").text
    assert "maintained by team widget-crew (maintainer)" in page and "maintained by team ops (owner)" in page
    assert 'id="teams-h"' not in client.get("/projects/widgets?tab=settings").text
