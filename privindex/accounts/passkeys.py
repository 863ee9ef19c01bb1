"""Passkeys: a security key registered as a discoverable credential with user verification,
which signs in alone (no username, no password) and counts as both factors.

The sign-in ceremony starts before anyone is known, so its challenge is a `PasskeyChallenge`
row (single use, 5 minutes), not a user's pending state. The browser's answer names its
user by the user handle the key stored at registration; that claim is only trusted once the
signature verifies against that user's stored passkey, with the authenticator's
user-verified (UV) flag set: without it the key proved possession only, one factor.

A signed-in user with a passkey confirms a sensitive action with it (`reauth_options`,
`verify_reauth`): the same UV assertion, of one of their own passkeys, the challenge kept
as their pending state.

A key enrolled as a plain second factor becomes a passkey by being registered again as one
(`enrol`, `replace=` its id): its row keeps its name and takes the new credential.
"""

from __future__ import annotations

import json
import secrets
import time

import peewee

from privindex.accounts.second_factors import (
    PENDING_SECONDS,
    KeyRejected,
    add_key,
    clean_label,
    create_pending,
    hash_key,
    stored,
    take_pending,
    take_registration_challenge,
)
from privindex.accounts.users import AccountError
from privindex.auth import webauthn as keys
from privindex.db.connection import database
from privindex.db.models import PasskeyChallenge, SecurityKey, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag


class PasskeyRefused(KeyRejected):
    """A passkey sign-in that must not go through; `reason` is the audit trail's word."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- registration ---------------------------------------------------------------------------------


def enrol(
    user: User,
    pending_key: str | None,
    label: str,
    credential: dict,
    rp_id: str,
    origin: str,
    ctx: audit.Context,
    replace: int | None = None,
) -> list[str] | None:
    """Verify a passkey registration (options from second_factors.registration_options
    with passkey=True; its challenge spent whatever the outcome; UV required) and add it,
    or turn the user's key `replace` into it. Returns new recovery codes when it is the
    first second factor. Raises AccountError or KeyRejected."""
    challenge = take_registration_challenge(user, pending_key, passkey=True)
    old = None
    if replace is not None:
        old = SecurityKey.get_or_none(SecurityKey.id == replace, SecurityKey.user == user)
        if old is None:
            raise AccountError(_("there is no such security key"))
    else:
        label = clean_label(label)
    try:
        new = keys.verify_registration(credential, challenge, rp_id, origin, require_uv=True)
    except KeyRejected as exc:
        if "user verification" not in str(exc).lower():
            raise
        raise KeyRejected(
            _(
                "This key did not check a PIN or fingerprint, so it cannot be a passkey. "
                "It still works as a security key after your password."
            )
        ) from None
    if old is None:
        return add_key(user, label, new, ctx, discoverable=True)
    with database.atomic():
        if (
            SecurityKey.select()
            .where(SecurityKey.credential_id == new.credential_id, SecurityKey.id != old.id)
            .exists()
        ):
            raise AccountError(_("this security key is already enrolled"))
        SecurityKey.update(
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            transports=json.dumps(new.transports),
            aaguid=new.aaguid,
            discoverable=True,
        ).where(SecurityKey.id == old.id).execute()
        audit.record(
            Tag.USER_2FA_ADD, ctx, subject=user.username, method="passkey", label=old.label, replaced=True
        )
    return None


# -- sign-in --------------------------------------------------------------------------------------


def sign_in_options(rp_id: str) -> tuple[dict, str]:
    """Options for a passkey sign-in (empty allowCredentials, UV required) and the key the
    browser keeps to name the single-use challenge."""
    options, challenge = keys.authentication_options(rp_id, None)
    now = time.time()
    PasskeyChallenge.delete().where(PasskeyChallenge.expires_at < now).execute()
    key = secrets.token_urlsafe(32)
    PasskeyChallenge.create(key_hash=hash_key(key), challenge=challenge, expires_at=now + PENDING_SECONDS)
    return options, key


def take_challenge(key: str | None) -> bytes | None:
    """The challenge, deleted as it is read: of two uses, one finds it."""
    if not key:
        return None
    row = PasskeyChallenge.get_or_none(
        PasskeyChallenge.key_hash == hash_key(key), PasskeyChallenge.expires_at > time.time()
    )
    if row is None:
        return None
    deleted = PasskeyChallenge.delete().where(PasskeyChallenge.key_hash == row.key_hash).execute()
    return bytes(row.challenge) if deleted == 1 else None


def claimed_user(credential: dict) -> User | None:
    """The user whose passkey the answer claims to be (by its user handle), not yet verified:
    whom to count a failure against."""
    try:
        handle = keys.user_handle_of(credential)
    except KeyRejected:
        return None
    if not handle:
        return None
    return User.get_or_none(User.webauthn_user_handle == handle)


def verify_sign_in(
    user: User | None, challenge: bytes, credential: dict, rp_id: str, origin: str, ctx: audit.Context
) -> SecurityKey:
    """The user's passkey that signed challenge with user verification; its counter is
    stored. Raises PasskeyRefused (unknown passkey, no UV, disabled user) or KeyRejected."""
    unknown = PasskeyRefused(_("This passkey is not registered here."), "unknown_passkey")
    if user is None:
        raise unknown
    key = SecurityKey.get_or_none(
        SecurityKey.user == user,
        SecurityKey.credential_id == keys.credential_id_of(credential),
        SecurityKey.discoverable == True,  # noqa: E712 (peewee builds SQL from ==)
    )
    if key is None:
        raise unknown
    try:
        new_count = keys.verify_authentication(
            credential, challenge, rp_id, origin, stored(key), require_uv=True
        )
    except keys.SignCountRegression:
        audit.record(Tag.WEBAUTHN_SIGN_COUNT_REGRESSION, ctx, subject=user.username, label=key.label)
        raise
    except KeyRejected as exc:
        if "user verification" in str(exc).lower():
            raise PasskeyRefused(
                _("The key did not check your PIN or fingerprint, so it cannot sign you in alone."),
                "no_user_verification",
            ) from None
        raise
    if user.is_disabled:
        raise PasskeyRefused(_("This passkey is not registered here."), "disabled")
    SecurityKey.update(sign_count=new_count, last_used_at=time.time()).where(
        SecurityKey.id == key.id
    ).execute()
    return key


def _passkeys_of(user: User) -> peewee.ModelSelect:
    return SecurityKey.select().where(
        SecurityKey.user == user,
        SecurityKey.discoverable == True,  # noqa: E712 (peewee builds SQL from ==)
    )


def has_passkey(user: User) -> bool:
    return _passkeys_of(user).exists()


def reauth_options(user: User, rp_id: str) -> tuple[dict, str]:
    """Options for a signed-in user to confirm it is them with one of their passkeys (UV
    required), and the pending key naming the single-use challenge."""
    options, challenge = keys.authentication_options(
        rp_id, [stored(k) for k in _passkeys_of(user)], require_uv=True
    )
    return options, create_pending(user, "passkey-reauth", challenge=challenge)


def verify_reauth(
    user: User, pending_key: str | None, credential: dict, rp_id: str, origin: str, ctx: audit.Context
) -> SecurityKey:
    """The user's passkey that signed the challenge of reauth_options (spent whatever the
    outcome) with user verification. Raises PasskeyRefused or KeyRejected."""
    pending = take_pending(pending_key, "passkey-reauth")
    if pending is None or pending.user_id != user.id:
        raise PasskeyRefused(_("The confirmation has expired; try again."), "expired")
    return verify_sign_in(user, bytes(pending.challenge), credential, rp_id, origin, ctx)


def drop_challenge(key: str | None) -> None:
    """Forget a sign-in ceremony the browser abandoned (it asks for a new one)."""
    if key:
        PasskeyChallenge.delete().where(PasskeyChallenge.key_hash == hash_key(key)).execute()
