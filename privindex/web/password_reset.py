"""Password reset by email: "Forgot password?" on the sign-in page, and the link's page.

The form's answer is the same whether or not an account matches, and takes the same work
(the lookup and the limiter): the link is made and its mail queued after the answer is
sent. Requests are limited per text typed (case and spaces aside; so an account named by
its username and by each verified address has that many buckets, a bounded few) and per
client address by the sign-in limiter "reset"; every request counts. The reset itself is
accounts/password_reset.py: it signs no one in, so the second factor is still asked.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    abort,
    copy_current_request_context,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from privindex.accounts import password_reset, users
from privindex.api.http import audit_context
from privindex.auth.ratelimit import Limited
from privindex.db.models import User
from privindex.notify.notices import Notices
from privindex.web.blueprint import bp, humanize_wait, limits, settings
from privindex.web.emails import notices


@bp.get("/forgot-password")
def forgot_password():
    if notices() is None:
        abort(404)
    return render_template("forgot_password.html")


@bp.post("/forgot-password")
def forgot_password_submit():
    sender = notices()
    if sender is None:
        abort(404)
    typed = (request.form.get("account") or "").strip()[:320]
    user = password_reset.account_for(typed)
    try:
        # keyed by the text as typed on both paths: a bucket tells nothing of whether an
        # account matched (a username and each of its addresses are separate buckets)
        with limits()["reset"].attempt(" ".join(typed.lower().split()), request.remote_addr or "-"):
            pass  # every request counts
    except Limited as exc:
        flash(_("Too many requests. Try again in %(wait)s.", wait=humanize_wait(exc.retry_after)), "error")
        return render_template("forgot_password.html"), 429
    answer = make_response(
        render_template(
            "message.html",
            title=_("Check your mail"),
            message=_(
                "If an account with a verified address matches, we sent a link there. It works once, "
                "for 30 minutes."
            ),
        )
    )
    if user is not None:
        # the link is made and queued once the answer is sent (the server closes the
        # response after writing it): both answers take the same work, so their time
        # tells nothing of whether an account matched
        answer.call_on_close(copy_current_request_context(lambda: _mail_link(sender, user)))
    return answer


def _mail_link(sender: Notices, user: User) -> None:
    link = password_reset.request_link(user, audit_context())
    if link is not None:
        url = settings().base_url + url_for("web.reset_password", key=link.key)
        sender.send_link(link.user, link.address, "reset", url)


def _link_gone():
    return render_template(
        "message.html",
        title=_("This link is no longer valid"),
        message=_("It was used already or has expired. Ask for a new one on the sign-in page."),
    ), 404


@bp.get("/reset-password/<key>")
def reset_password(key: str):
    user = password_reset.link_user(key)
    if user is None:
        return _link_gone()
    return render_template("setup_password.html", username=user.username)


@bp.post("/reset-password/<key>")
def reset_password_submit(key: str):
    user = password_reset.link_user(key)
    if user is None:
        return _link_gone()

    def reset(password: str) -> str | None:
        try:
            password_reset.reset(key, password, audit_context())
        except users.AccountError:
            if password_reset.link_user(key) is None:
                return None  # used meanwhile, or expired
            raise
        return _("Your password is changed and you are signed out everywhere. Sign in now.")

    return set_password_form(user.username, reset, _link_gone)


def set_password_form(username: str, apply: Callable[[str], str | None], gone: Callable):
    """The POST of a set-password link's page (a mailed reset link, an admin's set-up link):
    the two passwords must match; apply(password) sets it and says what the sign-in page
    shows, or returns None when the link is gone. An AccountError is shown on the form."""
    password = request.form.get("password") or ""
    if password != request.form.get("password2"):
        flash(_("The two passwords differ."), "error")
    else:
        try:
            done = apply(password)
        except users.AccountError as exc:
            flash(str(exc), "error")
        else:
            if done is None:
                return gone()
            flash(done, "info")
            return redirect(url_for("web.login"))
    return render_template("setup_password.html", username=username), 400
