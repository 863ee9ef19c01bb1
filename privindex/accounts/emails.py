"""A user's email addresses: add, verify, make primary, remove; each change audited.

An address belongs to one account (so a password-reset link finds exactly one; an unverified
one moves to the next account that adds it, so no one can block another's address), is kept in
lower case, and counts only once its owner followed the link mailed to it: a
`pending_auth` row found by the SHA-256 of the link's key, single-use, expiring
(second_factors' pending state). Notices go to the primary address once it is verified.
Addresses are checked by email-validator (syntax only: the mail server has the last word).
"""

from __future__ import annotations

import json
import time

from email_validator import EmailNotValidError, validate_email

from privindex.accounts import second_factors
from privindex.accounts.users import AccountError
from privindex.db.connection import database
from privindex.db.models import EmailAddress, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag

VERIFY_PURPOSE = "verify-email"
VERIFY_SECONDS = 48 * 3600
MAX_ADDRESSES = 10


def normalize_address(text: str) -> str:
    try:
        checked = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise AccountError(
            _("'%(address)s' is not an email address: %(why)s", address=text, why=exc)
        ) from None
    return checked.normalized.lower()


def addresses(user: User) -> list[EmailAddress]:
    """Primary first, then in the order they were added."""
    return list(
        EmailAddress.select()
        .where(EmailAddress.user == user)
        .order_by(EmailAddress.is_primary.desc(), EmailAddress.id)
    )


def primary_verified(user: User) -> str | None:
    """Where notices go: the primary address if it is verified, else None."""
    row = EmailAddress.get_or_none(
        EmailAddress.user == user,
        EmailAddress.is_primary == True,  # noqa: E712  (SQL, not Python)
        EmailAddress.verified_at.is_null(False),
    )
    return row.address if row else None


def find_by_address(text: str) -> EmailAddress | None:
    """The verified address text names (a reset link goes only to a proven address)."""
    try:
        address = normalize_address(text)
    except AccountError:
        return None
    return (
        EmailAddress.select(EmailAddress, User)
        .join(User)
        .where(EmailAddress.address == address, EmailAddress.verified_at.is_null(False))
        .first()
    )


def add_address(user: User, text: str, ctx: audit.Context, verified: bool = False) -> EmailAddress:
    """Add an address (the first one becomes primary). verified: an admin vouches for it."""
    address = normalize_address(text)
    previous = primary_verified(user)
    with database.atomic():
        existing = EmailAddress.get_or_none(EmailAddress.address == address)
        if existing is not None and existing.user_id != user.id:
            if existing.verified_at is not None:
                raise AccountError(_("this address belongs to another account"))
            # an unproven claim blocks no one: whoever follows a link first owns the address
            EmailAddress.delete().where(EmailAddress.id == existing.id).execute()
            audit.record(
                Tag.USER_EMAIL_REMOVE, ctx, subject=existing.user.username, address=address, reason="claimed"
            )
            if existing.is_primary:
                _promote_oldest_verified(existing.user, ctx)
            existing = None
        if existing is None:
            if EmailAddress.select().where(EmailAddress.user == user).count() >= MAX_ADDRESSES:
                raise AccountError(_("an account has at most %(n)d addresses", n=MAX_ADDRESSES))
            first = not EmailAddress.select().where(EmailAddress.user == user).exists()
            existing = EmailAddress.create(
                user=user, address=address, is_primary=first, created_at=time.time()
            )
            audit.record(Tag.USER_EMAIL_ADD, ctx, subject=user.username, address=address, previous=previous)
        elif not verified:
            raise AccountError(_("you have added this address already"))
        if verified and existing.verified_at is None:
            _mark_verified(existing, ctx)
    return existing


def _mark_verified(row: EmailAddress, ctx: audit.Context) -> None:
    row.verified_at = time.time()
    EmailAddress.update(verified_at=row.verified_at).where(EmailAddress.id == row.id).execute()
    audit.record(Tag.USER_EMAIL_VERIFY, ctx, subject=row.user.username, address=row.address)


def _promote_oldest_verified(user: User, ctx: audit.Context) -> None:
    """A user who lost their primary address: their oldest verified one, if any, is primary
    now, so their notices still reach them."""
    oldest = (
        EmailAddress.select()
        .where(EmailAddress.user == user, EmailAddress.verified_at.is_null(False))
        .order_by(EmailAddress.created_at, EmailAddress.id)
        .first()
    )
    if oldest is not None:
        EmailAddress.update(is_primary=True).where(EmailAddress.id == oldest.id).execute()
        audit.record(
            Tag.USER_EMAIL_PRIMARY, ctx, subject=user.username, address=oldest.address, reason="claimed"
        )


def _own(user: User, address_id: int) -> EmailAddress:
    row = EmailAddress.get_or_none(EmailAddress.id == address_id, EmailAddress.user == user)
    if row is None:
        raise AccountError(_("no such address"))
    return row


def verification_key(user: User, address_id: int) -> str:
    """A new single-use key proving the address (the link mailed to it carries it)."""
    row = _own(user, address_id)
    if row.verified_at is not None:
        raise AccountError(_("this address is verified already"))
    return second_factors.create_pending(
        user, VERIFY_PURPOSE, data={"address_id": row.id, "address": row.address}, seconds=VERIFY_SECONDS
    )


def verify(key: str, ctx: audit.Context) -> EmailAddress:
    """Follow a verification link: once, before it expires, for the address it was made for."""
    pending = second_factors.take_pending(key, VERIFY_PURPOSE)
    if pending is None:
        raise AccountError(_("this link is not valid: it was used already or has expired"))
    data = json.loads(pending.data or "{}")
    row = EmailAddress.get_or_none(
        EmailAddress.id == data.get("address_id"), EmailAddress.address == data.get("address")
    )
    if row is None or row.user_id != pending.user_id:
        raise AccountError(_("this address was removed from the account"))
    if row.verified_at is None:
        with database.atomic():
            _mark_verified(row, ctx.with_actor(ctx.actor or pending.user))
    return row


def make_primary(user: User, address_id: int, ctx: audit.Context) -> None:
    row = _own(user, address_id)
    if row.verified_at is None:
        raise AccountError(_("verify this address before making it primary"))
    previous = primary_verified(user)
    with database.atomic():
        EmailAddress.update(is_primary=False).where(EmailAddress.user == user).execute()
        EmailAddress.update(is_primary=True).where(EmailAddress.id == row.id).execute()
        audit.record(
            Tag.USER_EMAIL_PRIMARY, ctx, subject=user.username, address=row.address, previous=previous
        )


def remove(user: User, address_id: int, ctx: audit.Context) -> None:
    """Remove an address; the primary one only while it is the last."""
    row = _own(user, address_id)
    previous = primary_verified(user)
    with database.atomic():
        others = EmailAddress.select().where(EmailAddress.user == user, EmailAddress.id != row.id).exists()
        if row.is_primary and others:
            raise AccountError(_("make another address primary before removing this one"))
        EmailAddress.delete().where(EmailAddress.id == row.id).execute()
        audit.record(
            Tag.USER_EMAIL_REMOVE, ctx, subject=user.username, address=row.address, previous=previous
        )
