"""What removing a user frees, in-process: their email addresses and identity provider links
go, so the address can be someone else's and the provider's subject signs in anew."""

from __future__ import annotations

import pytest

from privindex.accounts import emails, users
from privindex.config import Settings
from privindex.oidc import sso
from privindex.ops import audit

ISSUER = "https://id.example.com/"
PROVIDER = {"issuer": ISSUER, "client_id": "pi", "client_secret": "s3cret-value", "label": "Team ID"}
CLAIMS = {"sub": "42", "preferred_username": "ann", "email": "ann@example.com", "email_verified": True}


@pytest.mark.app_settings(require_2fa=False)
def test_a_removed_users_address_and_provider_subject_are_free_again(app):
    provider = Settings(sso_providers=[PROVIDER]).sso_providers[0]
    first = sso._who(provider, CLAIMS, audit.CLI).user
    assert first is not None and first.username == "ann"
    assert emails.find_by_address("ann@example.com").user.username == "ann"

    users.remove_user(first, audit.CLI)

    again = sso._who(provider, CLAIMS, audit.CLI).user  # not "This account is disabled."
    assert again is not None and again.username == "ann-2" and not again.is_disabled
    assert [a.address for a in emails.addresses(again)] == ["ann@example.com"]
    users.remove_user(again, audit.CLI)
    bob = users.create_user("bob", None, audit.CLI)
    assert emails.add_address(bob, "Ann@Example.com", audit.CLI).address == "ann@example.com"
