"""Sign-in through the team's identity provider over HTTP: the redirect out, the callback,
and the page where the owner of an existing account proves it before it is linked. The
rules (state, nonce, PKCE, the ID token, groups and domains, who is signed in) are
oidc/sso.py's; the rest of a sign-in (second factor, session) is signin.py's.
"""

from __future__ import annotations

import time

from flask import after_this_request, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from privindex.accounts import second_factors, sessions, users
from privindex.api.http import audit_context
from privindex.auth.ratelimit import Limited
from privindex.db.models import User
from privindex.oidc import identity_tokens, sso
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.web.blueprint import Account, bp, me, safe_next, settings
from privindex.web.signin import PENDING_LOGIN, _finish_login, _locked_message, _password_attempt

# The started sign-in (state, nonce, PKCE verifier), signed, in a cookie of its own: any answer
# meanwhile rewrites the whole session cookie (the sign-in page's passkey options, asked for as
# it loads, may answer after the redirect out), and would drop a flow kept there.
FLOW_COOKIE = "privindex_sso"
LINK = "sso_link"  # the provider's subject waiting for the owner of an existing account
PROVIDER_MFA = "provider_mfa"  # this session's second factor was the provider's


def providers() -> sso.Providers:
    return current_app.extensions["privindex_sso"]


@bp.app_template_global()
def sso_buttons() -> list[tuple[int, str]]:
    """(index, label) of each provider, for the sign-in page's "Sign in with" buttons."""
    return list(enumerate(p.label for p in providers().all))


@bp.app_template_global()
def sso_reauth_label() -> str:
    """The label of the provider the signed-in user may confirm a sensitive action through."""
    provider = sso.reauth_provider(providers(), me()) if current_user.is_authenticated else None
    return provider.label if provider else ""


def _redirect_uri() -> str:
    return settings().base_url + url_for("web.sso_callback")


def _unavailable(exc: Exception):
    current_app.logger.warning("sign-in through an identity provider failed: %s", exc)
    flash(_("The identity provider cannot be reached now. Try again in a minute."), "error")
    return render_template("login.html", next=""), 503


@bp.get("/login/sso/<int:number>")
def sso_start(number: int):
    if not 0 <= number < len(providers().all):
        flash(_("There is no such identity provider."), "error")
        return render_template("login.html", next=""), 404
    try:
        flow = sso.begin(providers(), providers().all[number], _redirect_uri(), request.args.get("next", ""))
    except (identity_tokens.KeysUnavailable, identity_tokens.FetchFailed) as exc:
        return _unavailable(exc)
    return _go_to_provider(flow)


def _flows() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="privindex-sso-flow")


def _go_to_provider(flow: sso.Flow):
    conf = settings()
    response = redirect(flow.url)
    response.set_cookie(
        conf.cookie_name(FLOW_COOKIE),
        _flows().dumps(flow.state),
        max_age=int(sso.FLOW_SECONDS),
        path="/",
        secure=conf.secure_cookies,
        httponly=True,
        samesite="Lax",  # sent on the provider's top-level redirect back
    )
    return response


def _take_flow() -> dict | None:
    """The started sign-in, once: its cookie goes with this answer."""
    conf = settings()
    name = conf.cookie_name(FLOW_COOKIE)

    @after_this_request
    def forget(response):
        response.delete_cookie(name, path="/", secure=conf.secure_cookies, httponly=True, samesite="Lax")
        return response

    try:
        flow = _flows().loads(request.cookies.get(name, ""), max_age=sso.FLOW_SECONDS)
    except BadSignature:
        return None
    return flow if isinstance(flow, dict) else None


@bp.get("/login/sso/callback")
def sso_callback():
    flow = _take_flow()
    try:
        provider, outcome = sso.finish(
            providers(), flow, request.args.to_dict(), _redirect_uri(), audit_context()
        )
    except sso.SignInRefused as exc:
        audit.record(Tag.USER_LOGIN_FAILURE, audit_context(), subject=exc.username, reason=exc.reason)
        flash(str(exc), "error")
        return render_template("login.html", next=""), 403
    except (identity_tokens.KeysUnavailable, identity_tokens.FetchFailed) as exc:
        return _unavailable(exc)
    assert flow is not None  # finish refuses a sign-in without one
    next_url = str(flow.get("next", ""))
    if "reauth_of" in flow:
        return _reauthenticated(flow, next_url)
    if outcome.link_to is not None:
        session[LINK] = {
            "issuer": provider.issuer,
            "subject": str(outcome.claims["sub"]),
            "user": outcome.link_to.id,
            "mfa": outcome.provider_mfa,
            "next": next_url,
            "at": time.time(),
        }
        return redirect(url_for("web.sso_link"))
    assert outcome.user is not None
    return _second_step(outcome.user, outcome.provider_mfa, next_url, provider.label)


@bp.get("/reauth/sso")
@login_required
def sso_reauth():
    """Confirm a sensitive action through the identity provider, for a user linked to one
    (a user it made has no password to re-enter)."""
    provider = sso.reauth_provider(providers(), me())
    next_url = request.args.get("next", "")
    if provider is None:
        return redirect(url_for("web.reauth", next=next_url))
    try:
        flow = sso.begin(providers(), provider, _redirect_uri(), next_url, reauth_of=me())
    except (identity_tokens.KeysUnavailable, identity_tokens.FetchFailed) as exc:
        return _unavailable(exc)
    return _go_to_provider(flow)


def _reauthenticated(flow: dict, next_url: str):
    """The provider confirmed the signed-in user again: a fresh authentication time, as the
    password does on the reauth page."""
    if not current_user.is_authenticated or me().id != flow["reauth_of"]:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    login_user(Account(me(), sessions.rotate(current_user.key), current_user.row))
    session["auth_at"] = time.time()
    return redirect(safe_next(next_url))


def _second_step(user: User, provider_mfa: bool, next_url: str, label: str, link: dict | None = None):
    """After the provider (and, to link, the password): privindex's own second factor,
    unless the provider's counts."""
    if not provider_mfa and users.has_own_second_factor(user):
        second_factors.drop_pending(session.get(PENDING_LOGIN))
        data = {"next": next_url, **({"sso_link": link} if link else {})}
        session[PENDING_LOGIN] = second_factors.create_pending(user, "login", data=data)
        return redirect(url_for("web.two_factor"))
    response = _finish_login(user, "sso", next_url, label=label, sso_link=link)
    session[PROVIDER_MFA] = provider_mfa
    return response


def _link_pending() -> tuple[dict, User] | None:
    waiting = session.get(LINK)
    if not isinstance(waiting, dict) or time.time() - float(waiting.get("at", 0)) > sso.FLOW_SECONDS:
        return None
    user = User.get_or_none(User.id == waiting.get("user"))
    return (waiting, user) if user is not None and not user.is_disabled else None


@bp.route("/login/sso/link", methods=["GET", "POST"])
def sso_link():
    """An account here has the email the provider verified: its owner proves it (password,
    then the second factor) before the provider's subject is linked to it."""
    found = _link_pending()
    if found is None:
        flash(_("Your sign-in has expired. Please start again."), "warning")
        return redirect(url_for("web.login"))
    waiting, user = found
    provider = providers().get(waiting["issuer"])
    label = provider.label if provider else waiting["issuer"]
    if request.method == "GET":
        return render_template("sso_link.html", username=user.username, label=label)
    try:
        with _password_attempt(user.username) as attempt:
            if users.check_password(user, request.form.get("password") or ""):
                attempt.succeeded()
    except Limited as exc:
        flash(_locked_message(exc.retry_after), "error")
        return render_template("sso_link.html", username=user.username, label=label), 429
    if not attempt.ok:
        audit.record(
            Tag.USER_LOGIN_FAILURE, audit_context(), subject=user.username, reason="invalid_password_sso_link"
        )
        flash(_("That password is not right."), "error")
        return render_template("sso_link.html", username=user.username, label=label), 401
    session.pop(LINK, None)
    link = {"issuer": waiting["issuer"], "subject": waiting["subject"], "mfa": bool(waiting.get("mfa"))}
    return _second_step(user, False, str(waiting.get("next", "")), label, link=link)
