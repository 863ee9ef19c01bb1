"""Several `privindex serve` processes on one PostgreSQL database and one package folder
act as one index: what is done through one is seen by the others within a pass of their
watchers (rescan_interval = 1 s here)."""

from __future__ import annotations

import os

import pytest
import requests
import testdb
from conftest import privindex_cli, start_server, twine, wait_until
from helpers import listed
from webclient import uploader, user_with_totp
from wheels import make_wheel

pytestmark = pytest.mark.skipif(
    not testdb.ON_POSTGRES and os.environ.get("CI") != "true",
    reason="needs TEST_PRIVINDEX_DATABASE_URL (PostgreSQL)",
)
if os.environ.get("CI") == "true" and not testdb.ON_POSTGRES:
    pytestmark = pytest.mark.skip(reason="the PostgreSQL run of .ci/run covers this")
pytestmark = [pytestmark, pytest.mark.slow]  # two real server processes on one database

FOLLOW = 2.0  # seconds: the promise (a watcher pass is 1 s)


@pytest.fixture
def pair(tmp_path):
    """Two servers on one store, one data dir (one session key) and one database."""
    env = {"PRIVINDEX_REQUIRE_2FA": "false"}
    one = start_server(tmp_path / "store", tmp_path / "data", env=env)
    two = start_server(tmp_path / "store", tmp_path / "data", env=env)
    yield one, two
    one.stop()
    two.stop()


def test_an_upload_yank_delete_and_revocation_through_one_reach_the_other(pair, tmp_path):
    one, two = pair
    web, *_ = user_with_totp(one, "alice")  # signed in through one
    token = privindex_cli(one, "token", "create", "alice").stdout.strip()
    wheel = make_wheel(tmp_path / "dist", "shared-proj", "1.0")
    assert twine(one.url, token, wheel).returncode == 0
    wait_until(lambda: wheel.name in listed(two, "shared-proj"), FOLLOW)
    assert (
        requests.get(
            f"{two.url}/packages/{listed(two, 'shared-proj')[wheel.name]['url'].split('/packages/')[1]}",
            timeout=10,
        ).content
        == wheel.read_bytes()
    )

    web.post(f"/projects/shared-proj/files/{wheel.name}/yank", {"reason": "broken"})
    wait_until(lambda: listed(two, "shared-proj")[wheel.name].get("yanked") == "broken", FOLLOW)
    web.post(f"/projects/shared-proj/files/{wheel.name}/yank", {"action": "unyank"})
    wait_until(lambda: listed(two, "shared-proj")[wheel.name].get("yanked") is False, FOLLOW)

    # tokens and users are read from the database on every request: at once, everywhere
    token_id = privindex_cli(one, "token", "list", "alice").stdout.splitlines()[1].split("\t")[0]
    privindex_cli(one, "token", "revoke", token_id)
    refused = twine(two.url, token, make_wheel(tmp_path / "dist", "shared-proj", "2.0"))
    assert refused.returncode != 0 and "403" in refused.output

    web.post(f"/projects/shared-proj/files/{wheel.name}/delete", {"confirm": wheel.name})
    wait_until(lambda: wheel.name not in listed(two, "shared-proj"), FOLLOW)
    assert privindex_cli(two, "check", check=False).returncode == 0


def test_of_two_uploads_of_one_filename_through_two_servers_one_wins(pair, tmp_path):
    one, two = pair
    token = uploader(one, "bob")
    first = make_wheel(tmp_path / "a", "race-proj", "1.0")
    other = make_wheel(tmp_path / "b", "race-proj", "1.0", payload=b"other bytes")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda args: twine(*args), [(one.url, token, first), (two.url, token, other)])
        )
    assert sorted(r.returncode == 0 for r in results) == [False, True]
    won = first if results[0].returncode == 0 else other
    for server in (one, two):
        wait_until(
            lambda server=server: listed(server, "race-proj").get(won.name, {}).get("hashes") is not None,
            FOLLOW,
        )
    assert privindex_cli(one, "check", check=False).returncode == 0
