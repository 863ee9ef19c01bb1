"""The database through peewee: SQLite (embedded, the default) or PostgreSQL
(`database_url`, for several processes on one state); which database is in use; migrations.

peewee keeps one connection per thread (waitress threads each get their own). On SQLite,
WAL lets readers proceed during a write, and the busy timeout turns brief write contention
into a short wait instead of "database is locked". On PostgreSQL, a transaction SQLite
would begin IMMEDIATE (every `atomic()` unless it says `lock_type="DEFERRED"`) first takes
one transaction-scoped advisory lock, so writers queue one at a time exactly as they do on
SQLite, across every process sharing the database: the services' read-then-write
transactions keep the meaning they were written with.

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee

log = logging.getLogger(__name__)


class StatementsOnly(logging.Filter):
    """peewee logs `(sql, params)`; keep the SQL, drop the parameters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, tuple) and len(record.msg) == 2 and isinstance(record.msg[0], str):
            record.msg, record.args = record.msg[0], ()
        return True


def drop_sql_parameters() -> None:
    """Make peewee's query log statement-only, whoever installs the handlers (on import here,
    and by logs.configure)."""
    peewee_log = logging.getLogger("peewee")
    if not any(isinstance(f, StatementsOnly) for f in peewee_log.filters):
        peewee_log.addFilter(StatementsOnly())


drop_sql_parameters()  # peewee would log each statement's parameters: new password hashes, TOTP secrets

_bound: contextvars.ContextVar[peewee.Database | None] = contextvars.ContextVar("privindex_db", default=None)
_process_default: peewee.Database | None = None


class ContextDatabase(peewee.DatabaseProxy):
    """A DatabaseProxy whose target is the database bound in the current context."""

    @property
    def obj(self) -> peewee.Database | None:
        return _bound.get() or _process_default

    @obj.setter
    def obj(self, value: peewee.Database | None) -> None:
        # peewee's initialize(db): bind db in the current context (Proxy.__init__ passes None)
        if value is not None:
            _bound.set(value)

    def __getattr__(self, attr: str):
        target = self.obj
        if target is None:
            raise AttributeError(
                "no privindex database is bound here: run inside a request of an app "
                "from create_app, inside db.bound(...), or after open_database()"
            )
        return getattr(target, attr)


database = ContextDatabase()


def bind(db: peewee.Database) -> contextvars.Token:
    """Make `database` mean db in the current context until unbind(token)."""
    return _bound.set(db)


def unbind(token: contextvars.Token) -> None:
    _bound.reset(token)


@contextlib.contextmanager
def bound(db: peewee.Database) -> Iterator[peewee.Database]:
    """Make `database` mean db for the code inside (this context only: not other threads)."""
    token = _bound.set(db)
    try:
        yield db
    finally:
        _bound.reset(token)


def bind_to_requests(db: peewee.Database, app: Callable) -> Callable:
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


def in_thread(db: peewee.Database, target: Callable) -> Callable:
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

# pg_advisory_xact_lock key of the writers' lock ("privindex" in ASCII, truncated to 63 bits)
WRITERS_LOCK = 0x70726976696E6465


class PostgresDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL, taking SQLite's transaction kinds: `atomic(lock_type=...)` works on both.

    IMMEDIATE/EXCLUSIVE (the default, as on SQLite) takes the writers' advisory lock at
    BEGIN; DEFERRED is a plain transaction (reads see one snapshot only under REPEATABLE
    READ, so a DEFERRED transaction asks for it: the read transactions rely on that)."""

    def begin(self, lock_type: str | None = "IMMEDIATE", isolation_level=None) -> None:
        deferred = (lock_type or "IMMEDIATE").upper() == "DEFERRED"
        with peewee.__exception_wrapper__:
            cursor = self.cursor()
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if deferred else "BEGIN")
            if not deferred:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,))


def is_postgres(db) -> bool:
    return isinstance(getattr(db, "obj", db), peewee.PostgresqlDatabase)


def redact_url(url: str) -> str:
    """A database URL fit for a log or a message: its password replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")
        user = netloc[0].partition(":")[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
    except ValueError:
        return "(an unreadable database URL)"


def describe(where: Path | str) -> str:
    """Where the data lives, for messages (no password)."""
    return redact_url(where) if isinstance(where, str) else str(where)


def postgres(url: str) -> PostgresDatabase:
    """The PostgreSQL database at url, not yet connected nor migrated."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ValueError(f"expected postgresql://user:password@host:port/database, got {redact_url(url)}")
    # psycopg2 reads the URL itself (host, port, user, password, ?sslmode=..., host=/socket/dir)
    return PostgresDatabase("postgresql://" + url.partition("://")[2])


def connect(where: Path | str) -> peewee.Database:
    """Open (creating if needed) and migrate the database: a Path is an SQLite file, a
    postgresql:// URL a PostgreSQL database (which must exist; its tables are created).
    Bind nothing."""
    if isinstance(where, str):
        db = postgres(where)
        try:
            db.connect()
        except peewee.OperationalError as exc:
            raise RuntimeError(str(exc).strip()) from None
    else:
        where.parent.mkdir(parents=True, exist_ok=True)
        # Transactions begin IMMEDIATE: one that reads and then writes under WAL cannot wait
        # for the write lock (SQLite fails it at once with "database is locked"); taking the
        # lock first makes it queue behind the busy timeout like any other writer.
        db = peewee.SqliteDatabase(str(where), pragmas=PRAGMAS, timeout=15, lock_type="IMMEDIATE")
    migrate(db)
    return db


def open_database(where: Path | str) -> peewee.Database:
    """connect(), and make it the database of this whole process, every thread included,
    wherever no other is bound: for scripts and tools that use one database."""
    global _process_default
    db = connect(where)
    _process_default = db
    return db


def data_version() -> int | None:
    """A number that changes when another connection commits: SQLite's data_version; on
    PostgreSQL the change_counter that triggers bump on every write to the tables servers
    keep in memory (migrations.v8_change_counter), whichever process wrote."""
    if is_postgres(database):
        return database.execute_sql("SELECT value FROM change_counter WHERE id = 1").fetchone()[0]
    return database.execute_sql("PRAGMA data_version").fetchone()[0]


def schema_version(db: peewee.Database) -> int:
    """PRAGMA user_version on SQLite; the one-row schema_version table on PostgreSQL."""
    if not is_postgres(db):
        return db.execute_sql("PRAGMA user_version").fetchone()[0]
    if db.execute_sql("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    row = db.execute_sql("SELECT version FROM schema_version").fetchone()
    return row[0] if row else 0


def _set_schema_version(db: peewee.Database, number: int) -> None:
    if not is_postgres(db):
        db.execute_sql(f"PRAGMA user_version = {number}")
        return
    db.execute_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    db.execute_sql("DELETE FROM schema_version")
    db.execute_sql("INSERT INTO schema_version (version) VALUES (%s)", (number,))


def migrate(db: peewee.Database) -> None:
    """Apply every migration newer than the database's version, each atomically. Each
    step re-reads the version inside its (writers') transaction, so of several processes
    starting at once on one PostgreSQL database exactly one applies each step."""
    from privindex.db.migrations import MIGRATIONS

    while True:
        current = schema_version(db)
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"the database was written by a newer privindex (schema {current}, "
                f"this one knows {len(MIGRATIONS)}); upgrade privindex or use another data dir"
            )
        if current == len(MIGRATIONS):
            return
        with db.atomic():
            number = schema_version(db) + 1
            if number > len(MIGRATIONS):
                continue
            step_fn: Callable[[peewee.Database], None] = MIGRATIONS[number - 1]
            step_fn(db)
            _set_schema_version(db, number)
        log.info("database schema migrated to version %d", number)
