"""The devices (browsers) a user signs in from, so a sign-in from a new one can be told.

A device is the random id its signed device cookie holds (web/signin.py); only its SHA-256
is stored, so the table cannot be used to forge a cookie.
"""

from __future__ import annotations

import hashlib
import time

from privindex.db.models import KnownDevice, User


def is_new(user: User, device_id: str) -> bool:
    """Record that user signed in from device_id; True if they never had before but have
    from another device (an account's first browser ever is not news)."""
    digest = hashlib.sha256(device_id.encode()).hexdigest()
    if KnownDevice.select().where(KnownDevice.user == user, KnownDevice.device_hash == digest).exists():
        return False
    has_others = KnownDevice.select().where(KnownDevice.user == user).exists()
    # two sign-ins at once from one new device: the unique pair keeps one row, both are told
    KnownDevice.insert(
        user=user, device_hash=digest, first_seen_at=time.time()
    ).on_conflict_ignore().execute()
    return has_others
