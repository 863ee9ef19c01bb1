"""A server run by someone with only a terminal: enrol an authenticator, get an upload
token, yank, unyank and delete files, reset a second factor, remove a user. Each against
a running server, whose pages must follow."""

from __future__ import annotations

import json

import pytest
import requests
from conftest import add_user, enrol_totp_cli, privindex_cli
from wheels import make_wheel, upload

pytestmark = pytest.mark.slow  # a terminal-only admin: the real CLI in processes, twine, pip

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import start_server

    base = tmp_path_factory.mktemp("headless")
    (base / "store").mkdir()
    server = start_server(base / "store", base / "data")  # require_2fa is on by default
    yield server
    server.stop()


def files_of(srv, project: str) -> dict[str, dict]:
    page = requests.get(
        f"{srv.url}/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10
    ).json()
    return {f["filename"]: f for f in page["files"]}


def audit_tags(srv, **filters) -> list[str]:
    args = [a for k, v in filters.items() for a in (f"--{k}", v)]
    out = privindex_cli(srv, "audit", *args, "--json").stdout
    return [json.loads(line)["tag"] for line in out.splitlines()]


def wait_for(predicate, what: str):
    import time

    for _ in range(100):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"the running server never showed {what}")


def test_a_terminal_only_admin_enrols_uploads_yanks_and_deletes(srv, tmp_path):
    add_user(srv, "ops", PASSWORD, admin=True)
    refused = privindex_cli(srv, "token", "create", "ops", check=False)
    assert refused.returncode == 1 and "privindex user totp" in refused.stderr

    totp, codes, out = enrol_totp_cli(srv, "ops")
    assert out.startswith("otpauth://totp/")
    assert "█" in out or "▀" in out  # the QR code, in the terminal
    assert len(codes) == 8
    assert "user:2fa:add" in audit_tags(srv, user="ops")
    token = privindex_cli(srv, "token", "create", "ops", "--description", "ci").stdout.strip()

    for version in ("1.0", "2.0"):
        response = upload(srv.url, token, make_wheel(tmp_path, "headless-app", version))
        assert response.status_code == 200, response.text
    assert set(files_of(srv, "headless-app")) == {
        "headless_app-1.0-py3-none-any.whl",
        "headless_app-2.0-py3-none-any.whl",
    }

    yank = privindex_cli(srv, "project", "yank", "Headless_App", "2.0", "--reason", "broken build")
    assert "yanked headless_app-2.0-py3-none-any.whl" in yank.stderr
    wait_for(
        lambda: (
            files_of(srv, "headless-app")["headless_app-2.0-py3-none-any.whl"].get("yanked") == "broken build"
        ),
        "the yank",
    )
    privindex_cli(srv, "project", "unyank", "headless-app", "headless_app-2.0-py3-none-any.whl")
    wait_for(
        lambda: not files_of(srv, "headless-app")["headless_app-2.0-py3-none-any.whl"].get("yanked"),
        "the unyank",
    )

    privindex_cli(srv, "project", "delete", "headless-app", "1.0.0", "--yes")  # 1.0.0 is 1.0
    wait_for(
        lambda: set(files_of(srv, "headless-app")) == {"headless_app-2.0-py3-none-any.whl"}, "the delete"
    )
    assert requests.get(f"{srv.url}/projects/headless-app", timeout=10).text.count("headless_app-1.0") == 0

    tags = audit_tags(srv, project="headless-app")
    assert {"file:yank", "file:unyank", "file:delete"} <= set(tags)

    missing = privindex_cli(srv, "project", "yank", "headless-app", "9.9", check=False)
    assert missing.returncode == 1 and "there is no file '9.9' in 'headless-app'" in missing.stderr
    nonsense = privindex_cli(srv, "project", "delete", "headless-app", "not a version", "--yes", check=False)
    assert nonsense.returncode == 1 and "neither a file name nor a version" in nonsense.stderr


def test_reset_2fa_and_remove_a_user(srv, tmp_path):
    add_user(srv, "leaver", PASSWORD)
    add_user(srv, "stayer", PASSWORD)
    enrol_totp_cli(srv, "leaver")
    token = privindex_cli(srv, "token", "create", "leaver").stdout.strip()
    assert upload(srv.url, token, make_wheel(tmp_path, "leavers-lib", "1.0")).status_code == 200

    privindex_cli(srv, "user", "reset-2fa", "leaver")
    assert "user:2fa:reset" in audit_tags(srv, user="leaver")
    assert "-" in privindex_cli(srv, "user", "list").stdout.split("leaver\t")[1].split("\t")[0]

    refused = privindex_cli(srv, "user", "remove", "leaver", check=False)
    assert refused.returncode == 1 and "last owner of leavers-lib" in refused.stderr

    privindex_cli(srv, "project", "set-owner", "leavers-lib", "stayer")
    removed = privindex_cli(srv, "user", "remove", "leaver")
    assert "1 API token was revoked" in removed.stderr
    assert upload(srv.url, token, make_wheel(tmp_path, "leavers-lib", "1.1")).status_code == 403
    listing = privindex_cli(srv, "user", "list").stdout
    assert "leaver\tremoved" in listing
    assert (
        "leaver" not in privindex_cli(srv, "project", "list").stdout.split("leavers-lib")[1].splitlines()[0]
    )
    tags = audit_tags(srv, user="leaver")
    assert "user:remove" in tags and "user:create" in tags  # the trail is kept
    again = privindex_cli(srv, "user", "enable", "leaver", check=False)
    assert again.returncode == 1 and "was removed" in again.stderr
