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
/health (version and counts) answers 200 and says the same.
"""

from __future__ import annotations

import logging
import os
import tempfile

from flask import Blueprint, current_app, jsonify

from privindex.db import database
from privindex.store import UPLOAD_TEMP_PREFIX

bp = Blueprint("health", __name__)
PROBE_FOLDER = ".privindex-ready"
log = logging.getLogger(__name__)


def database_problem() -> str | None:
    """None if the database answers a query, else what went wrong."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # any driver error means "not ready"
        log.warning("readiness: the database does not answer: %s", exc)
        return f"database unreachable: {exc}"
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
    except OSError as exc:  # the path goes to the log, not to whoever asks /readyz
        log.warning("readiness: cannot write in the store %s: %s", root, exc)
        return f"store not writable: {exc.strerror or exc}"
    return None


def indexing_report(index) -> dict:
    """{"indexing": {files indexed, files left}} while the index catches up, else {}."""
    state = index.indexing
    if state is None:
        return {}
    return {"indexing": {"files_indexed": state.indexed, "files_left": state.left}}


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["privindex"]
    problems = [p for p in (database_problem(), store_problem(services.store.root)) if p]
    indexing = indexing_report(services.index)
    if problems:
        response = jsonify(status="unavailable", problems=problems, **indexing)
        response.status_code = 503
    elif indexing:
        response = jsonify(status="indexing", **indexing)
        response.status_code = 503
    else:
        response = jsonify(status="ready")
    response.headers["Cache-Control"] = "no-store"
    return response
