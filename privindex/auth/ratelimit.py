"""Sign-in rate limits, safe under concurrency and shared by every process on the database.

Warehouse counts failures only and checks before verifying. Done naively ("is there room?",
verify, "count the failure") that lets 48 concurrent guesses through a limit of 10. Here an
attempt first *reserves* a slot for the user and for the address in one locked step; the
password or code is checked outside the lock; a failure turns the reservation into a
counted failure, a success gives it back. So at most `limit` checks can be running or
counted at any moment, whatever the concurrency.

The attempts live in the database (`rate_limit_hit`, schema v10), one row per attempt and
key kind, so servers sharing a PostgreSQL database share the limits, and a restart keeps
them. The locked step is the writers' transaction both databases already have
(`database.atomic()`: SQLite's IMMEDIATE, PostgreSQL's advisory lock, held across
processes). `limits` still parses the rules ("5 per 5 minutes; 20 per hour") and gives
each window's size and amount; the moving window is counted by a query over the rows.

Why a table and not a `limits` storage backend: the reservation needs "count the window
and add a pending entry in one locked step" and "take one entry back", and limits'
`Storage`/`MovingWindowSupport` interface has neither (its `acquire_entry` counts a hit at
once, and nothing removes one). A row per attempt says both directly.

A reservation whose process dies before settling stays pending and counts as a failure
until it leaves the window (fail closed). Rows older than a limiter's longest window are
deleted as attempts come, at most once per window (or minute): the table holds the
attempts of the last window, not every name ever tried. Names and addresses are stored
as an HMAC-SHA-256 under the server's secret key (the one the processes share for
sessions): a password typed into the username field never lands in the database, and a
copy of the database alone cannot be searched for it with a dictionary.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager

from limits import parse_many

from privindex.db.connection import database
from privindex.db.models import RateLimitHit

# Warehouse's numbers (warehouse/config.py): failed passwords and failed second factors.
PASSWORD_PER_USER = "10 per 5 minutes"
PASSWORD_PER_ADDRESS = "10 per 5 minutes"
TWO_FACTOR_PER_USER = "5 per 5 minutes; 20 per hour; 50 per day"
TWO_FACTOR_PER_ADDRESS = "10 per 5 minutes; 50 per hour"
# "Forgot password" requests: every request counts (a link mailed is never given back).
RESET_PER_ACCOUNT = "3 per hour"
RESET_PER_ADDRESS = "10 per hour"
# Passkey sign-in options: asked before anyone is known, each writes a challenge row; every
# request counts. Pages ask once on load and once per try, so a person never meets it.
PASSKEY_OPTIONS_PER_ADDRESS = "30 per minute; 300 per hour"
# Verification links mailed from the account page: per account and per address mailed to,
# so a session cannot flood someone's mailbox (every mail counts).
VERIFY_PER_ACCOUNT = "5 per hour"
VERIFY_PER_ADDRESS = "5 per hour"
BUSY_WAIT = 60.0  # seconds suggested when only attempts still running fill the limit


class Limited(Exception):
    """No attempt may be made now; retry_after says for how many seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"rate limited for {retry_after:.0f} s")
        self.retry_after = retry_after


class Attempt:
    """A reserved slot. Call succeeded() when the check passed; otherwise it counts as failed."""

    def __init__(self) -> None:
        self.ok = False

    def succeeded(self) -> None:
        self.ok = True


class Limiter:
    """One kind of attempt (password, second factor), limited per user and per address.
    Uses `db.database`: the database bound where it is called (a request's)."""

    def __init__(self, name: str, per_user: str, per_address: str, key: bytes = b""):
        self.name = name
        self._key = key  # for the HMAC of what was typed
        self._limits = {"user": parse_many(per_user), "address": parse_many(per_address)}
        self._keep = {kind: max(item.get_expiry() for item in items) for kind, items in self._limits.items()}
        self._sweep_every = min(max(self._keep.values()), 60)
        self._swept = 0.0

    @contextmanager
    def attempt(self, user: str, address: str) -> Iterator[Attempt]:
        """Reserve a slot for user and address (Limited if there is none), yield, settle."""
        ids = self._reserve(self._keys(user, address))
        attempt = Attempt()
        try:
            yield attempt
        finally:  # an exception is a failure: never leak a reservation, never fail open
            self._settle(ids, failed=not attempt.ok)

    def retry_after(self, user: str, address: str) -> float | None:
        """Seconds until an attempt may be made, or None if one may be made now."""
        return self._wait(self._keys(user, address), time.time())

    def _keys(self, user: str, address: str) -> list[tuple[str, str, str]]:
        return [
            (
                kind,
                f"{self.name}/{kind}",
                hmac.new(self._key, ident.encode("utf-8", "replace"), hashlib.sha256).hexdigest(),
            )
            for kind, ident in (("user", user), ("address", address))
        ]

    def _wait(self, keys, now: float) -> float | None:
        wait = 0.0
        for kind, scope, ident in keys:
            rows = list(
                RateLimitHit.select(RateLimitHit.at, RateLimitHit.pending)
                .where(
                    RateLimitHit.scope == scope,
                    RateLimitHit.ident == ident,
                    RateLimitHit.at > now - self._keep[kind],
                )
                .tuples()
            )
            for item in self._limits[kind]:
                period = item.get_expiry()
                window = [(at, pending) for at, pending in rows if at > now - period]
                failures = sorted(at for at, pending in window if not pending)
                if (
                    len(failures) >= item.amount
                ):  # full of counted failures: until the oldest that matters leaves
                    wait = max(wait, failures[len(failures) - item.amount] + period - now, 1.0)
                elif len(window) >= item.amount:  # full only with attempts still being checked
                    wait = max(wait, BUSY_WAIT)
        return wait or None

    def _reserve(self, keys) -> list[int]:
        with database.atomic():  # the writers' lock: one reservation at a time, in every process
            now = time.time()
            self._sweep(now)
            wait = self._wait(keys, now)
            ids = (
                []
                if wait
                else [
                    RateLimitHit.insert(scope=scope, ident=ident, at=now, pending=True).execute()
                    for _kind, scope, ident in keys
                ]
            )
        if wait:
            raise Limited(wait)
        return ids

    def _settle(self, ids: list[int], failed: bool) -> None:
        # one statement each: atomic without the writers' lock
        if failed:
            RateLimitHit.update(pending=False, at=time.time()).where(RateLimitHit.id.in_(ids)).execute()
        else:
            RateLimitHit.delete().where(RateLimitHit.id.in_(ids)).execute()

    def _sweep(self, now: float) -> None:
        """Delete rows that have left the longest window of their kind (at most once per
        window or minute per process)."""
        if now - self._swept < self._sweep_every:
            return
        self._swept = now
        for kind, keep in self._keep.items():
            RateLimitHit.delete().where(
                RateLimitHit.scope == f"{self.name}/{kind}", RateLimitHit.at <= now - keep
            ).execute()

    def _rows(self):
        return RateLimitHit.select().where(RateLimitHit.scope.in_([f"{self.name}/{k}" for k in self._limits]))

    def size(self) -> int:
        """How many attempts are held (for tests and the curious)."""
        return self._rows().count()

    def in_flight(self) -> int:
        return self._rows().where(RateLimitHit.pending == True).count()  # noqa: E712  (SQL, not Python)

    def clear(self) -> None:
        RateLimitHit.delete().where(
            RateLimitHit.scope.in_([f"{self.name}/{k}" for k in self._limits])
        ).execute()


def login_limiters(key: bytes) -> dict[str, Limiter]:
    """The sign-in limiters, and the verification mails'; key: the secret every process
    sharing the database shares."""
    return {
        "password": Limiter("password", PASSWORD_PER_USER, PASSWORD_PER_ADDRESS, key),
        "2fa": Limiter("2fa", TWO_FACTOR_PER_USER, TWO_FACTOR_PER_ADDRESS, key),
        "reset": Limiter("reset", RESET_PER_ACCOUNT, RESET_PER_ADDRESS, key),
        "passkey-options": Limiter(
            "passkey-options", PASSKEY_OPTIONS_PER_ADDRESS, PASSKEY_OPTIONS_PER_ADDRESS, key
        ),
        "verify": Limiter("verify", VERIFY_PER_ACCOUNT, VERIFY_PER_ADDRESS, key),
    }
