"""A published file never changes its hash (issue 10): files rewritten on disk after their
upload, at every timing, against a real server, with twine, pip and `privindex check`."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import pytest
import requests
from conftest import audit_json, pip, privindex_cli, twine, wait_until
from helpers import listed_hashes as listed
from wheels import make_wheel

from privindex.packages.index import WATCH_NEW_SECONDS as WATCHED

pytestmark = pytest.mark.slow  # crashes and restarts real servers; pip and twine

V1_JSON = "application/vnd.pypi.simple.v1+json"
NO_2FA = {"PRIVINDEX_REQUIRE_2FA": "false"}


def audit_tags(server, tag: str) -> list[dict]:
    return [e for e in audit_json(server) if e["tag"] == tag]


def corrupt_in_place(path, keep_mtime: bool = False) -> None:
    """Overwrite 9 bytes in the middle of the file, as a disk or a careless script might."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(st.st_size // 2)
        fh.write(b"CORRUPTED")
    if keep_mtime:  # size and mtime exactly as before: nothing a stat can see
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def uploaded(fresh_server, accounts, tmp_path):
    server = fresh_server(populated=False, env={**NO_2FA, "PRIVINDEX_RESCAN_INTERVAL": "0.2"})
    acc = accounts(server)
    acc.user("cora")
    token = acc.token("cora")
    wheel = make_wheel(tmp_path / "w", "crash-proj", "1.1", payload=os.urandom(4000))
    twine(server.url, token, wheel, check=True)
    stored = server.store / "crash-proj" / wheel.name
    return server, wheel, stored, hashlib.sha256(wheel.read_bytes()).hexdigest()


def assert_never_installed(server, tmp_path) -> None:
    proc = pip(
        "install",
        "--no-deps",
        "--index-url",
        server.index_url,
        "--target",
        str(tmp_path / "t"),
        "crash-proj==1.1",
        check=False,
    )
    assert proc.returncode != 0
    assert not (tmp_path / "t" / "crash_proj").exists()


def test_rewrite_within_the_watch_window_is_withdrawn_not_republished(uploaded, tmp_path):
    server, wheel, stored, published = uploaded
    corrupt_in_place(stored)  # well within a second of the upload: the watcher still looks
    wait_until(lambda: wheel.name not in listed(server, "crash-proj"), 5)
    time.sleep(1)  # several more watcher passes
    assert listed(server, "crash-proj") == {}  # never listed with another hash
    resp = requests.get(f"{server.url}/packages/crash-proj/{wheel.name}", timeout=10)
    assert resp.status_code == 409 and "withdrawn" in resp.text and published in resp.text
    assert_never_installed(server, tmp_path)
    events = audit_tags(server, "file:changed-on-disk")
    assert len(events) == 1  # once, not on every pass
    assert events[0]["subject"] == wheel.name
    assert events[0]["details"]["published_sha256"] == published
    assert events[0]["details"]["found_sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert "ERROR privindex.packages.digests" in server.log()
    check = privindex_cli(server, "check", check=False)
    assert check.returncode == 1 and wheel.name in check.stdout
    # the upload's own audit event keeps the published digest
    assert audit_tags(server, "file:add")[0]["details"]["sha256"] == published


def test_later_rewrites_keep_the_published_hash_and_are_caught_by_download_and_check(
    uploaded, accounts, fresh_server, tmp_path
):
    """After the watch window nothing looks at a file until someone reads it. A rewrite that
    moves the mtime is caught by the first download; one that keeps size and mtime exactly
    is invisible to a stat, so the server cannot notice it without rehashing. What holds
    for both: the pages keep the published hash (pip refuses the bytes), also after a
    restart, and `privindex check` reports the file."""
    server, wheel, stored, published = uploaded
    silent = make_wheel(tmp_path / "w2", "crash-proj", "1.2", payload=os.urandom(4000))
    twine(server.url, accounts(server).token("cora"), silent, check=True)
    silent_hash = hashlib.sha256(silent.read_bytes()).hexdigest()
    time.sleep(WATCHED + 0.5)  # the watcher no longer looks at either file
    corrupt_in_place(stored)
    corrupt_in_place(server.store / "crash-proj" / silent.name, keep_mtime=True)
    assert listed(server, "crash-proj") == {wheel.name: published, silent.name: silent_hash}
    check = privindex_cli(server, "check", check=False)
    assert check.returncode == 1
    assert f"crash-proj/{wheel.name}: content does not match" in check.stdout
    assert f"crash-proj/{silent.name}: content does not match" in check.stdout
    proc = pip(
        "install",
        "--no-deps",
        "--index-url",
        server.index_url,
        "--target",
        str(tmp_path / "t"),
        "crash-proj==1.2",
        check=False,
    )
    assert proc.returncode != 0 and "hash" in (proc.stdout + proc.stderr).lower()
    # the first download sees that size or mtime moved: refused, and the file is checked again
    assert requests.get(f"{server.url}/packages/crash-proj/{wheel.name}", timeout=10).status_code == 409
    wait_until(lambda: wheel.name not in listed(server, "crash-proj"), 5)
    assert_never_installed(server, tmp_path)
    assert len(audit_tags(server, "file:changed-on-disk")) == 1
    server.stop()
    again = fresh_server(populated=False, env=server.env)
    assert listed(again, "crash-proj") == {silent.name: silent_hash}


def test_hand_deleted_then_redropped_with_other_bytes_is_withdrawn_identical_bytes_are_served(
    uploaded, tmp_path
):
    server, wheel, stored, published = uploaded
    stored.unlink()
    wait_until(lambda: listed(server, "crash-proj") == {}, 5)
    other = make_wheel(tmp_path / "other", "crash-proj", "1.1", payload=b"other bytes")
    shutil.copy(other, server.store / other.name)
    time.sleep(1.5)
    assert listed(server, "crash-proj") == {}
    assert len(audit_tags(server, "file:changed-on-disk")) == 1
    # the published bytes come back: listed again, under the published hash
    (server.store / other.name).unlink()
    shutil.copy(wheel, stored)
    wait_until(lambda: listed(server, "crash-proj") == {wheel.name: published}, 5)


def test_admin_replaces_a_file_deliberately(uploaded, tmp_path):
    server, wheel, stored, published = uploaded
    fixed = make_wheel(tmp_path / "fixed", "crash-proj", "1.1", payload=b"fixed build")
    new = hashlib.sha256(fixed.read_bytes()).hexdigest()
    proc = privindex_cli(server, "file", "replace", wheel.name, str(fixed))
    assert f"{published} -> {new}" in proc.stderr
    wait_until(lambda: listed(server, "crash-proj") == {wheel.name: new}, 5)
    assert (
        requests.get(f"{server.url}/packages/crash-proj/{wheel.name}", timeout=10).content
        == fixed.read_bytes()
    )
    pip(
        "install",
        "--no-deps",
        "--index-url",
        server.index_url,
        "--target",
        str(tmp_path / "t"),
        "crash-proj==1.1",
    )
    [event] = audit_tags(server, "file:replace")
    assert (event["details"]["old_sha256"], event["details"]["sha256"]) == (published, new)
    assert audit_tags(server, "file:changed-on-disk") == []
    assert privindex_cli(server, "check", check=False).returncode == 0
    # a file that is not what the name says is refused
    liar = make_wheel(tmp_path / "liar", "crash-proj", "2.0")
    bad = privindex_cli(server, "file", "replace", wheel.name, str(liar), check=False)
    assert bad.returncode == 1 and "not what" in bad.stderr
    missing = privindex_cli(server, "file", "accept", "nothing-1.0.tar.gz", check=False)
    assert missing.returncode == 1 and "no file named" in missing.stderr
