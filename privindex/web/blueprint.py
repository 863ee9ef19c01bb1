"""The web UI's blueprint and what every page shares: sessions, sign-in state, CSRF, the
second-factor policy, languages, security headers. `init_web(app)` wires it into the Flask
app; the views (account, admin, projects, publishers, signin, upstream) add their routes.

A signed-in browser is a row in `web_session` (accounts/sessions.py): the signed Flask cookie holds
only the random key naming it (as flask-login's user id), the sign-in time and the CSRF
token. Deleting the row (sign-out, password change, disable, 2FA reset, "sign out
everywhere") refuses every copy of the cookie at once. Anything single-use (pending
sign-ins, WebAuthn challenges) lives in the database too (accounts/second_factors.py).

Only POST changes anything: views with a form have separate GET and POST functions, because
Flask answers HEAD with the GET view and Flask-WTF does not check CSRF on HEAD.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, format_date, format_datetime, format_decimal, get_locale, ngettext
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.routing import IntegerConverter

from privindex.accounts import sessions, users
from privindex.api.headers import HSTS, WEB_SECURITY_HEADERS
from privindex.auth.ratelimit import login_limiters
from privindex.db.models import User, WebSession
from privindex.web.confirm import SECRET_FIELDS, form_fields

REAUTH_SECONDS = 15 * 60
# How long a form interrupted by the password re-check may still be sent again.
RESUME_SECONDS = 10 * 60
# The re-check form's own fields, never taken from the form it carries.
REAUTH_OWN = ("csrf_token", "next", "resume", "password", "passkey")
# Set in the Flask session after a factor changed: the next page offers "sign out my other sessions".
OFFER_SIGN_OUT = "offer_sign_out"

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)

# Pages a signed-in user without a second factor may reach when require_2fa is on.
ENROLMENT_ENDPOINTS = {
    "web.security",
    "web.totp_setup",
    "web.totp_start",
    "web.totp_confirm",
    "web.key_options",
    "web.key_add",
    "web.passkey_options",
    "web.passkey_add",
    "web.logout",
    "web.reauth",
    "web.reauth_submit",
    "web.sso_reauth",  # a user the identity provider made confirms through it (web/sso.py)
    "web.sso_callback",
    "web.recovery_codes",
    "web.static",
    "web.language",
    "web.email_add",  # require_verified_email: a verified address comes first
    "web.email_send",
    "web.email_primary",
    "web.email_remove",
}


class Account(UserMixin):
    """flask-login's view of a signed-in browser: the user and its session row."""

    def __init__(self, user: User, key: str, row: WebSession | None = None):
        self.user = user
        self.key = key  # what the cookie holds; only its hash is stored
        self.row = row

    def get_id(self) -> str:
        return self.key

    @property
    def is_active(self) -> bool:
        return not self.user.is_disabled


def load_account(key: str) -> Account | None:
    """The cookie's session, if it is still live on the server (older cookies are not)."""
    row = sessions.current(key, session_lifetime())
    return Account(row.user, key, row) if row else None


def session_lifetime() -> sessions.Lifetime:
    conf = settings()
    return sessions.Lifetime(idle=conf.session_idle_minutes * 60, maximum=conf.session_max_hours * 3600)


def me() -> User:
    return current_user.user


def current_session() -> WebSession:
    return current_user.row


def settings():
    return current_app.extensions["privindex"].settings


def services():
    return current_app.extensions["privindex"]


def secret_key(data_dir: Path) -> bytes:
    """The session-signing key, made once and kept (0600) in the data dir."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_bytes()


def init_web(app: Flask) -> None:
    conf = app.extensions["privindex"].settings
    app.secret_key = secret_key(conf.data_dir)
    app.config.update(
        SESSION_COOKIE_NAME=conf.cookie_name("privindex_session"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=conf.secure_cookies,
        SESSION_COOKIE_DOMAIN=None,  # __Host- forbids a Domain; host-only in any case
        SESSION_COOKIE_PATH="/",  # __Host- requires Path=/ (whatever APPLICATION_ROOT says)
        PERMANENT_SESSION_LIFETIME=conf.session_max_hours * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=conf.secure_cookies,
    )
    csrf = CSRFProtect(app)
    for name, blueprint in app.blueprints.items():
        if name != "web":  # the upload API authenticates each request with a token, not a cookie
            csrf.exempt(blueprint)
    Babel(app, locale_selector=select_locale)
    manager = LoginManager(app)
    manager.user_loader(load_account)
    manager.login_view = "web.login"
    manager.login_message = None
    manager.unauthorized_handler(sign_in_first)
    app.extensions["privindex_limits"] = login_limiters(app.secret_key)

    app.url_map.converters["int"] = RowId

    app.register_blueprint(bp)
    app.context_processor(sign_out_offer)
    app.jinja_env.globals.update(
        format_time=format_time,
        format_date=format_day,
        format_decimal=format_decimal,
        page_url=page_url,
        languages=LANGUAGES,
        get_locale=get_locale,
        ngettext=ngettext,
    )
    app.after_request(security_headers)
    if conf.secure_cookies:
        app.after_request(strict_transport_security)

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template(
            "error.html",
            code=400,
            title=_("The form has expired"),
            message=_("Reload the page and try again."),
        ), 400


LANGUAGES = {"en": "English", "de": "Deutsch", "fr": "Français"}


def select_locale() -> str:
    """The user's saved choice, else this browser's (a choice made signed out, kept in
    the session), else the best of Accept-Language, else English."""
    if current_user.is_authenticated and current_user.user.locale in LANGUAGES:
        return current_user.user.locale
    if session.get("locale") in LANGUAGES:
        return session["locale"]
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


class RowId(IntegerConverter):
    """An <int:...> that fits an SQLite row id: a larger number is a 404, not an overflow (500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def security_headers(response):
    """Headers for every Flask answer (the Simple API sets its own minimal set)."""
    for name, value in WEB_SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def strict_transport_security(response):
    response.headers.setdefault(*HSTS)
    return response


@bp.before_app_request
def refuse_nul_characters():
    """A NUL in the path, the query or a form field is never meant: refused here, before
    any lookup (PostgreSQL refuses it in any string, which would be a 500 deep inside)."""
    values = [request.path, *request.args.values()]
    if request.blueprint == "web" and request.method == "POST":  # the upload API parses its own
        values += request.form.values()
    if any("\x00" in value for value in values):
        abort(400, _("The request holds a NUL character."))


@bp.before_app_request
def say_when_a_session_ended():
    """A cookie whose server-side session is gone (timed out, signed out elsewhere, ended by
    an admin): forget it, and say so on the sign-in page the visitor is sent to."""
    if (
        request.blueprint == "web"
        and request.endpoint != "web.static"
        and "_user_id" in session
        and not current_user.is_authenticated
    ):
        locale = session.get("locale")
        session.clear()
        if locale:
            session["locale"] = locale
        flash(_("Your session has ended. Please sign in again."), "info")


def sign_in_first():
    """Signed out (or the session ended): the sign-in page, then back to the page the
    visitor was on; after a form, the page that sent it (a POST address is no page)."""
    target = request.url if request.method == "GET" else request.referrer
    return redirect(url_for("web.login", next=safe_next(target)))


def sign_out_offer() -> dict:
    """After a factor changed, the next page a user sees offers to end their other sessions
    (once; only when there are some)."""
    if not session.pop(OFFER_SIGN_OUT, False) or not current_user.is_authenticated:
        return {"other_sessions": 0}
    return {"other_sessions": len(sessions.list_for(me(), session_lifetime())) - 1}


@bp.before_app_request
def enforce_two_factor_policy():
    """With require_2fa, a user without a second factor may only enrol one."""
    if not current_user.is_authenticated or request.blueprint != "web":
        return None
    if (
        settings().require_2fa
        and request.endpoint not in ENROLMENT_ENDPOINTS
        and not users.has_second_factor(me())
        and not session.get("provider_mfa")  # the identity provider's MFA counted (web/sso.py)
    ):
        flash(
            _(
                "This server requires a second factor. Add a security key or an authenticator app "
                "to continue."
            ),
            "warning",
        )
        return redirect(url_for("web.security"))
    return None


def recent_auth(view: Callable) -> Callable:
    """Ask for the password again when the last authentication is older than 15 minutes.

    A form sent meanwhile is not lost: the re-check page carries its fields as hidden
    inputs (the secrets excepted) and, once the password is right, the browser sends them
    again to the same address (a 307 keeps the method and the body), so the action runs
    through its view as any other POST, its CSRF check included. Nothing is kept on the
    server; the address rides along signed and expires after RESUME_SECONDS."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if time.time() - session.get("auth_at", 0) <= REAUTH_SECONDS:
            return view(*args, **kwargs)
        if request.method == "GET":
            return redirect(url_for("web.reauth", next=safe_next(request.url)))
        back = safe_next(request.referrer)
        if request.is_json or any(request.form.get(name) for name in SECRET_FIELDS):
            # a fetch() cannot be resumed, and passwords never go back into a page
            return redirect(url_for("web.reauth", next=back))
        return render_template(
            "reauth.html", next=back, resume=_resumes().dumps(request.path), fields=form_fields(REAUTH_OWN)
        )

    return wrapper


def resumed_path(token: str) -> str | None:
    """The address a re-check resumes, if its signed token is this server's and fresh."""
    try:
        path = _resumes().loads(token, max_age=RESUME_SECONDS)
    except BadData:
        return None
    return path if isinstance(path, str) and safe_next(path, "") == path else None


def _resumes() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="reauth-resume")


def safe_next(target: str | None, default: str | None = None) -> str:
    """A redirect target on this site only (no scheme, no host): never an open redirect."""
    default = default or url_for("web.projects")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.netloc and parts.netloc != request.host:
        return default
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path + (f"?{parts.query}" if parts.query else "")


def whole_number(text: str, low: int, high: int, message: str) -> int:
    """A number typed in a form or a query, from low to high, else a 400 saying message.
    ASCII digits only: str.isdigit() takes '²', which int() refuses, and a 400-digit
    number must never reach date arithmetic."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(high)) and low <= int(text) <= high):
        abort(400, message)
    return int(text)


def json_object() -> dict:
    """The request's JSON body if it is an object, else {}: a list or a number sent by
    hand must meet the same "missing" answer as an empty body, not an AttributeError."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def format_time(timestamp: float | None) -> str:
    if not timestamp:
        return _("never")
    from datetime import datetime

    return format_datetime(datetime.fromtimestamp(timestamp, UTC), "yyyy-MM-dd HH:mm 'UTC'")


def page_url(page: int) -> str:
    """This page's URL with another page number (other query arguments kept)."""
    args = request.args.to_dict()
    args["page"] = str(page)
    assert request.endpoint is not None  # a page being rendered has one
    values: dict[str, Any] = {**(request.view_args or {}), **args}
    return url_for(request.endpoint, **values)


def format_day(timestamp: float) -> str:
    """A date in the reader's language (e.g. 3 Dec 2025, 03.12.2025, 3 déc. 2025)."""
    from datetime import datetime

    return format_date(datetime.fromtimestamp(timestamp, UTC), "medium")


def humanize_wait(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return ngettext("%(num)d minute", "%(num)d minutes", minutes)


def limits():
    return current_app.extensions["privindex_limits"]
