"""Retention (issue 27, item 5): policies that delete old pre-releases and dev releases to free
disk, through the CLI against a server's store (in-process, conftest's AppServer, where the point
is the rules); and the per-project quota, with twine."""

from __future__ import annotations

import json
import os
import re

import pytest
import requests
from conftest import pip, privindex_cli, twine, wait_until
from helpers import listed
from webclient import user_with_totp
from wheels import make_wheel

from privindex.config import ConfigError, Settings
from privindex.packages.retention import Policy, doomed

DAY = 86400.0


def _events(server, tag: str) -> list[dict]:
    lines = privindex_cli(server, "audit", "--json").stdout.splitlines()
    return [e for e in map(json.loads, lines) if e["tag"].startswith(tag)]


def _freed_bytes(server) -> float:
    body = requests.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^privindex_retention_freed_bytes_total (\S+)$", body, re.M)
    assert found, body[-2000:]
    return float(found.group(1))


@pytest.mark.slow  # pip installs what remains
def test_a_run_deletes_old_prereleases_audits_them_and_pip_installs_what_remains(tmp_path, fresh_server):
    store = tmp_path / "store"
    versions = ["0.9", "1.0", "1.1a1", "1.1b1", "1.1rc1", "1.2.dev1"]
    wheels = {v: make_wheel(store / "relic", "relic", v, payload=b"x" * 5000) for v in versions}
    server = fresh_server(populated=False, env={"PRIVINDEX_RETENTION_KEEP_PRERELEASES": "2"})
    assert set(listed(server, "relic")) == {w.name for w in wheels.values()}

    dry = privindex_cli(server, "retention", "run", "--dry-run")
    goes = {wheels["1.1a1"].name, wheels["1.1b1"].name}
    assert {line.split("\t")[2] for line in dry.stdout.splitlines()} == goes
    freed = sum(wheels[v].stat().st_size for v in ("1.1a1", "1.1b1"))
    assert f"would delete 2 files, {freed} bytes" in dry.stderr
    assert all(w.exists() for w in wheels.values())  # a dry run changes nothing
    assert _freed_bytes(server) == 0

    done = privindex_cli(server, "retention", "run")
    assert f"deleted 2 files, {freed} bytes" in done.stderr
    assert not any(wheels[v].exists() for v in ("1.1a1", "1.1b1"))
    left = {wheels[v].name for v in ("0.9", "1.0", "1.1rc1", "1.2.dev1")}
    wait_until(lambda: set(listed(server, "relic")) == left, timeout=10)  # the server follows the command

    events = _events(server, "file:delete")
    assert {e["subject"] for e in events} == goes
    assert all(e["details"]["policy"] == "retention" and e["actor"] is None for e in events)
    assert all("beyond the newest 2 pre-releases" in e["details"]["reason"] for e in events)
    assert _freed_bytes(server) == freed

    target = tmp_path / "target"
    pip("install", "--index-url", server.index_url, "--target", str(target), "relic==1.1rc1")
    assert "1.1rc1" in (target / "relic" / "__init__.py").read_text()
    assert (
        privindex_cli(server, "retention", "run")
        .stderr.strip()
        .endswith("deleted 0 files, 0 bytes (0.0 MiB)")
    )


def test_a_project_override_takes_precedence_and_is_audited(tmp_path, fresh_app):
    store = tmp_path / "store"
    for v in ("1.0", "2.0a1", "2.0a2"):
        make_wheel(store / "tuned", "tuned", v)
    server = fresh_app(populated=False)
    assert privindex_cli(server, "retention", "run", "--dry-run").stdout == ""  # index-wide: off
    privindex_cli(server, "retention", "set", "tuned", "--keep-prereleases", "1")
    assert "2.0a1" in privindex_cli(server, "retention", "run", "--dry-run").stdout
    refused = privindex_cli(
        server, "retention", "set", "nothing-here", "--keep-prereleases", "1", check=False
    )
    assert refused.returncode == 1 and "there is no project 'nothing-here'" in refused.stderr
    events = _events(server, "project:retention")
    assert [e["details"]["keep_prereleases"] for e in events] == [1]


def test_the_latest_final_release_survives_every_rule():
    now = 1_000 * DAY
    old = now - 90 * DAY
    files = [("p-1.0.dev1.whl", "1.0.dev1", 10, old), ("p-0.5.whl", "0.5", 10, old)]
    # 0.5 is the latest final: kept; the old dev release goes
    assert [d.version for d in doomed(files, "p", Policy(dev_max_days=30), now)] == ["1.0.dev1"]
    only_dev = [("p-1.0.dev1.whl", "1.0.dev1", 10, old), ("p-1.0.dev2.whl", "1.0.dev2", 10, old)]
    # no final release: the latest release stays, whatever the rules say
    assert [d.version for d in doomed(only_dev, "p", Policy(1, 30), now)] == ["1.0.dev1"]
    fresh = [("p-1.0.dev1.whl", "1.0.dev1", 10, now - DAY), ("p-0.5.whl", "0.5", 10, old)]
    assert doomed(fresh, "p", Policy(dev_max_days=30), now) == []


@pytest.mark.parametrize("key", ["retention_keep_prereleases", "retention_dev_max_days", "max_project_mb"])
def test_settings_refuse_negative_rules_by_name(key):
    with pytest.raises(ConfigError, match=f"^{key}: must be 0 \\(off\\) or more"):
        Settings(**{key: -1})


@pytest.mark.slow  # what twine says
def test_an_upload_past_the_project_quota_is_refused_saying_what_is_left(tmp_path, fresh_server, accounts):
    server = fresh_server(
        populated=False, env={"PRIVINDEX_MAX_PROJECT_MB": "1", "PRIVINDEX_REQUIRE_2FA": "false"}
    )
    people = accounts(server)
    people.user("ann")
    token = people.token("ann")
    first = make_wheel(tmp_path / "dist", "bulky", "1.0", payload=os.urandom(600_000))
    assert twine(server.url, token, first).returncode == 0
    second = make_wheel(tmp_path / "dist", "bulky", "1.1", payload=os.urandom(600_000))
    refused = twine(server.url, token, second)
    assert refused.returncode != 0
    assert "400" in refused.output and "Project size too large" in refused.output
    assert re.search(r"0\.4 MiB is left", refused.output), refused.output
    assert set(listed(server, "bulky")) == {first.name}  # nothing of the refused file
    assert not list(server.store.rglob("bulky-1.1*"))


@pytest.mark.slow  # the server process's schedule
def test_the_server_runs_the_policy_on_its_schedule(tmp_path, fresh_server):
    store = tmp_path / "store"
    wheels = [make_wheel(store / "sched", "sched", v) for v in ("1.0", "2.0a1", "2.0a2")]
    server = fresh_server(
        populated=False,
        env={"PRIVINDEX_RETENTION_KEEP_PRERELEASES": "1", "PRIVINDEX_RETENTION_INTERVAL_HOURS": "0.001"},
    )
    wait_until(lambda: set(listed(server, "sched")) == {wheels[0].name, wheels[2].name}, timeout=30)
    assert not wheels[1].exists()
    [event] = _events(server, "file:delete")
    assert event["details"]["via"] == "retention-schedule" and event["subject"] == wheels[1].name
    assert _freed_bytes(server) > 0


def test_an_owner_sets_the_projects_rules_on_its_page_and_a_stranger_cannot(tmp_path, fresh_app):
    store = tmp_path / "store"
    for v in ("1.0", "2.0a1", "2.0a2"):
        make_wheel(store / "owned", "owned", v)
    server = fresh_app(populated=False)
    owner, _totp, _codes, _at = user_with_totp(server, "olga")
    stranger, _totp, _codes, _at = user_with_totp(server, "sam")
    privindex_cli(server, "project", "set-owner", "owned", "olga")

    page = owner.get("/projects/owned?tab=settings").text
    assert 'name="keep_prereleases"' in page
    owner.post("/projects/owned/retention", {"keep_prereleases": "x"}, page=page)
    assert owner.flashes() == ["A retention rule is a whole number, 0 (off) or more, or empty."]
    owner.post("/projects/owned/retention", {"keep_prereleases": "1", "dev_max_days": ""}, page=page)
    assert owner.flashes() == ["The retention rules of owned were saved."]
    assert "2.0a1" in privindex_cli(server, "retention", "run", "--dry-run").stdout

    page = stranger.get("/projects/owned").text
    assert 'name="keep_prereleases"' not in page
    stranger.post("/projects/owned/retention", {"keep_prereleases": "0"}, page=page)
    assert stranger.flashes() == ["only an owner of the project or an admin may do that"]
    [event] = _events(server, "project:retention:set")
    assert event["actor"] == "olga" and event["details"]["dev_max_days"] is None


def test_of_several_processes_one_takes_each_scheduled_round(app):
    from privindex.packages.retention import take_scheduled_round

    assert take_scheduled_round(3600, now=1000.0)
    assert not take_scheduled_round(3600, now=1000.0)  # a second process, at the same moment
    assert not take_scheduled_round(3600, now=4599.0)
    assert take_scheduled_round(3600, now=4600.0)
