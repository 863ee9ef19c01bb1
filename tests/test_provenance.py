"""PEP 740 provenance: of files cached from an upstream (listed on our pages, fetched once
under the upstream rules, checked to be about the file, cached and served, checked again by
`privindex check`), and of uploads that carry attestations (twine --attestations with a
Trusted Publishing token: checked to be about the file and verified, offline, to be signed
through Sigstore by the publisher's CI; stored beside the file with the publisher, served,
deleted with it).

The upstream's provenance objects here have PEP 740's shape and real in-toto statements, but
placeholder signatures: privindex passes an upstream's on as served (SECURITY.md,
"Provenance"). The uploaded ones are real: made by GitHub Actions and GitLab CI through
Sigstore's public good instance (tests/fixtures/attestations/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import testdb
from conftest import add_user, enrol_totp_cli, pip, privindex_cli, start_server, twine, wait_until
from fake_issuer import github_claims, gitlab_claims, issuers_toml
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from pypi_attestations import AttestationType
from wheels import make_wheel

from privindex.config import ConfigError, load_settings
from privindex.packages.pages import API_VERSION


def attestation(filename: str, sha256: str) -> dict:
    """A PEP 740 attestation about filename with that sha256: a real in-toto statement,
    placeholder signature and certificate."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": AttestationType.PYPI_PUBLISH_V1.value,
        "predicate": None,
    }
    return {
        "version": 1,
        "verification_material": {"certificate": "placeholder", "transparency_entries": []},
        "envelope": {
            "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
            "signature": base64.b64encode(b"placeholder").decode(),
        },
    }


def provenance(filename: str, sha256: str) -> bytes:
    bundle = {
        "publisher": {"kind": "GitHub", "repository": "acme/remote-lib"},
        "attestations": [attestation(filename, sha256)],
    }
    return json.dumps({"version": 1, "attestation_bundles": [bundle]}).encode()


@pytest.fixture
def fake():
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


def offer(fake: FakeUpstream, wheel: Path, body: bytes, url: str | None = None) -> str:
    """The wheel on the fake upstream, its page naming a provenance file with body."""
    fake.add("remote-lib", wheel)
    name = wheel.name + ".provenance"
    fake.blobs[name] = body
    fake.projects["remote-lib"][-1]["provenance"] = url or f"/files/{name}"
    return f"/files/{name}"


@pytest.fixture
def proxy(tmp_path, fake):
    server = start_server(tmp_path / "store", tmp_path / "data", "--upstream", fake.url)
    yield server
    server.stop()


@pytest.mark.slow  # pip installs through the cache
def test_provenance_is_listed_fetched_once_cached_and_checked(tmp_path, fake, proxy):
    wheel = make_wheel(tmp_path / "up", "remote-lib", "1.0")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    body = provenance(
        wheel.name.replace("remote_lib", "Remote_Lib"), sha256
    )  # a spelling that parses the same
    upstream_path = offer(fake, wheel, body)
    plain = make_wheel(tmp_path / "up", "remote-lib", "0.9")  # listed without provenance
    fake.add("remote-lib", plain)

    doc = requests.get(f"{proxy.index_url}remote-lib/", headers={"Accept": V1_JSON}, timeout=10).json()
    assert doc["meta"]["api-version"] == API_VERSION
    entry, without = doc["files"]
    assert "provenance" not in without
    none_here = f"{proxy.url}/packages/.upstream/remote-lib/{plain.name}.provenance"
    assert requests.get(none_here, timeout=10).status_code == 404
    assert entry["provenance"] == f"../../packages/.upstream/remote-lib/{wheel.name}.provenance"
    html = requests.get(f"{proxy.index_url}remote-lib/", timeout=10).text
    assert f'data-provenance="../../packages/.upstream/remote-lib/{wheel.name}.provenance"' in html
    url = requests.compat.urljoin(f"{proxy.index_url}remote-lib/", entry["provenance"])
    for _ in range(3):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200 and resp.content == body
        assert resp.headers["Content-Type"] == "application/json"
    assert fake.requests[upstream_path] == 1  # fetched once, then served from the cache
    cached = proxy.data_dir / "upstream" / "files" / sha256 / f"{wheel.name}.provenance"
    assert cached.read_bytes() == body

    target = tmp_path / "pip-target"  # pip reads a 1.3 page with provenance as before
    pip("install", "--index-url", proxy.index_url, "--target", str(target), "remote-lib==1.0")
    assert (target / "remote_lib" / "__init__.py").exists()

    assert privindex_cli(proxy, "check", check=False).returncode == 0
    cached.write_bytes(provenance(wheel.name, "0" * 64))  # now about other bytes
    checked = privindex_cli(proxy, "check", check=False)
    assert (
        checked.returncode == 1 and f"{wheel.name}.provenance is not that file's provenance" in checked.stdout
    )


@pytest.mark.parametrize(
    "about",
    [
        pytest.param(lambda wheel, sha: provenance(wheel.name, "f" * 64), id="other-bytes"),
        pytest.param(lambda wheel, sha: provenance("remote_lib-2.0-py3-none-any.whl", sha), id="other-file"),
        pytest.param(lambda wheel, sha: b'{"version": 2, "attestation_bundles": []}', id="not-pep-740"),
        pytest.param(lambda wheel, sha: b"\xff not json", id="not-json"),
    ],
)
def test_a_provenance_that_is_not_about_the_file_is_refused_and_not_kept(tmp_path, fake, proxy, about):
    wheel = make_wheel(tmp_path / "up", "remote-lib", "1.0")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    offer(fake, wheel, about(wheel, sha256))
    url = f"{proxy.url}/packages/.upstream/remote-lib/{wheel.name}.provenance"
    assert listed(proxy, "remote-lib")[wheel.name]["provenance"]
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 502
    assert f"not a provenance of {wheel.name}" in resp.text and resp.text.count("\n") == 1
    assert not (proxy.data_dir / "upstream" / "files" / sha256 / f"{wheel.name}.provenance").exists()
    download = requests.get(f"{proxy.url}/packages/.upstream/remote-lib/{wheel.name}", timeout=10)
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == sha256


def test_a_provenance_url_on_a_private_address_is_never_fetched(tmp_path, fake, proxy):
    elsewhere = FakeUpstream().start()  # another loopback server: not the upstream's origin
    try:
        wheel = make_wheel(tmp_path / "up", "remote-lib", "1.0")
        body = provenance(wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())
        elsewhere.blobs[wheel.name + ".provenance"] = body
        offer(fake, wheel, body, url=f"{elsewhere.origin}/files/{wheel.name}.provenance")
        resp = requests.get(f"{proxy.url}/packages/.upstream/remote-lib/{wheel.name}.provenance", timeout=10)
        assert resp.status_code == 502 and "not a public address" in resp.text
        assert not elsewhere.requests
    finally:
        elsewhere.stop()


# == uploads with attestations (twine --attestations) =============================================
# Real attestations, made by real CI through Sigstore's public good instance (tests/fixtures/
# attestations/README.md): verified offline against the uploading Trusted Publisher.

AUDIENCE = "privindex-test"
GITHUB = "https://token.actions.githubusercontent.com"  # GitHub Actions' issuer, keys from a file
GITLAB = "https://gitlab.com"
ASSETS = Path(__file__).parent / "fixtures" / "attestations"
GITHUB_SDIST = ASSETS / "pypi_attestations-0.0.19.tar.gz"  # trailofbits/pypi-attestations, release.yml
GITLAB_SDIST = ASSETS / "gitlab_oidc_project-0.0.3.tar.gz"  # facutuesca/gitlab-oidc-project


@pytest.fixture(scope="module")
def attesting(tmp_path_factory, issuers):
    server = attesting_server(tmp_path_factory.mktemp("attesting"), issuers)
    yield server
    server.stop()


def attesting_server(base: Path, issuers, settings: str = ""):
    """A server trusting GitHub Actions, gitlab.com and a self-hosted GitHub (the loopback
    issuer), with each asset's CI repository as its project's publisher."""
    jwks = base / "jwks.json"
    jwks.write_text(json.dumps(issuers.jwks()))
    config = base / "privindex.toml"
    kinds = {GITHUB: "github", GITLAB: "gitlab", issuers.url("github"): "github"}
    config.write_text(settings + issuers_toml(AUDIENCE, kinds, jwks_file=jwks))
    server = start_server(base / "store", base / "data", config=config)
    add_user(server, "ci-owner", "correct horse battery")
    server.config = config
    for project in ("pypi-attestations", "gitlab-oidc-project"):  # so each may have several publishers
        privindex_cli(server, "project", "claim", project, "--owner", "ci-owner")
    for project, kind, repository, workflow, issuer in [
        ("pypi-attestations", "--github", "trailofbits/pypi-attestations", "release.yml", GITHUB),
        ("pypi-attestations", "--github", "acme/impostor", "release.yml", GITHUB),
        (
            "pypi-attestations",
            "--github",
            "trailofbits/pypi-attestations",
            "release.yml",
            issuers.url("github"),
        ),
        ("gitlab-oidc-project", "--gitlab", "facutuesca/gitlab-oidc-project", ".gitlab-ci.yml", GITLAB),
    ]:
        privindex_cli(
            server, "publisher", "add", project, kind, repository, "--workflow", workflow,
            "--issuer", issuer, "--user", "ci-owner", "--config", str(config),
        )  # fmt: skip
    return server


def minted(server, issuers, repository: str = "trailofbits/pypi-attestations", iss: str = GITHUB) -> str:
    """An upload token minted for a GitHub Actions run of repository (at issuer iss)."""
    identity = issuers.token("github", aud=AUDIENCE, iss=iss, **github_claims(repository))
    return _exchange(server, identity)


def _exchange(server, identity: str) -> str:
    resp = requests.post(f"{server.url}/_/oidc/mint-token", json={"token": identity}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def attested(folder: Path, sdist: Path, attestation: bytes | None = None) -> tuple[Path, Path]:
    """A copy of sdist and its attestation file, as twine finds it (`<dist>.publish.attestation`):
    the real one unless given."""
    copy = folder / sdist.name
    copy.write_bytes(sdist.read_bytes())
    path = folder / f"{sdist.name}.publish.attestation"
    path.write_bytes(attestation or Path(f"{sdist}.publish.attestation").read_bytes())
    return copy, path


def verified_by_a_client(served: bytes, filename: str, sha256: str, monkeypatch, tmp_path) -> list:
    """What a consumer sees in served provenance: pypi-attestations' own verification of each
    attestation against its bundle's publisher (offline, with sigstore's trust root)."""
    from pypi_attestations import Distribution, Provenance

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # sigstore copies its root there
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    dist = Distribution(name=filename, digest=sha256)
    return [
        attestation.verify(bundle.publisher, dist, offline=True)[0]
        for bundle in Provenance.model_validate_json(served).attestation_bundles
        for attestation in bundle.attestations
    ]


def test_a_github_attestation_of_the_publishers_repository_is_stored_and_served(
    tmp_path, attesting, issuers, monkeypatch
):
    sdist, attestation_file = attested(tmp_path, GITHUB_SDIST)
    token = minted(attesting, issuers)
    earlier = make_wheel(tmp_path / "earlier", "pypi-attestations", "0.0.1")
    assert twine(attesting.url, token, earlier).returncode == 0  # no attestations: no provenance
    assert "provenance" not in listed(attesting, "pypi-attestations")[earlier.name]  # page rendered
    upload = twine(attesting.url, token, sdist, attestation_file, extra=("--attestations",))
    assert upload.returncode == 0, upload.output

    assert "provenance" not in listed(attesting, "pypi-attestations")[earlier.name]
    entry = listed(attesting, "pypi-attestations")[sdist.name]  # the page rendered since knows
    assert entry["provenance"] == f"../../packages/pypi-attestations/{sdist.name}.provenance"
    html = requests.get(f"{attesting.index_url}pypi-attestations/", timeout=10).text
    assert f'data-provenance="../../packages/pypi-attestations/{sdist.name}.provenance"' in html
    url = urljoin(f"{attesting.index_url}pypi-attestations/", entry["provenance"])
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    stored = attesting.store / "pypi-attestations" / f"{sdist.name}.provenance"
    assert resp.content == stored.read_bytes()  # byte for byte what was stored with the file
    assert json.loads(resp.content) == {  # PEP 740's shape: the publisher from the minted token
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {
                    "kind": "GitHub",
                    "repository": "trailofbits/pypi-attestations",
                    "workflow": "release.yml",
                    "environment": None,
                },
                "attestations": [json.loads(attestation_file.read_text())],
            }
        ],
    }
    sha256 = hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert entry["hashes"]["sha256"] == sha256
    assert verified_by_a_client(resp.content, sdist.name, sha256, monkeypatch, tmp_path) == [
        AttestationType.PYPI_PUBLISH_V1.value
    ]
    file = requests.get(urljoin(f"{attesting.index_url}pypi-attestations/", entry["url"]), timeout=10)
    assert file.content == GITHUB_SDIST.read_bytes()  # and the file is served as ever

    if not testdb.ON_POSTGRES:  # a backup keeps it (on PostgreSQL, backup says to use pg_dump)
        backup = tmp_path / "backup"
        privindex_cli(attesting, "backup", str(backup))
        assert (backup / "packages" / "pypi-attestations" / stored.name).read_bytes() == stored.read_bytes()
    assert privindex_cli(attesting, "check", check=False).returncode == 0
    kept = stored.read_bytes()
    stored.write_bytes(provenance(sdist.name, "0" * 64))
    checked = privindex_cli(attesting, "check", check=False)
    assert checked.returncode == 1 and f"{stored.name}: not that file's provenance" in checked.stdout
    stored.write_bytes(kept)

    privindex_cli(attesting, "project", "delete", "pypi-attestations", sdist.name, "--yes")
    assert not stored.exists()  # its provenance went with it
    wait_until(lambda: sdist.name not in listed(attesting, "pypi-attestations"), timeout=10)
    assert requests.get(url, timeout=10).status_code == 404


def test_a_gitlab_attestation_of_the_publishers_project_is_stored(tmp_path, attesting, issuers):
    sdist, attestation_file = attested(tmp_path, GITLAB_SDIST)
    claims = gitlab_claims("facutuesca/gitlab-oidc-project", host="gitlab.com")
    token = _exchange(attesting, issuers.token("gitlab", aud=AUDIENCE, iss=GITLAB, **claims))
    upload = twine(attesting.url, token, sdist, attestation_file, extra=("--attestations",))
    assert upload.returncode == 0, upload.output
    assert "provenance" in listed(attesting, "gitlab-oidc-project")[sdist.name]


def tampered(attestation: bytes) -> bytes:
    """The real attestation with its statement's predicate changed, its subject left alone: only
    the signature can tell."""
    doc = json.loads(attestation)
    statement = json.loads(base64.b64decode(doc["envelope"]["statement"]))
    statement["predicate"] = {"builder": "someone else"}
    doc["envelope"]["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(doc).encode()


REAL = Path(f"{GITHUB_SDIST}.publish.attestation").read_bytes()
GITLABS = Path(f"{GITLAB_SDIST}.publish.attestation").read_bytes()


@pytest.mark.parametrize(
    "attestation, repository, iss, reason",
    [
        pytest.param(
            tampered(REAL),
            None,
            GITHUB,
            "attestation 1 does not verify: DSSE: invalid signature",
            id="tampered",
        ),
        pytest.param(GITLABS, None, GITHUB, "an attestation about other bytes", id="another-file"),
        pytest.param(
            REAL,
            "acme/impostor",
            GITHUB,
            "attestation 1 does not verify: Certificate's OIDCSourceRepositoryURI does not match",
            id="another-repository",
        ),
        pytest.param(
            None, None, "self-hosted", "cannot be verified: Sigstore's public instance", id="self-hosted"
        ),
        pytest.param(b'{"version": 2}', None, GITHUB, "the envelope is not a JSON object", id="not-pep-740"),
    ],
)
def test_attestations_that_do_not_verify_are_refused_and_nothing_is_stored(
    tmp_path, attesting, issuers, attestation, repository, iss, reason
):
    sdist, attestation_file = attested(tmp_path, GITHUB_SDIST, attestation)
    iss = issuers.url("github") if iss == "self-hosted" else iss
    token = minted(attesting, issuers, repository or "trailofbits/pypi-attestations", iss)
    upload = twine(attesting.url, token, sdist, attestation_file, extra=("--attestations",))
    assert upload.returncode != 0 and "400" in upload.output, upload.output
    assert f"Invalid attestations for {sdist.name}: " in upload.output, upload.output
    assert reason in upload.output, upload.output
    assert sdist.name not in listed(attesting, "pypi-attestations")
    assert not list((attesting.store / "pypi-attestations").glob(f"{sdist.name}*"))  # no file, no provenance


def test_attestations_need_trusted_publishing(tmp_path, attesting):
    wheel = make_wheel(tmp_path, "attested", "3.0")
    attestation_file = tmp_path / f"{wheel.name}.publish.attestation"
    attestation_file.write_bytes(REAL)
    enrol_totp_cli(attesting, "ci-owner")  # the server requires a second factor for plain tokens
    token = privindex_cli(attesting, "token", "create", "ci-owner").stdout.strip()
    upload = twine(attesting.url, token, wheel, attestation_file, extra=("--attestations",))
    assert (
        upload.returncode != 0
        and "Attestations are only supported when using Trusted Publishing" in upload.output
    )
    assert wheel.name not in listed(attesting, "attested")
    plain = twine(attesting.url, token, wheel)  # the same file without them is fine
    assert plain.returncode == 0, plain.output
    assert "provenance" not in listed(attesting, "attested")[wheel.name]


def sigstore_trust_root(instance: str) -> Path:
    """A trusted_root.json the sigstore package ships: "sigstore.dev" (the public good
    instance) or "sigstage.dev" (its staging instance, other keys)."""
    from importlib import resources

    return Path(
        str(
            resources.files("sigstore._store")
            / f"https%3A%2F%2Ftuf-repo-cdn.{instance}"
            / "trusted_root.json"
        )
    )


def test_attestation_trusted_root_is_the_trust_root_attestations_must_chain_to(tmp_path, issuers):
    rotated = tmp_path / "trusted_root.json"  # as if the keys had rotated to other ones
    rotated.write_bytes(sigstore_trust_root("sigstage.dev").read_bytes())
    server = attesting_server(tmp_path, issuers, f'attestation_trusted_root = "{rotated}"\n')
    try:
        sdist, attestation_file = attested(tmp_path, GITHUB_SDIST)
        token = minted(server, issuers)
        upload = twine(server.url, token, sdist, attestation_file, extra=("--attestations",))
        assert upload.returncode != 0 and "400" in upload.output, upload.output
        assert "attestation 1 does not verify: " in upload.output, upload.output
        assert not list((server.store / "pypi-attestations").glob(f"{sdist.name}*"))
    finally:
        server.stop()


def test_attestation_trusted_root_must_be_a_trust_root(tmp_path):
    assert load_settings(overrides={"attestation_trusted_root": str(sigstore_trust_root("sigstore.dev"))})
    for content in (b"{}", b"not json"):
        (tmp_path / "root.json").write_bytes(content)
        with pytest.raises(
            ConfigError,
            match=r"^--attestation-trusted-root: .*root.json is not a Sigstore trusted_root.json \(",
        ):
            load_settings(overrides={"attestation_trusted_root": str(tmp_path / "root.json")})
    with pytest.raises(ConfigError, match=r"^--attestation-trusted-root: .*missing.json is not a Sigstore"):
        load_settings(overrides={"attestation_trusted_root": str(tmp_path / "missing.json")})
