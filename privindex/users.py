"""Users and API tokens: creating, changing and checking them, each change audited.

Shared by the CLI, the upload view and the web UI, so a rule (a password policy, what a
disabled user may do) lives in one place. Errors are AccountError with a message fit for
the person at the keyboard.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

import peewee
from packaging.utils import canonicalize_name

from privindex import audit
from privindex.audit import Tag
from privindex.auth import passwords, tokens
from privindex.db import database
from privindex.i18n import _
from privindex.models import ApiToken, DistFile, Project, ProjectRole, SecurityKey, TokenProject, User

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,49}")
LAST_USED_RESOLUTION = 60.0  # seconds; last_used_at is not rewritten on every request


class AccountError(Exception):
    """A request about accounts that cannot be done; the message says what to do."""


# -- users -------------------------------------------------------------------------------------

def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise AccountError(_(
            "a username has 1-50 characters: letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        ))
    return name


def find_user(username: str) -> User | None:
    try:
        return User.get_or_none(User.username == normalize_username(username))
    except AccountError:
        return None


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise AccountError(_("there is no user '%(user)s' (see: privindex user list)", user=username))
    return user


def create_user(username: str, password: str | None, ctx: audit.Context, is_admin: bool = False) -> User:
    name = normalize_username(username)
    if password is not None and (problem := passwords.password_problem(password, name)):
        raise AccountError(problem)
    with database.atomic():
        if User.select().where(User.username == name).exists():
            raise AccountError(_("the user '%(user)s' already exists", user=name))
        user = User.create(
            username=name,
            password_hash=passwords.hash_password(password) if password is not None else None,
            is_admin=is_admin, created_at=time.time(),
            webauthn_user_handle=secrets.token_bytes(64),
        )
        audit.record(Tag.USER_CREATE, ctx, subject=name, admin=is_admin)
    return user


def set_password(user: User, password: str, ctx: audit.Context) -> None:
    """Set a new password and end every web session of the user."""
    if problem := passwords.password_problem(password, user.username):
        raise AccountError(problem)
    with database.atomic():
        User.update(password_hash=passwords.hash_password(password),
                    session_version=User.session_version + 1).where(User.id == user.id).execute()
        audit.record(Tag.USER_PASSWORD_CHANGE, ctx, subject=user.username)
    user.session_version += 1


def set_disabled(user: User, disabled: bool, ctx: audit.Context) -> None:
    """A disabled user can neither sign in nor use any of their tokens, from the next request."""
    with database.atomic():
        User.update(is_disabled=disabled, session_version=User.session_version + 1).where(
            User.id == user.id).execute()
        audit.record(Tag.USER_DISABLE if disabled else Tag.USER_ENABLE, ctx, subject=user.username)
    user.is_disabled = disabled


def list_users() -> list[User]:
    return list(User.select().order_by(User.username))


# -- projects ----------------------------------------------------------------------------------

def project_exists(name: str) -> bool:
    """A project exists if someone has rights on it or if the store holds files of it."""
    return (Project.select().where(Project.name == name).exists()
            or DistFile.select().where(DistFile.project == name).exists())


def user_role(user: User, project: Project | None) -> str | None:
    if project is None:
        return None
    role = ProjectRole.get_or_none(ProjectRole.project == project, ProjectRole.user == user)
    return role.role if role else None


# -- tokens ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenAuth:
    """A token that checked out, and whose it is."""

    token: ApiToken
    user: User

    def scope(self) -> set[str] | None:
        """Normalized names of the projects the token is limited to; None = all the user's."""
        if self.token.all_projects:
            return None
        return {link.project.name for link in
                TokenProject.select(TokenProject, Project).join(Project).where(TokenProject.token == self.token)}


class TokenRejected(Exception):
    """A token that does not authenticate; the message is safe to show."""


def has_second_factor(user: User) -> bool:
    return bool(user.totp_secret) or SecurityKey.select().where(SecurityKey.user == user).exists()


def create_token(user: User, ctx: audit.Context, description: str = "", projects: list[str] = (),
                 read_only: bool = False, expires_days: int | None = None,
                 require_2fa: bool = False) -> tuple[ApiToken, str]:
    """Make a token; returns the row and the secret, which is never stored and never shown again.

    With require_2fa, a user without a second factor gets read-only tokens only: an upload
    token would be refused at every upload.
    """
    if user.is_disabled:
        raise AccountError(_("the user '%(user)s' is disabled", user=user.username))
    if require_2fa and not read_only and not has_second_factor(user):
        raise AccountError(_("'%(user)s' has no second factor, and this server requires one to upload: "
                             "sign in to the web UI and add a security key or an authenticator app first "
                             "(or make a --read-only token)", user=user.username))
    if expires_days is not None and expires_days < 1:
        raise AccountError(_("a token's expiry is a whole number of days, at least 1"))
    if len(description) > 200:
        raise AccountError(_("a token description has at most 200 characters"))
    names = sorted({canonicalize_name(p) for p in projects})
    secret = tokens.generate()
    with database.atomic():
        scoped = []
        for name in names:
            project = Project.get_or_none(Project.name == name)
            if project is None and user.is_admin and project_exists(name):
                project = Project.create(name=name, created_at=time.time())
                audit.record(Tag.PROJECT_CREATE, ctx, subject=name, project=name)
            if project is None or not (user.is_admin or user_role(user, project)):
                raise AccountError(_("'%(user)s' is not an owner or maintainer of a project '%(project)s'; "
                                     "a token can be limited only to such projects",
                                     user=user.username, project=name))
            scoped.append(project)
        now = time.time()
        token = ApiToken.create(
            user=user, token_hash=tokens.digest(secret), prefix=tokens.display_prefix(secret),
            description=description, read_only=read_only, all_projects=not scoped, created_at=now,
            expires_at=now + expires_days * 86400 if expires_days else None,
        )
        for project in scoped:
            TokenProject.create(token=token, project=project)
        audit.record(Tag.TOKEN_CREATE, ctx, subject=user.username,
                     token=token.id, description=description, projects=names or "all",
                     read_only=read_only, expires_days=expires_days)
    return token, secret


def revoke_token(token_id: int, ctx: audit.Context, owner: User | None = None) -> ApiToken:
    """Revoke a token (only the owner's, when owner is given). Revoking twice is harmless."""
    query = ApiToken.select().where(ApiToken.id == token_id)
    if owner is not None:
        query = query.where(ApiToken.user == owner)
    token = query.first()
    if token is None:
        raise AccountError(_("there is no token %(id)s (see: privindex token list)", id=token_id))
    if token.revoked_at is None:
        with database.atomic():
            token.revoked_at = time.time()
            token.save()
            audit.record(Tag.TOKEN_REVOKE, ctx, subject=token.user.username, token=token.id,
                         description=token.description)
    return token


def list_tokens(user: User | None = None) -> list[ApiToken]:
    query = ApiToken.select(ApiToken, User).join(User).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user == user)
    return list(query)


def token_status(token: ApiToken, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


_last_used_written: dict[int, float] = {}
_last_used_lock = threading.Lock()


def authenticate_token(secret: str) -> TokenAuth:
    """The token's row and user, or TokenRejected saying why (without echoing the token)."""
    if not tokens.looks_like_token(secret):
        raise TokenRejected("Invalid API token: a privindex token starts with 'pidx_'")
    wanted = tokens.digest(secret)
    try:
        token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.token_hash == wanted).get()
    except ApiToken.DoesNotExist:
        raise TokenRejected("Invalid or non-existent API token") from None
    if not hmac.compare_digest(token.token_hash, wanted):  # pragma: no cover - the lookup matched
        raise TokenRejected("Invalid or non-existent API token")
    status = token_status(token)
    if status != "active":
        raise TokenRejected(f"This API token {'has expired' if status == 'expired' else 'has been revoked'}; "
                            "create a new one")
    if token.user.is_disabled:
        raise TokenRejected(f"The account {token.user.username!r} is disabled")
    _touch(token)
    return TokenAuth(token, token.user)


def _touch(token: ApiToken) -> None:
    """Record last use, at most once a minute per token: reads must not queue on writes."""
    now = time.time()
    with _last_used_lock:
        if now - _last_used_written.get(token.id, 0.0) < LAST_USED_RESOLUTION:
            return
        _last_used_written[token.id] = now
    try:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    except peewee.OperationalError:  # a busy database must not fail the request itself
        pass
