"""What removing a user frees, in-process: their email addresses and identity provider links
go, so the address can be someone else's and the provider's subject signs in anew; nothing
keyed to them stays behind; and no project is left without an owner, direct or through a
team (Warehouse's rule)."""

from __future__ import annotations

import pytest

from privindex.accounts import devices, emails, namespaces, removal, teams, users
from privindex.accounts.users import AccountError
from privindex.config import OIDCIssuer, Settings, replace
from privindex.db.models import (
    AuditEvent,
    KnownDevice,
    NamespaceOwner,
    ProjectRole,
    ProjectSubscription,
    TeamMember,
)
from privindex.notify import subscriptions
from privindex.oidc import publishers, sso
from privindex.ops import audit
from privindex.packages import projects

ISSUER = "https://id.example.com/"
PROVIDER = {"issuer": ISSUER, "client_id": "pi", "client_secret": "s3cret-value", "label": "Team ID"}
CLAIMS = {"sub": "42", "preferred_username": "ann", "email": "ann@example.com", "email_verified": True}


@pytest.mark.app_settings(require_2fa=False)
def test_a_removed_users_address_and_provider_subject_are_free_again(app):
    provider = Settings(sso_providers=[PROVIDER]).sso_providers[0]
    first = sso._who(provider, CLAIMS, audit.CLI).user
    assert first is not None and first.username == "ann"
    assert emails.find_by_address("ann@example.com").user.username == "ann"

    removal.remove_user(first, audit.CLI)

    again = sso._who(provider, CLAIMS, audit.CLI).user  # not "This account is disabled."
    assert again is not None and again.username == "ann-2" and not again.is_disabled
    assert [a.address for a in emails.addresses(again)] == ["ann@example.com"]
    removal.remove_user(again, audit.CLI)
    bob = users.create_user("bob", None, audit.CLI)
    assert emails.add_address(bob, "Ann@Example.com", audit.CLI).address == "ann@example.com"


@pytest.fixture
def ann(app):
    """ann, the one owner of `widgets`, and bob, who holds no role."""
    ann = users.create_user("ann", None, audit.CLI)
    users.create_user("bob", None, audit.CLI)
    projects.ensure_project("widgets", audit.CLI)
    projects.set_role("widgets", "ann", "owner", audit.CLI)
    return ann


def team_owning(project: str, *members: str) -> None:
    teams.create_team("crew", "", audit.CLI)
    teams.grant("crew", "owner", audit.CLI, project=project)
    for member in members:
        teams.add_member("crew", member, audit.CLI)


def test_nothing_keyed_to_a_removed_user_stays_behind(ann):
    projects.set_role("widgets", "bob", "owner", audit.CLI)
    subscriptions.set_subscribed(ann, "widgets", False)
    devices.is_new(ann, "laptop")
    namespaces.grant("acme", ["ann", "bob"], False, audit.CLI, max_depth=2)

    removal.remove_user(ann, audit.CLI)

    for keyed in (ProjectRole, ProjectSubscription, KnownDevice, NamespaceOwner, TeamMember):
        assert not keyed.select().where(keyed.user == ann).exists(), keyed.__name__
    assert namespaces.grants_for("acme-tools")[0].owners == ("bob",)


def test_the_only_member_of_the_owning_team_cannot_be_removed(ann):
    projects.ensure_project("gadgets", audit.CLI)  # owned only through the team
    team_owning("gadgets", "ann")
    before = AuditEvent.select().count()
    with pytest.raises(AccountError, match="last owner of gadgets, widgets"):
        removal.remove_user(ann, audit.CLI)
    assert AuditEvent.select().count() == before
    assert not users.get_user("ann").is_disabled


def test_a_last_direct_owner_may_go_when_a_team_with_members_owns_the_project(ann):
    team_owning("widgets", "bob")
    removal.remove_user(ann, audit.CLI)
    assert users.get_user("ann").removed_at is not None


def test_a_removed_users_pending_publisher_no_longer_holds_the_name(ann, app):
    """ann's pending publisher for `sprockets` kept every other user from adding one for that
    name; removed with her, it is audited as removed, and bob may add his."""
    settings = replace(
        app.extensions["privindex"].settings,
        oidc_issuers=(OIDCIssuer("https://gitlab.example.test", "gitlab"),),
    )
    bob = users.get_user("bob")

    def add(name: str, repository: str, user):
        return publishers.add_publisher(
            settings, name, "gitlab", repository, ".gitlab-ci.yml", user, audit.CLI
        )

    add("sprockets", "ann/sprockets", ann)
    add("widgets", "ann/widgets", ann)
    projects.set_role("widgets", "bob", "owner", audit.CLI)
    with pytest.raises(AccountError, match="another user has a pending publisher"):
        add("sprockets", "bob/sprockets", bob)

    removal.remove_user(ann, audit.CLI)

    add("sprockets", "bob/sprockets", bob)
    assert [p.repository for p in publishers.list_publishers("widgets")] == ["ann/widgets"]
    removed = AuditEvent.select().where(AuditEvent.tag == "publisher:remove")
    assert [e.subject for e in removed] == ["gitlab:ann/sprockets .gitlab-ci.yml"]
