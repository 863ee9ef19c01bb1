"""The access log: one line per request, in a shape log tools know, without secrets.

The Authorization header is never logged, and anything in the path or query that looks
like a secret (a `pidx_...` token, a password parameter: the vocabulary of logs.redact)
is replaced by `[redacted]`, so a token pasted into a URL does not end up in the log.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

from privindex.logs import redact

log = logging.getLogger("privindex.access")


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
