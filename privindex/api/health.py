"""Liveness and readiness, for load balancers, orchestrators and uptime checks.

/healthz answers 200 while the process can answer at all: no database, no disk, so it
stays cheap and never turns a slow disk into a restart loop. /readyz answers 200 only when
this instance can do its job: the database answers a query and the store takes a write
(a real one: a hidden temp file like an upload's is created, written, flushed and
removed, so a read-only mount, a full disk or a store path that is no longer a folder
all show, even for root, where permission bits do not). Otherwise 503 with JSON saying
what failed. While the store is still being indexed after a start (Index.catch_up: the
pages already list what the database recorded, and fill in as files are read), /readyz
answers 503 with how far it is, so a load balancer sends requests to a caught-up peer;
/health (version and counts; on a private index only to a request with a token, app.py)
answers 200 and says the same. On a private index (`read_access = "token"`) the counts
go only to a request with a valid token; anyone else gets the status and the problem names.

Anyone may ask, so the probes tell and cost nothing: /readyz names each problem without
the driver's or the system's words (host, user, paths: those go to the log), and the
store's probe write runs at most once a second however many ask (`StoreProbe`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time

from flask import Blueprint, current_app, jsonify, request

from privindex.db.connection import database
from privindex.packages.store import UPLOAD_TEMP_PREFIX

bp = Blueprint("health", __name__)
PROBE_FOLDER = ".privindex-ready"
PROBE_EVERY = 1.0  # seconds a store probe's answer is reused
log = logging.getLogger(__name__)


def database_problem() -> str | None:
    """None if the database answers a query, else what went wrong."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # any driver error means "not ready"; its text names hosts and users
        log.warning("readiness: the database does not answer: %s", exc)
        return "database unreachable"
    return None


def store_problem(root: os.PathLike) -> str | None:
    """None if a file can be written in the store, else what went wrong. The probe is
    written in a hidden folder of the store (never indexed): a file made in the store's own
    folder would change its mtime, and the watcher would list the whole folder again after
    every probe (100,000 entries in a flat store). It uses the upload temp prefix, so one
    left by a crash is removed at the next start."""
    try:
        probes = os.path.join(root, PROBE_FOLDER)
        os.makedirs(probes, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=probes, prefix=UPLOAD_TEMP_PREFIX, suffix=".ready.tmp") as probe:
            probe.write(b"ready?")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:  # the path and the reason go to the log, not to whoever asks /readyz
        log.warning("readiness: cannot write in the store %s: %s", root, exc)
        return "store not writable"
    return None


class StoreProbe:
    """store_problem's answer, reused for PROBE_EVERY seconds: /readyz is anonymous, and
    each probe creates, writes, fsyncs and removes a file. Who asks while a probe runs
    waits for its answer rather than starting another."""

    def __init__(self, root: os.PathLike):
        self.root = root
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._problem: str | None = None

    def problem(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._checked_at >= PROBE_EVERY:
                self._problem = store_problem(self.root)
                self._checked_at = time.monotonic()
            return self._problem


def indexing_report(index) -> dict:
    """{"indexing": {files indexed, files left}} while the index catches up, else {}."""
    state = index.indexing
    if state is None:
        return {}
    return {"indexing": {"files_indexed": state.indexed, "files_left": state.left}}


def may_read(environ: dict) -> bool:
    """Whether this request may see the index's counts: anyone on a public index, a valid
    token on a private one (app.py puts its read guard in the extensions)."""
    guard = current_app.extensions.get("privindex_read_guard")
    return guard is None or guard(environ)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.record_once
def _add_store_probe(state) -> None:
    state.app.extensions["privindex_store_probe"] = StoreProbe(state.app.extensions["privindex"].store.root)


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["privindex"]
    store_probe = current_app.extensions["privindex_store_probe"]
    db_problem = database_problem()
    problems = [p for p in (db_problem, store_probe.problem()) if p]
    indexing = indexing_report(services.index)
    # a private index's counts need a token, and a token is checked in the database
    shown = indexing if indexing and not db_problem and may_read(request.environ) else {}
    if problems:
        response = jsonify(status="unavailable", problems=problems, **shown)
        response.status_code = 503
    elif indexing:
        response = jsonify(status="indexing", **shown)
        response.status_code = 503
    else:
        response = jsonify(status="ready")
    response.headers["Cache-Control"] = "no-store"
    return response
