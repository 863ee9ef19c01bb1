"""Sign-in: password first, then a security key, a TOTP code or a recovery code.

Failed passwords and failed second factors are rate-limited per user and per IP (only
failures count). Wrong username and wrong password get the same answer, and an unknown
username costs as much time as a known one.
"""

from __future__ import annotations

import json
import time

from flask import abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user

from privindex import accounts, audit, twofactor
from privindex.audit import Tag
from privindex.auth import passwords
from privindex.auth import webauthn as keys
from privindex.http import audit_context
from privindex.models import User
from privindex.web import Account, bp, humanize_wait, limits, me, safe_next, settings

PENDING_LOGIN = "pending_login"
WEBAUTHN_LOGIN = "webauthn_login"


def _locked(kind: str, user_key: str) -> float | None:
    lim = limits()
    waits = [lim[f"{kind}.user"].retry_after(user_key), lim[f"{kind}.ip"].retry_after(request.remote_addr or "-")]
    waits = [w for w in waits if w]
    return max(waits) if waits else None


def _failed(kind: str, user_key: str) -> None:
    lim = limits()
    lim[f"{kind}.user"].hit(user_key)
    lim[f"{kind}.ip"].hit(request.remote_addr or "-")


def _locked_message(wait: float) -> str:
    return _("Too many failed attempts. Try again in %(wait)s.", wait=humanize_wait(wait))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip().lower()[:100]
    password = request.form.get("password") or ""
    next_url = request.form.get("next", "")
    wait = _locked("password", username)
    if wait:
        flash(_locked_message(wait), "error")
        return render_template("login.html", username=username, next=next_url), 429
    user = accounts.find_user(username)
    ok, new_hash = passwords.verify_password(password, user.password_hash if user else None)
    if not ok or user.is_disabled:
        _failed("password", username)
        if user is not None:
            audit.record(Tag.USER_LOGIN_FAILURE, audit_context(), subject=user.username,
                         reason="disabled" if ok else "invalid_password")
        flash(_("Wrong username or password."), "error")
        return render_template("login.html", username=username, next=next_url), 401
    if new_hash:
        User.update(password_hash=new_hash).where(User.id == user.id).execute()
    if accounts.has_second_factor(user):
        twofactor.drop_pending(session.get(PENDING_LOGIN))
        session[PENDING_LOGIN] = twofactor.create_pending(user, "login", data={"next": next_url})
        return redirect(url_for("web.two_factor"))
    return _finish_login(user, method=None, next_url=next_url)


def _finish_login(user: User, method: str | None, next_url: str = "", label: str | None = None):
    """Rotate the session, sign in, remember when, audit."""
    session.clear()
    session.permanent = True
    login_user(Account(user))
    session["auth_at"] = time.time()
    User.update(last_login_at=time.time()).where(User.id == user.id).execute()
    details = {"method": method or "password"}
    if label:
        details["label"] = label
    audit.record(Tag.USER_LOGIN_SUCCESS, audit_context().with_actor(user), subject=user.username, **details)
    return redirect(safe_next(next_url))


def _pending_login():
    return twofactor.peek_pending(session.get(PENDING_LOGIN), "login")


@bp.get("/login/2fa")
def two_factor():
    pending = _pending_login()
    if pending is None:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    user = pending.user
    return render_template("two_factor.html", has_keys=bool(twofactor.user_keys(user)),
                           has_totp=bool(user.totp_secret),
                           has_codes=twofactor.unused_recovery_codes(user) > 0)


def _second_factor(method: str, check) -> object:
    """Shared by the TOTP and recovery-code forms: limit, check, finish or fail."""
    pending = _pending_login()
    if pending is None:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    user = pending.user
    wait = _locked("2fa", str(user.id))
    if wait:
        flash(_locked_message(wait), "error")
        return redirect(url_for("web.two_factor"))
    if not check(user):
        _failed("2fa", str(user.id))
        audit.record(Tag.USER_LOGIN_FAILURE, audit_context(), subject=user.username, reason=f"invalid_{method}")
        flash(_("That code is not valid."), "error")
        return redirect(url_for("web.two_factor"))
    next_url = json.loads(pending.data).get("next", "")
    if twofactor.take_pending(session.get(PENDING_LOGIN), "login") is None:
        return redirect(url_for("web.login"))
    return _finish_login(user, method, next_url)


@bp.post("/login/2fa/totp")
def login_totp():
    code = request.form.get("code", "")
    return _second_factor("totp", lambda user: twofactor.check_totp(user, code))


@bp.post("/login/2fa/recovery")
def login_recovery():
    code = request.form.get("code", "")
    return _second_factor("recovery_code",
                          lambda user: twofactor.use_recovery_code(user, code, audit_context().with_actor(user)))


@bp.post("/login/2fa/webauthn/options")
def login_key_options():
    pending = _pending_login()
    if pending is None:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    user_keys = [twofactor.stored(k) for k in twofactor.user_keys(pending.user)]
    options, challenge = keys.authentication_options(settings().rp_id, user_keys)
    twofactor.drop_pending(session.get(WEBAUTHN_LOGIN))
    session[WEBAUTHN_LOGIN] = twofactor.create_pending(pending.user, "webauthn-login", challenge=challenge)
    return jsonify(options)


@bp.post("/login/2fa/webauthn")
def login_key():
    pending = _pending_login()
    # the challenge is spent by this attempt, whatever its outcome
    challenge = twofactor.take_pending(session.pop(WEBAUTHN_LOGIN, None), "webauthn-login")
    if pending is None or challenge is None or challenge.user_id != pending.user_id:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    user = pending.user
    wait = _locked("2fa", str(user.id))
    if wait:
        return jsonify(error=_locked_message(wait)), 429
    body = request.get_json(silent=True) or {}
    conf = settings()
    try:
        key = twofactor.find_key(user, keys.credential_id_of(body.get("credential") or {}))
        if key is None:
            raise keys.KeyRejected("this security key is not enrolled for this account")
        new_count = keys.verify_authentication(body["credential"], bytes(challenge.challenge), conf.rp_id,
                                               conf.origin, twofactor.stored(key))
    except keys.KeyRejected as exc:
        _failed("2fa", str(user.id))
        ctx = audit_context()
        if isinstance(exc, keys.SignCountRegression):
            audit.record(Tag.WEBAUTHN_SIGN_COUNT_REGRESSION, ctx, subject=user.username, label=key.label)
        audit.record(Tag.USER_LOGIN_FAILURE, ctx, subject=user.username, reason="invalid_webauthn")
        return jsonify(error=_("The security key was not accepted.")), 400
    twofactor.record_key_use(key, new_count)
    next_url = json.loads(pending.data).get("next", "")
    if twofactor.take_pending(session.get(PENDING_LOGIN), "login") is None:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    response = _finish_login(user, "webauthn", next_url, label=key.label)
    return jsonify(redirect=response.location)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("web.login"))


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
def reauth():
    next_url = request.values.get("next", "")
    if request.method == "POST":
        wait = _locked("password", me().username)
        if wait:
            flash(_locked_message(wait), "error")
        else:
            ok, _new = passwords.verify_password(request.form.get("password") or "", me().password_hash)
            if ok:
                session["auth_at"] = time.time()
                return redirect(safe_next(next_url))
            _failed("password", me().username)
            audit.record(Tag.USER_LOGIN_FAILURE, audit_context().with_actor(me()), subject=me().username,
                         reason="invalid_password_reauth")
            flash(_("That password is not right."), "error")
    return render_template("reauth.html", next=next_url)


@bp.route("/setup-password/<key>", methods=["GET", "POST"])
def setup_password(key: str):
    """The one-time link an admin hands to a new user (or a user whose password was reset)."""
    pending = twofactor.peek_pending(key, "password-setup")
    if pending is None:
        return render_template("message.html", title=_("This link is no longer valid"),
                               message=_("Ask an administrator for a new one.")), 404
    if request.method == "POST":
        password = request.form.get("password") or ""
        if password != request.form.get("password2"):
            flash(_("The two passwords differ."), "error")
        else:
            try:
                accounts.set_password(pending.user, password, audit_context().with_actor(pending.user))
            except accounts.AccountError as exc:
                flash(str(exc), "error")
            else:
                if twofactor.take_pending(key, "password-setup") is None:
                    abort(404)
                flash(_("Your password is set. Sign in now."), "info")
                return redirect(url_for("web.login"))
    return render_template("setup_password.html", username=pending.user.username)
