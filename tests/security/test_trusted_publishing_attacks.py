"""Red-team findings on Trusted Publishing, kept as tests: look-alike CI claims must not
match a publisher, and an issuer that does not answer must not stall the server."""

from __future__ import annotations

import pytest
import requests
from conftest import add_user, privindex_cli, start_server
from fake_issuer import FakeIssuers, github_claims, gitlab_claims

AUDIENCE = "privindex-test"


@pytest.fixture(scope="module")
def issuers():
    fake = FakeIssuers()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, issuers):
    """A server trusting the fake GitLab, GitHub and Forgejo, each with one publisher."""
    base = tmp_path_factory.mktemp("tp-attacks")
    config = base / "privindex.toml"
    config.write_text(f'oidc_audience = "{AUDIENCE}"\n' + "".join(
        f'[[oidc_issuers]]\nurl = "{issuers.url(kind)}"\nkind = "{kind}"\n' for kind in ("github", "gitlab", "forgejo")))
    live = start_server(base / "store", base / "data", config=config)
    add_user(live, "owner", "correct horse battery")
    for args in (("glpkg", "--gitlab", "grp/glpkg", "--workflow-ref", ".gitlab-ci.yml"),
                 ("ghpkg", "--github", "acme/ghpkg", "--workflow", "release.yml"),
                 ("fjpkg", "--forgejo", "team/fjpkg", "--workflow", "release.yml")):
        privindex_cli(live, "publisher", "add", *args, "--user", "owner", "--config", str(config))
    yield live
    live.stop()


def mint(server, token: str) -> requests.Response:
    return requests.post(f"{server.url}/_/oidc/mint-token", json={"token": token}, timeout=10)


def gitlab_uri(issuers, uri: str) -> dict:
    """GitLab claims of a pipeline of grp/glpkg whose ci_config_ref_uri is uri ({host}: the issuer's)."""
    return {**gitlab_claims("grp/glpkg", host=issuers.host("gitlab")),
            "ci_config_ref_uri": uri.format(host=issuers.host("gitlab"))}


def github_ref(job_workflow_ref: str, repository: str = "acme/ghpkg") -> dict:
    return {**github_claims(repository), "job_workflow_ref": job_workflow_ref, "workflow_ref": job_workflow_ref}


GITLAB_LOOKALIKES = {
    "CI config of evil/grp/glpkg": "{host}/evil/grp/glpkg//.gitlab-ci.yml@refs/heads/main",
    "CI config of grp/glpkg-evil": "{host}/grp/glpkg-evil//.gitlab-ci.yml@refs/heads/main",
    "CI config of grp/glpkg on another host": "gitlab.evil.test/grp/glpkg//.gitlab-ci.yml@refs/heads/main",
    "another host ending in the issuer's": "evil.test/{host}/grp/glpkg//.gitlab-ci.yml@refs/heads/main",
    "host only as a prefix": "{host}.evil.test/grp/glpkg//.gitlab-ci.yml@refs/heads/main",
    "no host": "grp/glpkg//.gitlab-ci.yml@refs/heads/main",
    "subgroup of the project": "{host}/grp/glpkg/sub//.gitlab-ci.yml@refs/heads/main",
    "no // before the file": "{host}/grp/glpkg/.gitlab-ci.yml@refs/heads/main",
    "file in a folder": "{host}/grp/glpkg//ci/.gitlab-ci.yml@refs/heads/main",
    "file name in another case": "{host}/grp/glpkg//.GITLAB-CI.yml@refs/heads/main",
    "file with a suffix": "{host}/grp/glpkg//.gitlab-ci.yml.evil@refs/heads/main",
    "extra @": "{host}/grp/glpkg//.gitlab-ci.yml@refs/heads/main@evil.test/grp/glpkg",
    "extra @ in the file": "{host}/grp/glpkg//.gitlab-ci.yml@x@refs/heads/main",
    "no ref": "{host}/grp/glpkg//.gitlab-ci.yml",
}


@pytest.mark.parametrize("case", GITLAB_LOOKALIKES)
def test_gitlab_look_alike_ci_config_is_refused(server, issuers, case):
    resp = mint(server, issuers.token("gitlab", aud=AUDIENCE, **gitlab_uri(issuers, GITLAB_LOOKALIKES[case])))
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["code"] == "invalid-publisher"
    assert "no trusted publisher matches" in resp.json()["errors"][0]["description"]


def test_gitlab_project_path_of_another_project_is_refused(server, issuers):
    for path in ("evil/grp/glpkg", "grp/glpkg-evil", "rp/glpkg"):
        resp = mint(server, issuers.token("gitlab", aud=AUDIENCE, **gitlab_claims(path, host=issuers.host("gitlab"))))
        assert resp.status_code == 422 and resp.json()["errors"][0]["code"] == "invalid-publisher", path


GITHUB_LOOKALIKES = {
    "extra @": "acme/ghpkg/.github/workflows/release.yml@refs/heads/main@x",
    "extra @ in the file": "acme/ghpkg/.github/workflows/release.yml@x@refs/heads/main",
    "no ref": "acme/ghpkg/.github/workflows/release.yml",
    "reusable workflow of another repository": "evil/ghpkg/.github/workflows/release.yml@refs/heads/main",
    "repository as a suffix": "evil/acme/ghpkg/.github/workflows/release.yml@refs/heads/main",
    "repository as a prefix": "acme/ghpkg-evil/.github/workflows/release.yml@refs/heads/main",
    "workflow in a subfolder": "acme/ghpkg/.github/workflows/x/release.yml@refs/heads/main",
    "workflow name in another case": "acme/ghpkg/.github/workflows/Release.yml@refs/heads/main",
    "workflow with a prefix": "acme/ghpkg/.github/workflows/prerelease.yml@refs/heads/main",
}


@pytest.mark.parametrize("case", GITHUB_LOOKALIKES)
def test_github_look_alike_workflow_is_refused(server, issuers, case):
    resp = mint(server, issuers.token("github", aud=AUDIENCE, **github_ref(GITHUB_LOOKALIKES[case])))
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["code"] == "invalid-publisher"


def test_forgejo_look_alike_workflow_is_refused(server, issuers):
    for ref in ("team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1@x",
                "evil/team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1"):
        claims = {**github_claims("team/fjpkg"), "job_workflow_ref": None, "workflow_ref": ref}
        resp = mint(server, issuers.token("forgejo", aud=AUDIENCE, **claims))
        assert resp.status_code == 422 and resp.json()["errors"][0]["code"] == "invalid-publisher", ref


def test_the_genuine_claims_still_match_in_any_case_of_host_and_project(server, issuers):
    host = issuers.host("gitlab")
    gitlab = {**gitlab_claims("GRP/glpkg", host=host),
              "ci_config_ref_uri": f"{host.upper()}/Grp/GLPKG//.gitlab-ci.yml@refs/heads/main"}
    assert mint(server, issuers.token("gitlab", aud=AUDIENCE, **gitlab)).status_code == 200
    github = github_ref("Acme/GHpkg/.github/workflows/release.yml@refs/heads/main", repository="ACME/ghpkg")
    assert mint(server, issuers.token("github", aud=AUDIENCE, **github)).status_code == 200
    forgejo = {**github_claims("team/fjpkg"), "job_workflow_ref": None,
               "workflow_ref": "team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1"}
    assert mint(server, issuers.token("forgejo", aud=AUDIENCE, **forgejo)).status_code == 200
