"""Passwords: argon2id hashing through passlib's CryptContext (from the libpass distribution),
and the strength rule for new passwords through zxcvbn. Also the salted hash of the random
secrets people keep (recovery codes): argon2id too, lighter.

CryptContext gives verify_and_update, so hashes made with older parameters are upgraded
on the next successful sign-in without a migration. zxcvbn runs offline (its word lists
ship in the package) and judges guessability, not character classes: it refuses common
passwords, keyboard walks, dates and the username, and accepts a few random words.
Existing passwords are never re-judged; only a new one must pass.
"""

from __future__ import annotations

from passlib.context import CryptContext

from privindex.i18n import _

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; this only bounds the work an attacker can ask for
MIN_SCORE = 3  # zxcvbn 0-4; 3 = "safely unguessable" (about 10^8 guesses and more)
JUDGED_LENGTH = 100  # zxcvbn's time grows with length; past this, a password is long enough

_context = CryptContext(schemes=["argon2"], deprecated="auto")
_dummy_hash: str | None = None
# Random secrets people keep (recovery codes, 64 bits) need the salt and the hash, not the
# cost: guessing one is 2^63 tries however cheap each is. OWASP's lightest argon2id profile
# (12 MiB, 3 passes, 1 lane) keeps a sign-in that checks all 8 codes at a fraction of a second.
_secret_context = CryptContext(
    schemes=["argon2"], argon2__memory_cost=12288, argon2__time_cost=3, argon2__parallelism=1
)


def hash_password(password: str) -> str:
    return _context.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash to store if the stored one used old parameters)."""
    if password_hash is None or len(password) > MAX_LENGTH:
        waste_time(password)
        return False, None
    return _context.verify_and_update(password, password_hash)


def hash_random_secret(secret: str) -> str:
    """A salted argon2id hash of a random secret (ASVS 6.5.2's "approved password hash")."""
    return _secret_context.hash(secret)


def verify_random_secret(secret: str, secret_hash: str) -> bool:
    return _secret_context.verify(secret, secret_hash)


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
    if len(password) < JUDGED_LENGTH:
        from zxcvbn import zxcvbn  # its word lists take 20 ms to import: only when a password is set

        result = zxcvbn(password, user_inputs=[username, "privindex"] if username else ["privindex"])
        if result["score"] < MIN_SCORE:
            why = result["feedback"].get("warning") or _("short, or made of common words, names or dates")
            return _(
                "this password is too easy to guess (%(why)s). Use a longer one, e.g. three or four "
                "unrelated words, or a password manager's random password",
                why=why.rstrip(".").lower() if why[:1].isupper() else why.rstrip("."),
            )
    return None
