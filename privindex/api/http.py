"""Small helpers shared by the Flask views (upload and web UI)."""

from __future__ import annotations

import re

from flask import Response, request

from privindex.ops import audit

_UNSAFE_IN_STATUS = re.compile(r"[^\x20-\x7e]")


def audit_context(via: str = "web") -> audit.Context:
    return audit.Context(ip=request.remote_addr, user_agent=request.user_agent.string or None, via=via)


def plain_response(status: int, message: str, headers: dict | None = None) -> Response:
    """A text answer whose reason phrase carries the message: twine shows only that line."""
    reason = _UNSAFE_IN_STATUS.sub("?", message.splitlines()[0] if message else "")[:300]
    return Response(message + "\n", status=f"{status} {reason}", mimetype="text/plain", headers=headers)
