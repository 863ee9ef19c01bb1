"""privindex/web/: what people see. The blueprint (blueprint.py: sessions, CSRF, policy,
headers, `init_web`) and one module of views per page family, each adding its routes to it."""

from __future__ import annotations

from privindex.web import (  # noqa: F401  (their routes)
    account,
    admin,
    emails,
    errors,
    passkeys,
    password_reset,
    projects,
    publishers,
    retention,
    signin,
    sso,
    teams,
    upstream,
    webhooks,
)
from privindex.web.blueprint import init_web

__all__ = ["init_web"]
