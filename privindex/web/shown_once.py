"""Post/redirect/get for what is shown only once (a new API token, recovery codes, a
set-password link): the POST that makes it keeps it in a single-use pending row (named by
a key in this browser's session, gone after a few minutes) and redirects; the GET that
shows it takes the row. A reload finds nothing and makes nothing, and the secret is not
in the browser's history or in the signed cookie. The row holds only ciphertext (Fernet),
its key is in this browser's session alone: the database never holds the secret."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken
from flask import flash, redirect, session, url_for
from werkzeug.wrappers import Response

from privindex.accounts import second_factors
from privindex.web.blueprint import me

SECONDS = 5 * 60


def keep(kind: str, data: dict, page: str) -> Response:
    """Hold data for the next GET of this kind, and redirect to that page (an endpoint)."""
    _drop(session.get(_name(kind)))
    secret = Fernet.generate_key()
    sealed = Fernet(secret).encrypt(json.dumps(data).encode()).decode()
    row = second_factors.create_pending(me(), _name(kind), data={"sealed": sealed}, seconds=SECONDS)
    session[_name(kind)] = {"row": row, "key": secret.decode()}
    return redirect(url_for(page))


def take(kind: str) -> dict | None:
    """What keep() held, once; None on a reload, after expiry or for another user."""
    held = session.pop(_name(kind), None)
    if not isinstance(held, dict):
        return None
    pending = second_factors.take_pending(held.get("row"), _name(kind))
    if pending is None or pending.user_id != me().id:
        return None
    try:
        return json.loads(Fernet(held["key"]).decrypt(json.loads(pending.data)["sealed"]))
    except (InvalidToken, KeyError, ValueError):
        return None


def _drop(held: object) -> None:
    if isinstance(held, dict):
        second_factors.drop_pending(held.get("row"))


def gone(message: str, back: str) -> Response:
    """The answer to a reload: nothing to show again, said on the page it came from."""
    flash(message, "info")
    return redirect(url_for(back))


def _name(kind: str) -> str:
    return f"shown-once:{kind}"
