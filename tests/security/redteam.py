"""Shared by the red-team tests: a signed-in user with TOTP, the database as rows, audit events."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyotp
import testdb
from conftest import privindex_cli
from webclient import PASSWORD, WebClient, user_with_totp  # noqa: F401 (PASSWORD: for the red-team modules)

# columns a read may rewrite by design (throttled "last seen/used" bookkeeping)
VOLATILE = {"last_seen_at", "last_used_at"}


signed_in = user_with_totp  # the red-team suite's name for it


def db_rows(server) -> dict[str, list[tuple]]:
    """Every row of every table, minus the volatile columns."""
    return testdb.rows(Path(server.data_dir), skip_columns=VOLATILE)


def events(server, user: str, tag: str | None = None) -> list[dict]:
    out = privindex_cli(server, "audit", "--user", user, "--json").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return [r for r in rows if tag is None or r["tag"] == tag]


def wrong_totp(totp: pyotp.TOTP) -> str:
    """A six-digit code valid in no nearby time step."""
    near = {totp.at(time.time() + d) for d in range(-120, 121, 30)}
    return next(c for c in (f"{i:06d}" for i in range(1, 1000)) if c not in near)


def signed_in_as(client: WebClient, server) -> bool:
    resp = client.session.get(f"{server.url}/account/security", timeout=10, allow_redirects=False)
    return resp.status_code == 200
