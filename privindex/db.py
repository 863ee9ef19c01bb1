"""SQLite through peewee: connection settings and in-place schema migrations.

peewee keeps one connection per thread (waitress threads each get their own); WAL lets
readers proceed during a write, and the busy timeout turns brief write contention into a
short wait instead of "database is locked".
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import peewee

from privindex.logs import drop_sql_parameters

log = logging.getLogger(__name__)
drop_sql_parameters()  # peewee would log each statement's parameters: new password hashes, TOTP secrets

database = peewee.DatabaseProxy()

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 15000,
    "synchronous": "normal",
}


def open_database(path: Path) -> peewee.SqliteDatabase:
    """Open (creating if needed) the database at path, bind the models, migrate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Transactions begin IMMEDIATE: one that reads and then writes under WAL cannot wait
    # for the write lock (SQLite fails it at once with "database is locked"); taking the
    # lock first makes it queue behind the busy timeout like any other writer.
    db = peewee.SqliteDatabase(str(path), pragmas=PRAGMAS, timeout=15, lock_type="IMMEDIATE")
    database.initialize(db)
    migrate(db)
    return db


def schema_version(db: peewee.SqliteDatabase) -> int:
    return db.execute_sql("PRAGMA user_version").fetchone()[0]


def migrate(db: peewee.SqliteDatabase) -> None:
    """Apply every migration newer than the database's user_version, each atomically."""
    from privindex.migrations import MIGRATIONS

    current = schema_version(db)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the database was written by a newer privindex (schema {current}, "
            f"this one knows {len(MIGRATIONS)}); upgrade privindex or use another data dir"
        )
    for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step_fn: Callable[[peewee.SqliteDatabase], None] = step
        with db.atomic():
            step_fn(db)
            db.execute_sql(f"PRAGMA user_version = {number}")
        log.info("database schema migrated to version %d", number)
