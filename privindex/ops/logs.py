"""What privindex's logs may say: no secret, at any level.

One vocabulary of secret shapes (`redact`) serves the access log and a filter on every
handler privindex installs, so a token pasted into a URL, a password hash or a TOTP secret
that reaches a log message in some unforeseen way is replaced by `[redacted]`. The SQL log
is the known way: peewee logs each statement with its bound parameters (new password
hashes, TOTP secrets), so db/connection.py cuts its records down to the statement text and
the `peewee` logger stays at INFO unless `log_sql` asks for statements.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from privindex.auth import recovery, token_format, totp
from privindex.db.connection import drop_sql_parameters
from privindex.ops.request_ids import RequestIdFilter

REDACTED = "[redacted]"
# A record attribute: the message was made of values already passed through redact (the
# access log does that per field, with a cache), so the handler need not scan it again.
PRE_REDACTED = "privindex_pre_redacted"

# Each alternative is one kind of secret privindex makes or receives; the group `keep` is a
# label kept in front of the redaction (`password=[redacted]`). Base32 and the token prefix
# are case-sensitive, so ordinary words and upper-case names stay readable.
_SECRETS = re.compile(
    "|".join(
        (
            # API tokens, whole or cut short (a prefix is enough to look for one elsewhere)
            rf"(?i:{re.escape(token_format.PREFIX)})[A-Za-z0-9_\-]+",
            # JWTs (CI identity tokens): base64url JSON header and claims, then a signature
            r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
            # argon2 password hashes: $argon2id$v=19$m=...,t=...,p=...$salt$hash
            r"\$argon2(?:id|i|d)\$[A-Za-z0-9+/=,.$]*",
            # TOTP secrets: base32, as made (one run) and as shown for typing (groups of four)
            rf"(?<![A-Za-z0-9])(?:[A-Z2-7]{{{totp.SECRET_LENGTH}}}"
            rf"|(?:[A-Z2-7]{{4}} ){{{totp.SECRET_LENGTH // 4 - 1}}}[A-Z2-7]{{4}})(?![A-Za-z0-9])",
            # recovery codes as shown
            rf"(?<![0-9A-Za-z-]){recovery.SHOWN_PATTERN}(?![0-9A-Za-z-])",
            # credentials in query strings and forms
            r"(?i:(?P<keep>(?:password|passwd|token|secret|code)=)[^&\s\"']*)",
            # the key of a mailed or handed-out link: set-password (an admin's invitation,
            # valid for days), reset-password and verify-email
            r"(?P<path>/(?:setup-password|reset-password|verify-email)/)[A-Za-z0-9_-]+",
            # credentials in URLs (user:password@ before the host), up to the last @ before the path
            r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@",
        )
    )
)


def redact(text: str) -> str:
    """text with every secret-shaped part replaced by [redacted]."""
    return _SECRETS.sub(_replacement, text)


def _replacement(m: re.Match) -> str:
    if m.group("scheme"):
        return f"{m.group('scheme')}{REDACTED}@"
    return (m.group("keep") or m.group("path") or "") + REDACTED


def redact_url(url: str) -> str:
    """A URL as it may be printed, logged or shown: without the user and password in it
    (`https://[redacted]@mirror.example/simple/`), nor any other secret shape. The URL
    itself, credentials included, is still what privindex connects with."""
    return redact(url)


# Control characters written as visible escapes, as the JSON format does: a client's "%0a"
# in a path must not start a second, forged line, nor "%00" write a NUL. C0, DEL, C1 and
# the Unicode line separators (str.splitlines and some viewers break lines there too).
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def escape_controls(text: str) -> str:
    """text on one line: control characters as \\n, \\r, \\t or \\xNN (a search first:
    almost every value has none)."""
    return text.translate(_ESCAPES) if _CONTROLS.search(text) else text


# Lower-case hex, as requestid.choose and nginx's $request_id make ids, with a character no
# secret shape could hold there (0, 1, 8, 9 or a-f: base32 TOTP secrets are A-Z2-7; tokens,
# JWTs, hashes, recovery codes and key=value need other characters): safe as it is.
_HEX_ID = re.compile(r"[0-9a-f]*[018-9a-f][0-9a-f]*")


def redact_request_id(rid: str) -> str:
    """A request id for a log line: a hex id is safe as it is (no regex scan per line);
    anything else a client chose is redacted."""
    return rid if _HEX_ID.fullmatch(rid) else redact(rid)


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message (or traceback) holds a secret; never drops one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, PRE_REDACTED, False):
            message = record.getMessage()
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """The default: one readable line; `[req ID]` at the end of lines made during a request."""

    default_msec_format = "%s,%03d"  # logging's own, typed as always set

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """logging's own format, with the date and time text made once per second (strftime
        per line was a visible share of the access log's cost)."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return self.default_msec_format % (cached[1], record.msecs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The message on one line whatever a client put in it (an access line's fields are
        escaped already); a traceback, added after this, keeps its lines."""
        if not getattr(record, PRE_REDACTED, False):
            record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} [req {redact_request_id(rid)}]" if rid else line  # a client's may be anything


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log collectors: time, level, logger, message, the
    request id, the access log's fields (`record.http`), and a traceback as `exc`. Every
    string value goes through redact, whatever filters ran before."""

    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        doc: dict = {
            "time": f"{cached[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        fields = getattr(record, "http", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        if getattr(record, PRE_REDACTED, False) and "exc" not in doc and "stack" not in doc:
            # an access line: its message and fields are redacted already; not the request id
            # (the id in record.http, too, is the client's)
            if isinstance(doc.get("request_id"), str):
                doc["request_id"] = redact_request_id(doc["request_id"])
            return json.dumps(doc, ensure_ascii=False, default=str)
        return json.dumps(_redact_values(doc), ensure_ascii=False, default=str)


def _redact_values(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_values(v) for v in value]
    return value


FORMATS = ("text", "json")


def configure(level: str, log_sql: bool = False, fmt: str = "text") -> None:
    """One stderr handler on the root logger, redacting, with request ids; text or JSON
    lines (`log_format`); SQL per `log_sql`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    drop_sql_parameters()
    # statements only when asked for, whatever log_level says: they are noisy, not secret
    logging.getLogger("peewee").setLevel(logging.DEBUG if log_sql else logging.INFO)
