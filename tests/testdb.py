"""Which database the servers under test use: SQLite in their data dir (the default), or,
with TEST_PRIVINDEX_DATABASE_URL=postgresql://user@host:port/postgres, a fresh PostgreSQL
database per data dir (created on first use, dropped at the end of the session).

The database is named after the data dir, so a server, the CLI run on its data and a
restart of it all meet the same database, just as they meet the same SQLite file. The name
also carries the xdist worker and a token of this session, so workers side by side and a
later session on the same temp paths (after one that died before dropping its databases)
never meet each other's databases.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("TEST_PRIVINDEX_DATABASE_URL", "")
ON_POSTGRES = bool(ADMIN_URL)
_created: set[str] = set()
_SESSION = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{secrets.token_hex(3)}"

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="reads or copies the SQLite file itself")


def _admin():
    import psycopg2

    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    return conn


def url_for(data_dir: Path) -> str:
    """The PostgreSQL URL of data_dir's database, created if new ('' on SQLite)."""
    if not ON_POSTGRES:
        return ""
    name = f"pidx_{_SESSION}_" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:24]
    if name not in _created:
        conn = _admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        _created.add(name)
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))


def env_for(data_dir: Path) -> dict[str, str]:
    """PRIVINDEX_DATABASE_URL for a server or command on data_dir ({} on SQLite)."""
    return {"PRIVINDEX_DATABASE_URL": url_for(data_dir)} if ON_POSTGRES else {}


def drop_all() -> None:
    if not ON_POSTGRES or not _created:
        return
    conn = _admin()
    try:
        with conn.cursor() as cur:
            for name in sorted(_created):
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()
    _created.clear()


def query(data_dir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Run sql ('?' placeholders) on data_dir's database, SQLite or PostgreSQL; rows back."""
    if ON_POSTGRES:
        conn = __import__("psycopg2").connect(url_for(data_dir))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in (cur.fetchall() if cur.description else [])
                ]
        finally:
            conn.close()
    import sqlite3

    with sqlite3.connect(Path(data_dir) / "privindex.sqlite3", timeout=15) as conn:
        return conn.execute(sql, params).fetchall()


class _Conn:
    """A DB-API connection with sqlite3's conn.execute(sql with '?', params) on both."""

    def __init__(self, raw, postgres: bool):
        self.raw, self.postgres = raw, postgres

    def execute(self, sql: str, params: tuple = ()):
        if not self.postgres:
            return self.raw.execute(sql, params)
        cur = self.raw.cursor()
        cur.execute(
            sql.replace("?", "%s")
            .replace("FROM user ", 'FROM "user" ')
            .replace("UPDATE user ", 'UPDATE "user" '),
            params,
        )
        return cur


@contextlib.contextmanager
def connect(data_dir: Path) -> Iterator[_Conn]:
    """A connection of the test's own to data_dir's database; commits on success."""
    if ON_POSTGRES:
        import psycopg2

        raw = psycopg2.connect(url_for(data_dir))
    else:
        import sqlite3

        raw = sqlite3.connect(Path(data_dir) / "privindex.sqlite3", timeout=15)
    try:
        with raw:
            yield _Conn(raw, ON_POSTGRES)
    finally:
        raw.close()


def tables(data_dir: Path) -> list[str]:
    with connect(data_dir) as conn:
        if ON_POSTGRES:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'schema_version'"
                )
            ]
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def rows(data_dir: Path, skip_columns: frozenset[str] | set[str] = frozenset()) -> dict[str, list[tuple]]:
    """Every row of every table (by id), without the columns named in skip_columns."""
    result = {}
    with connect(data_dir) as conn:
        for table in tables(data_dir):
            cur = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cur.description]
            keep = [i for i, n in enumerate(names) if n not in skip_columns]
            found = [
                tuple(bytes(row[i]) if isinstance(row[i], memoryview) else row[i] for i in keep)
                for row in cur.fetchall()
            ]
            # by id where there is one; a search index's own tables (FTS5) have none
            order = keep.index(names.index("id")) if "id" in names and "id" not in skip_columns else None
            result[table] = sorted(found, key=(lambda r, i=order: r[i]) if order is not None else repr)
    return result


def dump(data_dir: Path) -> bytes:
    """Everything the database holds, to look for secrets in: the SQLite file and its WAL,
    or every row of every PostgreSQL table."""
    if not ON_POSTGRES:
        path = Path(data_dir) / "privindex.sqlite3"
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return repr(rows(data_dir)).encode()
