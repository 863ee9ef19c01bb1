"""Reading a live index the way the tests check it: one copy, shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import requests

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
