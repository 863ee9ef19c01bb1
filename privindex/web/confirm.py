"""Dangerous actions confirm by name: the first POST of such a form (without `confirmed=1`)
answers with a page naming the object and the consequence, replaying the form's fields as
hidden inputs, with one danger button that sends them again confirmed and a way back.
Nothing is changed until that second POST, which passes the view's CSRF check as any other."""

from __future__ import annotations

from collections.abc import Collection

from flask import render_template, request
from flask.typing import ResponseReturnValue

# Form fields never written back into a page (the user types them again).
SECRET_FIELDS = ("password", "password2", "current", "code")
# Fields the confirmation page never replays: the CSRF token is the page's own, fresh one,
# and a form resumed after the password re-check arrives with the re-check's own fields.
NOT_REPLAYED = {"csrf_token", "confirmed", "next", "resume", *SECRET_FIELDS}


def form_fields(leave_out: Collection[str] = ("csrf_token",)) -> list[tuple[str, str]]:
    """This POST's form fields in order (repeated names kept), for hidden inputs."""
    pairs = request.form.lists()
    return [(name, value) for name, values in pairs if name not in leave_out for value in values]


def ask(button: str, consequence: str, back: str) -> ResponseReturnValue | None:
    """None once the user has confirmed; else the confirmation page. `button` names the
    action and its object ("Revoke token ci-upload"), `back` is where Cancel goes."""
    if request.form.get("confirmed") == "1":
        return None
    return render_template(
        "confirm.html",
        button=button,
        consequence=consequence,
        action=request.path,
        fields=form_fields(NOT_REPLAYED),
        back=back,
    )
