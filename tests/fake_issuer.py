"""A fake OIDC issuer on loopback, for Trusted Publishing tests (never the internet).

One stdlib HTTP server in a thread serves any number of issuers, one per path prefix
(`http://127.0.0.1:PORT/<name>`): each answers OIDC discovery and its JWKS (an RSA key made
with `cryptography`), signs tokens with PyJWT, and answers GitHub Actions' token request
(`ACTIONS_ID_TOKEN_REQUEST_URL` ... `&audience=X` with a bearer token -> `{"value": jwt}`),
which is what uv asks for in a GitHub Actions job. `answers` makes an issuer misbehave:
a canned (status, body, headers) for a request path.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

REQUEST_TOKEN = "fake-actions-request-token"


class FakeIssuers:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.actions_claims: dict = {}  # what the GitHub Actions token request signs
        self.actions_issuer = "github"
        self.requests: list[str] = []
        self.answers: dict[str, tuple[int, bytes, dict]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                parts = urlsplit(self.path)
                if parts.path in outer.answers:
                    return self._send(*outer.answers[parts.path])
                name, _sep, rest = parts.path.lstrip("/").partition("/")
                base = outer.url(name)
                if rest == ".well-known/openid-configuration":
                    body = {"issuer": base, "jwks_uri": f"{base}/jwks"}
                elif rest == "jwks":
                    body = outer.jwks()
                elif rest == "actions-token":
                    if self.headers.get("Authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
                        return self._send(401, json.dumps({"message": "bad request token"}).encode())
                    audience = parse_qs(parts.query).get("audience", [""])[0]
                    body = {"value": outer.token(outer.actions_issuer, aud=audience, **outer.actions_claims)}
                else:
                    return self._send(404, b"{}")
                self._send(200, json.dumps(body).encode())

            def _send(self, status: int, data: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def host(self, name: str) -> str:
        """The issuer's URL without its scheme: how GitLab starts a ci_config_ref_uri."""
        return self.url(name).partition("://")[2]

    def jwks(self) -> dict:
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**entry, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(
        self,
        issuer: str,
        *,
        aud="privindex-test",
        alg="RS256",
        kid=None,
        key=None,
        headers=None,
        drop=(),
        **claims,
    ) -> str:
        """A signed identity token from the issuer named `issuer` (a path prefix), valid now."""
        now = int(time.time())
        body = {
            "iss": self.url(issuer),
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        for name in drop:
            body.pop(name, None)
        signing_key = key if key is not None else (self.key if alg == "RS256" else None)
        return jwt.encode(
            body, signing_key, algorithm=alg, headers={"kid": kid or self.kid, **(headers or {})}
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def issuers():
    """The fake issuers, one server per test module (import this fixture to use it)."""
    fake = FakeIssuers()
    yield fake
    fake.close()


def issuers_toml(audience: str, issuers: dict[str, str], jwks_file: Path | None = None) -> str:
    """A config file's Trusted Publishing part: the audience and {issuer url: kind}; with
    jwks_file (FakeIssuers.jwks written out), the issuers may have any URL, a real CI's too."""
    keys = f'jwks_file = "{jwks_file}"\n' if jwks_file else ""
    return f'oidc_audience = "{audience}"\n' + "".join(
        f'[[oidc_issuers]]\nurl = "{url}"\nkind = "{kind}"\n{keys}' for url, kind in issuers.items()
    )


def refused(resp, code: str, words: str, status: int = 422) -> None:
    """The exchange refused, in Warehouse's shape, with that error code and words."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["message"] == "Token request failed"
    assert body["errors"][0]["code"] == code, body
    assert words in body["errors"][0]["description"], body


def github_claims(
    repository: str, workflow: str = "release.yml", ref: str = "refs/heads/main", **more
) -> dict:
    return {
        "repository": repository,
        "repository_owner": repository.split("/")[0],
        "repository_owner_id": "4242",
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "ref": ref,
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "run_id": "99",
        **more,
    }


def gitlab_claims(
    project_path: str, ci_file: str = ".gitlab-ci.yml", ref: str = "refs/heads/main", *, host: str, **more
) -> dict:
    """GitLab's claims for a pipeline of project_path on the GitLab at host (FakeIssuers.host)."""
    return {
        "project_path": project_path,
        "namespace_path": project_path.rpartition("/")[0],
        "ci_config_ref_uri": f"{host}/{project_path}//{ci_file}@{ref}",
        "ref": ref.rpartition("/")[2],
        "sha": "fedcba9876543210fedcba9876543210fedcba98",
        "pipeline_id": "1234",
        **more,
    }
