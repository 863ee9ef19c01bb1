"""A form-filling HTTP client for the web UI, for server-side tests without a browser."""

from __future__ import annotations

import html
import re
import time

import pyotp
import requests

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')


class WebClient:
    """One browser session: keeps cookies, sends the page's CSRF token with every form."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.last: requests.Response | None = None

    def get(self, path: str, **kwargs) -> requests.Response:
        self.last = self.session.get(self.base + path, timeout=30, **kwargs)
        return self.last

    def post(
        self, path: str, data: dict | None = None, page: str | None = None, **kwargs
    ) -> requests.Response:
        """POST a form with the session's CSRF token (taken from page, or from /login,
        which has no side effects)."""
        token = _CSRF.search(page or self.session.get(self.base + "/login", timeout=30).text).group(1)
        form = {"csrf_token": token, **(data or {})}
        self.last = self.session.post(self.base + path, data=form, timeout=30, **kwargs)
        return self.last

    def login(
        self, username: str, password: str, totp: pyotp.TOTP | None = None, at: float | None = None
    ) -> requests.Response:
        resp = self.post("/login", {"username": username, "password": password})
        if totp is not None and resp.url.endswith("/login/2fa"):
            resp = self.post("/login/2fa/totp", {"code": totp.at(at or time.time())})
        return resp

    def enrol_totp(self) -> tuple[pyotp.TOTP, list[str], float]:
        """Set up TOTP for the signed-in user; returns the app, the recovery codes and the
        time whose code was used (that time step cannot sign in again)."""
        page = self.post("/account/totp/new", page=self.get("/account/security").text).text
        totp = pyotp.TOTP(_SECRET.search(page).group(1).replace(" ", ""))
        now = time.time()
        resp = self.post("/account/totp", {"code": totp.at(now)}, page=page)
        codes = re.findall(r"<li><code>([0-9a-f-]{19})</code></li>", resp.text)
        return totp, codes, now

    def flashes(self, response: requests.Response | None = None) -> list[str]:
        text = (response or self.last).text
        return [
            html.unescape(m) for m in re.findall(r'<p class="flash [a-z]+" role="[a-z]+">(.*?)</p>', text)
        ]


PASSWORD = "correct horse battery"  # what every test user signs in with
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the page's form posting to action (a confirmation's or a
    re-check's replayed form), the CSRF token left out (WebClient.post sends its own)."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None, f"no form posting to {action}"
    return {n: html.unescape(v) for n, v in _HIDDEN.findall(form.group(1)) if n != "csrf_token"}


def aged_session(cookie: str, server, minutes: int = 20) -> str:
    """A session cookie's value, re-signed with the server's key as if its sign-in were
    `minutes` old (so the password re-check is due)."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    from privindex.web.blueprint import secret_key

    app = Flask("t")
    app.secret_key = secret_key(server.data_dir)
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    session = serializer.loads(cookie)
    session["auth_at"] = time.time() - minutes * 60
    return serializer.dumps(session)


def age_sign_in(client: WebClient, server, minutes: int = 20) -> None:
    """Pretend the client signed in `minutes` ago."""
    for cookie in client.session.cookies:
        if cookie.name == "privindex_session":
            cookie.value = aged_session(cookie.value, server, minutes)


def user_with_totp(
    server, name: str, admin: bool = False, password: str = PASSWORD
) -> tuple[WebClient, pyotp.TOTP, list[str], float]:
    """A user made with the CLI who signed in and enrolled TOTP through the web UI:
    (their signed-in client, their authenticator, the recovery codes shown, when)."""
    from conftest import add_user

    add_user(server, name, password, admin=admin)
    client = WebClient(server.url)
    client.login(name, password)
    totp, codes, used_at = client.enrol_totp()
    assert len(codes) == 8, "the first second factor comes with 8 recovery codes"
    return client, totp, codes, used_at


def uploader(server, name: str, password: str = PASSWORD, admin: bool = False) -> str:
    """A user with a second factor (enrolled through the web UI) and an upload token."""
    from conftest import privindex_cli

    user_with_totp(server, name, admin=admin, password=password)
    return privindex_cli(server, "token", "create", name).stdout.strip()
