"""A session's device in words ("Chrome on Linux") instead of its raw User-Agent.

ua-parser (the uap-core rules, kept current by their project) does the parsing: browser
strings are too irregular for a parse of our own to stay right."""

from __future__ import annotations

import functools

from flask_babel import gettext as _
from ua_parser import parse

# uap-core's families that are a variant of a browser people know by its plain name
PLAIN_NAMES = {"HeadlessChrome": "Chrome", "Chrome Mobile": "Chrome", "Mobile Safari": "Safari"}


@functools.lru_cache(maxsize=256)
def _parts(user_agent: str) -> tuple[str | None, str | None]:
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent and result.user_agent.family != "Other" else None
    system = result.os.family if result.os and result.os.family != "Other" else None
    return (PLAIN_NAMES.get(browser, browser) if browser else None), system


def describe(user_agent: str | None) -> str:
    """The browser and the system in words ("Firefox on Windows", "Safari on iOS"), either
    alone when the other is unknown ("curl"), else "unknown device"."""
    browser, system = _parts(user_agent[:1000]) if user_agent else (None, None)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system or _("unknown device")
