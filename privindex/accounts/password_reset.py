"""Password reset by email: a single-use link, valid 30 minutes, to a verified address.

The link's key is a `pending_auth` row (found by its SHA-256, deleted on use, expiring); any
password change drops the user's unused links. A reset sets the password and ends every
session of the user, and signs no one in: the next sign-in still asks for the second
factor, so a mailbox alone never opens an account that has one. Whether an account exists
is never told: the caller answers the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from privindex.accounts import emails, second_factors, users
from privindex.auth import passwords
from privindex.db.models import User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag

PURPOSE = "password-reset"
RESET_SECONDS = 30 * 60


@dataclass(frozen=True)
class ResetLink:
    user: User
    address: str
    key: str


def account_for(text: str) -> User | None:
    """The enabled account a "forgot password" form names (a verified address, or a username
    whose primary address is verified), for the rate limit and the link. A user who signs in
    only through an identity provider has none to reset (answered as an unknown account)."""
    row = emails.find_by_address(text) if "@" in text else None
    user = row.user if row else users.find_user(text)
    if user is None or user.is_disabled or users.provider_only(user):
        return None
    return user


def request_link(user: User, ctx: audit.Context) -> ResetLink | None:
    """A new reset key for user, or None when they have no verified primary address."""
    address = emails.primary_verified(user)
    if address is None:
        return None
    key = second_factors.create_pending(user, PURPOSE, seconds=RESET_SECONDS)
    audit.record(Tag.USER_PASSWORD_RESET_REQUEST, ctx, subject=user.username, address=address)
    return ResetLink(user, address, key)


def link_user(key: str) -> User | None:
    """Whose link this is, while it is valid (it stays valid until used)."""
    pending = second_factors.peek_pending(key, PURPOSE)
    if pending is None or pending.user.is_disabled or users.provider_only(pending.user):
        return None
    return pending.user


def reset(key: str, password: str, ctx: audit.Context) -> User:
    """Use the link once: set the password, end every session (audited as user:password:reset)."""
    user = link_user(key)
    if user is None:
        raise users.AccountError(_("This link is not valid: it was used already or has expired."))
    if problem := passwords.password_problem(password, user.username):
        raise users.AccountError(problem)  # the link stays valid for a better password
    if second_factors.take_pending(key, PURPOSE) is None:  # used meanwhile
        raise users.AccountError(_("This link is not valid: it was used already or has expired."))
    users.set_password(user, password, ctx.with_actor(user), tag=Tag.USER_PASSWORD_RESET)
    return user
