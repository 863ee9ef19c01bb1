"""Recovery codes: 8 one-time codes of 64 random bits, shown once, stored as SHA-256.

Like API tokens, the codes are random enough that an unsalted SHA-256 keeps a stolen
database from revealing them, and a code is found by its hash in one lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets

COUNT = 8
SHOWN_PATTERN = r"[0-9a-fA-F]{4}(?:-[0-9a-fA-F]{4}){3}"  # what _format() makes; ops/logs.py redacts it


def generate() -> list[str]:
    return [_format(secrets.token_hex(8)) for _ in range(COUNT)]


def _format(hex16: str) -> str:
    return "-".join(hex16[i : i + 4] for i in range(0, 16, 4))


def digest(code: str) -> str | None:
    """The stored form of a typed code (case, spaces and dashes ignored), or None if malformed."""
    cleaned = re.sub(r"[\s-]", "", code or "").lower()
    if not re.fullmatch(r"[0-9a-f]{16}", cleaned):
        return None
    return hashlib.sha256(cleaned.encode()).hexdigest()
