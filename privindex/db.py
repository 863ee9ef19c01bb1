"""SQLite through peewee: connection settings, which database is in use, and migrations.

peewee keeps one connection per thread (waitress threads each get their own); WAL lets
readers proceed during a write, and the busy timeout turns brief write contention into a
short wait instead of "database is locked".

Every model uses `database`, which routes to the database bound in the current context
(a contextvar): create_app binds its own database around each request and in the threads
it starts, the CLI around each command. So two apps in one process stay apart, and code
that runs outside any of them fails loudly instead of writing to some other database.
`open_database` (for scripts with one database) also makes it the process default.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator

import peewee

from privindex.logs import drop_sql_parameters

log = logging.getLogger(__name__)
drop_sql_parameters()  # peewee would log each statement's parameters: new password hashes, TOTP secrets

_bound: contextvars.ContextVar[peewee.SqliteDatabase | None] = contextvars.ContextVar("privindex_db", default=None)
_process_default: peewee.SqliteDatabase | None = None


class ContextDatabase(peewee.DatabaseProxy):
    """A DatabaseProxy whose target is the database bound in the current context."""

    @property  # type: ignore[override]
    def obj(self) -> peewee.SqliteDatabase | None:
        return _bound.get() or _process_default

    @obj.setter
    def obj(self, value: peewee.SqliteDatabase | None) -> None:
        # peewee's initialize(db): bind db in the current context (Proxy.__init__ passes None)
        if value is not None:
            _bound.set(value)

    def __getattr__(self, attr: str):
        target = self.obj
        if target is None:
            raise AttributeError("no privindex database is bound here: run inside a request of an app "
                                 "from create_app, inside db.bound(...), or after open_database()")
        return getattr(target, attr)


database = ContextDatabase()


def bind(db: peewee.SqliteDatabase) -> contextvars.Token:
    """Make `database` mean db in the current context until unbind(token)."""
    return _bound.set(db)


def unbind(token: contextvars.Token) -> None:
    _bound.reset(token)


@contextlib.contextmanager
def bound(db: peewee.SqliteDatabase) -> Iterator[peewee.SqliteDatabase]:
    """Make `database` mean db for the code inside (this context only: not other threads)."""
    token = _bound.set(db)
    try:
        yield db
    finally:
        _bound.reset(token)


def bind_to_requests(db: peewee.SqliteDatabase, app: Callable) -> Callable:
    """WSGI middleware: each request answered by app uses db.

    The binding ends when app returns, before the server iterates the body; bodies must
    not touch the database. Ours do not: Flask renders into a list before returning, and
    the Simple API answers with cached bytes or a file.
    """

    def with_database(environ: dict, start_response: Callable) -> Iterable[bytes]:
        token = _bound.set(db)
        try:
            return app(environ, start_response)
        finally:
            _bound.reset(token)

    return with_database


def in_thread(db: peewee.SqliteDatabase, target: Callable) -> Callable:
    """target, run with db bound: a new thread starts with an empty context."""

    def run(*args, **kwargs):
        with bound(db):
            return target(*args, **kwargs)

    return run

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 15000,
    "synchronous": "normal",
}


def connect(path: Path) -> peewee.SqliteDatabase:
    """Open (creating if needed) and migrate the database at path; bind nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Transactions begin IMMEDIATE: one that reads and then writes under WAL cannot wait
    # for the write lock (SQLite fails it at once with "database is locked"); taking the
    # lock first makes it queue behind the busy timeout like any other writer.
    db = peewee.SqliteDatabase(str(path), pragmas=PRAGMAS, timeout=15, lock_type="IMMEDIATE")
    migrate(db)
    return db


def open_database(path: Path) -> peewee.SqliteDatabase:
    """connect(), and make it the database of this whole process, every thread included,
    wherever no other is bound: for scripts and tools that use one database."""
    global _process_default
    db = connect(path)
    _process_default = db
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
