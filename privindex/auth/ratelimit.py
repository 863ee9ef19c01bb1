"""Sign-in rate limits on the `limits` library (what Warehouse uses), safe under concurrency.

Warehouse counts failures only and checks before verifying. Done naively ("is there room?",
verify, "count the failure") that lets 48 concurrent guesses through a limit of 10. Here an
attempt first *reserves* a slot for the user and for the address in one locked step; the
password or code is checked outside the lock; a failure turns the reservation into a hit
in limits' moving window, a success gives it back. So at most `limit` checks can be running
or counted at any moment, whatever the concurrency.

Why a small wrapper instead of `hit()` then "un-hit": limits' storages have no public way to
take back one moving-window entry. The wrapper keeps only a count of attempts in flight (a
dict entry lives while an attempt runs); the counted failures live in limits'
`MemoryStorage`. Its expiry thread empties a key's list when the window has passed but keeps
the key itself, so the wrapper also remembers when it last hit each key and, at most once per
window, clears the stale ones (`Storage.clear`, a public API): memory is bounded by the
failures of the last window, not by every name ever tried. Limits are per process and reset
on restart (privindex is one process with many threads).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

# Warehouse's numbers (warehouse/config.py): failed passwords and failed second factors.
PASSWORD_PER_USER = "10 per 5 minutes"
PASSWORD_PER_ADDRESS = "10 per 5 minutes"
TWO_FACTOR_PER_USER = "5 per 5 minutes; 20 per hour; 50 per day"
TWO_FACTOR_PER_ADDRESS = "10 per 5 minutes; 50 per hour"
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
    """One kind of attempt (password, second factor), limited per user and per address."""

    def __init__(self, name: str, per_user: str, per_address: str, storage: MemoryStorage | None = None):
        self.name = name
        self.storage = storage or MemoryStorage()
        self._window = MovingWindowRateLimiter(self.storage)
        self._limits = {"user": parse_many(per_user), "address": parse_many(per_address)}
        self._in_flight: dict[tuple[str, str], int] = {}
        self._last_hit: dict[str, float] = {}  # storage key -> time of its latest counted failure
        self._longest = max(item.get_expiry() for items in self._limits.values() for item in items)
        self._swept = time.time()
        self._lock = threading.Lock()

    @contextmanager
    def attempt(self, user: str, address: str) -> Iterator[Attempt]:
        """Reserve a slot for user and address (Limited if there is none), yield, settle."""
        keys = (("user", user), ("address", address))
        self._reserve(keys)
        attempt = Attempt()
        try:
            yield attempt
        finally:  # an exception is a failure: never leak a reservation, never fail open
            self._settle(keys, failed=not attempt.ok)

    def retry_after(self, user: str, address: str) -> float | None:
        """Seconds until an attempt may be made, or None if one may be made now."""
        with self._lock:
            return self._wait((("user", user), ("address", address)))

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def _wait(self, keys) -> float | None:
        wait = 0.0
        now = time.time()
        for kind, ident in keys:
            running = self._in_flight.get((kind, ident), 0)
            for item in self._limits[kind]:
                stats = self._window.get_window_stats(item, self.name, kind, ident)
                if stats.remaining <= 0:
                    wait = max(wait, stats.reset_time - now, 1.0)
                elif stats.remaining - running <= 0:
                    wait = max(wait, BUSY_WAIT)
        return wait or None

    def _reserve(self, keys) -> None:
        with self._lock:
            wait = self._wait(keys)
            if wait:
                raise Limited(wait)
            for key in keys:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def _settle(self, keys, failed: bool) -> None:
        with self._lock:
            for kind, ident in keys:
                left = self._in_flight[(kind, ident)] - 1
                if left:
                    self._in_flight[(kind, ident)] = left
                else:
                    del self._in_flight[(kind, ident)]
                if failed:
                    for item in self._limits[kind]:
                        self._window.hit(item, self.name, kind, ident)
                        self._last_hit[item.key_for(self.name, kind, ident)] = time.time()
            self._sweep()

    def _sweep(self) -> None:
        """Forget keys whose every failure has left the longest window (under the lock)."""
        now = time.time()
        if now - self._swept < min(self._longest, 60):
            return
        self._swept = now
        stale = [key for key, at in self._last_hit.items() if at <= now - self._longest]
        for key in stale:
            # MemoryStorage's expiry thread trims a key under its per-key lock; clearing
            # under the same lock keeps the two from tripping over each other
            with self.storage.locks[key]:
                self.storage.clear(key)
            del self._last_hit[key]

    def size(self) -> int:
        """How many keys the storage holds (for tests and the curious)."""
        with self._lock:
            return len(self.storage.events)

    def clear(self) -> None:
        with self._lock:
            self.storage.reset()
            self._last_hit.clear()


def login_limiters() -> dict[str, Limiter]:
    return {
        "password": Limiter("password", PASSWORD_PER_USER, PASSWORD_PER_ADDRESS),
        "2fa": Limiter("2fa", TWO_FACTOR_PER_USER, TWO_FACTOR_PER_ADDRESS),
    }
