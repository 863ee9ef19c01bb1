"""`privindex migrate-db`: copy an SQLite installation's database to an empty PostgreSQL one.

The target gets its schema from the same migration steps as any new database (db.connect),
so both sides are at the same version before a row moves; then every table is copied in
foreign-key order, in one transaction under the writers' lock, from one read snapshot of
the SQLite file. Rows keep their ids (the audit trail, tokens and roles refer to them), so
the sequences are set past the highest id afterwards. The audit trail's append-only
triggers refuse UPDATE, DELETE and TRUNCATE, not INSERT: copying needs no exception to them.

What differs between the dialects is converted per target column: SQLite's 0/1 flags
become BOOLEAN, text in a BLOB column becomes bytes; generated columns (the search
vector) are left to PostgreSQL, and SQLite's FTS5 tables have no counterpart to copy.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import peewee

from privindex.db.connection import connect, migrate, postgres, redact_url

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

Report = Callable[[str], None]
BATCH = 1000
PG_ONLY = {"schema_version", "change_counter"}  # PostgreSQL's own bookkeeping, made by its migrations


class CopyError(Exception):
    """The copy cannot be made or did not verify; the message says what to do."""


@dataclass
class CopyResult:
    counts: dict[str, int] = field(default_factory=dict)  # table -> rows copied, in copy order


def _source_tables(conn: sqlite3.Connection) -> list[str]:
    """Ordinary tables, parents before children; FTS5 tables and their shadow tables left out."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    names = sorted(
        name
        for name, _sql in rows
        if name not in virtual and not any(name.startswith(v + "_") for v in virtual)
    )
    parents = {
        name: {r[2] for r in conn.execute(f'PRAGMA foreign_key_list("{name}")')} - {name} for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise CopyError(f"the foreign keys between {sorted(set(names) - set(ordered))} form a cycle")
        ordered += ready
    return ordered


def _target_columns(cur: cursor) -> dict[str, dict[str, str]]:
    """table -> {column: data type} on PostgreSQL, generated columns left out."""
    cur.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_generated = 'NEVER' ORDER BY ordinal_position"
    )
    result: dict[str, dict[str, str]] = {}
    for table, column, kind in cur.fetchall():
        result.setdefault(table, {})[column] = kind
    return result


def _converter(kind: str) -> Callable:
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    if kind == "bytea":
        return lambda v: v.encode() if isinstance(v, str) else v
    return lambda v: v


def _refuse_if_not_empty(url: str) -> None:
    """The target must hold no tables, or only privindex's tables with no rows in them."""
    db = postgres(url)
    try:
        db.connect()
    except Exception as exc:  # peewee.OperationalError: the server's one-line reason
        raise CopyError(f"cannot connect to {redact_url(url)}: {str(exc).strip()}") from None
    try:
        tables = {
            r[0]
            for r in db.execute_sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        }
        if not tables:
            return
        if "schema_version" not in tables:
            raise CopyError(
                f"{redact_url(url)} already holds tables that are not privindex's "
                f"({', '.join(sorted(tables)[:5])}{', ...' if len(tables) > 5 else ''}); "
                "migrate-db copies into an empty database: create one (createdb -O privindex "
                "privindex) and give its URL"
            )
        migrate(db)  # an empty privindex schema of an older version: bring it up first
        filled = {}
        for table in sorted(tables - PG_ONLY):
            count = db.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if count:
                filled[table] = count
        if filled:
            listed = ", ".join(f"{t} {n:,}" for t, n in list(filled.items())[:6])
            raise CopyError(
                f"{redact_url(url)} is not empty ({listed}); migrate-db copies into an empty "
                "database only, so nothing there is overwritten: give the URL of a new database "
                "(createdb -O privindex privindex_new), or drop this one and create it again"
            )
    finally:
        db.close()


def copy_sqlite_to_postgres(source: Path, url: str, report: Report) -> CopyResult:
    """Copy the SQLite database at source into the empty PostgreSQL database at url."""
    if not source.is_file():
        raise CopyError(f"there is no SQLite database at {source}; check --data-dir")
    _refuse_if_not_empty(url)
    try:
        connect(source).close()  # bring the source to this version's schema too
        target = connect(url)
    except (RuntimeError, ValueError) as exc:
        raise CopyError(f"cannot open the databases: {exc}") from None
    result = CopyResult()
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        reader.execute("BEGIN")  # one snapshot for every table
        tables = _source_tables(reader)
        with target.atomic():  # one transaction, under the writers' lock
            cur = target.cursor()
            columns = _target_columns(cur)
            missing = [t for t in tables if t not in columns]
            if missing:
                raise CopyError(
                    f"tables {missing} have no counterpart on PostgreSQL; is this privindex "
                    "older than the one that wrote the SQLite file?"
                )
            for table in tables:
                result.counts[table] = _copy_table(reader, cur, table, columns[table], report)
            for table in tables:
                if "id" in columns[table]:
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                        f'COALESCE(MAX(id), 0) + 1, false) FROM "{table}"',
                        (f'"{table}"',),
                    )
        _verify(reader, target, result)
    except Exception as exc:
        if isinstance(exc, CopyError):
            raise
        import psycopg2

        if isinstance(exc, (psycopg2.Error, sqlite3.Error)) or type(exc).__module__.startswith("peewee"):
            raise CopyError(
                f"the copy failed and was rolled back, the target is as it was: "
                f"{str(exc).strip().splitlines()[0]}"
            ) from None
        raise
    finally:
        reader.close()
        target.close()
    return result


def _copy_table(
    reader: sqlite3.Connection, cur: cursor, table: str, target_columns: dict[str, str], report: Report
) -> int:
    from psycopg2.extras import execute_values

    source_columns = [r[1] for r in reader.execute(f'PRAGMA table_info("{table}")')]
    extra = set(source_columns) - set(target_columns)
    if extra:
        raise CopyError(f"{table}: columns {sorted(extra)} have no counterpart on PostgreSQL")
    names = [c for c in source_columns if c in target_columns]
    convert = [_converter(target_columns[c]) for c in names]
    total = reader.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    rows = reader.execute(
        f'SELECT {", ".join(chr(34) + c + chr(34) for c in names)} FROM "{table}" ORDER BY rowid'
    )
    quoted = ", ".join(f'"{c}"' for c in names)
    done = 0
    last_said = time.monotonic()
    while True:
        batch = rows.fetchmany(BATCH)
        if not batch:
            break
        execute_values(
            cur,
            f'INSERT INTO "{table}" ({quoted}) VALUES %s',
            [tuple(f(v) for f, v in zip(convert, row)) for row in batch],
            page_size=BATCH,
        )
        done += len(batch)
        if time.monotonic() - last_said >= 1.0 and done < total:
            last_said = time.monotonic()
            report(f"{table} {done:,}/{total:,}")
    report(f"{table} {done:,}/{total:,}")
    return done


def _verify(reader: sqlite3.Connection, target: peewee.Database, result: CopyResult) -> None:
    """Row counts per table, read back from both after the commit."""
    wrong = []
    for table, copied in result.counts.items():
        here = reader.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        there = target.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        if not here == there == copied:
            wrong.append(f"{table}: {here:,} in SQLite, {there:,} on PostgreSQL")
    if wrong:
        raise CopyError("the copy does not match: " + "; ".join(wrong))
