"""Helpers the test modules share, one copy each: reading an index, the store, uploads in-process."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import requests
from wheels import upload_form

V1_JSON = "application/vnd.pypi.simple.v1+json"


def listed(server, project: str) -> dict[str, dict]:
    """filename -> the file's entry in /simple/<project>/ (JSON) right now; {} if the project
    is not there. Any other failure (a 401, a 500) fails the test."""
    resp = requests.get(f"{server.index_url}{project}/", headers={"Accept": V1_JSON}, timeout=10)
    if resp.status_code == 404:
        return {}
    resp.raise_for_status()
    return {f["filename"]: f for f in resp.json()["files"]}


def listed_hashes(server, project: str) -> dict[str, str]:
    """filename -> sha256 of what /simple/<project>/ lists right now."""
    return {name: f["hashes"]["sha256"] for name, f in listed(server, project).items()}


def rss_kb(server) -> int:
    """The live server process's resident memory (VmRSS), in KiB."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def store_files(server) -> set[str]:
    """Every file under the server's store, hidden ones (upload temp files) included."""
    return {str(p.relative_to(server.store)) for p in Path(server.store).rglob("*") if p.is_file()}


def installed(target: Path) -> set[str]:
    """The .dist-info folders pip or uv installed into target (--target)."""
    return {p.name for p in target.iterdir() if p.name.endswith(".dist-info")}


# -- in-process: an app's test client and runner (conftest's `client` and `runner`) ----------


def new_token(runner, name: str, *options: str) -> str:
    """`privindex token create NAME OPTIONS`: the secret."""
    result = runner.invoke("token", "create", name, *options)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def post_file(client, token: str, wheel):
    """A twine-shaped upload of the file at wheel to /legacy/ with an API token."""
    form, (filename, content) = upload_form(wheel)
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    return client.post(
        "/legacy/",
        data={**form, "content": (io.BytesIO(content), filename)},
        headers={"Authorization": f"Basic {auth}"},
    )


def files(client, project: str) -> dict[str, dict]:
    """filename -> the file's entry in /simple/<project>/ (JSON) through the test client."""
    resp = client.get(f"/simple/{project}/", headers={"Accept": V1_JSON})
    return {f["filename"]: f for f in resp.json["files"]} if resp.status_code == 200 else {}
