"""Failure rate limits in the style of Warehouse: checked before, counted on failure only.

In-process sliding windows (privindex is one process with many threads). They reset when
the server restarts; that is the price of not needing Redis. A locked-out key answers with
the time until the oldest counted failure leaves the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class Limiter:
    def __init__(self, *limits: tuple[int, float]):
        self.limits = limits  # (failures allowed, per seconds)
        self._longest = max(seconds for _count, seconds in limits)
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """Seconds until key may try again, or None if it may try now."""
        now = time.time() if now is None else now
        with self._lock:
            hits = self._prune(key, now)
            wait = 0.0
            for count, seconds in self.limits:
                recent = [t for t in hits if t > now - seconds]
                if len(recent) >= count:
                    wait = max(wait, recent[-count] + seconds - now)
            return wait or None

    def hit(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._prune(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._longest:
            hits.popleft()
        return hits


MINUTE, HOUR, DAY = 60, 3600, 86400


def login_limiters() -> dict[str, Limiter]:
    """Warehouse's defaults: failed passwords and failed second factors, per user and per IP."""
    return {
        "password.user": Limiter((10, 5 * MINUTE)),
        "password.ip": Limiter((10, 5 * MINUTE)),
        "2fa.user": Limiter((5, 5 * MINUTE), (20, HOUR), (50, DAY)),
        "2fa.ip": Limiter((10, 5 * MINUTE), (50, HOUR)),
    }

