"""Account pages: password, sessions, second factors (keys, TOTP, recovery codes) and API tokens."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required, logout_user

from privindex.accounts import api_tokens, emails, second_factors, sessions, users
from privindex.api.http import audit_context
from privindex.ops import audit_words
from privindex.packages import projects
from privindex.web import confirm, devices, shown_once
from privindex.web.blueprint import (
    OFFER_SIGN_OUT,
    bp,
    current_session,
    json_object,
    me,
    recent_auth,
    session_lifetime,
    settings,
    whole_number,
)

TOTP_SETUP = "totp_setup"
WEBAUTHN_REGISTER = "webauthn_register"


def ctx():
    return audit_context().with_actor(me())


def _factor_changed() -> None:
    """The next page offers to end the user's other sessions (a stolen session would
    otherwise outlive the factor the user just replaced)."""
    session[OFFER_SIGN_OUT] = True


# -- password --------------------------------------------------------------------------------------


def _account_page(status: int = 200):
    live = sessions.list_for(me(), session_lifetime())
    return render_template(
        "account.html",
        sessions=live,
        current_id=current_session().id,
        device=devices.describe,
        way=audit_words.sign_in_method,
    ), status


@bp.get("/account")
@login_required
@recent_auth
def account():
    return _account_page()


@bp.post("/account")
@login_required
@recent_auth
def account_password():
    new = request.form.get("password") or ""
    if not users.check_password(me(), request.form.get("current") or ""):
        flash(_("Your current password is not right."), "error")
    elif new != request.form.get("password2"):
        flash(_("The two new passwords differ."), "error")
    else:
        try:
            users.set_password(me(), new, ctx(), keep_session=current_session().id)
        except users.AccountError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Password changed. You are signed out everywhere else."), "info")
            return redirect(url_for("web.account"))
    return _account_page(400)


@bp.post("/account/sessions/<int:session_id>/end")
@login_required
@recent_auth
def session_end(session_id: int):
    """End one of my sessions (a lost laptop, a shared computer); ending this one signs out."""
    row = next((s for s in sessions.list_for(me(), session_lifetime()) if s.id == session_id), None)
    if row is not None:
        here = session_id == current_session().id
        page = confirm.ask(
            _("Sign out of this browser")
            if here
            else _("End session on %(device)s", device=devices.describe(row.user_agent)),
            _("That browser is signed out at once; signing in again needs the password."),
            url_for("web.account"),
        )
        if page is not None:
            return page
    if row is None or not sessions.end_one(me(), session_id, ctx()):
        flash(_("That session had already ended."), "info")
        return redirect(url_for("web.account"))
    if session_id == current_session().id:
        return _signed_out()
    flash(_("The session was ended."), "info")
    return redirect(url_for("web.account"))


@bp.post("/account/sessions/end-others")
@login_required
@recent_auth
def sessions_end_others():
    """Sign out everywhere but here (offered after a factor changed, and on the account page)."""
    ended = sessions.end_all(me(), ctx(), reason="sign_out_others", keep_id=current_session().id)
    flash(ngettext("%(num)d other session was ended.", "%(num)d other sessions were ended.", ended), "info")
    return redirect(url_for("web.account"))


@bp.post("/account/sessions/end-all")
@login_required
@recent_auth
def sessions_end_all():
    """Sign out everywhere, this browser included."""
    sessions.end_all(me(), ctx(), reason="sign_out_everywhere")
    return _signed_out()


def _signed_out():
    logout_user()
    session.clear()
    flash(_("You are signed out everywhere."), "info")
    return redirect(url_for("web.login"))


# -- second factors ------------------------------------------------------------------------------


@bp.get("/account/security")
@login_required
def security():
    return render_template(
        "security.html",
        keys=second_factors.user_keys(me()),
        has_totp=bool(me().totp_secret),
        codes_left=second_factors.unused_recovery_codes(me()),
        has_2fa=users.has_second_factor(me()),
        needs_email=needs_email(),
    )


def needs_email() -> bool:
    """require_verified_email (with mail on): no second factor before a verified primary address."""
    return settings().verified_email_required and emails.primary_verified(me()) is None


def _show_codes(codes: list[str] | None):
    """Recovery codes are shown on the next GET, once (post/redirect/get)."""
    if not codes:
        return redirect(url_for("web.security"))
    return shown_once.keep("recovery-codes", {"codes": codes}, "web.recovery_codes_new")


@bp.get("/account/recovery-codes/new")
@login_required
def recovery_codes_new():
    kept = shown_once.take("recovery-codes")
    if kept is None:
        return shown_once.gone(
            _("Recovery codes are shown only once. If you did not save them, make new ones."), "web.security"
        )
    return render_template("recovery_codes.html", codes=kept["codes"])


@bp.post("/account/recovery-codes")
@login_required
@recent_auth
def recovery_codes():
    if not users.has_second_factor(me()):
        flash(_("Add a security key or an authenticator app first."), "error")
        return redirect(url_for("web.security"))
    codes = second_factors.regenerate_recovery_codes(me(), ctx())
    _factor_changed()
    return _show_codes(codes)


@bp.get("/account/totp")
@login_required
def totp_setup():
    """Nothing is made on GET: the set-up starts with a POST (below)."""
    return redirect(url_for("web.security"))


@bp.post("/account/totp/new")
@login_required
@recent_auth
def totp_start():
    if needs_email():
        return redirect(url_for("web.security"))
    second_factors.drop_pending(session.get(TOTP_SETUP))
    session[TOTP_SETUP], setup = second_factors.start_totp_setup(me())
    return _totp_page(setup)


def _totp_page(setup: second_factors.TotpSetup, status: int = 200):
    return render_template(
        "totp_setup.html", qr=setup.qr_svg, secret=setup.spaced, replacing=bool(me().totp_secret)
    ), status


@bp.post("/account/totp")
@login_required
@recent_auth
def totp_confirm():
    secret = second_factors.pending_totp_secret(session.get(TOTP_SETUP), me())
    if secret is None:
        flash(_("The set-up has expired; here is a new code to scan."), "warning")
        return redirect(url_for("web.security"))
    try:
        codes = second_factors.enable_totp(me(), secret, request.form.get("code", ""), ctx())
    except users.AccountError as exc:
        flash(str(exc), "error")
        return _totp_page(second_factors.totp_setup(me(), secret), 400)
    second_factors.drop_pending(session.pop(TOTP_SETUP, None))
    _factor_changed()
    flash(_("Your authenticator app is set up."), "info")
    return _show_codes(codes)


@bp.post("/account/totp/delete")
@login_required
@recent_auth
def totp_delete():
    page = confirm.ask(
        _("Remove the authenticator app"),
        _("Its codes stop working at once; sign in with another second factor from then on."),
        url_for("web.security"),
    )
    if page is not None:
        return page
    try:
        second_factors.disable_totp(me(), ctx(), settings().require_2fa)
        _factor_changed()
        flash(_("The authenticator app was removed."), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.security"))


@bp.post("/account/keys/options")
@login_required
@recent_auth
def key_options():
    if needs_email():
        return jsonify(error=_("Verify your primary email address first.")), 403
    second_factors.drop_pending(session.get(WEBAUTHN_REGISTER))
    options, session[WEBAUTHN_REGISTER] = second_factors.registration_options(me(), settings().rp_id)
    return jsonify(options)


@bp.post("/account/keys")
@login_required
@recent_auth
def key_add():
    body = json_object()
    label = " ".join(str(body.get("label", "")).split())
    conf = settings()
    try:
        codes = second_factors.enrol_key(
            me(),
            session.pop(WEBAUTHN_REGISTER, None),
            label,
            body.get("credential") or {},
            conf.rp_id,
            conf.origin,
            ctx(),
        )
    except (users.AccountError, second_factors.KeyRejected) as exc:
        return jsonify(error=str(exc)), 400
    _factor_changed()
    flash(_("Security key “%(label)s” added.", label=label), "info")
    return jsonify(redirect=url_for("web.security"), codes=codes or [])


@bp.post("/account/keys/<int:key_id>/delete")
@login_required
@recent_auth
def key_delete(key_id: int):
    key = next((k for k in second_factors.user_keys(me()) if k.id == key_id), None)
    if key is not None:
        page = confirm.ask(
            _("Remove the security key %(label)s", label=key.label),
            _("This key can no longer sign you in."),
            url_for("web.security"),
        )
        if page is not None:
            return page
    try:
        second_factors.remove_key(me(), key_id, ctx(), settings().require_2fa)
        _factor_changed()
        flash(_("The security key was removed."), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.security"))


# -- tokens ----------------------------------------------------------------------------------------


def token_name(token) -> str:
    """How a token is named on buttons: its description, else its visible prefix."""
    return token.description or f"{token.prefix}…"


@bp.get("/tokens")
@login_required
def tokens():
    return render_template(
        "tokens.html",
        token_name=token_name,
        tokens=api_tokens.list_tokens(me()),
        status=api_tokens.token_status,
        projects=[p.name for p in projects.list_projects(me())],
    )


@bp.post("/tokens")
@login_required
@recent_auth
def token_create():
    form = request.form
    expires = form.get("expires", "").strip()
    days = (
        whole_number(
            expires,
            1,
            api_tokens.MAX_EXPIRY_DAYS,
            _(
                "The expiry is a whole number of days from 1 to %(most)d, or empty for never.",
                most=api_tokens.MAX_EXPIRY_DAYS,
            ),
        )
        if expires
        else None
    )
    try:
        scope = form.getlist("projects") if form.get("scope") == "projects" else []
        if form.get("scope") == "projects" and not scope:
            raise users.AccountError(_("Choose at least one project, or the whole-account scope."))
        token, secret = api_tokens.create_token(
            me(),
            ctx(),
            description=form.get("description", "").strip(),
            projects=scope,
            read_only=bool(form.get("read_only")),
            expires_days=days,
            require_2fa=settings().require_2fa,
        )
    except users.AccountError as exc:
        flash(str(exc), "error")
        return redirect(url_for("web.tokens"))
    return shown_once.keep("token", {"secret": secret, "description": token.description}, "web.token_created")


@bp.get("/tokens/new")
@login_required
def token_created():
    """The new token, once: a reload finds it gone and makes no other."""
    kept = shown_once.take("token")
    if kept is None:
        return shown_once.gone(
            _("A new token is shown only once. If you did not copy it, revoke it and make a new one."),
            "web.tokens",
        )
    base = settings().base_url
    netloc_url = base.replace("://", f"://__token__:{kept['secret']}@", 1)
    return render_template(
        "token_created.html",
        secret=kept["secret"],
        description=kept["description"],
        base=base,
        read_url=f"{netloc_url}/simple/",
    )


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
@recent_auth
def token_revoke(token_id: int):
    token = next((t for t in api_tokens.list_tokens(me()) if t.id == token_id), None)
    if token is not None:
        page = confirm.ask(
            _("Revoke token %(name)s", name=token_name(token)),
            _("Anything that uploads or installs with this token is refused from now on."),
            url_for("web.tokens"),
        )
        if page is not None:
            return page
    try:
        api_tokens.revoke_token(token_id, ctx(), owner=me())
        flash(_("The token was revoked."), "info")
    except users.AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for("web.tokens"))
