"""Second factors (TOTP, security keys, recovery codes) and the short-lived server-side
state of sign-ins, on top of the auth/ helpers. Every change is audited.

Pending state (a half-finished sign-in, a WebAuthn challenge, a password set-up link)
lives in the database, found by the SHA-256 of a random key that only the browser holds:
it expires, and `take_pending` deletes it as it reads it, so it can be used once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from privindex.accounts import sessions
from privindex.accounts.users import AccountError, second_factor_count
from privindex.auth import recovery, totp
from privindex.auth import webauthn as keys
from privindex.db.connection import database
from privindex.db.models import PendingAuth, RecoveryCode, SecurityKey, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag

PENDING_SECONDS = 300
LABEL_MAX = 64

KeyRejected = keys.KeyRejected  # what a failed security-key ceremony raises; the message is safe to show


# -- pending state --------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_pending(
    user: User,
    purpose: str,
    challenge: bytes | None = None,
    data: dict | None = None,
    seconds: int = PENDING_SECONDS,
) -> str:
    """Store pending state; returns the key the browser keeps (in its session)."""
    now = time.time()
    PendingAuth.delete().where(PendingAuth.expires_at < now).execute()
    key = secrets.token_urlsafe(32)
    PendingAuth.create(
        key_hash=hash_key(key),
        user=user,
        purpose=purpose,
        challenge=challenge,
        data=json.dumps(data or {}),
        expires_at=now + seconds,
    )
    return key


def peek_pending(key: str | None, purpose: str) -> PendingAuth | None:
    if not key:
        return None
    return (
        PendingAuth.select(PendingAuth, User)
        .join(User)
        .where(
            PendingAuth.key_hash == hash_key(key),
            PendingAuth.purpose == purpose,
            PendingAuth.expires_at > time.time(),
        )
        .first()
    )


def take_pending(key: str | None, purpose: str) -> PendingAuth | None:
    """Read and delete pending state in one go: a second use finds nothing."""
    pending = peek_pending(key, purpose)
    if pending is None:
        return None
    deleted = PendingAuth.delete().where(PendingAuth.id == pending.id).execute()
    return pending if deleted == 1 else None


def drop_pending(key: str | None) -> None:
    if key:
        PendingAuth.delete().where(PendingAuth.key_hash == hash_key(key)).execute()


# -- what a user has ---------------------------------------------------------------------------


def user_keys(user: User) -> list[SecurityKey]:
    return list(SecurityKey.select().where(SecurityKey.user == user).order_by(SecurityKey.created_at))


def stored(key: SecurityKey) -> keys.StoredKey:
    return keys.StoredKey(
        bytes(key.credential_id), bytes(key.public_key), key.sign_count, json.loads(key.transports)
    )


def unused_recovery_codes(user: User) -> int:
    return RecoveryCode.select().where(RecoveryCode.user == user, RecoveryCode.used_at.is_null()).count()


def _check_can_remove(user: User, require_2fa: bool) -> None:
    if require_2fa and second_factor_count(user) <= 1:
        raise AccountError(
            _(
                "this is your last second factor and this server requires one: add "
                "another security key or an authenticator app first"
            )
        )


# -- recovery codes ------------------------------------------------------------------------------


def regenerate_recovery_codes(user: User, ctx: audit.Context) -> list[str]:
    """Replace all the user's recovery codes; returns the new ones, to show once."""
    codes = recovery.generate()
    now = time.time()
    with database.atomic():
        had = RecoveryCode.delete().where(RecoveryCode.user == user).execute()
        RecoveryCode.insert_many(
            [{"user": user, "code_hash": recovery.stored_form(c), "created_at": now} for c in codes]
        ).execute()
        audit.record(Tag.USER_RECOVERY_CODES_GENERATE, ctx, subject=user.username, replaced=bool(had))
    return codes


def use_recovery_code(user: User, code: str, ctx: audit.Context) -> bool:
    """Burn the unused code that matches (each hash is salted: checked one by one)."""
    cleaned = recovery.clean(code)
    if cleaned is None:
        return False
    unused = RecoveryCode.select(RecoveryCode.id, RecoveryCode.code_hash).where(
        RecoveryCode.user == user, RecoveryCode.used_at.is_null()
    )
    match = next((row.id for row in unused if recovery.matches(cleaned, row.code_hash)), None)
    if match is None:
        return False
    used = (  # conditional: of two sign-ins racing with one code, one wins
        RecoveryCode.update(used_at=time.time())
        .where(RecoveryCode.id == match, RecoveryCode.used_at.is_null())
        .execute()
    )
    if used == 1:
        audit.record(
            Tag.USER_RECOVERY_CODE_USE, ctx, subject=user.username, remaining=unused_recovery_codes(user)
        )
        return True
    return False


def _first_factor_codes(user: User, ctx: audit.Context) -> list[str] | None:
    """Recovery codes come with the first second factor (and only then, automatically)."""
    if second_factor_count(user) == 1 and unused_recovery_codes(user) == 0:
        return regenerate_recovery_codes(user, ctx)
    return None


# -- TOTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpSetup:
    """What the set-up page shows: the secret as a QR code and typed in groups of four."""

    secret: str
    qr_svg: str
    spaced: str


def start_totp_setup(user: User) -> tuple[str, TotpSetup]:
    """A new secret, kept pending (not on the user) until a code proves the app has it;
    returns the pending key for the browser and what to show."""
    secret = totp.new_secret()
    return create_pending(user, "totp-setup", data={"secret": secret}), totp_setup(user, secret)


def pending_totp_secret(key: str | None, user: User) -> str | None:
    pending = peek_pending(key, "totp-setup")
    return json.loads(pending.data)["secret"] if pending is not None and pending.user_id == user.id else None


def totp_setup(user: User, secret: str) -> TotpSetup:
    uri = totp.provisioning_uri(secret, user.username)
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return TotpSetup(secret, totp.qr_svg(uri), spaced)


def enable_totp(user: User, secret: str, code: str, ctx: audit.Context) -> list[str] | None:
    """Save a TOTP secret once a code from the app proves it was set up; returns new
    recovery codes when this is the user's first second factor."""
    step = totp.matching_step(secret, code)
    if step is None:
        if totp.out_of_sync(secret, code):
            raise AccountError(
                _(
                    "that code is for another time: check the clock of the device "
                    "running your authenticator app"
                )
            )
        raise AccountError(_("that code is not right; type the 6 digits the app shows now"))
    with database.atomic():
        replaced = bool(User.get_by_id(user.id).totp_secret)
        User.update(totp_secret=secret, totp_last_counter=step, totp_enabled_at=time.time()).where(
            User.id == user.id
        ).execute()
        user.totp_secret, user.totp_last_counter = secret, step
        audit.record(Tag.USER_2FA_ADD, ctx, subject=user.username, method="totp", replaced=replaced)
        return _first_factor_codes(user, ctx)


def check_totp(user: User, code: str) -> bool:
    """Whether code is valid now and its time step was never used before (atomically)."""
    secret = User.get_by_id(user.id).totp_secret
    if not secret:
        return False
    step = totp.matching_step(secret, code)
    if step is None:
        return False
    accepted = (
        User.update(totp_last_counter=step)
        .where(User.id == user.id, User.totp_last_counter.is_null() | (User.totp_last_counter < step))
        .execute()
    )
    return accepted == 1


def disable_totp(user: User, ctx: audit.Context, require_2fa: bool) -> None:
    with database.atomic():
        user = User.get_by_id(user.id)
        if not user.totp_secret:
            raise AccountError(_("no authenticator app is set up"))
        _check_can_remove(user, require_2fa)
        User.update(totp_secret=None, totp_last_counter=None, totp_enabled_at=None).where(
            User.id == user.id
        ).execute()
        audit.record(Tag.USER_2FA_REMOVE, ctx, subject=user.username, method="totp")


# -- security keys -------------------------------------------------------------------------------


def clean_label(label: str) -> str:
    label = " ".join((label or "").split())
    if not label or len(label) > LABEL_MAX:
        raise AccountError(_("give the key a name of 1 to %(max)d characters", max=LABEL_MAX))
    return label


def add_key(
    user: User, label: str, new: keys.NewKey, ctx: audit.Context, discoverable: bool = False
) -> list[str] | None:
    """Enrol a key (a passkey when discoverable); returns new recovery codes when it is the
    user's first second factor."""
    with database.atomic():
        if SecurityKey.select().where(SecurityKey.credential_id == new.credential_id).exists():
            raise AccountError(_("this security key is already enrolled"))
        if SecurityKey.select().where(SecurityKey.user == user, SecurityKey.label == label).exists():
            raise AccountError(
                _("you already have a key named '%(label)s'; choose another name", label=label)
            )
        SecurityKey.create(
            user=user,
            label=label,
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            transports=json.dumps(new.transports),
            aaguid=new.aaguid,
            created_at=time.time(),
            discoverable=discoverable,
        )
        method = "passkey" if discoverable else "webauthn"
        audit.record(Tag.USER_2FA_ADD, ctx, subject=user.username, method=method, label=label)
        return _first_factor_codes(user, ctx)


def remove_key(user: User, key_id: int, ctx: audit.Context, require_2fa: bool) -> None:
    with database.atomic():
        key = SecurityKey.get_or_none(SecurityKey.id == key_id, SecurityKey.user == user)
        if key is None:
            raise AccountError(_("there is no such security key"))
        _check_can_remove(User.get_by_id(user.id), require_2fa)
        key.delete_instance()
        audit.record(Tag.USER_2FA_REMOVE, ctx, subject=user.username, method="webauthn", label=key.label)


def registration_options(user: User, rp_id: str, passkey: bool = False) -> tuple[dict, str]:
    """WebAuthn options to enrol a new key (the user's keys excluded), and the pending key
    naming the single-use challenge. A passkey (resident key and user verification
    required) excludes only existing passkeys: a plain key may be registered again as one."""
    existing = [stored(k) for k in user_keys(user) if k.discoverable or not passkey]
    options, challenge = keys.registration_options(
        rp_id, user.username, bytes(user.webauthn_user_handle), existing, passkey=passkey
    )
    purpose = "passkey-register" if passkey else "webauthn-register"
    return options, create_pending(user, purpose, challenge=challenge)


def take_registration_challenge(user: User, pending_key: str | None, passkey: bool = False) -> bytes:
    """The challenge registration_options made for user, spent whatever the outcome."""
    challenge = take_pending(pending_key, "passkey-register" if passkey else "webauthn-register")
    if challenge is None or challenge.user_id != user.id:
        raise AccountError(_("The enrolment has expired; try again."))
    return bytes(challenge.challenge)


def enrol_key(
    user: User,
    pending_key: str | None,
    label: str,
    credential: dict,
    rp_id: str,
    origin: str,
    ctx: audit.Context,
) -> list[str] | None:
    """Verify a registration against its challenge (spent whatever the outcome) and add the
    key; returns new recovery codes when it is the first second factor. Raises AccountError
    or KeyRejected."""
    challenge = take_registration_challenge(user, pending_key)
    label = clean_label(label)
    new = keys.verify_registration(credential, challenge, rp_id, origin)
    return add_key(user, label, new, ctx)


def authentication_options(user: User, rp_id: str) -> tuple[dict, str]:
    """WebAuthn options to sign in with one of the user's keys, and the pending key naming
    the single-use challenge."""
    options, challenge = keys.authentication_options(rp_id, [stored(k) for k in user_keys(user)])
    return options, create_pending(user, "webauthn-login", challenge=challenge)


def verify_key_sign_in(
    user: User, challenge: PendingAuth, credential: dict, rp_id: str, origin: str, ctx: audit.Context
) -> SecurityKey:
    """The enrolled key that signed the challenge; its counter is stored. Raises KeyRejected;
    a counter that went backwards (a cloned key) is also audited."""
    key = SecurityKey.get_or_none(
        SecurityKey.user == user, SecurityKey.credential_id == keys.credential_id_of(credential)
    )
    if key is None:
        raise KeyRejected("this security key is not enrolled for this account")
    try:
        new_count = keys.verify_authentication(
            credential, bytes(challenge.challenge), rp_id, origin, stored(key)
        )
    except keys.SignCountRegression:
        audit.record(Tag.WEBAUTHN_SIGN_COUNT_REGRESSION, ctx, subject=user.username, label=key.label)
        raise
    SecurityKey.update(sign_count=new_count, last_used_at=time.time()).where(
        SecurityKey.id == key.id
    ).execute()
    return key


def reset(user: User, ctx: audit.Context) -> None:
    """An admin's way out for a user who lost every factor: remove them all."""
    with database.atomic():
        SecurityKey.delete().where(SecurityKey.user == user).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user).execute()
        User.update(totp_secret=None, totp_last_counter=None, totp_enabled_at=None).where(
            User.id == user.id
        ).execute()
        PendingAuth.delete().where(PendingAuth.user == user).execute()
        audit.record(Tag.USER_2FA_RESET, ctx, subject=user.username)
        sessions.end_all(user, ctx, reason="2fa_reset")
