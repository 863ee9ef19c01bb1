"""Operable by default: /healthz and /readyz, request ids, JSON logs and /metrics, against a
real `privindex serve` with real clients (pip's requests, twine, the CLI); access rules
and the database check in-process."""

from __future__ import annotations

import json

import pytest
import requests
import testdb
from conftest import Accounts, populate, run_privindex, start_server, twine, wait_until
from prometheus_client.parser import text_string_to_metric_families
from webclient import WebClient
from wheels import make_wheel


@pytest.fixture(scope="module")
def server(tmp_path_factory, dists):
    """One JSON-logging server for the module (2FA off, so a CLI-made token can upload)."""
    base = tmp_path_factory.mktemp("ops")
    populate(base / "store", dists)
    live = start_server(
        base / "store", base / "data", env={"PRIVINDEX_LOG_FORMAT": "json", "PRIVINDEX_REQUIRE_2FA": "false"}
    )
    yield live
    live.stop()


def scrape(url: str, **kwargs) -> dict[tuple[str, tuple], float]:
    """/metrics parsed by prometheus_client's own parser: (sample name, labels) -> value."""
    resp = requests.get(f"{url}/metrics", timeout=10, **kwargs)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_liveness_readiness_and_the_old_health(server):
    alive = requests.get(f"{server.url}/healthz", timeout=10)
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    old = requests.get(f"{server.url}/health", timeout=10).json()
    assert old["status"] == "ok" and old["projects"] >= 3 and old["files"] >= 5


def test_every_answer_carries_a_request_id_and_a_sane_one_is_kept(server):
    seen = set()
    for path in ("/simple/alpha/", "/packages/nope.whl", "/login", "/healthz", "/legacy/"):
        resp = requests.get(server.url + path, timeout=10)
        rid = resp.headers.get("X-Request-ID")
        assert rid and rid not in seen, (path, resp.headers)
        seen.add(rid)
    kept = requests.get(f"{server.url}/simple/", headers={"X-Request-ID": "trace-42.a:b"}, timeout=10)
    assert kept.headers["X-Request-ID"] == "trace-42.a:b"
    for bad in ("x" * 200, "a b", "<script>"):
        replaced = requests.get(f"{server.url}/simple/", headers={"X-Request-ID": bad}, timeout=10)
        assert replaced.status_code == 200 and replaced.headers["X-Request-ID"] not in (bad, "")


def test_json_logs_one_object_per_line_with_the_request_id_and_no_token(server):
    secret = "pidx_" + "A1b2" * 10
    resp = requests.get(
        f"{server.url}/simple/alpha/?token={secret}", headers={"User-Agent": "ops-test/1"}, timeout=10
    )
    rid = resp.headers["X-Request-ID"]

    def access_line():
        for line in server.log().splitlines():
            record = json.loads(line)  # every line is JSON, or this fails
            if record.get("logger") == "privindex.access" and record.get("request_id") == rid:
                return record
        return None

    wait_until(lambda: access_line() is not None, 10)
    record = access_line()
    assert record["method"] == "GET" and record["status"] == 200 and record["user_agent"] == "ops-test/1"
    assert record["path"] == "/simple/alpha/?token=[redacted]"
    assert isinstance(record["duration_ms"], (int, float)) and record["remote"] == "127.0.0.1"
    assert {"time", "level", "message"} <= set(record)
    # a client may choose a token-shaped request id: it gets it back, the log does not keep it
    chosen = "pidx_" + "B2c3" * 11
    assert (
        requests.get(f"{server.url}/healthz", headers={"X-Request-ID": chosen}, timeout=10).headers[
            "X-Request-ID"
        ]
        == chosen
    )
    wait_until(lambda: '"request_id": "[redacted]"' in server.log(), 10)
    assert secret not in server.log() and "A1b2A1b2" not in server.log() and "B2c3B2c3" not in server.log()


def test_metrics_move_with_requests_uploads_downloads_and_failures(server, tmp_path):
    acc = Accounts(server.store, server.data_dir, server.env)
    acc.user("metered", password="a long password for metered")
    token = acc.token("metered")
    before = scrape(server.url)

    assert requests.get(f"{server.url}/simple/alpha/", timeout=10).status_code == 200
    wheel = make_wheel(tmp_path, "metered-pkg", "1.0", payload=b"x" * 5000)
    assert twine(server.url, token, wheel).returncode == 0
    page = requests.get(
        f"{server.url}/simple/metered-pkg/",
        timeout=10,
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    ).json()
    url = requests.compat.urljoin(f"{server.url}/simple/metered-pkg/", page["files"][0]["url"])
    download = requests.get(url, timeout=10)
    assert download.status_code == 200 and download.content == wheel.read_bytes()
    assert twine(server.url, "pidx_" + "Z" * 43, wheel).returncode != 0  # a token nobody made
    signin = WebClient(server.url).login("metered", "not the password")
    assert signin.status_code == 401

    after = scrape(server.url)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("privindex_http_requests_total", route="simple_project", status="200") == 2
    assert moved("privindex_http_request_duration_seconds_count", route="simple_project") == 2
    assert moved("privindex_uploads_total") == 1
    assert moved("privindex_upload_bytes_total") == wheel.stat().st_size
    assert moved("privindex_downloads_total", route="file") == 1
    assert moved("privindex_download_bytes_total", route="file") == wheel.stat().st_size
    assert moved("privindex_auth_failures_total", kind="token", reason="unknown") == 1
    assert moved("privindex_uploads_refused_total", status="403") == 1
    assert moved("privindex_auth_failures_total", kind="password", reason="invalid_password") == 1
    assert moved("privindex_http_requests_total", route="upload", status="200") == 1
    assert (
        moved("privindex_page_cache_lookups_total", result="hit")
        + moved("privindex_page_cache_lookups_total", result="miss")
        >= 1
    )
    assert value(after, "privindex_index_files") == value(before, "privindex_index_files") + 1
    assert value(after, "privindex_index_bytes") > value(before, "privindex_index_bytes")
    assert value(after, "privindex_store_rescan_duration_seconds_count") >= 1
    # a scanner's random paths share one series
    for i in range(3):
        requests.get(f"{server.url}/wp-admin-{i}.php", timeout=10)
    names = {labels for (name, labels) in scrape(server.url) if name == "privindex_http_requests_total"}
    assert not any("wp-admin" in str(labels) for labels in names)
    assert all(
        dict(labels)["route"]
        in ("simple_root", "simple_project", "file", "metadata", "upload", "web", "health", "other")
        for labels in names
    )


def test_backup_and_check_times_reach_the_servers_gauges(server, tmp_path):
    before = scrape(server.url)
    assert value(before, "privindex_last_success_timestamp_seconds", job="backup") == 0
    if not testdb.ON_POSTGRES:  # privindex backup copies SQLite installations (pg_dump otherwise)
        run_privindex(
            "backup", str(tmp_path / "backup"), data_dir=server.data_dir, store=server.store, env=server.env
        )
    run_privindex("check", "--quick", data_dir=server.data_dir, store=server.store, env=server.env)
    after = scrape(server.url)
    if not testdb.ON_POSTGRES:
        assert value(after, "privindex_last_success_timestamp_seconds", job="backup") > 1e9
    assert value(after, "privindex_last_success_timestamp_seconds", job="check") > 1e9


def test_a_forwarded_header_does_not_change_who_scrapes(server):
    """Without trusted_proxy, X-Forwarded-For is not believed: the address is the socket's.
    (Refusals are tested in-process, where the client address can be chosen.)"""
    resp = requests.get(f"{server.url}/metrics", timeout=10, headers={"X-Forwarded-For": "10.1.2.3"})
    assert resp.status_code == 200


def test_readiness_fails_when_the_store_cannot_be_written(server):
    """Last in the module: it takes the store away. Root ignores permission bits, so the
    store folder is replaced by a file: a write there fails for anyone."""
    moved = server.store.with_name("store-away")
    server.store.rename(moved)
    try:
        server.store.write_text("not a folder")
        # a probe's answer is reused for a second
        wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 503, 5)
        resp = requests.get(f"{server.url}/readyz", timeout=10)
        assert resp.status_code == 503
        assert resp.json()["status"] == "unavailable"
        assert resp.json()["problems"] == ["store not writable"]  # the path and the reason: in the log
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200  # still alive
    finally:
        server.store.unlink()
        moved.rename(server.store)
    wait_until(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 5)


# -- in-process: who may scrape, and the database check ---------------------------------------


def _token(app) -> str:
    from privindex.accounts import api_tokens, users
    from privindex.db.connection import bound
    from privindex.ops import audit

    with bound(app.extensions["privindex"].database):
        user = users.create_user("scraper", "a long password for scraper", audit.CLI)
        return api_tokens.create_token(user, audit.CLI, read_only=True)[1]


def _status(client, addr: str, token: str | None = None) -> int:
    headers = {"Authorization": "Bearer " + token} if token else {}
    return client.get("/metrics", environ_base={"REMOTE_ADDR": addr}, headers=headers).status_code


def test_metrics_access_rules(make_app):
    public = make_app("public")
    token = _token(public)
    client = public.test_client()
    assert _status(client, "127.0.0.1") == 200 and _status(client, "::1") == 200
    assert _status(client, "10.0.0.7") == 401
    assert _status(client, "10.0.0.7", token) == 200
    assert _status(client, "10.0.0.7", "pidx_" + "Q" * 43) == 401

    private = make_app("private", read_access="token")
    client = private.test_client()
    assert _status(client, "127.0.0.1") == 401  # a private index answers no anonymous scrape
    assert _status(client, "127.0.0.1", _token(private)) == 200

    explicit = make_app(
        "explicit", read_access="token", metrics_access="addresses", metrics_addresses="10.0.0.0/8"
    )
    assert _status(explicit.test_client(), "10.0.0.7") == 200
    assert _status(explicit.test_client(), "127.0.0.1") == 401
    assert (
        _status(make_app("open", read_access="token", metrics_access="public").test_client(), "8.8.8.8")
        == 200
    )
    assert make_app("off", metrics=False).test_client().get("/metrics").status_code == 404


def test_two_apps_in_one_process_keep_their_own_counts(make_app):
    first, second = make_app("one"), make_app("two")
    for _ in range(3):
        first.test_client().get("/simple/")

    def count(app):
        return value(
            {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(app.test_client().get("/metrics").text)
                for s in f.samples
            },
            "privindex_http_requests_total",
            route="simple_root",
            status="200",
        )

    assert (count(first), count(second)) == (3, 0)


@testdb.sqlite_only
def test_readiness_fails_when_the_database_cannot_be_opened(make_app):
    from privindex.db.connection import bound

    app = make_app("db")
    database = app.extensions["privindex"].database
    path = app.extensions["privindex"].settings.database_path
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    aside = path.with_name("aside.sqlite3")
    with bound(database):
        database.close()
    path.rename(aside)
    path.mkdir()  # the database file is now a folder: no connection can open it
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.get_json()["problems"] == ["database unreachable"]  # the driver's words: in the log
    finally:
        with bound(database):
            database.close()
        path.rmdir()
        aside.rename(path)
    assert client.get("/readyz").status_code == 200


def test_bad_metrics_settings_are_named():
    from privindex.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="metrics_addresses"):
        Settings(metrics_addresses="127.0.0.1, not-an-address")
    with pytest.raises(ConfigError, match="metrics_access"):
        Settings(metrics_access="everyone")
    with pytest.raises(ConfigError, match="log_format"):
        Settings(log_format="xml")
