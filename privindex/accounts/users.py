"""Users: creating, changing and checking them, each change audited.

Shared by the CLI and the web UI, so a rule (a password policy, what disabling ends) lives in
one place. Errors are AccountError with a message fit for the person at the keyboard.
"""

from __future__ import annotations

import re
import secrets
import time

from privindex.accounts import sessions
from privindex.auth import passwords
from privindex.db.connection import database
from privindex.db.models import ApiToken, PendingAuth, SecurityKey, SsoLink, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,49}")
# pending state a password change makes stale: half-finished sign-ins, unused reset links
SIGN_IN_PURPOSES = ("login", "webauthn-login", "password-reset")


class AccountError(Exception):
    """A request about accounts that cannot be done; the message says what to do. A web
    page shows the message alone; the CLI adds `cli_hint` (a command to run next), which
    would send a web user to a terminal for what the page beside it shows."""

    def __init__(self, message: str, cli_hint: str = ""):
        super().__init__(message)
        self.cli_hint = cli_hint

    def for_cli(self) -> str:
        return f"{self} ({self.cli_hint})" if self.cli_hint else str(self)


def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise AccountError(
            _(
                "a username has 1-50 characters: letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        )
    return name


def find_user(username: str) -> User | None:
    try:
        return User.get_or_none(User.username == normalize_username(username))
    except AccountError:
        return None


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise AccountError(_("there is no user '%(user)s'", user=username), "see: privindex user list")
    return user


def create_user(
    username: str,
    password: str | None,
    ctx: audit.Context,
    is_admin: bool = False,
    provider: str | None = None,
) -> User:
    """A new user; provider: the identity provider (issuer) that made it, for a user who signs
    in through it and has no password."""
    name = normalize_username(username)
    if password is not None and (problem := passwords.password_problem(password, name)):
        raise AccountError(problem)
    with database.atomic():
        if User.select().where(User.username == name).exists():
            raise AccountError(_("the user '%(user)s' already exists", user=name))
        user = User.create(
            username=name,
            password_hash=passwords.hash_password(password) if password is not None else None,
            is_admin=is_admin,
            created_at=time.time(),
            webauthn_user_handle=secrets.token_bytes(64),
        )
        audit.record(
            Tag.USER_CREATE, ctx, subject=name, admin=is_admin, **({"provider": provider} if provider else {})
        )
    return user


def check_password(user: User | None, password: str) -> bool:
    """Whether password is the user's (an unknown user costs the same time); upgrades a hash
    made with older parameters on success."""
    ok, new_hash = passwords.verify_password(password, user.password_hash if user else None)
    if ok and new_hash and user is not None:
        User.update(password_hash=new_hash).where(User.id == user.id).execute()
    return ok


def provider_only(user: User) -> str | None:
    """The issuer of the identity provider a user without a password of their own signs in
    through (made by the provider, or linked before setting one); else None. Such a user gets
    no password by reset and no password sign-in: that would skip the provider's checks."""
    if user.password_hash is not None:
        return None
    link = SsoLink.select(SsoLink.issuer).where(SsoLink.user == user).first()
    return link.issuer if link else None


def record_login(user: User) -> None:
    now = time.time()
    User.update(last_login_at=now).where(User.id == user.id).execute()
    user.last_login_at = now


def set_password(
    user: User,
    password: str,
    ctx: audit.Context,
    keep_session: int | None = None,
    tag: Tag = Tag.USER_PASSWORD_CHANGE,
) -> None:
    """Set a new password; every web session of the user ends except keep_session (the one
    that changed it), and half-finished sign-ins with the old password are dropped.
    tag: user:password:reset when a reset link set it."""
    if problem := passwords.password_problem(password, user.username):
        raise AccountError(problem)
    with database.atomic():
        User.update(password_hash=passwords.hash_password(password)).where(User.id == user.id).execute()
        audit.record(tag, ctx, subject=user.username)
        sessions.end_all(user, ctx, reason="password_change", keep_id=keep_session)
        PendingAuth.delete().where(
            PendingAuth.user == user, PendingAuth.purpose.in_(SIGN_IN_PURPOSES)
        ).execute()


def set_disabled(user: User, disabled: bool, ctx: audit.Context) -> int:
    """Disable or enable. Disabling is final for credentials: the user's sessions, pending
    sign-ins, set-up links and API tokens all end (tokens are revoked, audited), so enabling
    again brings none of them back. Returns how many tokens the disable revoked."""
    with database.atomic():
        row = User.get_by_id(user.id)
        if row.is_disabled == disabled:  # enabling twice must not revoke an active user's tokens
            raise AccountError(
                _("'%(user)s' is already disabled", user=user.username)
                if disabled
                else _("'%(user)s' is not disabled", user=user.username)
            )
        if disabled:
            User.update(is_disabled=True, disabled_at=time.time()).where(User.id == user.id).execute()
            audit.record(Tag.USER_DISABLE, ctx, subject=user.username)
            sessions.end_all(user, ctx, reason="disabled")
            PendingAuth.delete().where(PendingAuth.user == user).execute()
            revoked = revoke_tokens(user, ctx, reason="user_disabled")
        else:
            if row.removed_at is not None:
                raise AccountError(
                    _(
                        "'%(user)s' was removed and cannot be enabled again; add a new user",
                        user=user.username,
                    )
                )
            # tokens still active were issued before the disable (a disabled user gets none)
            revoke_tokens(user, ctx, reason="user_disabled")
            since = row.disabled_at if row.disabled_at is not None else 0
            revoked = ApiToken.select().where(ApiToken.user == user, ApiToken.revoked_at >= since).count()
            User.update(is_disabled=False).where(User.id == user.id).execute()
            audit.record(Tag.USER_ENABLE, ctx, subject=user.username, tokens_revoked=revoked)
    user.is_disabled = disabled
    return revoked


def set_admin(user: User, is_admin: bool, ctx: audit.Context) -> None:
    """Make a user an admin or take it back; the last active admin stays one, so someone
    can still manage users from the web."""
    with database.atomic():
        row = User.get_by_id(user.id)
        if row.removed_at is not None or row.is_disabled:
            raise AccountError(_("'%(user)s' is disabled; enable them first", user=user.username))
        if row.is_admin == is_admin:
            raise AccountError(
                _("'%(user)s' is already an admin", user=user.username)
                if is_admin
                else _("'%(user)s' is not an admin", user=user.username)
            )
        admins = User.select().where(User.is_admin, ~User.is_disabled).count()
        if not is_admin and admins <= 1:
            raise AccountError(
                _("'%(user)s' is the last admin; make another admin first", user=user.username)
            )
        User.update(is_admin=is_admin).where(User.id == user.id).execute()
        audit.record(Tag.USER_ADMIN_GRANT if is_admin else Tag.USER_ADMIN_REVOKE, ctx, subject=user.username)
    user.is_admin = is_admin


def revoke_tokens(user: User, ctx: audit.Context, reason: str) -> int:
    """Revoke every token of the user that still works (disabling, removing); each audited."""
    now = time.time()
    live = list(
        ApiToken.select().where(
            ApiToken.user == user,
            ApiToken.revoked_at.is_null(),
            ApiToken.expires_at.is_null() | (ApiToken.expires_at > now),
        )
    )
    for token in live:
        ApiToken.update(revoked_at=now).where(ApiToken.id == token.id).execute()
        audit.record(
            Tag.TOKEN_REVOKE,
            ctx,
            subject=user.username,
            token=token.id,
            description=token.description,
            reason=reason,
        )
    return len(live)


def set_locale(user: User, locale: str) -> None:
    """The language the user reads the pages in (the web layer knows which exist)."""
    User.update(locale=locale).where(User.id == user.id).execute()
    user.locale = locale


def list_users() -> list[User]:
    return list(User.select().order_by(User.username))


def second_factor_count(user: User) -> int:
    """How many second factors (a TOTP app, each security key) the user has."""
    return (1 if user.totp_secret else 0) + SecurityKey.select().where(SecurityKey.user == user).count()


def has_own_second_factor(user: User) -> bool:
    """Whether privindex itself can ask the user for a second factor (a TOTP app, a key)."""
    return bool(user.totp_secret) or SecurityKey.select().where(SecurityKey.user == user).exists()


def has_second_factor(user: User) -> bool:
    """The one answer to "has a second factor", for uploads, tokens, the policy and lists:
    privindex's own, or the identity provider's MFA when the provider is trusted for it
    (trust_provider_mfa) and the user's last sign-in through it carried it (oidc/sso.py)."""
    return (
        has_own_second_factor(user)
        or SsoLink.select().where(SsoLink.user == user, SsoLink.provider_mfa == True).exists()  # noqa: E712
    )


def forget_provider_mfa(user: User) -> None:
    """A sign-in without the provider's MFA: it no longer stands for the second factor."""
    SsoLink.update(provider_mfa=False).where(SsoLink.user == user).execute()
