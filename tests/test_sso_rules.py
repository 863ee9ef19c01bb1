"""The rules of sign-in through an identity provider that need no browser: the config's
checks, the provider's groups, domains and MFA claims, the names first sign-ins make, and
which address finds an account to link. The flow itself runs in chromium against a real provider in
test_sso.py."""

from __future__ import annotations

import re

import pytest
from conftest import app_server

from privindex.accounts import users
from privindex.config import ConfigError, Settings, SSOProvider, load_settings
from privindex.db.connection import bound
from privindex.oidc import sso
from privindex.ops import audit

PROVIDER = {
    "issuer": "https://id.example.com/",
    "client_id": "pi",
    "client_secret": "s3cret-value",
    "label": "Team ID",
}


def provider(**extra) -> SSOProvider:
    return Settings(sso_providers=[{**PROVIDER, **extra}]).sso_providers[0]


def test_a_provider_is_read_from_the_config_file_and_its_secret_stays_out_of_repr(tmp_path):
    config = tmp_path / "privindex.toml"
    config.write_text(
        '[[sso_providers]]\nissuer = "https://id.example.com/"\nclient_id = "pi"\n'
        'client_secret = "s3cret-value"\nlabel = "Team ID"\nallowed_domains = ["@Example.com"]\n'
    )
    settings = load_settings(config, environ={})
    (read,) = settings.sso_providers
    assert read.issuer == "https://id.example.com" and read.allowed_domains == ("example.com",)
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({**PROVIDER, "issuer": "http://id.example.com"}, "must be an https:// URL"),
        ({k: v for k, v in PROVIDER.items() if k != "client_secret"}, "needs client_secret"),
        ({**PROVIDER, "required_groups": "developers"}, "required_groups must be a list of strings"),
        ({**PROVIDER, "trust_provider_mfa": "yes"}, "trust_provider_mfa must be true or false"),
        ({**PROVIDER, "scopes": ["openid"]}, "unknown key(s) scopes"),
    ],
)
def test_a_bad_provider_entry_is_refused_naming_the_key(entry, says):
    with pytest.raises(ConfigError, match="^sso_providers: ") as refused:
        Settings(sso_providers=[entry])
    assert says in str(refused.value)


def test_providers_cannot_be_set_from_the_environment():
    with pytest.raises(ConfigError, match="PRIVINDEX_SSO_PROVIDERS: set sso_providers in the config file"):
        load_settings(environ={"PRIVINDEX_SSO_PROVIDERS": "x"})


def test_a_provider_open_to_anyone_it_knows_is_warned_of_at_start_and_by_check(tmp_path, caplog):
    config = tmp_path / "privindex.toml"
    config.write_text(
        '[[sso_providers]]\nissuer = "https://id.example.com/"\nclient_id = "pi"\n'
        'client_secret = "s3cret-value"\nlabel = "Open ID"\n\n'
        '[[sso_providers]]\nissuer = "https://corp.example.com/"\nclient_id = "pi"\n'
        'client_secret = "s3cret-value"\nlabel = "Corp"\nrequired_groups = ["developers"]\n'
    )
    providers = load_settings(config, environ={}).sso_providers
    with app_server(tmp_path / "store", tmp_path / "data", sso_providers=providers) as server:
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        checked = server.cli("check", "--config", str(config))  # exit 0: a warning fails nothing
    assert len(warned) == 1 and "'Open ID' (https://id.example.com) sets neither allowed_domains" in warned[0]
    assert "anyone this provider knows can create an account" in warned[0]
    assert checked.stdout.count("warning: sso_providers: 'Open ID'") == 1 and "'Corp'" not in checked.stdout
    assert "s3cret-value" not in caplog.text + checked.stdout + checked.stderr


def test_an_http_issuer_is_accepted_on_loopback_only():
    assert provider(issuer="http://127.0.0.1:9000").issuer == "http://127.0.0.1:9000"


def test_groups_and_domains_are_checked_and_an_unverified_email_does_not_count():
    rules = provider(required_groups=["developers"], allowed_domains=["example.com"])
    sso.admit(rules, {"groups": ["developers"], "email": "a@example.com", "email_verified": True})
    with pytest.raises(sso.SignInRefused) as refused:
        sso.admit(rules, {"groups": ["sales"], "email": "a@example.com", "email_verified": True})
    assert refused.value.reason == "sso_group"
    with pytest.raises(sso.SignInRefused) as refused:
        sso.admit(rules, {"groups": ["developers"], "email": "a@example.com", "email_verified": False})
    assert refused.value.reason == "sso_domain"
    with pytest.raises(sso.SignInRefused):
        sso.admit(rules, {"groups": ["developers"], "email": "a@elsewhere.example", "email_verified": True})


def test_the_providers_mfa_counts_only_when_trusted():
    claims = {"amr": ["pwd", "hwk"], "acr": "gold"}
    assert not sso.provider_mfa(provider(), claims)
    assert sso.provider_mfa(provider(trust_provider_mfa=True), claims)
    assert not sso.provider_mfa(provider(trust_provider_mfa=True), {"amr": ["pwd"]})
    assert sso.provider_mfa(provider(trust_provider_mfa=True, acr="gold"), {"amr": ["pwd"], "acr": "gold"})


def test_a_first_sign_in_makes_a_valid_unused_username(app, runner):
    runner.add_user("ann-lee", password="correct horse battery")
    rules = provider()
    assert sso._free_username(rules, {"preferred_username": "Ann Lee"}) == "ann-lee-2"
    assert sso._free_username(rules, {"email": "__x@example.com"}) == "x"
    assert sso._free_username(rules, {}) == "user"


def test_only_a_verified_address_finds_the_account_a_provider_may_link_to(app, runner):
    """oidc/sso.py offers linking to the account whose VERIFIED address the provider names:
    an address someone merely typed in proves nothing."""
    from privindex.accounts import emails

    runner.add_user("ann", password="correct horse battery")
    assert runner.invoke("user", "email", "ann", "Ann@Example.com").exit_code == 0
    assert emails.find_by_address("ann@example.com") is None
    assert runner.invoke("user", "email", "ann", "ann@example.com", "--verified").exit_code == 0
    assert emails.find_by_address("ANN@example.com").user.username == "ann"


def test_the_providers_mfa_stands_for_a_second_factor_only_while_trusted_and_last_used(make_app):
    """The stored fact that the last sign-in through the provider carried MFA is the user's
    second factor for tokens and uploads, until a sign-in with a password alone or a start
    where the provider is no longer trusted for its MFA."""
    app = make_app(sso_providers=[{**PROVIDER, "trust_provider_mfa": True}])
    with bound(app.extensions["privindex"].database):
        gus = users.create_user("gus", "correct horse battery", audit.CLI)
        sso.link(PROVIDER["issuer"], "sub-gus", gus, audit.CLI, provider_mfa=True)
        assert users.has_second_factor(gus) and not users.has_own_second_factor(gus)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        form = {"username": "gus", "password": "correct horse battery", "csrf_token": token}
        assert client.post("/login", data=form).status_code == 302
        assert not users.has_second_factor(gus)  # a password alone carried no MFA
        sso.link(PROVIDER["issuer"], "sub-gus-2", gus, audit.CLI, provider_mfa=True)
        assert users.has_second_factor(gus)

    restarted = make_app(sso_providers=[PROVIDER])  # the same database, trust_provider_mfa off
    with bound(restarted.extensions["privindex"].database):
        assert not users.has_second_factor(gus)


@pytest.mark.app_settings(
    require_2fa=False, smtp_url="smtp://127.0.0.1:1", mail_from="pidx@example.org", sso_providers=[PROVIDER]
)
def test_a_user_the_provider_made_gets_no_password_by_reset_nor_signs_in_with_one(app):
    """Else a local password would skip the provider's group and domain checks."""
    import json
    import re
    import time

    from privindex.accounts import emails, users
    from privindex.db.models import OutboxItem, SsoLink
    from privindex.ops import audit

    def linked(name: str, password: str | None) -> None:
        user = users.create_user(name, password, audit.CLI)
        emails.add_address(user, f"{name}@corp.example", audit.CLI, verified=True)
        SsoLink.create(issuer=PROVIDER["issuer"], subject=name, user=user, created_at=time.time())

    def reset_links() -> list[str]:
        texts = [json.loads(i.payload)["text"] for i in OutboxItem.select() if i.kind == "mail"]
        return [m.group(1) for t in texts if (m := re.search(r"/reset-password/([A-Za-z0-9_-]+)", t))]

    linked("sam", None)  # made by the provider
    linked("pat", "pat's own old password")  # had a password before linking: keeps it
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    for account in ("sam@corp.example", "sam"):
        answer = client.post("/forgot-password", data={"account": account})
        assert answer.status_code == 200 and "Check your mail" in answer.get_data(as_text=True)
        answer.close()  # the link is made once the answer is sent (same timing either way)
    assert reset_links() == []
    refused = client.post("/login", data={"username": "sam", "password": "any password at all"})
    assert refused.status_code == 401 and "Sign in with Team ID" in refused.get_data(as_text=True)

    client.post("/forgot-password", data={"account": "pat"}).close()
    assert len(reset_links()) == 1
    signed_in = client.post("/login", data={"username": "pat", "password": "pat's own old password"})
    assert signed_in.status_code == 302
