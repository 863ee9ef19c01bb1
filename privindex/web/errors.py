"""Error pages in the site's frame: every 4xx/5xx a browser meets on the web UI is a
translated page that says what happened and what to do next, never the framework's
English one. The machine faces (upload, Trusted Publishing, health, metrics; the Simple
and JSON APIs are plain WSGI in front of Flask) keep the short answers their clients read.

A view that aborts with its own (already translated) description keeps it; otherwise the
page says the code's sentence (`title_and_sentence`).
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from privindex.ops import request_ids
from privindex.web.blueprint import bp

# Paths whose clients are programs: they keep werkzeug's (or their view's) own answer.
MACHINE_PREFIXES = ("/legacy", "/_/", "/.well-known/", "/simple", "/pypi", "/health", "/readyz", "/metrics")

CODES = (400, 403, 404, 405, 413, 429, 500)


def title_and_sentence(code: int) -> tuple[str, str]:
    """What the page of an error code says (here, in the request's language)."""
    return {
        400: (
            _("This request cannot be used"),
            _("Something in it is missing or not valid. Go back, check what you entered and try again."),
        ),
        403: (
            _("Not allowed"),
            _("Your account may not see or do this. If you think it should, ask an administrator."),
        ),
        404: (
            _("Page not found"),
            _("Nothing is at this address. Check it, or find what you look for in the project list."),
        ),
        405: (
            _("Not possible here"),
            _("This address does not take this kind of request. Go back and use the page's buttons."),
        ),
        413: (_("Too large"), _("What you sent is larger than this server accepts.")),
        429: (_("Too many attempts"), _("Wait a minute, then try again.")),
        500: (
            _("Something went wrong"),
            _(
                "The server could not finish this request. Try again; if it keeps happening, "
                "tell your administrator the request ID below."
            ),
        ),
    }[code]


def wants_page() -> bool:
    """A person's browser on the web UI, not a program on a machine path."""
    if request.blueprint is not None:
        return request.blueprint == "web"
    return not request.path.startswith(MACHINE_PREFIXES)


@bp.app_errorhandler(HTTPException)
def error_page(exc: HTTPException):
    if not wants_page() or exc.code is None or exc.code < 400:
        return exc
    code = exc.code if exc.code in CODES else (500 if exc.code >= 500 else 400)
    title, sentence = title_and_sentence(code)
    own = exc.description if exc.description != type(exc).description else None
    response = render_template(
        "error.html",
        code=exc.code,
        title=title,
        message=own or sentence,
        request_id=request_ids.current.get() if exc.code >= 500 else None,
    )
    headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    return response, exc.code, headers
