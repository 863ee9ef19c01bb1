"""Trusted Publishing against the app in-process (conftest's AppServer: requests and the
CLI as against a live server) and a fake OIDC issuer on loopback: the exchange's refusals
(each with its error code), publishers per project, minted tokens (scope, expiry, 2FA,
audit), and no secret in the logs or the audit trail. twine with a minted token runs
against a live server."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from conftest import add_user, app_server, privindex_cli, served, twine
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_issuer import github_claims, gitlab_claims, issuers_toml, refused
from wheels import upload

AUDIENCE = "privindex-test"
SECRETS: list[str] = []  # every JWT and minted token of the module, checked against the logs


def issuers_config(base, issuers):
    """base/privindex.toml trusting the fake GitHub, GitLab and Forgejo issuers."""
    config = base / "privindex.toml"
    config.write_text(
        issuers_toml(AUDIENCE, {issuers.url(kind): kind for kind in ("github", "gitlab", "forgejo")})
    )
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory, issuers):
    from privindex.config import load_settings

    base = tmp_path_factory.mktemp("oidc")
    config = issuers_config(base, issuers)
    trust = load_settings(config, environ={})
    with app_server(
        base / "store", base / "data", oidc_audience=trust.oidc_audience, oidc_issuers=trust.oidc_issuers
    ) as app:
        add_user(app, "ci-owner", "correct horse battery")
        app.config = config
        yield app


@pytest.fixture
def live(tmp_path, issuers):
    """A live server with the same issuers, for twine."""
    config = issuers_config(tmp_path, issuers)
    with served(tmp_path, config=config) as server:
        add_user(server, "ci-owner", "correct horse battery")
        server.config = config
        yield server


def cli(server, *args, check=True):
    return privindex_cli(server, *args, "--config", str(server.config), check=check)


@pytest.fixture(scope="module")
def widgets(server):
    return trust_widgets(server)


def trust_widgets(server) -> dict:
    """A pending GitHub publisher: acme/widgets' release.yml may create and publish alpha."""
    cli(
        server,
        "publisher",
        "add",
        "alpha",
        "--github",
        "acme/widgets",
        "--workflow",
        "release.yml",
        "--user",
        "ci-owner",
    )
    return github_claims("acme/widgets")


def mint(server, token: str, path: str = "/_/oidc/mint-token"):
    SECRETS.append(token)
    resp = requests.post(f"{server.url}{path}", json={"token": token}, timeout=10)
    if resp.status_code == 200:
        SECRETS.append(resp.json()["token"])
    return resp


def events(server, tag: str = "", **filters) -> list[dict]:
    """The audit trail, newest first, through the CLI."""
    args = [f"--{k}={v}" for k, v in filters.items()]
    found = [json.loads(line) for line in cli(server, "audit", *args, "--json").stdout.splitlines()]
    return [e for e in found if e["tag"].startswith(tag)]


def test_audience_and_discovery_are_plain_reads(server):
    assert requests.get(f"{server.url}/_/oidc/audience", timeout=10).json() == {"audience": AUDIENCE}
    found = requests.get(f"{server.url}/.well-known/pytp/legacy/", timeout=10).json()
    assert found["audience-endpoint"].endswith("/_/pytp/audience")
    audience_path = urlsplit(found["audience-endpoint"]).path  # on the public URL's host
    assert requests.get(f"{server.url}{audience_path}", timeout=10).json() == {"audience": AUDIENCE}
    for method in ("GET", "HEAD"):  # only POST exchanges anything
        assert requests.request(method, f"{server.url}/_/oidc/mint-token", timeout=10).status_code == 405


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "case, code, words",
    [
        ("wrong audience", "invalid-token", "audience"),
        ("two audiences", "invalid-token", "exactly one audience"),
        ("expired", "invalid-token", "expired"),
        ("not yet valid", "invalid-token", "not valid yet"),
        ("unknown issuer", "invalid-token", "not trusted"),
        ("unknown kid", "invalid-token", "unknown kid"),
        ("forged signature", "invalid-token", "signature"),
        ("HS256", "invalid-token", "RS256"),
        ("none", "invalid-token", "RS256"),
        ("no jti", "invalid-token", "'jti'"),
        ("other repository", "invalid-publisher", "no trusted publisher"),
        ("other workflow", "invalid-publisher", "no trusted publisher"),
        (
            "other branch's copy of the workflow in another folder",
            "invalid-publisher",
            "no trusted publisher",
        ),
    ],
)
def test_exchange_refusals(server, issuers, widgets, case, code, words):
    token = {
        "wrong audience": lambda: issuers.token("github", aud="pypi", **widgets),
        "two audiences": lambda: issuers.token("github", aud=[AUDIENCE, "pypi"], **widgets),
        "expired": lambda: issuers.token("github", **widgets, iat=1_000_000, nbf=1_000_000, exp=1_000_300),
        "not yet valid": lambda: issuers.token(
            "github", **widgets, nbf=int(2e9), iat=int(2e9), exp=int(2e9) + 300
        ),
        "unknown issuer": lambda: issuers.token("elsewhere", **widgets),
        "unknown kid": lambda: issuers.token("github", kid="rotated-away", **widgets),
        "forged signature": lambda: issuers.token("github", key=OTHER_KEY, **widgets),
        "HS256": lambda: issuers.token(
            "github", alg="HS256", key="a-shared-secret-of-32-bytes-or-so!", **widgets
        ),
        "none": lambda: issuers.token("github", alg="none", **widgets),
        "no jti": lambda: issuers.token("github", drop=("jti",), **widgets),
        "other repository": lambda: issuers.token("github", **github_claims("evil/widgets")),
        "other workflow": lambda: issuers.token("github", **github_claims("acme/widgets", "ci.yml")),
        "other branch's copy of the workflow in another folder": lambda: issuers.token(
            "github",
            **{**widgets, "job_workflow_ref": "acme/widgets/.forgejo/workflows/release.yml@refs/heads/x"},
        ),
    }[case]()
    refused(mint(server, token), code, words)


def test_bad_payloads_are_4xx_never_500(server):
    for body in (b"not json", b"[]", b'{"token": 5}', b'{"token": "a.b.c"}', b'{"token": ""}'):
        resp = requests.post(f"{server.url}/_/oidc/mint-token", data=body, timeout=10)
        assert resp.status_code == 422, body
        assert resp.json()["errors"][0]["code"] in ("invalid-payload", "invalid-token")
    problem = requests.post(f"{server.url}/_/pytp/mint-token", data=b"{}", timeout=10)
    assert problem.status_code == 422 and problem.headers["Content-Type"] == "application/problem+json"
    assert problem.json()["status"] == 422 and problem.json()["errors"][0]["code"] == "invalid-payload"


@pytest.mark.slow  # twine with the minted token
def test_minted_token_publishes_one_project_from_ci_and_is_audited(live, issuers, dists):
    server, widgets = live, trust_widgets(live)
    # require_2fa is on: ci-owner, without a second factor, may not even make an upload token
    assert "second factor" in cli(server, "token", "create", "ci-owner", check=False).stderr
    identity = issuers.token("github", aud=AUDIENCE, environment="release", **widgets)
    resp = mint(server, identity)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["token"].startswith("pidx_")
    assert 14 * 60 <= body["expires"] - time.time() <= 15 * 60 + 5  # 15 minutes
    refused(mint(server, identity), "invalid-token", "already exchanged")  # each jti once

    wheel = dists.one("alpha-1.0-py3-none-any.whl")
    assert twine(server.url, body["token"], wheel).returncode == 0
    other = twine(server.url, body["token"], dists.one("beta_pkg-0.1.tar.gz"))
    assert other.returncode != 0 and "not valid for project 'beta-pkg'" in other.output

    # the pending publisher created alpha, owned by the user who added it
    assert "alpha\t1\tci-owner" in cli(server, "project", "list").stdout
    added = events(server, tag="file:add", project="alpha")[0]
    assert added["subject"] == wheel.name
    ci = added["details"]["ci"]
    assert (ci["repository"], ci["ref"], ci["sha"]) == ("acme/widgets", "refs/heads/main", widgets["sha"])
    assert ci["workflow"] == "acme/widgets/.github/workflows/release.yml@refs/heads/main"
    page = requests.get(f"{server.url}/projects/alpha?tab=history", timeout=10).text
    assert "Published from CI" in page and "acme/widgets" in page and widgets["sha"][:12] in page
    tokens = cli(server, "token", "list", "ci-owner").stdout
    assert "Trusted Publishing: acme/widgets (alpha)" in tokens


def test_gitlab_publisher_matches_project_path_ci_file_and_environment(server, issuers, dists):
    cli(
        server,
        "publisher",
        "add",
        "handmade",
        "--gitlab",
        "Grp/Sub/Tools",
        "--workflow-ref",
        "ci/release.yml",
        "--environment",
        "production",
        "--user",
        "ci-owner",
    )
    claims = gitlab_claims("grp/sub/tools", "ci/release.yml", host=issuers.host("gitlab"))
    refused(
        mint(server, issuers.token("gitlab", aud=AUDIENCE, environment="staging", **claims)),
        "invalid-publisher",
        "no trusted publisher",
    )
    refused(
        mint(
            server,
            issuers.token(
                "gitlab",
                aud=AUDIENCE,
                environment="production",
                **gitlab_claims("grp/sub/tools", ".gitlab-ci.yml", host=issuers.host("gitlab")),
            ),
        ),
        "invalid-publisher",
        "no trusted publisher",
    )
    resp = mint(server, issuers.token("gitlab", aud=AUDIENCE, environment="production", **claims))
    assert resp.status_code == 200, resp.text
    assert upload(server.url, resp.json()["token"], dists.one("handmade-0.3.tar.gz")).status_code == 200


def test_forgejo_publisher_follows_githubs_contract(server, issuers):
    cli(
        server,
        "publisher",
        "add",
        "future-only",
        "--forgejo",
        "team/app",
        "--workflow",
        "publish.yaml",
        "--user",
        "ci-owner",
    )
    claims = {
        **github_claims("team/app"),
        "job_workflow_ref": None,
        "workflow_ref": "team/app/.forgejo/workflows/publish.yaml@refs/tags/v1",
    }
    assert mint(server, issuers.token("forgejo", aud=AUDIENCE, **claims)).status_code == 200
    # a GitHub-kind token naming the same repository is another issuer's, and is not trusted for it
    refused(mint(server, issuers.token("github", aud=AUDIENCE, **claims)), "invalid-publisher", "no trusted")


def test_removing_a_publisher_revokes_its_tokens_and_only_owners_may_add(server, issuers, dists):
    add_user(server, "stranger", "correct horse battery")
    cli(
        server,
        "publisher",
        "add",
        "beta-pkg",
        "--github",
        "acme/beta",
        "--workflow",
        "ci.yml",
        "--user",
        "ci-owner",
    )
    listed = cli(server, "publisher", "list", "beta-pkg").stdout.splitlines()
    assert len(listed) == 2 and "beta-pkg (pending)\tgithub\tacme/beta\tci.yml" in listed[1]
    resp = mint(server, issuers.token("github", aud=AUDIENCE, **github_claims("acme/beta", "ci.yml")))
    token = resp.json()["token"]
    # beta-pkg now exists and belongs to ci-owner: a stranger may not trust a workflow for it
    stranger = cli(
        server,
        "publisher",
        "add",
        "beta-pkg",
        "--github",
        "evil/beta",
        "--workflow",
        "x.yml",
        "--user",
        "stranger",
        check=False,
    )
    assert stranger.returncode == 1 and "only an owner" in stranger.stderr
    cli(server, "publisher", "remove", listed[1].split("\t")[0])
    assert cli(server, "publisher", "list", "beta-pkg").stdout.count("\n") == 1
    late = upload(server.url, token, dists.one("beta_pkg-0.1.tar.gz"))
    assert late.status_code >= 400 and "revoked" in late.reason + late.text
    assert events(server, project="beta-pkg")[0]["tag"] == "publisher:remove"


def test_a_pending_publisher_cannot_take_an_existing_project(server, issuers):
    cli(
        server,
        "publisher",
        "add",
        "squatted",
        "--github",
        "acme/squat",
        "--workflow",
        "ci.yml",
        "--user",
        "ci-owner",
    )
    add_user(server, "early", "correct horse battery")
    early = cli(
        server,
        "publisher",
        "add",
        "squatted",
        "--github",
        "early/squat",
        "--workflow",
        "ci.yml",
        "--user",
        "early",
        check=False,
    )
    assert early.returncode == 1 and "another user has a pending publisher" in early.stderr
    add_user(server, "boss", "correct horse battery", admin=True)
    cli(
        server,
        "publisher",
        "add",
        "squatted",
        "--github",
        "boss/squat",
        "--workflow",
        "ci.yml",
        "--user",
        "boss",
    )
    assert (
        mint(
            server, issuers.token("github", aud=AUDIENCE, **github_claims("boss/squat", "ci.yml"))
        ).status_code
        == 200
    )
    refused(
        mint(server, issuers.token("github", aud=AUDIENCE, **github_claims("acme/squat", "ci.yml"))),
        "invalid-pending-publisher",
        "exists already",
    )


def test_no_secret_reaches_the_log_or_the_audit_trail(server):
    from conftest import assert_no_secrets

    assert len(SECRETS) > 10
    assert_no_secrets(SECRETS, server.log_path, cli(server, "audit", "--json").stdout)


def test_without_issuers_the_exchange_is_not_enabled(client):
    resp = client.post("/_/oidc/mint-token", json={"token": "x.y.z"})
    assert resp.status_code == 422 and resp.json["errors"][0]["code"] == "not-enabled"


def test_issuers_come_from_the_config_file_only(tmp_path):
    from privindex.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PRIVINDEX_OIDC_ISSUERS: set oidc_issuers in the config file"):
        load_settings(environ={"PRIVINDEX_OIDC_ISSUERS": "https://gitlab.example.com"})
    bad = tmp_path / "bad.toml"
    bad.write_text('[[oidc_issuers]]\nurl = "http://gitlab.example.com"\nkind = "gitlab"\n')
    with pytest.raises(ConfigError, match="must be an https:// URL"):
        load_settings(bad, environ={})
    bad.write_text('[[oidc_issuers]]\nurl = "https://gitlab.example.com"\nkind = "jenkins"\n')
    with pytest.raises(ConfigError, match="kind must be one of gitlab, github, forgejo"):
        load_settings(bad, environ={})


def test_owners_add_and_remove_publishers_on_the_project_page(make_app):
    import re

    from privindex.accounts import users
    from privindex.config import OIDCIssuer
    from privindex.db.connection import bound
    from privindex.db.models import ProjectRole
    from privindex.ops import audit
    from privindex.packages import projects

    app = make_app(require_2fa=False, oidc_issuers=(OIDCIssuer("https://gitlab.example.test", "gitlab"),))
    with bound(app.extensions["privindex"].database):
        owner = users.create_user("owner", "correct horse battery", audit.CLI)
        users.create_user("other", "correct horse battery", audit.CLI)
        ProjectRole.create(project=projects.ensure_project("tool", audit.CLI), user=owner, role="owner")

    def signed_in(name):
        client = app.test_client()
        page = client.get("/login").text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
        client.post(
            "/login", data={"csrf_token": csrf, "username": name, "password": "correct horse battery"}
        )
        page = client.get("/projects/tool").text  # signing in starts a new session, with a new CSRF token
        return client, re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)

    client, csrf = signed_in("owner")
    page = client.get("/projects/tool?tab=settings").text
    assert "Trusted publishers" in page and "https://gitlab.example.test" in page
    client.post(
        "/projects/tool/publishers",
        data={
            "csrf_token": csrf,
            "issuer": "https://gitlab.example.test",
            "repository": "team/tool",
            "workflow": ".gitlab-ci.yml",
        },
    )
    page = client.get("/projects/tool?tab=settings").text
    assert "<strong>team/tool</strong>" in page and "acts for owner" in page
    publisher_id = re.search(r"/projects/tool/publishers/(\d+)/remove", page).group(1)

    other, other_csrf = signed_in("other")
    assert "Trusted publishers" not in other.get("/projects/tool?tab=settings", follow_redirects=True).text
    assert (
        other.post(
            "/projects/tool/publishers",
            data={
                "csrf_token": other_csrf,
                "issuer": "https://gitlab.example.test",
                "repository": "evil/tool",
                "workflow": "x.yml",
            },
        ).status_code
        == 403
    )
    other.post(f"/projects/tool/publishers/{publisher_id}/remove", data={"csrf_token": other_csrf})
    assert "<strong>team/tool</strong>" in client.get("/projects/tool?tab=settings").text  # still there
    client.post(f"/projects/tool/publishers/{publisher_id}/remove", data={"csrf_token": csrf})
    assert "No trusted publishers." in client.get("/projects/tool?tab=settings").text


def test_jwts_are_redacted_from_logs(issuers):
    from privindex.ops.logs import redact

    token = issuers.token("github", **github_claims("acme/x"))
    assert redact(f"got {token} from CI") == "got [redacted] from CI"
