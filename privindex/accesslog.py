"""The access log: one line per request, in a shape log tools know, without secrets.

The Authorization header is never logged, and anything in the path or query that looks
like a privindex token (`pidx_...`) or a password parameter is replaced by `[redacted]`,
so a token pasted into a URL does not end up in the log.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Callable, Iterable

log = logging.getLogger("privindex.access")

_SECRET_IN_URL = re.compile(r"pidx_[A-Za-z0-9_\-]+|((?:password|token|secret|code)=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


def access_log(app: Callable) -> Callable:
    """Wrap a WSGI app so each request is logged once its answer has started."""

    def logged(environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        status_holder: list[str] = []

        def recording_start_response(status, headers, exc_info=None):
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        result = app(environ, recording_start_response)
        if log.isEnabledFor(logging.INFO):
            target = environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
            log.info('%s "%s %s" %s %.1fms "%s"', environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD"),
                     redact(target)[:500], (status_holder or ["-"])[0].split(" ", 1)[0],
                     (time.perf_counter() - started) * 1000, environ.get("HTTP_USER_AGENT", "-")[:200])
        return result

    return logged
