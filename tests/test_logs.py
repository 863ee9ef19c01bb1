"""No secret reaches a log, at any level: the redaction vocabulary, and a debug-level server."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys

import peewee
import pytest
import testdb
from conftest import Accounts, assert_no_secrets, twine
from webclient import WebClient
from wheels import make_wheel

from privindex.auth import passwords, recovery, token_format, totp
from privindex.db.connection import StatementsOnly
from privindex.ops.logs import REDACTED, RedactSecrets, TextFormatter, redact, redact_request_id

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database


def test_redact_removes_every_kind_of_secret_privindex_makes():
    secret = totp.new_secret()
    made = {
        "token": token_format.generate(),
        "argon2 hash": passwords.hash_password("correct horse battery"),
        "totp secret": secret,
        "totp secret as shown": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "recovery code": recovery.generate()[0],
        "recovery code typed in capitals": recovery.generate()[0].upper(),
    }
    for kind, value in made.items():
        for text in (value, f"x {value} y", f"('{value}', 3)", f"[{value!r}]"):
            clean = redact(text)
            assert value not in clean and REDACTED in clean, (kind, clean)
    assert redact("/login?user=a&password=hunter2&next=/") == f"/login?user=a&password={REDACTED}&next=/"
    assert redact("/simple/?Token=abc") == f"/simple/?Token={REDACTED}"
    # a set-password link's key (valid for days: whoever reads the log could set the password)
    assert redact('"GET /setup-password/x3Q_-9aZk2 HTTP/1.1"') == f'"GET /setup-password/{REDACTED} HTTP/1.1"'
    assert redact("POST /reset-password/x3Q_-9aZk2") == f"POST /reset-password/{REDACTED}"
    assert redact("GET /verify-email/x3Q_-9aZk2?a=1") == f"GET /verify-email/{REDACTED}?a=1"
    # credentials in a URL (an upstream_url with user:password@), up to the last @ of the host part
    assert (
        redact("cannot reach https://me:pa@ss@mirror.example:8443/simple/ (x@y)")
        == f"cannot reach https://{REDACTED}@mirror.example:8443/simple/ (x@y)"
    )


def test_redact_leaves_ordinary_text_alone():
    for text in (
        '127.0.0.1 "GET /simple/alpha/ HTTP/1.1" 200 0.4ms "pip/24.0"',
        "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",  # 0 and 1 are not base32
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "request 123e4567-e89b-12d3-a456-426614174000",
        "Invalid API token: a privindex token starts with 'pidx_'",
        "argon2 backend loaded; alpha-1.0-py3-none-any.whl published",
        'SELECT "t1"."id" FROM "user" AS "t1" WHERE ("t1"."username" = ?)',
        "http://127.0.0.1:8080/packages/.upstream/a/a-1.0.tar.gz from admin@example.com",
    ):
        assert redact(text) == text


def capture(logger: logging.Logger, *filters: logging.Filter) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    for f in filters:
        handler.addFilter(f)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return out


def test_the_handler_filter_redacts_messages_arguments_and_tracebacks():
    hashed = passwords.hash_password("correct horse battery")
    token = token_format.generate()
    out = capture(logging.getLogger("test.logs.redact"), RedactSecrets())
    log = logging.getLogger("test.logs.redact")
    log.debug("new hash %s for %s", hashed, "alice")
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        log.exception("failed")
    text = out.getvalue()
    assert hashed not in text and token not in text
    assert f"new hash {REDACTED} for alice" in text
    assert f"ValueError: bad token {REDACTED}" in text


def test_a_text_line_stays_one_line_whatever_a_message_carries_but_a_traceback_keeps_its_lines():
    log = logging.getLogger("test.logs.lines")
    out = capture(log)
    log.handlers[-1].setFormatter(TextFormatter())
    log.warning("no project %s", "x\n2026-01-01 00:00:00,000 ERROR forged: \x00\x1b[2J\x85\u2028")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("no project x\\n2026-01-01 00:00:00,000 ERROR forged: \\x00\\x1b[2J\\x85\\u2028")
    assert lines[1].endswith("failed") and lines[2] == "Traceback (most recent call last):"


def test_sql_statements_are_logged_without_their_parameters():
    out = capture(logging.getLogger("peewee"), StatementsOnly())
    try:
        db = peewee.SqliteDatabase(":memory:")
        db.execute_sql("CREATE TABLE t (secret TEXT)")
        db.execute_sql("INSERT INTO t VALUES (?)", ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",))
    finally:
        logging.getLogger("peewee").handlers.pop()
    assert "INSERT INTO t VALUES (?)" in out.getvalue()
    assert "JBSWY3DP" not in out.getvalue()


def test_debug_level_keeps_sql_quiet_unless_log_sql_asks():
    script = (
        "import logging, privindex.ops.logs as l; l.configure('debug', {}); "
        "print(logging.getLogger('peewee').getEffectiveLevel())"
    )
    levels = [
        subprocess.run(
            [sys.executable, "-c", script.format(ask)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for ask in (False, True)
    ]
    assert levels == [str(logging.INFO), str(logging.DEBUG)]


@pytest.mark.slow  # a debug server of its own, twine
def test_a_debug_server_logs_no_secret(fresh_server, tmp_path):
    """Sign-in, password change, TOTP set-up, recovery codes, a token and an upload, with
    log_level=debug and SQL statements on: the whole server log holds none of the secrets."""
    server = fresh_server(populated=False, env={"PRIVINDEX_LOG_LEVEL": "debug", "PRIVINDEX_LOG_SQL": "true"})
    acc = Accounts(server.store, server.data_dir, server.env)
    password = acc.user("logger")
    client = WebClient(server.url)
    client.login("logger", password)
    app, codes, _at = client.enrol_totp()
    new_password = "a new long password for logger"
    resp = client.post("/account", {"current": password, "password": new_password, "password2": new_password})
    assert "Password changed." in " ".join(client.flashes(resp))
    resp = client.post("/account/recovery-codes", {})
    new_codes = re.findall(r"<li><code>([0-9a-f-]{19})</code></li>", resp.text)
    assert len(new_codes) == recovery.COUNT
    page = client.post("/tokens", {"description": "ci", "scope": "user"}).text
    token = page.split('id="new-token" class="mono-break" value="')[1].split('"')[0]
    assert twine(server.url, token, make_wheel(tmp_path / "dist", "logged", "1.0")).returncode == 0
    with testdb.connect(server.data_dir) as db:
        hashed, secret = db.execute(
            "SELECT password_hash, totp_secret FROM user WHERE username = 'logger'"
        ).fetchone()
    assert hashed.startswith("$argon2id$") and secret == app.secret
    server.stop()

    log = server.log()
    param = "%s" if testdb.ON_POSTGRES else "?"
    assert (
        " DEBUG " in log and f'UPDATE "user" SET "password_hash" = {param}' in log
    )  # the worst case was logged
    assert_no_secrets([password, new_password, hashed, secret, *codes, *new_codes, token], server.log_path)


@pytest.mark.parametrize(
    "rid",
    [
        # random ones named, so xdist's workers collect the same ids
        pytest.param(os.urandom(12).hex(), id="random-24-hex"),
        pytest.param(os.urandom(16).hex(), id="random-32-hex"),
        "2" * 32,
        "2345672345672345" * 2,
        "pidx_" + "a" * 40,
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "abc-1",
        "x" * 128,
    ],
)
def test_request_ids_skip_the_scan_only_when_no_secret_fits(rid):
    """Hex ids (ours, nginx's $request_id) are logged unscanned; the shortcut must never
    let through what redact would hide (32 digits 2-7 are a TOTP secret's shape)."""
    assert redact_request_id(rid) == redact(rid)
