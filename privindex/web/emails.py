"""Email addresses and notices on the account page (`_emails.html`), and the verification
link's page. Shown only while the server sends mail: without it an address could not be
proven, and nothing would be sent to it (admins still set one: `privindex user email`)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from privindex.accounts import emails, users
from privindex.api.http import audit_context
from privindex.auth.ratelimit import Limited
from privindex.db.models import User
from privindex.notify import subscriptions
from privindex.notify.notices import Notices
from privindex.web.blueprint import bp, humanize_wait, limits, me, recent_auth, settings


def notices() -> Notices | None:
    return current_app.extensions.get("privindex_notices")


def _ctx():
    return audit_context().with_actor(me())


@bp.app_context_processor
def email_section() -> dict:
    """What `_emails.html` shows, computed only when a page includes it."""
    return {
        "mail_on": notices() is not None,
        "my_email_addresses": lambda: emails.addresses(me()),
        "my_project_notices": lambda: subscriptions.choices(me()),
    }


def send_verification(user: User, address_id: int) -> None:
    sender = notices()
    if sender is None:
        abort(404)
    row = next((a for a in emails.addresses(user) if a.id == address_id), None)
    # every mail counts, per account and per address mailed to (an unknown id: on the account)
    with limits()["verify"].attempt(user.username, row.address if row else ""):
        key = emails.verification_key(user, address_id)
    assert row is not None  # verification_key refused an address that is not the user's
    sender.send_link(user, row.address, "verify", settings().base_url + url_for("web.email_verify", key=key))
    flash(_("We sent a link to %(address)s: follow it to verify the address.", address=row.address), "info")


def _too_many(exc: Limited):
    message = _("Too many requests. Try again in %(wait)s.", wait=humanize_wait(exc.retry_after))
    return render_template("message.html", title=_("Too many attempts"), message=message), 429


def _back():
    """To the account page, or to the security page while require_2fa keeps the user there."""
    enrolling = settings().require_2fa and not users.has_second_factor(me())
    return redirect(url_for("web.security" if enrolling else "web.account") + "#emails")


@bp.post("/account/emails")
@login_required
@recent_auth
def email_add():
    if notices() is None:
        abort(404)
    try:
        row = emails.add_address(me(), request.form.get("address", "")[:320], _ctx())
        send_verification(me(), row.id)
    except users.AccountError as exc:
        flash(str(exc), "error")
    except Limited as exc:
        return _too_many(exc)
    return _back()


@bp.post("/account/emails/<int:address_id>/send")
@login_required
@recent_auth
def email_send(address_id: int):
    try:
        send_verification(me(), address_id)
    except users.AccountError as exc:
        flash(str(exc), "error")
    except Limited as exc:
        return _too_many(exc)
    return _back()


@bp.post("/account/emails/<int:address_id>/primary")
@login_required
@recent_auth
def email_primary(address_id: int):
    try:
        emails.make_primary(me(), address_id, _ctx())
    except users.AccountError as exc:
        flash(str(exc), "error")
    return _back()


@bp.post("/account/emails/<int:address_id>/remove")
@login_required
@recent_auth
def email_remove(address_id: int):
    try:
        emails.remove(me(), address_id, _ctx())
    except users.AccountError as exc:
        flash(str(exc), "error")
    return _back()


@bp.get("/verify-email/<key>")
def email_verify(key: str):
    """The link in the mail: a page with one button (a GET changes nothing)."""
    return render_template("verify_email.html")


@bp.post("/verify-email/<key>")
def email_verify_submit(key: str):
    try:
        row = emails.verify(key, audit_context())
    except users.AccountError as exc:
        return render_template("message.html", title=_("This link is no longer valid"), message=str(exc)), 404
    return render_template(
        "message.html",
        title=_("Address verified"),
        message=_("%(address)s is verified.", address=row.address),
    )


@bp.post("/account/notices")
@login_required
def project_notices():
    chosen = set(request.form.getlist("project"))
    for choice in subscriptions.choices(me()):
        subscriptions.set_subscribed(me(), choice.project, choice.project in chosen)
    flash(_("Your notice choices are saved."), "info")
    return _back()
