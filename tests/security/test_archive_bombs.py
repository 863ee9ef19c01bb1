"""Hostile archives against a real server: uploaded (twine, or the upload API as twine speaks
it), each is refused with a 400 naming the rule it breaks and leaves nothing behind but an
`upload:refused` audit event; dropped into the store by hand, it is not listed, the log
says why, and `privindex check` reports it. Normal sdists and wheels still go through."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import hostile_archives as hostile
import pytest
from conftest import Accounts, start_server, twine, wait_until
from helpers import listed_hashes
from test_upload import NO_2FA, assert_clean_log, assert_refused, leaves_nothing_behind
from wheels import make_wheel, upload

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

MEMBER_LIMIT = 1000  # the server's max_archive_members here: a flood test needs few members


class World:
    def __init__(self, server, token: str, folder: Path):
        self.server, self.token, self.folder = server, token, folder


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("bombs")
    (base / "store").mkdir()
    server = start_server(
        base / "store",
        base / "data",
        env={
            **NO_2FA,
            "PRIVINDEX_RESCAN_INTERVAL": "0.2",
            "PRIVINDEX_MAX_ARCHIVE_MEMBERS": str(MEMBER_LIMIT),
        },
    )
    accounts = Accounts(server.store, server.data_dir, server.env)
    accounts.user("alice")
    yield World(server, accounts.token("alice"), base / "files")
    assert_clean_log(server)
    server.stop()


def refused_by_api(world: World, path: Path, reason: str) -> None:
    """The upload API answers 400 with the reason, in one line; nothing is stored."""
    with leaves_nothing_behind(world.server, refusals=1, reason=reason):
        resp = upload(world.server.url, world.token, path)
        assert resp.status_code == 400
        assert reason in resp.reason and "\n" not in resp.text.strip()
    assert path.name not in listed_hashes(world.server, path.name.split("-")[0])


# -- what still goes through -------------------------------------------------------------------------


def test_normal_sdists_and_wheels_still_upload(world):
    folder = world.folder / "normal"
    sdist = hostile.sdist(
        folder,
        "fine",
        "1.0",
        hostile.member("fine-1.0/setup.py"),
        hostile.member("fine-1.0/docs", tarfile.DIRTYPE),
        hostile.member("fine-1.0/docs/README", tarfile.SYMTYPE, "../setup.py"),
    )
    wheel = make_wheel(folder, "fine", "1.0")
    assert twine(world.server.url, world.token, sdist, wheel).returncode == 0
    assert set(listed_hashes(world.server, "fine")) == {sdist.name, wheel.name}


# -- sdists -------------------------------------------------------------------------------------------

ESCAPES = {
    "dotdot": (hostile.member("dotdot-1.0/../../etc/cron.d/x"), "has '..' in its path"),
    "absolute": (hostile.member("/etc/cron.d/x"), "has an absolute path"),
    "symlink": (
        hostile.member("symlink-1.0/s", tarfile.SYMTYPE, "../../etc/passwd"),
        "links outside the archive",
    ),
    "hardlink": (
        hostile.member("hardlink-1.0/h", tarfile.LNKTYPE, "/etc/passwd"),
        "links outside the archive",
    ),
    "device": (hostile.member("device-1.0/sda", tarfile.BLKTYPE), "is a device file"),
}


@pytest.mark.parametrize("name", ESCAPES)
def test_sdist_members_that_escape_the_archive_are_refused(world, name):
    member, reason = ESCAPES[name]
    path = hostile.sdist(world.folder / name, name, "1.0", member)
    refused_by_api(world, path, reason)  # twine itself trips over some of these


def test_a_tar_gz_that_is_also_a_zip_is_refused(world):
    path = hostile.tar_gz_that_is_a_zip(world.folder / "polyglot", "polyglot", "1.0")
    # twine reads it as the zip (and finds no PKG-INFO): tools disagree on what it holds
    refused_by_api(world, path, "both a .tar.gz and a zip archive")


def test_a_wheel_that_is_also_a_tar_is_refused(world):
    path = hostile.wheel_that_is_a_tar(world.folder / "tarwheel", "tarwheel", "1.0")
    assert tarfile.is_tarfile(path) and zipfile.is_zipfile(path)
    refused_by_api(world, path, "both a zip and a tar archive")


def test_an_sdist_with_a_flood_of_members_is_refused_at_the_limit(world):
    path = hostile.many_members_sdist(world.folder / "flood", "flood", "1.0", 20 * MEMBER_LIMIT)
    refused_by_api(world, path, f"more than {MEMBER_LIMIT} members (setting max_archive_members)")


def test_a_gzip_bomb_sdist_is_refused(world):
    # 1 GiB of zeros in a 1 MB file: refused once 64 MiB are unpacked (ratio 50 past 64 MiB)
    path = hostile.gzip_bomb_sdist(world.folder / "gzbomb", "gzbomb", "1.0", 1024 * hostile.MiB)
    refused_by_api(world, path, "unpacks to more than 50 times its size (setting max_compression_ratio)")


# -- wheels ------------------------------------------------------------------------------------------


def test_a_zip_bomb_wheel_is_refused(world):
    path = hostile.zip_bomb_wheel(world.folder / "zipbomb", "zipbomb", "1.0", 128 * hostile.MiB)
    refused_by_api(world, path, "unpacks to more than 50 times its size")


def test_a_wheel_holding_a_name_twice_is_refused(world):
    path = hostile.wheel_with_a_name_twice(world.folder / "twice", "twice", "1.0")
    assert_refused(
        world.server, path, world.token, 400, "'twice-1.0.dist-info/METADATA' is in the archive twice"
    )


def test_a_wheel_whose_local_header_names_another_file_is_refused(world):
    path = hostile.wheel_with_another_local_name(world.folder / "confused", "confused", "1.0")
    assert_refused(
        world.server,
        path,
        world.token,
        400,
        "'confused/__init__.py' has another name in its local file header",
    )


def test_file_replace_refuses_a_hostile_archive_and_keeps_the_old_file(world, tmp_path):
    server = world.server
    wheel = make_wheel(tmp_path / "good", "replaced", "1.0")
    assert twine(server.url, world.token, wheel).returncode == 0
    hostile_wheel = hostile.wheel_with_a_name_twice(tmp_path / "bad", "replaced", "1.0")
    proc = Accounts(server.store, server.data_dir, server.env).cli(
        "file", "replace", wheel.name, str(hostile_wheel), check=False
    )
    assert proc.returncode == 1
    assert "'replaced-1.0.dist-info/METADATA' is in the archive twice" in proc.stderr
    assert (server.store / "replaced" / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_wheel_needing_a_newer_zip_version_is_a_400_not_a_500(world):
    path = hostile.wheel_needing_a_newer_zip(world.folder / "newzip", "newzip", "1.0")
    refused_by_api(world, path, "not a readable archive (zip file version 7.9)")


# -- files dropped into the store by hand ----------------------------------------------------------


def test_hostile_files_in_the_store_are_not_listed_and_check_says_why(world, tmp_path):
    server = world.server
    folder = server.store / "dropped"
    dropped = {
        hostile.many_members_sdist(tmp_path, "dropped", "1.0", 20 * MEMBER_LIMIT): "more than 1000 members",
        hostile.gzip_bomb_sdist(
            tmp_path, "dropped", "2.0", 256 * hostile.MiB
        ): "unpacks to more than 50 times",
        hostile.wheel_with_a_name_twice(tmp_path, "dropped", "3.0"): "is in the archive twice",
    }
    good = make_wheel(tmp_path, "dropped", "4.0")
    folder.mkdir()
    for path in [*dropped, good]:
        path.rename(folder / path.name)
    wait_until(lambda: good.name in listed_hashes(server, "dropped"), 30)
    wait_until(lambda: all(f"skipping dropped/{path.name}: " in server.log() for path in dropped), 10)
    assert set(listed_hashes(server, "dropped")) == {good.name}
    log = server.log()
    for path, reason in dropped.items():
        assert reason in log.split(f"skipping dropped/{path.name}: ", 1)[1].splitlines()[0]

    proc = Accounts(server.store, server.data_dir, server.env).cli("check", "--quick", check=False)
    assert proc.returncode == 1
    for path, reason in dropped.items():
        line = next(line for line in proc.stdout.splitlines() if f"dropped/{path.name}" in line)
        assert "in the store but not listed" in line and reason in line
    for path in [*dropped, good]:
        (folder / path.name).unlink()
