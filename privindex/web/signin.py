"""Sign-in: password first, then a security key, a TOTP code or a recovery code; or a
passkey alone (accounts/passkeys.py), which counts as both factors.

Failed passwords and failed second factors are rate-limited per user and per IP (only
failures count; each try reserves its slot before the check, so concurrency cannot exceed
the limit). Wrong username and wrong password get the same answer, and an unknown
username costs as much time as a known one.

So that a stranger's wrong passwords cannot keep a user out (OWASP's "device cookies"), a
full sign-in leaves a signed device cookie naming the user: password tries from that
browser for that user count against the browser's own limit, not the user's and the
address's, which anyone can fill.
"""

from __future__ import annotations

import json
import secrets
import time

from flask import (
    abort,
    after_this_request,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from privindex.accounts import devices, passkeys, second_factors, sessions, users
from privindex.api.http import audit_context
from privindex.auth.ratelimit import Attempt, Limited
from privindex.db.models import User
from privindex.oidc import sso
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.web.blueprint import (
    REAUTH_OWN,
    Account,
    bp,
    humanize_wait,
    json_object,
    limits,
    me,
    resumed_path,
    safe_next,
    session_lifetime,
    settings,
)
from privindex.web.confirm import form_fields
from privindex.web.password_reset import set_password_form

PENDING_LOGIN = "pending_login"
WEBAUTHN_LOGIN = "webauthn_login"
PASSKEY_LOGIN = "passkey_login"
PASSKEY_REAUTH = "passkey_reauth"  # the pending key of a re-check's passkey challenge
DEVICE_COOKIE = "privindex_device"
DEVICE_DAYS = 30


def _address() -> str:
    return request.remote_addr or "-"


def _devices() -> URLSafeTimedSerializer:
    secret = current_app.secret_key
    assert secret, "create_app sets the secret key"
    return URLSafeTimedSerializer(secret, salt="privindex-device")


def _device_id(username: str) -> str | None:
    """The id of this browser, from its device cookie, if it signed in as username before."""
    try:
        device = _devices().loads(
            request.cookies.get(settings().cookie_name(DEVICE_COOKIE), ""), max_age=DEVICE_DAYS * 86400
        )
    except BadSignature:
        return None
    if isinstance(device, dict) and device.get("user") == username and device.get("nonce"):
        return str(device["nonce"])
    return None


def _password_attempt(username: str):
    """Reserve a password try: against this browser's own limit when it signed in as
    username before (its device cookie), else against the user's and the address's."""
    device_id = _device_id(username)
    if device_id is not None:
        ident = "device:" + device_id
        return limits()["password"].attempt(f"{username}\0{ident}", ident)
    return limits()["password"].attempt(username, _address())


def _remember_device(username: str) -> str:
    """After a full sign-in: the device cookie (a random id and the name, signed), keeping
    the id this browser already had for username. Returns the id."""
    device_id = _device_id(username) or secrets.token_urlsafe(16)
    value = _devices().dumps({"user": username, "nonce": device_id})
    conf = settings()

    @after_this_request
    def set_cookie(response):
        response.set_cookie(
            conf.cookie_name(DEVICE_COOKIE),
            value,
            max_age=DEVICE_DAYS * 86400,
            path="/",
            secure=conf.secure_cookies,
            httponly=True,
            samesite="Lax",
        )
        return response

    return device_id


def _locked_message(wait: float) -> str:
    return _("Too many failed attempts. Try again in %(wait)s.", wait=humanize_wait(wait))


@bp.get("/login")
def login():
    return render_template("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login_submit():
    username = (request.form.get("username") or "").strip().lower()[:100]
    password = request.form.get("password") or ""
    next_url = request.form.get("next", "")
    try:
        # one atomic "may this be tried" + reservation for the user and the address, before argon2
        with _password_attempt(username) as attempt:
            user = users.find_user(username)
            ok = users.check_password(user, password)
            if ok and user is not None and not user.is_disabled:
                attempt.succeeded()
    except Limited as exc:
        flash(_locked_message(exc.retry_after), "error")
        return render_template("login.html", username=username, next=next_url), 429
    if not attempt.ok:
        if user is not None:
            audit.record(
                Tag.USER_LOGIN_FAILURE,
                audit_context(),
                subject=user.username,
                reason="disabled" if ok else "invalid_password",
            )
        issuer = users.provider_only(user) if user is not None else None
        label = next((p.label for p in settings().sso_providers if p.issuer == issuer), issuer)
        flash(
            _("Sign in with %(label)s", label=label) if label else _("Wrong username or password."), "error"
        )
        return render_template("login.html", username=username, next=next_url), 401
    assert user is not None  # the attempt succeeded: the password was this user's
    if users.has_own_second_factor(user):
        second_factors.drop_pending(session.get(PENDING_LOGIN))
        session[PENDING_LOGIN] = second_factors.create_pending(user, "login", data={"next": next_url})
        return redirect(url_for("web.two_factor"))
    users.forget_provider_mfa(user)  # a password alone: the provider's MFA no longer stands for one
    return _finish_login(user, method=None, next_url=next_url)


def _finish_login(
    user: User, method: str | None, next_url: str = "", label: str | None = None, sso_link: dict | None = None
):
    """Rotate the cookie, open a server-side session, sign in, remember when, audit; with
    sso_link, the owner has just proved the account: link the identity provider's subject."""
    if sso_link:
        sso.link(
            str(sso_link["issuer"]),
            str(sso_link["subject"]),
            user,
            audit_context().with_actor(user),
            provider_mfa=bool(sso_link.get("mfa")),
        )
    session.clear()
    session.permanent = True
    key = sessions.start(
        user, request.remote_addr, request.user_agent.string, method or "password", session_lifetime()
    )
    login_user(Account(user, key))
    session["auth_at"] = time.time()
    users.record_login(user)
    details: dict = {"method": method or "password"}
    if devices.is_new(user, _remember_device(user.username)):
        details["new_device"] = True
    if label:
        details["label"] = label
    tag = Tag.USER_LOGIN_PASSKEY if method == "passkey" else Tag.USER_LOGIN_SUCCESS
    audit.record(tag, audit_context().with_actor(user), subject=user.username, **details)
    return redirect(safe_next(next_url))


def _pending_login():
    return second_factors.peek_pending(session.get(PENDING_LOGIN), "login")


@bp.get("/login/2fa")
def two_factor():
    pending = _pending_login()
    if pending is None:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    user = pending.user
    return render_template(
        "two_factor.html",
        has_keys=bool(second_factors.user_keys(user)),
        has_totp=bool(user.totp_secret),
        has_codes=second_factors.unused_recovery_codes(user) > 0,
    )


def _second_factor(method: str, check) -> object:
    """Shared by the TOTP and recovery-code forms: reserve a try, check, finish or fail."""
    pending = _pending_login()
    if pending is None:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    user = pending.user
    try:
        with limits()["2fa"].attempt(str(user.id), _address()) as attempt:
            if check(user):
                attempt.succeeded()
    except Limited as exc:
        flash(_locked_message(exc.retry_after), "error")
        return two_factor(), 429
    if not attempt.ok:
        audit.record(
            Tag.USER_LOGIN_FAILURE, audit_context(), subject=user.username, reason=f"invalid_{method}"
        )
        flash(_("That code is not valid."), "error")
        return redirect(url_for("web.two_factor"))
    data = json.loads(pending.data)
    if second_factors.take_pending(session.get(PENDING_LOGIN), "login") is None:
        return redirect(url_for("web.login"))
    return _finish_login(user, method, data.get("next", ""), sso_link=data.get("sso_link"))


@bp.post("/login/2fa/totp")
def login_totp():
    code = request.form.get("code", "")
    return _second_factor("totp", lambda user: second_factors.check_totp(user, code))


@bp.post("/login/2fa/recovery")
def login_recovery():
    code = request.form.get("code", "")
    return _second_factor(
        "recovery_code",
        lambda user: second_factors.use_recovery_code(user, code, audit_context().with_actor(user)),
    )


@bp.post("/login/2fa/webauthn/options")
def login_key_options():
    pending = _pending_login()
    if pending is None:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    second_factors.drop_pending(session.get(WEBAUTHN_LOGIN))
    options, session[WEBAUTHN_LOGIN] = second_factors.authentication_options(pending.user, settings().rp_id)
    return jsonify(options)


@bp.post("/login/2fa/webauthn")
def login_key():
    pending = _pending_login()
    # the challenge is spent by this attempt, whatever its outcome
    challenge = second_factors.take_pending(session.pop(WEBAUTHN_LOGIN, None), "webauthn-login")
    if pending is None or challenge is None or challenge.user_id != pending.user_id:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    user = pending.user
    body = json_object()
    conf = settings()
    key = None
    try:
        with limits()["2fa"].attempt(str(user.id), _address()) as attempt:
            try:
                key = second_factors.verify_key_sign_in(
                    user, challenge, body.get("credential") or {}, conf.rp_id, conf.origin, audit_context()
                )
                attempt.succeeded()
            except second_factors.KeyRejected:
                pass
    except Limited as exc:
        return jsonify(error=_locked_message(exc.retry_after)), 429
    if not attempt.ok:
        audit.record(
            Tag.USER_LOGIN_FAILURE, audit_context(), subject=user.username, reason="invalid_webauthn"
        )
        return jsonify(error=_("The security key was not accepted.")), 400
    data = json.loads(pending.data)
    if second_factors.take_pending(session.get(PENDING_LOGIN), "login") is None:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    assert key is not None  # the attempt succeeded: the key was verified
    response = _finish_login(
        user, "webauthn", data.get("next", ""), label=key.label, sso_link=data.get("sso_link")
    )
    return jsonify(redirect=response.location)


@bp.post("/login/passkey/options")
def login_passkey_options():
    """Options for a passkey sign-in: no one is known yet, so no allowCredentials. Each
    writes a challenge row, so each counts against the client address's limit."""
    try:
        with limits()["passkey-options"].attempt(_address(), _address()):  # never given back
            passkeys.drop_challenge(session.get(PASSKEY_LOGIN))
            options, session[PASSKEY_LOGIN] = passkeys.sign_in_options(settings().rp_id)
    except Limited as exc:
        return jsonify(
            error=_("Too many requests. Try again in %(wait)s.", wait=humanize_wait(exc.retry_after))
        ), 429
    return jsonify(options)


@bp.post("/login/passkey")
def login_passkey():
    """A passkey alone signs in: the user is the one whose passkey signed, with UV."""
    challenge = passkeys.take_challenge(session.pop(PASSKEY_LOGIN, None))  # spent by this try
    if challenge is None:
        return jsonify(error=_("Your sign-in has expired. Please start again.")), 400
    body = json_object()
    credential = body.get("credential") or {}
    conf = settings()
    claimed = passkeys.claimed_user(credential)
    key, refused = None, None
    try:
        with limits()["2fa"].attempt(str(claimed.id) if claimed else "passkey", _address()) as attempt:
            try:
                key = passkeys.verify_sign_in(
                    claimed, challenge, credential, conf.rp_id, conf.origin, audit_context()
                )
                attempt.succeeded()
            except second_factors.KeyRejected as exc:
                refused = exc
    except Limited as exc:
        return jsonify(error=_locked_message(exc.retry_after)), 429
    if key is None or claimed is None:
        reason = getattr(refused, "reason", "invalid_passkey")
        audit.record(
            Tag.USER_LOGIN_FAILURE,
            audit_context(),
            subject=claimed.username if claimed else None,
            reason=reason,
        )
        message = str(refused) if isinstance(refused, passkeys.PasskeyRefused) else ""
        return jsonify(error=message or _("The passkey was not accepted.")), 400
    response = _finish_login(claimed, "passkey", request.args.get("next", ""), label=key.label)
    return jsonify(redirect=response.location)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        sessions.end(current_user.key)  # every copy of the cookie stops working now
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("web.login"))


@bp.post("/language")
def language():
    """Choose the language of the pages: saved on the account when signed in."""
    from privindex.web.blueprint import LANGUAGES

    chosen = request.form.get("locale", "")
    if chosen not in LANGUAGES:
        abort(400)
    session["locale"] = chosen
    if current_user.is_authenticated:
        users.set_locale(current_user.user, chosen)
    return redirect(safe_next(request.form.get("next") or request.referrer))


@bp.app_template_global()
def passkey_reauth() -> bool:
    """Whether the re-check page offers "Confirm with a passkey" (the user has one)."""
    return current_user.is_authenticated and passkeys.has_passkey(me())


@bp.get("/reauth")
@login_required
def reauth():
    return render_template("reauth.html", next=request.args.get("next", ""))


@bp.post("/reauth/passkey/options")
@login_required
def reauth_passkey_options():
    """Options to confirm with one of the user's passkeys; the answer comes back in the
    re-check form's `passkey` field."""
    second_factors.drop_pending(session.get(PASSKEY_REAUTH))
    options, session[PASSKEY_REAUTH] = passkeys.reauth_options(me(), settings().rp_id)
    return jsonify(options)


def _reauth_check(attempt: Attempt) -> None:
    """The password or, when the form carries one, the passkey's answer (its challenge
    spent either way): attempt succeeds only if it is right."""
    answer = request.form.get("passkey")
    if not answer:
        if users.check_password(me(), request.form.get("password") or ""):
            attempt.succeeded()
        return
    pending_key = session.pop(PASSKEY_REAUTH, None)
    try:
        credential = json.loads(answer)
    except ValueError:
        return
    if not isinstance(credential, dict):
        return
    conf = settings()
    try:
        passkeys.verify_reauth(me(), pending_key, credential, conf.rp_id, conf.origin, audit_context())
    except second_factors.KeyRejected:
        return
    attempt.succeeded()


@bp.post("/reauth")
@login_required
def reauth_submit():
    """The password (or a passkey) again; then the form that was interrupted is sent again
    (see `recent_auth`), or the page the user came from is shown."""
    next_url = request.form.get("next", "")
    resume = request.form.get("resume", "")
    again = {"next": next_url, "resume": resume, "fields": form_fields(REAUTH_OWN) if resume else []}
    by_passkey = bool(request.form.get("passkey"))
    try:
        if by_passkey:
            reserved = limits()["2fa"].attempt(str(me().id), _address())
        else:
            reserved = _password_attempt(me().username)
        with reserved as attempt:
            _reauth_check(attempt)
    except Limited as exc:
        flash(_locked_message(exc.retry_after), "error")
        return render_template("reauth.html", **again), 429
    if attempt.ok:
        login_user(Account(me(), sessions.rotate(current_user.key), current_user.row))
        session["auth_at"] = time.time()
        path = resumed_path(resume) if resume else None
        if path is not None:
            return redirect(path, code=307)
        if resume:
            flash(_("That was more than 10 minutes ago: please do it again."), "warning")
        return redirect(safe_next(next_url))
    audit.record(
        Tag.USER_LOGIN_FAILURE,
        audit_context().with_actor(me()),
        subject=me().username,
        reason="invalid_passkey_reauth" if by_passkey else "invalid_password_reauth",
    )
    flash(_("The passkey was not accepted.") if by_passkey else _("That password is not right."), "error")
    return render_template("reauth.html", **again), 401


def _setup_link(key: str):
    pending = second_factors.peek_pending(key, "password-setup")
    return None if pending is None or pending.user.is_disabled else pending


def _link_gone():
    return render_template(
        "message.html",
        title=_("This link is no longer valid"),
        message=_("Ask an administrator for a new one."),
    ), 404


@bp.get("/setup-password/<key>")
def setup_password(key: str):
    """The one-time link an admin hands to a new user (or a user whose password was reset)."""
    pending = _setup_link(key)
    if pending is None:
        return _link_gone()
    return render_template("setup_password.html", username=pending.user.username)


@bp.post("/setup-password/<key>")
def setup_password_submit(key: str):
    pending = _setup_link(key)
    if pending is None:
        return _link_gone()

    def set_up(password: str) -> str | None:
        users.set_password(pending.user, password, audit_context().with_actor(pending.user))
        if second_factors.take_pending(key, "password-setup") is None:
            return None
        return _("Your password is set. Sign in now.")

    return set_password_form(pending.user.username, set_up, _link_gone)
