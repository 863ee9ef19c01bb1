"""End to end with a real client: `uv publish --trusted-publishing always` in a simulated
GitHub Actions job, against privindex behind nginx terminating TLS on loopback (uv
insists on https for trusted publishing), then `pip install` of what it published.

uv asks `https://<upload host>/_/oidc/audience`, fetches the job's identity token from
ACTIONS_ID_TOKEN_REQUEST_URL (here: the fake issuer, which answers `{"value": <jwt>}`),
mints at `/_/oidc/mint-token`, uploads with `__token__`, and burns the token at
`/_/oidc/burn-token` when done.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import add_user, client_env, free_port, nginx_conf, privindex_cli, run, run_nginx, start_server
from fake_issuer import REQUEST_TOKEN, FakeIssuers, github_claims
from helpers import make_ca

pytestmark = [
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian's nginx (.ci/run installs it)"),
    pytest.mark.slow,  # uv publish through nginx with TLS
]


def start_nginx(folder: Path, port: int, upstream: str, cert: Path, key: Path) -> subprocess.Popen:
    http = f"""
        server {{
            listen 127.0.0.1:{port} ssl;
            ssl_certificate {cert};
            ssl_certificate_key {key};
            client_max_body_size 200m;
            location / {{
                proxy_pass {upstream};
                proxy_set_header Host $http_host;
                proxy_set_header X-Forwarded-For $remote_addr;
                proxy_set_header X-Forwarded-Proto https;
            }}
        }}
        """
    return run_nginx(folder, nginx_conf(folder, http), port)


@pytest.fixture(scope="module")
def tls_index(tmp_path_factory):
    base = tmp_path_factory.mktemp("oidc-uv")
    issuers = FakeIssuers()
    ca, cert, key = make_ca(base)
    port = free_port()
    config = base / "privindex.toml"
    config.write_text(
        f'public_url = "https://localhost:{port}"\n'
        f'[[oidc_issuers]]\nurl = "{issuers.url("github")}"\nkind = "github"\n'
    )
    server = start_server(base / "store", base / "data", config=config)
    (base / "nginx").mkdir()
    nginx = start_nginx(base / "nginx", port, server.url, cert, key)
    server.public, server.cert, server.config, server.issuers = (
        f"https://localhost:{port}",
        ca,
        config,
        issuers,
    )
    yield server
    nginx.terminate()
    nginx.wait(timeout=20)
    server.stop()
    issuers.close()


def test_uv_publishes_from_a_github_actions_job_and_pip_installs_it(tls_index, dists, tmp_path):
    server, issuers = tls_index, tls_index.issuers
    add_user(server, "ci", "correct horse battery")
    privindex_cli(
        server,
        "publisher",
        "add",
        "alpha",
        "--github",
        "acme/widgets",
        "--workflow",
        "release.yml",
        "--user",
        "ci",
        "--config",
        str(server.config),
    )
    issuers.actions_claims = github_claims("acme/widgets")
    files = [str(p) for p in dists.files["alpha"] if "-2.0" in p.name]
    env = client_env(
        GITHUB_ACTIONS="true",
        SSL_CERT_FILE=str(server.cert),
        ACTIONS_ID_TOKEN_REQUEST_URL=f"{issuers.url('github')}/actions-token?api-version=2.0",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=REQUEST_TOKEN,
    )
    uv_bin = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    proc = run(
        [
            uv_bin,
            "publish",
            "--no-config",
            "--publish-url",
            f"{server.public}/legacy/",
            "--trusted-publishing",
            "always",
            "-v",
            *files,
        ],
        env=env,
    )
    output = proc.stdout + proc.stderr
    assert f"{server.public}/_/oidc/audience" in output and f"{server.public}/_/oidc/mint-token" in output
    assert any("audience=localhost" in r for r in issuers.requests)  # uv asked for our audience

    # uv burnt the token when done; the upload itself was audited with the CI claims
    tokens = privindex_cli(server, "token", "list", "ci").stdout
    assert "Trusted Publishing: acme/widgets (alpha)" in tokens and "\trevoked\t" in tokens
    trail = privindex_cli(server, "audit", "--project", "alpha", "--json").stdout
    added = [json.loads(line) for line in trail.splitlines() if '"file:add"' in line]
    assert len(added) == 2 and {e["details"]["ci"]["repository"] for e in added} == {"acme/widgets"}

    target = tmp_path / "site"
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set machine-wide on some hosts) win
    # over pip's --cert; the install must trust our CA through --cert alone
    pip_env = {k: v for k, v in client_env().items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--index-url",
            f"{server.public}/simple/",
            "--cert",
            str(server.cert),
            "--no-deps",
            "--target",
            str(target),
            "alpha==2.0",
        ],
        env=pip_env,
    )
    assert (target / "alpha" / "__init__.py").read_text() == 'VERSION = "2.0"\n'
