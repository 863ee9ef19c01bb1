"""PEP 740 provenance: of files cached from an upstream (listed on our pages, fetched once
under the upstream rules, checked to be about the file, cached and served, checked again by
`privindex check`), and of uploads that carry attestations (twine --attestations with a
Trusted Publishing token: checked to be about the file, stored beside it with the
publisher, served, deleted with it).

The provenance objects here have PEP 740's shape and real in-toto statements, but their
signatures and certificates are placeholders: making a Sigstore-rooted attestation needs
the network (an OIDC identity and Fulcio), and privindex does not verify the signatures of
provenance (SECURITY.md, "Provenance"), so nothing here pretends it does.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import testdb
from conftest import add_user, enrol_totp_cli, pip, privindex_cli, start_server, twine, wait_until
from fake_issuer import github_claims, issuers_toml
from fake_upstream import FakeUpstream
from helpers import V1_JSON, listed
from wheels import make_wheel

from privindex.api.simple import API_VERSION


def attestation(filename: str, sha256: str) -> dict:
    """A PEP 740 attestation about filename with that sha256: a real in-toto statement,
    placeholder signature and certificate."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
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

AUDIENCE = "privindex-test"


@pytest.fixture(scope="module")
def attesting(tmp_path_factory, issuers):
    """A server with a GitHub issuer and a publisher: acme/attested's release.yml publishes
    attested."""
    base = tmp_path_factory.mktemp("attesting")
    config = base / "privindex.toml"
    config.write_text(issuers_toml(AUDIENCE, {issuers.url("github"): "github"}))
    server = start_server(base / "store", base / "data", config=config)
    add_user(server, "ci-owner", "correct horse battery")
    server.config = config
    privindex_cli(
        server,
        "publisher",
        "add",
        "attested",
        "--github",
        "acme/attested",
        "--workflow",
        "release.yml",
        "--user",
        "ci-owner",
        "--config",
        str(config),
    )
    yield server
    server.stop()


def minted(server, issuers) -> str:
    identity = issuers.token("github", aud=AUDIENCE, **github_claims("acme/attested"))
    resp = requests.post(f"{server.url}/_/oidc/mint-token", json={"token": identity}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def attested_wheel(
    folder: Path, version: str, about: Callable[[str, str], dict] | None = None
) -> tuple[Path, Path]:
    """A wheel of attested and its attestation file as twine finds it (`<dist>.publish.attestation`),
    about the wheel unless `about(filename, sha256)` says otherwise."""
    wheel = make_wheel(folder, "attested", version)
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    statement = (about or attestation)(wheel.name, sha256)
    path = wheel.parent / f"{wheel.name}.publish.attestation"
    path.write_text(json.dumps(statement))
    return wheel, path


@pytest.mark.slow  # twine --attestations, then pip
def test_an_upload_with_attestations_serves_its_provenance(tmp_path, attesting, issuers):
    wheel, attestation_file = attested_wheel(tmp_path, "1.0")
    upload = twine(
        attesting.url, minted(attesting, issuers), wheel, attestation_file, extra=("--attestations",)
    )
    assert upload.returncode == 0, upload.output

    entry = listed(attesting, "attested")[wheel.name]
    assert entry["provenance"] == f"../../packages/attested/{wheel.name}.provenance"
    html = requests.get(f"{attesting.index_url}attested/", timeout=10).text
    assert f'data-provenance="../../packages/attested/{wheel.name}.provenance"' in html
    resp = requests.get(urljoin(f"{attesting.index_url}attested/", entry["provenance"]), timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    stored = attesting.store / "attested" / f"{wheel.name}.provenance"
    assert resp.content == stored.read_bytes()  # byte for byte what was stored with the file
    assert json.loads(resp.content) == {  # PEP 740's shape: the publisher from the minted token
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {
                    "kind": "GitHub",
                    "repository": "acme/attested",
                    "workflow": "release.yml",
                    "environment": None,
                },
                "attestations": [json.loads(attestation_file.read_text())],
            }
        ],
    }

    target = tmp_path / "pip-target"  # and the file installs as ever
    pip("install", "--index-url", attesting.index_url, "--target", str(target), "attested==1.0")
    assert (target / "attested" / "__init__.py").exists()

    if not testdb.ON_POSTGRES:  # a backup keeps it (on PostgreSQL, backup says to use pg_dump)
        backup = tmp_path / "backup"
        privindex_cli(attesting, "backup", str(backup))
        assert (backup / "packages" / "attested" / stored.name).read_bytes() == stored.read_bytes()
    assert privindex_cli(attesting, "check", check=False).returncode == 0
    kept = stored.read_bytes()
    stored.write_bytes(provenance(wheel.name, "0" * 64))
    checked = privindex_cli(attesting, "check", check=False)
    assert checked.returncode == 1 and f"{stored.name}: not that file's provenance" in checked.stdout
    stored.write_bytes(kept)

    privindex_cli(attesting, "project", "delete", "attested", wheel.name, "--yes")
    assert not stored.exists()  # its provenance went with it
    wait_until(lambda: wheel.name not in listed(attesting, "attested"), timeout=10)
    assert (
        requests.get(urljoin(f"{attesting.index_url}attested/", entry["provenance"]), timeout=10).status_code
        == 404
    )


@pytest.mark.parametrize(
    "about, reason",
    [
        pytest.param(lambda name, sha: attestation(name, "0" * 64), "about other bytes", id="other-digest"),
        pytest.param(
            lambda name, sha: attestation(name.replace("attested-", "attested-9."), sha),
            "about another file",
            id="other-file",
        ),
        pytest.param(lambda name, sha: {"version": 2}, "the envelope is not a JSON object", id="not-pep-740"),
    ],
)
def test_attestations_not_about_the_file_are_refused_and_nothing_is_stored(
    tmp_path, attesting, issuers, about, reason
):
    wheel, attestation_file = attested_wheel(tmp_path, "2.0", about)
    upload = twine(
        attesting.url, minted(attesting, issuers), wheel, attestation_file, extra=("--attestations",)
    )
    assert upload.returncode != 0 and "400" in upload.output, upload.output
    assert f"Invalid attestations for {wheel.name}: " in upload.output, upload.output
    assert reason in upload.output, upload.output
    assert wheel.name not in listed(attesting, "attested")
    assert not list((attesting.store / "attested").glob("attested-2.0*"))  # no file, no provenance


def test_attestations_need_trusted_publishing(tmp_path, attesting):
    wheel, attestation_file = attested_wheel(tmp_path, "3.0")
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
