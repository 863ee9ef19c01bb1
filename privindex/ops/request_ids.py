"""Request ids: one per request, so a log line, a client's error report and a proxy's log
can be matched up.

An incoming `X-Request-ID` is kept when it is a sane token (a proxy or a client that already
names its requests), else a new random id is made. Every response, Simple API and Flask
alike, carries it back as `X-Request-ID`; while the request is answered it sits in a
contextvar that `RequestIdFilter` copies into each log record (`record.request_id`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

HEADER = "X-Request-ID"
ENVIRON_KEY = "privindex.request_id"
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

current: ContextVar[str | None] = ContextVar("privindex_request_id", default=None)


def choose(incoming: str | None) -> str:
    """The client's id if it is a short token of safe characters, else a new one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return os.urandom(12).hex()


def request_ids(app: Callable) -> Callable:
    """WSGI middleware: choose the id, answer with it, and let logs made meanwhile carry it.

    The contextvar is reset when app returns (waitress reuses its threads), like the
    database binding in db/connection.py."""

    def with_id(environ: dict, start_response: Callable) -> Iterable[bytes]:
        rid = choose(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_KEY] = rid

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, (HEADER, rid)], exc_info)

        token = current.set(rid)
        try:
            return app(environ, start_with_id)
        finally:
            current.reset(token)

    return with_id


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a request) to every record passing the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current.get()
        return True
