"""Whether the upstream answers: the last successful fetch and the last failure (its time
and a one-line reason), for the admins' upstream page.

Kept in memory by the cache that fetches, and in `<upstream_dir>/reachability.json` so the
page of one server shows what another process (or the server before a restart) saw. The
file is rewritten atomically on a failure, a recovery, and at most once a minute while
fetches succeed, so a busy cache costs one small write a minute. The reason is an
`UpstreamError`'s message passed through `logs.redact`: never a credential.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from privindex.ops.logs import redact

log = logging.getLogger(__name__)

SAVE_SUCCESS_EVERY = 60.0  # seconds between writes while the upstream keeps answering


@dataclass(frozen=True)
class Reach:
    """The last successful fetch and the last failure (times are time.time(); None: never)."""

    ok_at: float | None = None
    error_at: float | None = None
    error: str = ""

    @property
    def answering(self) -> bool | None:
        """True if the newest fetch succeeded, False if it failed, None if nothing was fetched."""
        if self.ok_at is None and self.error_at is None:
            return None
        return (self.ok_at or 0.0) >= (self.error_at or 0.0)

    def newest(self, other: Reach) -> Reach:
        """The newer success and the newer failure of the two."""
        ok = max((t for t in (self.ok_at, other.ok_at) if t is not None), default=None)
        failed = self if (self.error_at or 0.0) >= (other.error_at or 0.0) else other
        return Reach(ok, failed.error_at, failed.error)


class Reachability:
    def __init__(self, path: Path, write_atomic: Callable[[Path, bytes], None]):
        self.path = path
        self._write_atomic = write_atomic  # the cache's: temp, fsync, rename
        self._lock = threading.Lock()
        self._now = Reach()
        self._saved_at = 0.0

    def succeeded(self) -> None:
        now = time.time()
        with self._lock:
            recovered = self._now.answering is False
            self._now = replace(self._now, ok_at=now)
            if recovered or now - self._saved_at >= SAVE_SUCCESS_EVERY:
                self._save()

    def failed(self, reason: str) -> None:
        with self._lock:
            self._now = replace(self._now, error_at=time.time(), error=redact(reason)[:300])
            self._save()

    def current(self) -> Reach:
        """What this process saw, joined with what the file says any process saw."""
        with self._lock:
            mine = self._now
        return mine.newest(self._load())

    def _load(self) -> Reach:
        try:
            data = json.loads(self.path.read_text())
            return Reach(data.get("ok_at"), data.get("error_at"), str(data.get("error") or ""))
        except (OSError, ValueError, AttributeError, TypeError):
            return Reach()

    def _save(self) -> None:
        """Atomically, joined with the file: never lose another process's news."""
        self._saved_at = time.time()
        state = self._now.newest(self._load())
        try:
            self._write_atomic(self.path, json.dumps(asdict(state)).encode())
        except OSError as exc:  # our disk; the page still shows what memory holds
            log.warning("could not save the upstream's reachability: %s", exc)
