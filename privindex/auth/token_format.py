"""API tokens: opaque random strings with a recognisable prefix, stored only as SHA-256.

A token carries 256 random bits, so an unsalted SHA-256 is enough to make a stolen
database useless for minting or recovering tokens (unlike Warehouse's macaroon keys).
This module also reads the Authorization header: HTTP Basic `__token__:<token>` (what
twine and pip send) or `Bearer <token>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass

PREFIX = "pidx_"
TOKEN_USERNAME = "__token__"
MIN_BODY, MAX_BODY = 43, 128  # characters after the prefix; generate() makes 43
_TOKEN_RE = re.compile(rf"pidx_[A-Za-z0-9_-]{{{MIN_BODY},{MAX_BODY}}}")
_BODY_CHAR = re.compile(r"[A-Za-z0-9_-]")
DISPLAY_LENGTH = len(PREFIX) + 6


class MalformedAuthorization(ValueError):
    """The Authorization header cannot be read; the message says why, without secrets."""


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    @property
    def is_token(self) -> bool:
        return self.username == TOKEN_USERNAME


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


def malformed_reason(value: str) -> str | None:
    """Why value cannot be a privindex token, in words that quote none of it; None if it can.

    Lengths and character classes only: a near-miss token is still mostly a secret.
    """
    if looks_like_token(value):
        return None
    if not value.startswith(PREFIX):
        return f"a privindex token starts with '{PREFIX}'"
    body = value[len(PREFIX) :]
    if any(ch.isspace() for ch in body):
        return "it contains a space or line break; copy the token again, without them"
    if any(not _BODY_CHAR.fullmatch(ch) for ch in body):
        return "it contains characters other than A-Z a-z 0-9 _ - (after the 'pidx_' prefix)"
    if len(body) < MIN_BODY:
        return (
            f"it is too short ({len(value)} characters; a privindex token has at least "
            f"{len(PREFIX) + MIN_BODY}); was it cut off when copied?"
        )
    return f"it is too long ({len(value)} characters; a privindex token has at most {len(PREFIX) + MAX_BODY})"


def display_prefix(token: str) -> str:
    """The part of a token that lists may show, enough to recognise it, useless to use it."""
    return token[:DISPLAY_LENGTH]


def read_authorization(header: str | None) -> Credentials | None:
    """Credentials from an Authorization header; None when there is none."""
    if header is None or not header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if not value:
            raise MalformedAuthorization("the Bearer credentials are empty")
        return Credentials(TOKEN_USERNAME, value)
    if scheme.lower() != "basic":
        # never quote what was sent: a bare token without a scheme would land in the logs
        raise MalformedAuthorization(
            "only the Basic (username __token__) and Bearer authorization schemes are supported"
        )
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise MalformedAuthorization("the Basic credentials are not valid base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise MalformedAuthorization("the Basic credentials have no ':' between username and password")
    return Credentials(username, password)
