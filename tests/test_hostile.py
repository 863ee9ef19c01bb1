"""Hostile input: every malformed or malicious request gets a 4xx with a clear message,
never a 5xx, and changes nothing in the store or the database (beyond the audit event
that records a refused upload and the token's last-use time)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
import requests
import testdb
from conftest import privindex_cli, start_server
from webclient import uploader
from wheels import make_wheel, upload

GOOD = "victim-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    server = start_server(base / "store", base / "data", env={"PRIVINDEX_MAX_UPLOAD_MB": "2"})
    server.token = uploader(server, "mallory")
    server.wheel = make_wheel(base, "victim", "1.0")
    assert upload(server.url, server.token, server.wheel).status_code == 200
    yield server
    server.stop()


def store_snapshot(store: Path) -> dict[str, str]:
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in store.rglob("*")
        if p.is_file()
    }


def db_snapshot(data_dir: Path) -> dict[str, list]:
    """Every table but the audit trail and the failed sign-ins counted for the rate limits
    (both grow by design), without the token's last-use time."""
    rows = testdb.rows(data_dir, skip_columns={"last_used_at"})
    return {
        table: sorted(found, key=repr)
        for table, found in rows.items()
        if table not in ("audit_event", "rate_limit_hit")
    }


@pytest.fixture
def unchanged(target):
    """Assert that the test changes neither the store nor the database."""
    before = store_snapshot(target.store), db_snapshot(target.data_dir)
    yield
    assert store_snapshot(target.store) == before[0]
    after = db_snapshot(target.data_dir)
    for table in before[1]:
        assert after[table] == before[1][table], table


# -- the upload endpoint --------------------------------------------------------------------------


def form(wheel_bytes: bytes, **overrides) -> dict:
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "victim",
        "version": "2.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "sha256_digest": hashlib.sha256(wheel_bytes).hexdigest(),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def wheel_bytes(
    name="victim", version="2.0", metadata: bytes | None = None, extra: dict | None = None
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = f"{name}-{version}.dist-info"
        z.writestr(
            f"{info}/METADATA",
            metadata
            if metadata is not None
            else f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        )
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        for member, data in (extra or {}).items():
            z.writestr(member, data)
    return buf.getvalue()


def post_upload(target, fields, files, auth="token", headers=None):
    token_auth = ("__token__", target.token) if auth == "token" else auth
    return requests.post(
        f"{target.url}/legacy/", data=fields, files=files, auth=token_auth, headers=headers, timeout=60
    )


def refused(resp, status: int, words: str):
    assert resp.status_code == status, (resp.status_code, resp.reason, resp.text)
    assert words.lower() in (resp.reason + resp.text).lower(), (resp.reason, resp.text)


W = wheel_bytes()
FILENAME_CASES = [
    ("../victim-2.0-py3-none-any.whl", "Invalid filename"),
    ("..%2Fvictim-2.0-py3-none-any.whl", "Invalid"),
    ("..\\victim-2.0-py3-none-any.whl", "Invalid filename"),
    ("/etc/victim-2.0-py3-none-any.whl", "Invalid filename"),
    ("sub/victim-2.0-py3-none-any.whl", "Invalid filename"),
    ("victim-2.0-py3-none-any.whl\x00.txt", "Invalid filename"),
    ("\u0432ictim-2.0-py3-none-any.whl", "Invalid filename"),  # Cyrillic look-alike
    (".victim-2.0-py3-none-any.whl", "Invalid filename"),
    ("victim-2.0.exe", "Invalid distribution filename"),
    ("victim-2.0-py3-none-any.whl.exe", "Invalid distribution filename"),
    ("victim-2.0-py3-none-any.tar.gz.whl", "platform tag"),
    ("other-2.0-py3-none-any.whl", "Start filename for 'victim'"),
    ("victim-3.0-py3-none-any.whl", "Version in filename should be"),
    ("victim-2.0.tar.gz", "Invalid file extension for bdist_wheel"),
    ("v" * 300 + "-2.0-py3-none-any.whl", "Invalid filename"),
]


@pytest.mark.parametrize("filename, words", FILENAME_CASES)
def test_hostile_filenames(target, unchanged, filename, words):
    refused(post_upload(target, form(W), {"content": (filename, W)}), 400, words)


FORM_CASES = [
    ({"version": "2.0-banana"}, "invalid value for Version"),
    ({"name": "victim/../../x"}, "invalid value for Name"),
    ({"name": "n" * 5000}, "Start filename for"),
    ({":action": None}, "Invalid value for :action"),
    ({":action": "submit"}, "Invalid value for :action"),
    ({"protocol_version": "2"}, "Unknown protocol_version"),
    ({"filetype": "bdist_egg"}, "invalid value for filetype"),
    ({"sha256_digest": None}, "Include at least one message digest"),
    ({"sha256_digest": "0" * 64}, "sha256 digest supplied does not match"),
    ({"blake2_256_digest": "f" * 64}, "blake2_256 digest supplied does not match"),
    ({"md5_digest": "nothex"}, "md5 digest supplied does not match"),
]


@pytest.mark.parametrize("overrides, words", FORM_CASES)
def test_hostile_form_fields(target, unchanged, overrides, words):
    refused(
        post_upload(target, form(W, **overrides), {"content": ("victim-2.0-py3-none-any.whl", W)}), 400, words
    )


def test_duplicated_form_field(target, unchanged):
    fields = list(form(W).items()) + [("name", "other")]
    refused(
        post_upload(target, fields, {"content": ("victim-2.0-py3-none-any.whl", W)}), 400, "more than once"
    )


def test_missing_file(target, unchanged):
    refused(post_upload(target, form(W), None), 400, "exactly one file")


def test_two_files(target, unchanged):
    files = [("content", ("victim-2.0-py3-none-any.whl", W)), ("content", ("victim-2.0-py3-none-any.whl", W))]
    refused(post_upload(target, form(W), files), 400, "exactly one file")


def test_empty_file(target, unchanged):
    refused(post_upload(target, form(b""), {"content": ("victim-2.0-py3-none-any.whl", b"")}), 400, "empty")


CONTENT_CASES = [
    (b"this is not a zip file", "not a readable archive"),
    # its id is its name: the bytes hold the time they were made, and xdist's workers must
    # collect the same ids
    pytest.param(wheel_bytes(extra={}, metadata=b"")[:50], "not a readable archive", id="truncated zip"),
    (wheel_bytes(name="other"), "metadata names project 'other'"),
    (wheel_bytes(version="9.9"), "metadata gives version '9.9'"),
    (
        wheel_bytes(metadata=b"Metadata-Version: 2.1\nName: victim\nVersion: 2.0\nSummary: \xff\xfe\xfa\n"),
        "not valid UTF-8",
    ),
]


@pytest.mark.parametrize("content, words", CONTENT_CASES)
def test_hostile_file_contents(target, unchanged, content, words):
    resp = post_upload(target, form(content), {"content": ("victim-2.0-py3-none-any.whl", content)})
    assert resp.status_code == 400, (resp.reason, resp.text)
    assert words.lower() in resp.text.lower()


def test_wheel_without_metadata(target, unchanged):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("victim/__init__.py", "")
    data = buf.getvalue()
    refused(
        post_upload(target, form(data), {"content": ("victim-2.0-py3-none-any.whl", data)}),
        400,
        "no METADATA",
    )


def test_metadata_compression_bomb(target, unchanged):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        # 32 MiB: past 64 MiB the archive's compression ratio alone refuses it (test_archive_bombs.py)
        z.writestr("victim-2.0.dist-info/METADATA", b"Name: victim\n" + b"\n" * (32 * 1024 * 1024))
    data = buf.getvalue()
    assert len(data) < 1024 * 1024  # 32 MiB of metadata in well under 1 MiB
    refused(
        post_upload(target, form(data), {"content": ("victim-2.0-py3-none-any.whl", data)}),
        400,
        "larger than 4 MiB",
    )


def test_oversized_upload_is_413(target, unchanged):
    data = wheel_bytes(extra={"victim/blob.bin": os.urandom(3 * 1024 * 1024)})
    resp = post_upload(target, form(data), {"content": ("victim-2.0-py3-none-any.whl", data)})
    refused(resp, 413, "File too large")


def test_overwrite_is_refused(target, unchanged):
    data = wheel_bytes(version="1.0", extra={"victim/x.py": b"evil = True\n"})
    resp = post_upload(target, form(data, version="1.0"), {"content": (GOOD, data)})
    refused(resp, 400, "File already exists")


def _raw_post(target, body: bytes, content_type: str, extra_headers: dict | None = None):
    conn = http.client.HTTPConnection(target.url.split("//")[1], timeout=30)
    token = base64.b64encode(f"__token__:{target.token}".encode()).decode()
    headers = {
        "Content-Type": content_type,
        "Authorization": f"Basic {token}",
        "Content-Length": str(len(body)),
        **(extra_headers or {}),
    }
    conn.request("POST", "/legacy/", body=body, headers=headers)
    resp = conn.getresponse()
    result = resp.status, resp.reason, resp.read().decode(errors="replace")
    conn.close()
    return result


def test_truncated_multipart_body(target, unchanged):
    req = requests.Request(
        "POST", f"{target.url}/legacy/", data=form(W), files={"content": ("victim-2.0-py3-none-any.whl", W)}
    ).prepare()
    status, reason, text = _raw_post(target, req.body[: len(req.body) // 2], req.headers["Content-Type"])
    assert 400 <= status < 500, (status, reason, text)


def test_multipart_without_boundary(target, unchanged):
    status, reason, text = _raw_post(target, b"--x\r\nnonsense\r\n--x--\r\n", "multipart/form-data")
    assert 400 <= status < 500, (status, reason, text)


def test_not_multipart_at_all(target, unchanged):
    status, reason, text = _raw_post(target, b'{"name": "victim"}', "application/json")
    assert status == 400 and ":action" in reason


# -- credentials --------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


AUTH_CASES = [
    ("Basic !!!not-base64!!!", 401, "not valid base64"),
    (f"Basic {b64('no-colon-here')}", 401, "no ':'"),
    ("Basic ", 401, "Malformed Authorization"),
    ("Bearer ", 401, "Malformed Authorization"),
    ("Digest username=x", 401, "schemes are supported"),
    (f"pidx_{'C' * 43}", 401, "schemes are supported"),  # a bare token: never echoed
    (f"Basic {b64('__token__:pypi-AgEIcHlwaS5vcmc')}", 403, "starts with 'pidx_'"),
    (f"Basic {b64('__token__:pidx_short')}", 403, "it is too short (10 characters"),
    (f"Basic {b64('__token__:pidx_' + 'A' * 43)}", 403, "Invalid or non-existent API token"),
    (f"Bearer pidx_{'B' * 43}", 403, "Invalid or non-existent API token"),
    (
        f"Basic {b64('mallory:correct horse battery')}",
        403,
        "Username/password authentication is not accepted",
    ),
    (f"Basic {b64('__token__:pidx_' + 'A' * 43 + ' ' * 3)}", 403, "it contains a space or line break"),
    (f"Basic {b64('__token__:pidx_' + 'A' * 42 + '!')}", 403, "characters other than A-Z a-z 0-9 _ -"),
    (f"Basic {b64('__token__:pidx_' + 'A' * 200)}", 403, "it is too long (205 characters"),
]


@pytest.mark.parametrize("header, status, words", AUTH_CASES)
def test_malformed_credentials(target, unchanged, header, status, words):
    resp = post_upload(
        target,
        form(W),
        {"content": ("victim-2.0-py3-none-any.whl", W)},
        auth=None,
        headers={"Authorization": header},
    )
    refused(resp, status, words)
    if status == 401:
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="privindex"'
    sent = (
        base64.b64decode(header.split()[-1]).decode(errors="replace")
        if header.startswith("Basic ") and len(header) > 6 and "!" not in header
        else header
    )
    for secret in re.findall(r"pidx_[\w-]{6,}", sent):  # a token sent is never echoed back
        assert secret not in resp.text + resp.reason


# -- the simple API and downloads ----------------------------------------------------------------


def raw_get(target, path: str, headers: dict | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(target.url.split("//")[1], timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    resp = conn.getresponse()
    result = resp.status, resp.read().decode(errors="replace")
    conn.close()
    return result


@pytest.mark.parametrize(
    "path, headers, expected",
    [
        ("/simple/%00/", None, 404),
        ("/simple/../../etc/passwd", None, 404),
        ("/simple/victim/%2e%2e/", None, 404),
        ("/simple/" + "x" * 5000 + "/", None, 404),
        ("/packages/victim/..%2F..%2Fdata%2Fprivindex.sqlite3", None, 404),
        ("/packages/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", None, 404),
        # an invalid ranges-specifier: RFC 9110 14.2 lets a server ignore it (200) or reject
        # it (416); werkzeug rejects it, which is still a clear 4xx
        (f"/packages/victim/{GOOD}", {"Range": "bytes=abc"}, 416),
        (f"/packages/victim/{GOOD}", {"Range": "bytes=50-10"}, 416),
        (f"/packages/victim/{GOOD}", {"Range": "bytes=999999999-"}, 416),
        (f"/packages/victim/{GOOD}", {"If-None-Match": "\x7f" * 50}, 400),
        (f"/packages/victim/{GOOD}", {"If-Modified-Since": "yesterday-ish"}, 200),
        ("/simple/victim/", {"Accept": "a" * 10000}, 431),  # longer than any real client sends
        ("/simple/victim/", {"Accept": "text/html;q=banana, application/vnd.pypi.simple.v1+json;q=2"}, 200),
    ],
)
def test_hostile_reads(target, unchanged, path, headers, expected):
    status, _text = raw_get(target, path, headers)
    assert status == expected


def test_oversized_headers_are_refused(target, unchanged):
    status, _text = raw_get(target, "/simple/", {"X-Junk": "y" * (300 * 1024)})
    assert 400 <= status < 500


# -- web forms ------------------------------------------------------------------------------------


def test_web_forms(target, unchanged):
    from webclient import WebClient

    client = WebClient(target.url)
    assert client.post("/login", {"username": "x" * 10000, "password": "y"}).status_code == 401
    assert (
        client.post("/login", {"username": "mallory\x00", "password": "\x00"}).status_code == 400
    )  # a NUL is refused before any lookup
    assert (
        requests.post(f"{target.url}/login", data={"username": "a"}, timeout=10).status_code == 400
    )  # no CSRF
    assert requests.get(f"{target.url}/setup-password/not-a-real-key", timeout=10).status_code == 404
    resp = client.session.post(
        f"{target.url}/login/2fa/webauthn",
        data=b"\xff\xfe not json",
        headers={"X-CSRFToken": "bogus"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert requests.get(f"{target.url}/projects/{'x' * 3000}", timeout=10).status_code == 404


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, stdin, code, words",
    [
        (("user", "add", "../evil", "--password-stdin"), "long enough password\n", 1, "a username has"),
        (("user", "add", "x" * 5000, "--password-stdin"), "long enough password\n", 1, "a username has"),
        (("user", "add", "eve", "--password-stdin"), "short\n", 1, "at least 8 characters"),
        (("token", "create", "mallory", "--project", "../etc"), None, 1, "not an owner or maintainer"),
        (("token", "create", "mallory", "--expires", "0"), None, 2, "0"),
        (("token", "revoke", "abc"), None, 2, "is not a valid integer"),
        (("token", "revoke", "999999"), None, 1, "there is no token 999999"),
        (("audit", "--since", "last tuesday"), None, 2, "last tuesday"),
        (("project", "set-owner", "no-such-project", "mallory"), None, 1, "there is no project"),
    ],
)
def test_hostile_cli(target, unchanged, args, stdin, code, words):
    proc = privindex_cli(target, *args, stdin=stdin, check=False)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_5xx_in_the_server_log(target):
    """Runs last in this module: nothing above made the server fail."""
    import re

    statuses = re.findall(r'privindex\.access: \S+ "[^"]*" (\d{3}) ', target.log())
    assert len(statuses) > 50
    assert [s for s in statuses if s.startswith("5")] == []
    assert "Traceback" not in target.log()
