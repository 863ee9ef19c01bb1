"""Project notices reach roles held through a team, in-process (the mail a user reads is the
outbox row it would be sent from): owners through a team hear of Trusted Publisher changes,
and a team's maintainers may subscribe to uploads."""

from __future__ import annotations

import json

import pytest

from privindex.accounts import emails, teams, users
from privindex.db.models import OutboxItem
from privindex.notify import subscriptions
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import projects

MAIL_ON = {"require_2fa": False, "smtp_url": "smtp://127.0.0.1:1", "mail_from": "pidx@example.org"}


def mailed_to(address: str) -> list[str]:
    rows = [json.loads(i.payload) for i in OutboxItem.select() if i.kind == "mail"]
    return [m["subject"] for m in rows if m["to"] == address]


@pytest.mark.app_settings(**MAIL_ON)
def test_team_owners_and_maintainers_hear_of_their_projects(app):
    projects.ensure_project("tools", audit.CLI)
    for name in ("olga", "mads"):
        emails.add_address(
            users.create_user(name, None, audit.CLI), f"{name}@example.org", audit.CLI, verified=True
        )
    teams.create_team("core", "", audit.CLI)
    teams.add_member("core", "olga", audit.CLI)
    teams.grant("core", "owner", audit.CLI, project="tools")
    teams.create_team("helpers", "", audit.CLI)
    teams.add_member("helpers", "mads", audit.CLI)
    teams.grant("helpers", "maintainer", audit.CLI, project="tools")

    audit.record(Tag.PUBLISHER_ADD, audit.CLI, project="tools", repository="o/tools", workflow="ci.yml")
    assert mailed_to("olga@example.org") == ["[privindex] A Trusted Publisher was added"]
    assert mailed_to("mads@example.org") == []  # maintainers are not told

    mads = users.get_user("mads")
    assert [(c.project, c.role, c.subscribed) for c in subscriptions.choices(mads)] == [
        ("tools", "maintainer", False)
    ]
    subscriptions.set_subscribed(mads, "tools", True)
    audit.record(Tag.FILE_ADD, audit.CLI, subject="tools-1.0-py3-none-any.whl", project="tools")
    assert "[privindex] New upload to tools" in mailed_to("olga@example.org")
    assert mailed_to("mads@example.org") == ["[privindex] New upload to tools"]
