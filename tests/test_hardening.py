"""HTTP hardening: what the logs keep, what the size limits stop, what timing reveals."""

from __future__ import annotations

import statistics
import time

import pytest
import requests
from conftest import add_user, served, wait_until
from webclient import WebClient

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory.mktemp("hardening")) as server:
        yield server


def test_tokens_in_urls_are_redacted_from_the_access_log(server):
    secret = "pidx_" + "S" * 43
    requests.get(f"{server.url}/simple/?token={secret}&x=1", timeout=10)
    requests.get(f"{server.url}/packages/{secret}.whl", timeout=10)
    requests.get(f"{server.url}/login?password=hunter2hunter2", timeout=10)
    requests.get(f"{server.url}/simple/", auth=("__token__", secret), timeout=10)
    log = server.log()
    assert secret not in log and "hunter2hunter2" not in log
    assert '"GET /simple/?token=[redacted]&x=1"' in log
    assert '"GET /packages/[redacted].whl"' in log
    assert "password=[redacted]" in log


def test_secrets_in_the_user_agent_and_method_are_redacted_from_the_access_log(server):
    """The access log redacts each field itself (the handler's filter skips its lines), the
    User-Agent and the method included; clean values are cached, secrets never are."""
    secret = "pidx_" + "U" * 43
    for _ in range(2):  # the second time the clean parts come from the cache
        requests.get(f"{server.url}/simple/", headers={"User-Agent": f"pip/24 {secret}"}, timeout=10)
    requests.request(secret.upper(), f"{server.url}/simple/", timeout=10)
    wait_until(lambda: server.log().count('"pip/24 [redacted]"') == 2, 10)
    log = server.log()
    assert secret not in log and secret.upper() not in log
    assert '"[redacted] /simple/" 405' in log


def test_oversized_form_fields_are_refused(server):
    client = WebClient(server.url)
    resp = client.post("/login", {"username": "x" * (2 * 1024 * 1024), "password": "y"})
    assert resp.status_code == 413


def test_failed_login_time_does_not_reveal_whether_the_user_exists(server):
    add_user(server, "timed", PASSWORD)
    client = WebClient(server.url)

    def attempt(username: str) -> float:
        token_page = client.session.get(f"{server.url}/login", timeout=10).text
        token = token_page.split('name="csrf-token" content="')[1].split('"')[0]
        started = time.perf_counter()
        resp = client.session.post(
            f"{server.url}/login",
            timeout=30,
            data={"csrf_token": token, "username": username, "password": "wrong password"},
        )
        assert resp.status_code == 401
        return time.perf_counter() - started

    # alternate, so machine noise hits both alike; 4 + 4 stays under the lock-out of 10
    known, unknown = [], []
    for _ in range(4):
        known.append(attempt("timed"))
        unknown.append(attempt("no-such-user"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, (known, unknown)
