"""Red-team findings on Trusted Publishing, kept as tests: look-alike CI claims must not
match a publisher, and an issuer that does not answer must not stall the server."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from conftest import add_user, free_port, privindex_cli, start_server, wait_until
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_issuer import FakeIssuers, github_claims, gitlab_claims, issuers_toml, refused

AUDIENCE = "privindex-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory, issuers):
    """A server trusting the fake GitLab, GitHub and Forgejo, each with one publisher."""
    base = tmp_path_factory.mktemp("tp-attacks")
    config = base / "privindex.toml"
    config.write_text(
        issuers_toml(AUDIENCE, {issuers.url(kind): kind for kind in ("github", "gitlab", "forgejo")})
    )
    live = start_server(base / "store", base / "data", config=config)
    add_user(live, "owner", "correct horse battery")
    for args in (
        ("glpkg", "--gitlab", "grp/glpkg", "--workflow-ref", ".gitlab-ci.yml"),
        ("ghpkg", "--github", "acme/ghpkg", "--workflow", "release.yml"),
        ("fjpkg", "--forgejo", "team/fjpkg", "--workflow", "release.yml"),
    ):
        privindex_cli(live, "publisher", "add", *args, "--user", "owner", "--config", str(config))
    yield live
    live.stop()


def mint(server, token: str) -> requests.Response:
    return requests.post(f"{server.url}/_/oidc/mint-token", json={"token": token}, timeout=10)


def gitlab_uri(issuers, uri: str) -> dict:
    """GitLab claims of a pipeline of grp/glpkg whose ci_config_ref_uri is uri ({host}: the issuer's)."""
    return {
        **gitlab_claims("grp/glpkg", host=issuers.host("gitlab")),
        "ci_config_ref_uri": uri.format(host=issuers.host("gitlab")),
    }


def github_ref(job_workflow_ref: str, repository: str = "acme/ghpkg") -> dict:
    return {
        **github_claims(repository),
        "job_workflow_ref": job_workflow_ref,
        "workflow_ref": job_workflow_ref,
    }


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
    refused(
        mint(server, issuers.token("gitlab", aud=AUDIENCE, **gitlab_uri(issuers, GITLAB_LOOKALIKES[case]))),
        "invalid-publisher",
        "no trusted publisher matches",
    )


def test_gitlab_project_path_of_another_project_is_refused(server, issuers):
    for path in ("evil/grp/glpkg", "grp/glpkg-evil", "rp/glpkg"):
        refused(
            mint(
                server,
                issuers.token("gitlab", aud=AUDIENCE, **gitlab_claims(path, host=issuers.host("gitlab"))),
            ),
            "invalid-publisher",
            "no trusted publisher matches",
        )


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
    refused(
        mint(server, issuers.token("github", aud=AUDIENCE, **github_ref(GITHUB_LOOKALIKES[case]))),
        "invalid-publisher",
        "no trusted publisher matches",
    )


def test_forgejo_look_alike_workflow_is_refused(server, issuers):
    for ref in (
        "team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1@x",
        "evil/team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1",
    ):
        claims = {**github_claims("team/fjpkg"), "job_workflow_ref": None, "workflow_ref": ref}
        refused(
            mint(server, issuers.token("forgejo", aud=AUDIENCE, **claims)),
            "invalid-publisher",
            "no trusted publisher matches",
        )


def test_the_genuine_claims_still_match_in_any_case_of_host_and_project(server, issuers):
    host = issuers.host("gitlab")
    gitlab = {
        **gitlab_claims("GRP/glpkg", host=host),
        "ci_config_ref_uri": f"{host.upper()}/Grp/GLPKG//.gitlab-ci.yml@refs/heads/main",
    }
    assert mint(server, issuers.token("gitlab", aud=AUDIENCE, **gitlab)).status_code == 200
    github = github_ref("Acme/GHpkg/.github/workflows/release.yml@refs/heads/main", repository="ACME/ghpkg")
    assert mint(server, issuers.token("github", aud=AUDIENCE, **github)).status_code == 200
    forgejo = {
        **github_claims("team/fjpkg"),
        "job_workflow_ref": None,
        "workflow_ref": "team/fjpkg/.forgejo/workflows/release.yml@refs/tags/v1",
    }
    assert mint(server, issuers.token("forgejo", aud=AUDIENCE, **forgejo)).status_code == 200


# -- an issuer that does not answer, or answers badly ------------------------------------------


class SilentIssuer:
    """A loopback socket that accepts connections and never answers; counts them."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:  # closed
                return

    def close(self):
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture(scope="module")
def silent():
    issuer = SilentIssuer()
    yield issuer
    issuer.close()


MISBEHAVING = ("oversized", "nested", "redirected", "foreign-jwks", "impostor")


@pytest.fixture(scope="module")
def stall_server(tmp_path_factory, issuers, silent):
    """A server with 8 threads trusting a silent issuer, a refusing one and misbehaving ones."""
    base = tmp_path_factory.mktemp("tp-stall")
    refusing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = base / "privindex.toml"
    urls = (silent.url, refusing, *(issuers.url(name) for name in MISBEHAVING))
    config.write_text(issuers_toml(AUDIENCE, dict.fromkeys(urls, "github")))
    live = start_server(base / "store", base / "data", config=config, env={"PRIVINDEX_THREADS": "8"})
    live.refusing = refusing
    # the first token imports PyJWT (and cryptography): done here, not in the timed part
    requests.post(
        f"{live.url}/_/oidc/mint-token", json={"token": junk_jwt("https://other.example")}, timeout=30
    )
    yield live
    live.stop()


def junk_jwt(issuer: str) -> str:
    """A JWT that looks RS256-signed by issuer, with a made-up key id and signature."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return (
        f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': secrets.token_hex(4)})}."
        f"{part({'iss': issuer, 'aud': AUDIENCE, 'jti': secrets.token_hex(8)})}.{'A' * 342}"
    )


def unavailable(resp: requests.Response, words: str) -> None:
    """503, with Retry-After and a one-line reason naming the issuer's trouble."""
    refused(resp, "issuer-unavailable", words, status=503)
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "\n" not in resp.json()["errors"][0]["description"]


@pytest.mark.parametrize("which", ["silent", "refusing"])
@pytest.mark.slow  # a stalling issuer and a server of its own
def test_junk_tokens_for_an_unreachable_issuer_do_not_stall_the_server(stall_server, silent, which):
    issuer = silent.url if which == "silent" else stall_server.refusing
    url = f"{stall_server.url}/_/oidc/mint-token"

    def junk_mint():
        started = time.monotonic()
        resp = requests.post(url, json={"token": junk_jwt(issuer)}, timeout=30)
        return resp, time.monotonic() - started

    with ThreadPoolExecutor(16) as pool:
        minting = [pool.submit(junk_mint) for _ in range(16)]
        time.sleep(0.1)  # all 16 are in: more than the server has threads
        started = time.monotonic()
        health = requests.get(f"{stall_server.url}/healthz", timeout=30)
        assert health.status_code == 200 and time.monotonic() - started < 1.0
        answers = [future.result() for future in minting]
    for resp, seconds in answers:
        unavailable(resp, issuer)
        assert seconds < 3.0  # it was 10 s a request, one issuer lock holder at a time
    # the fetch fails within its deadline (5 s), and the failure is remembered: later
    # tokens are refused at once, without asking the issuer again
    reason = "did not answer within 5 s" if which == "silent" else "Connection refused"
    wait_until(lambda: reason in requests.post(url, json={"token": junk_jwt(issuer)}, timeout=30).text, 8)
    started = time.monotonic()
    unavailable(requests.post(url, json={"token": junk_jwt(issuer)}, timeout=30), reason)
    assert time.monotonic() - started < 0.5
    problem = requests.post(
        f"{stall_server.url}/_/pytp/mint-token", json={"token": junk_jwt(issuer)}, timeout=30
    )
    assert problem.status_code == 503 and problem.json()["status"] == 503 and problem.headers["Retry-After"]
    if which == "silent":
        assert len(silent.connections) == 1  # one discovery request for all the tokens


ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def misbehaving(issuers) -> FakeIssuers:
    """The misbehaving issuers' answers; "elsewhere" (another host name for the same fake)
    publishes the attacker's key."""
    elsewhere = issuers.url("elsewhere").replace("127.0.0.1", "localhost")
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_KEY.public_key()))

    def document(issuer: str, jwks_uri: str):
        return 200, json.dumps({"issuer": issuer, "jwks_uri": jwks_uri}).encode(), {}

    issuers.answers.update(
        {
            "/oversized/jwks": (200, json.dumps({"keys": [], "padding": "x" * 2 * 1024 * 1024}).encode(), {}),
            "/nested/jwks": (200, b"[" * 100_000, {}),
            "/redirected/.well-known/openid-configuration": (
                302,
                b"",
                {"Location": f"{elsewhere}/.well-known/openid-configuration"},
            ),
            "/elsewhere/.well-known/openid-configuration": document(
                issuers.url("redirected"), f"{elsewhere}/jwks"
            ),
            "/foreign-jwks/.well-known/openid-configuration": document(
                issuers.url("foreign-jwks"), f"{elsewhere}/jwks"
            ),
            "/impostor/.well-known/openid-configuration": document(
                issuers.url("github"), f"{elsewhere}/jwks"
            ),
            "/elsewhere/jwks": (
                200,
                json.dumps({"keys": [{**public, "kid": issuers.kid, "use": "sig"}]}).encode(),
                {},
            ),
        }
    )
    return issuers


@pytest.mark.parametrize(
    "name, words",
    [
        ("oversized", "sent more than 256 KiB"),
        ("nested", "did not send JSON"),
        ("redirected", "answered 302"),
        ("foreign-jwks", "jwks_uri is not on the issuer's host"),
        ("impostor", "names another issuer"),
    ],
)
@pytest.mark.slow  # a stalling issuer and a server of its own
def test_what_a_misbehaving_issuer_sends_is_not_trusted(stall_server, misbehaving, name, words):
    """Oversized or too deeply nested documents, redirects, keys on another host and a
    discovery document naming another issuer are refused (503), so a token signed with the
    attacker's key from there does not verify."""
    token = misbehaving.token(name, aud=AUDIENCE, key=ATTACKER_KEY, **github_claims("acme/ghpkg"))
    unavailable(
        requests.post(f"{stall_server.url}/_/oidc/mint-token", json={"token": token}, timeout=30), words
    )
