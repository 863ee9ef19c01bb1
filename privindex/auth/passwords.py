"""Password hashing: argon2id through passlib's CryptContext (from the libpass distribution).

CryptContext gives verify_and_update, so hashes made with older parameters are upgraded
on the next successful sign-in without a migration.
"""

from __future__ import annotations

from passlib.context import CryptContext

from privindex.i18n import _

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work an attacker can ask for

_context = CryptContext(schemes=["argon2"], deprecated="auto")
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    return _context.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash to store if the stored one used old parameters)."""
    if password_hash is None or len(password) > MAX_LENGTH:
        waste_time(password)
        return False, None
    return _context.verify_and_update(password, password_hash)


def waste_time(password: str) -> None:
    """Spend as long as a real check, so an unknown user answers as slowly as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _context.hash("privindex timing equalizer")
    _context.verify(password[:MAX_LENGTH], _dummy_hash)


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is refused, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return _("the password must have at least %(num)d characters", num=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("the password must have at most %(num)d characters", num=MAX_LENGTH)
    if username and password.lower() == username.lower():
        return _("the password must not be the username")
    return None
