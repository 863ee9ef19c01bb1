"""The access log: one line per request, in a shape log tools know, without secrets, and
one line it stays: control characters a client sent (`%0a` in a path, a NUL in a
User-Agent) are written as escapes, so no one can forge a second line.

The Authorization header is never logged, and anything in the path or query that looks
like a secret (a `pidx_...` token, a password parameter: the vocabulary of logs.redact)
is replaced by `[redacted]`, so a token pasted into a URL does not end up in the log.

It runs on every request of the read path, so it is built to be cheap (it was 14-18 % of
the GIL time of a page request, benchmarks/RESULTS.md): each field that comes from the
client is redacted here, once, through a small cache of values found clean (clients ask
for the same paths with the same User-Agent again and again); the line is made once and
handed to the handlers as a finished, already-redacted message (`logs.PRE_REDACTED`, so
the handler's filter does not scan it again), without the caller lookup `Logger.info`
does. The lines are the same as before, written before the answer's body is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from privindex.ops.logs import PRE_REDACTED, escape_controls, redact
from privindex.ops.request_ids import ENVIRON_KEY

log = logging.getLogger("privindex.access")

# Values remembered as free of secrets and control characters (paths, agents, addresses),
# bounded in bytes: clients choose them, and any number of distinct ones may come.
_CLEAN_LONGEST = 600  # characters; a longer value is checked each time, never kept
_CLEAN_BUDGET = 4_000_000  # bytes, counting each value's text and its overhead in the dict
_ENTRY_OVERHEAD = 100
_clean_values: dict[str, str] = {}
_clean_bytes = 0


def clean(text: str) -> str:
    """text fit for a log line: control characters escaped (logs.escape_controls), secrets
    redacted; values that needed neither are remembered (a secret is never kept)."""
    global _clean_bytes
    known = _clean_values.get(text)
    if known is not None:
        return known
    result = redact(escape_controls(text))
    if result == text and len(text) <= _CLEAN_LONGEST:
        if _clean_bytes >= _CLEAN_BUDGET:
            _clean_values.clear()  # rare; the working set fills it again
            _clean_bytes = 0
        _clean_values[text] = text
        _clean_bytes += len(text) + _ENTRY_OVERHEAD
    return result


def access_log(app: Callable) -> Callable:
    """Wrap a WSGI app so each request is logged once its answer has started."""
    make_record, handle, name, info = log.makeRecord, log.handle, log.name, logging.INFO
    perf_counter = time.perf_counter

    def logged(environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter()
        status_holder: list[str] = []

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        result = app(environ, recording_start_response)
        if log.isEnabledFor(info):
            target = environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
            target = clean(target)[:500]
            status = (status_holder or ["-"])[0].split(" ", 1)[0]
            duration_ms = (perf_counter() - started) * 1000
            remote = clean(environ.get("REMOTE_ADDR", "-"))
            method = clean(environ.get("REQUEST_METHOD", ""))
            agent = clean(environ.get("HTTP_USER_AGENT", "-")[:200])
            line = f'{remote} "{method} {target}" {status} {duration_ms:.1f}ms "{agent}"'
            # the same facts as fields, for log_format = "json" (the text line ignores them)
            fields = {
                "method": method,
                "path": target,
                "status": int(status) if status.isdigit() else None,
                "duration_ms": round(duration_ms, 2),
                "remote": remote,
                "user_agent": agent,
                "request_id": environ.get(ENVIRON_KEY),
            }
            handle(make_record(name, info, "", 0, line, (), None, extra={"http": fields, PRE_REDACTED: True}))
        return result

    return logged
