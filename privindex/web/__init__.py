"""The web UI: sign-in with a second factor, and the pages where people look after their
keys, tokens and projects. `init_web(app)` wires it into the Flask app.

Sessions are Flask's signed cookies holding only ids and timestamps; anything that must be
single-use (pending sign-ins, WebAuthn challenges) lives in the database (twofactor.py).
The session id that flask-login stores embeds the user's session_version, so bumping it
(password change, disable, 2FA reset) ends every other session at once.
"""

from __future__ import annotations

import functools
import secrets
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import Babel, format_datetime, ngettext
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from privindex import accounts
from privindex.auth.ratelimit import login_limiters
from privindex.models import User

REAUTH_SECONDS = 15 * 60
SESSION_HOURS = 12

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

# Pages a signed-in user without a second factor may reach when require_2fa is on.
ENROLMENT_ENDPOINTS = {
    "web.security", "web.totp_setup", "web.totp_confirm", "web.key_options", "web.key_add",
    "web.logout", "web.reauth", "web.recovery_codes", "web.static",
}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class Account(UserMixin):
    """flask-login's view of a User."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def is_active(self) -> bool:
        return not self.user.is_disabled


def load_account(session_id: str) -> Account | None:
    user_id, _sep, version = session_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = User.get_or_none(User.id == int(user_id))
    if user is None or user.is_disabled or user.session_version != int(version):
        return None
    return Account(user)


def me() -> User:
    return current_user.user


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
        SESSION_COOKIE_NAME="privindex_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=conf.secure_cookies,
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=conf.secure_cookies,
    )
    csrf = CSRFProtect(app)
    for name, blueprint in app.blueprints.items():
        if name != "web":  # the upload API authenticates each request with a token, not a cookie
            csrf.exempt(blueprint)
    Babel(app)
    manager = LoginManager(app)
    manager.user_loader(load_account)
    manager.login_view = "web.login"
    manager.login_message = None
    app.extensions["privindex_limits"] = login_limiters()

    from privindex.web import account, admin, projects, signin  # noqa: F401  (routes)

    app.register_blueprint(bp)
    app.jinja_env.globals.update(format_time=format_time, ngettext=ngettext)
    app.after_request(security_headers)

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("message.html", title=_("The form has expired"),
                               message=_("Reload the page and try again.")), 400


def security_headers(response):
    """Headers for every Flask answer (the Simple API sets its own minimal set)."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.before_app_request
def enforce_two_factor_policy():
    """With require_2fa, a user without a second factor may only enrol one."""
    if not current_user.is_authenticated or request.blueprint != "web":
        return None
    if (settings().require_2fa and request.endpoint not in ENROLMENT_ENDPOINTS
            and not accounts.has_second_factor(me())):
        flash(_("This server requires a second factor. Add a security key or an authenticator app "
                "to continue."), "warning")
        return redirect(url_for("web.security"))
    return None


def recent_auth(view: Callable) -> Callable:
    """Ask for the password again when the last authentication is older than 15 minutes."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if time.time() - session.get("auth_at", 0) > REAUTH_SECONDS:
            target = request.url if request.method == "GET" else request.referrer
            return redirect(url_for("web.reauth", next=safe_next(target)))
        return view(*args, **kwargs)

    return wrapper


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


def format_time(timestamp: float | None) -> str:
    if not timestamp:
        return _("never")
    from datetime import datetime, timezone

    return format_datetime(datetime.fromtimestamp(timestamp, timezone.utc), "yyyy-MM-dd HH:mm 'UTC'")


def humanize_wait(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return ngettext("%(num)d minute", "%(num)d minutes", minutes)


def limits():
    return current_app.extensions["privindex_limits"]
