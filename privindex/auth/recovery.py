"""Recovery codes: 8 one-time codes of 64 random bits, shown once, stored as salted argon2id.

ASVS 5.0 6.5.2: a lookup secret under 112 bits is stored with an approved password hash
and a salt, since 2^64 unsalted SHA-256 guesses are within an attacker's reach. Like the
public index (its RecoveryCode rows hold its password hasher's argon2 hash, and a typed
code is checked against each), a code is hashed with argon2id (auth/passwords.py) and a
typed one verified against each unused code of the user: a salted hash cannot be looked up.

Codes stored before (unsalted SHA-256, 64 hex characters) are verified side by side until
they are used or made again: a migration cannot rehash codes it never saw, and a code is
used once, so rehashing it on use would protect nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from privindex.auth.passwords import hash_random_secret, verify_random_secret

COUNT = 8
SHOWN_PATTERN = r"[0-9a-fA-F]{4}(?:-[0-9a-fA-F]{4}){3}"  # what _format() makes; ops/logs.py redacts it
_LEGACY_HASH = re.compile(r"[0-9a-f]{64}")  # an unsalted SHA-256, as stored before


def generate() -> list[str]:
    return [_format(secrets.token_hex(8)) for _ in range(COUNT)]


def _format(hex16: str) -> str:
    return "-".join(hex16[i : i + 4] for i in range(0, 16, 4))


def clean(code: str) -> str | None:
    """A typed or shown code as it is hashed (case, spaces and dashes ignored), or None if malformed."""
    cleaned = re.sub(r"[\s-]", "", code or "").lower()
    return cleaned if re.fullmatch(r"[0-9a-f]{16}", cleaned) else None


def stored_form(code: str) -> str:
    """What is stored for a code made by generate(): its salted argon2id hash."""
    cleaned = clean(code)
    assert cleaned is not None, "only generate()'s codes are stored"
    return hash_random_secret(cleaned)


def matches(cleaned: str, stored: str) -> bool:
    """Whether a clean()ed code is the one stored: argon2id, or a SHA-256 from before."""
    if _LEGACY_HASH.fullmatch(stored):
        return hmac.compare_digest(hashlib.sha256(cleaned.encode()).hexdigest(), stored)
    return verify_random_secret(cleaned, stored)
