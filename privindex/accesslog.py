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
from privindex.requestid import ENVIRON_KEY

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
            target = redact(target)[:500]
            status = (status_holder or ["-"])[0].split(" ", 1)[0]
            duration_ms = (time.perf_counter() - started) * 1000
            remote, method = environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD")
            agent = environ.get("HTTP_USER_AGENT", "-")[:200]
            # the same facts as fields, for log_format = "json" (the text line ignores them)
            fields = {"method": method, "path": target, "status": int(status) if status.isdigit() else None,
                      "duration_ms": round(duration_ms, 2), "remote": remote, "user_agent": agent,
                      "request_id": environ.get(ENVIRON_KEY)}
            log.info('%s "%s %s" %s %.1fms "%s"', remote, method, target, status, duration_ms, agent,
                     extra={"http": fields})
        return result

    return logged
