"""TOTP (RFC 6238: SHA-1, 6 digits, 30 s) through pyotp, with replay protection.

pyotp does not stop a code from being used twice, so verify() returns the time step it
matched and the caller stores it with a conditional UPDATE (accounts.use_totp): a step at
or before the last accepted one is refused, even inside the ±1 step window.
"""

from __future__ import annotations

import re
import time

import pyotp

ISSUER = "privindex"
SECRET_LENGTH = 32  # base32 characters: 160 bits, as RFC 4226 recommends; ops/logs.py knows the shape
_CODE_RE = re.compile(r"\d{6}")


def new_secret() -> str:
    return pyotp.random_base32(SECRET_LENGTH)


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no script, no external request)."""
    import segno  # only on the enrolment page, not at every start

    return segno.make(uri, error="m").svg_inline(scale=5, title="TOTP QR code")


def clean(code: str) -> str | None:
    """The six digits of a typed code (spaces allowed), or None if it cannot be one."""
    digits = re.sub(r"\s", "", code or "")
    return digits if _CODE_RE.fullmatch(digits) else None


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (counter) within ±1 of now whose code equals code, or None."""
    digits = clean(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    for step in (current, current - 1, current + 1):
        if pyotp.utils.strings_equal(digits, totp.generate_otp(step)):
            return step
    return None


def out_of_sync(secret: str, code: str, now: float | None = None) -> bool:
    """Whether the code is right for a clock a few minutes off: worth telling the user."""
    digits = clean(code)
    if digits is None:
        return False
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    return any(pyotp.utils.strings_equal(digits, totp.generate_otp(current + d)) for d in range(-10, 11))
