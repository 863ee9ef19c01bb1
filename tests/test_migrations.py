"""Schema versions: an old database is upgraded in place without losing a row; a database
from a newer privindex is refused with a message that says what to do."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import testdb
from conftest import run_privindex, start_server

from privindex.db.migrations import MIGRATIONS

FIXTURE = Path(__file__).parent / "fixtures" / "schema-v1.sqlite3"
LATEST = len(MIGRATIONS)

# These upgrade a frozen SQLite file; PostgreSQL's schema steps: tests/test_postgres.py
pytestmark = [testdb.sqlite_only, pytest.mark.slow]  # old databases upgraded by a real server start


V1_DIST_COLUMNS = (
    "id, path, project, name, version, size, mtime_ns, sha256, requires_python, metadata, "
    "metadata_sha256, upload_time, yanked, yanked_reason"
)


def dist_rows(path: Path) -> list[tuple]:
    """The file records as version 1 had them (later steps add columns)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {V1_DIST_COLUMNS} FROM dist_file ORDER BY id").fetchall()


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_version_1_database_is_migrated_in_place_without_losing_a_row(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "privindex.sqlite3"
    shutil.copy(FIXTURE, db)
    before = dist_rows(db)
    assert user_version(db) == 1 and len(before) == 2 and tables(db) == {"dist_file"}

    proc = run_privindex("user", "list", data_dir=data, store=tmp_path / "store")
    assert proc.stdout == "" and "Traceback" not in proc.stderr

    assert user_version(db) == LATEST > 1
    assert dist_rows(db) == before
    with sqlite3.connect(db) as conn:  # v9: each record names its filename
        assert conn.execute("SELECT path, filename FROM dist_file").fetchall() == [
            (r[1], r[1]) for r in before
        ]
    assert {"user", "api_token", "project", "project_role", "audit_event"} <= tables(db)

    # the upgraded database is fully usable, and opening it again changes nothing
    run_privindex(
        "user",
        "add",
        "carol",
        "--password-stdin",
        data_dir=data,
        store=tmp_path / "store",
        input="a long enough password\n",
    )
    assert run_privindex("user", "list", data_dir=data, store=tmp_path / "store").stdout.startswith("carol\t")
    assert user_version(db) == LATEST
    assert dist_rows(db) == before


def test_a_database_from_a_newer_privindex_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "privindex.sqlite3"
    shutil.copy(FIXTURE, db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    before = dist_rows(db)

    proc = run_privindex("user", "list", data_dir=data, store=tmp_path / "store", check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("privindex: error: ")
    assert f"written by a newer privindex (schema {LATEST + 1}, this one knows {LATEST})" in line
    assert "upgrade privindex" in line

    # the server refuses it the same way
    try:
        server = start_server(tmp_path / "store", data)
    except AssertionError as exc:
        message = str(exc)
    else:  # pragma: no cover - the failure being tested for
        server.stop()
        raise AssertionError("the server started on a database from the future")
    assert "written by a newer privindex" in message
    assert "Traceback" not in message

    # and nothing in it was touched
    assert user_version(db) == LATEST + 1
    assert dist_rows(db) == before
    assert tables(db) == {"dist_file"}


def test_readme_headings_kept_two_levels_down_move_up_one(tmp_path):
    """v17: descriptions rendered when a README's h1 became h3 now have it as h2 (what
    releases._fit_page makes today), h6 as h5, and nothing else changes."""
    import peewee

    from privindex.db.migrations import v17_readme_headings

    db = peewee.SqliteDatabase(str(tmp_path / "old.sqlite3"))
    with db.atomic():
        for step in MIGRATIONS[: MIGRATIONS.index(v17_readme_headings)]:
            step(db)
        db.execute_sql(
            "INSERT INTO release (project, version, summary, description_html, description_type, "
            "source_sha256, urls, classifiers, requires_python, recorded_at) "
            "VALUES ('p', '1.0', '', ?, 'text/markdown', '', '[]', '[]', NULL, 0)",
            ('<h3 id="a">Title</h3><p>&lt;h3 stays text</p><h4>Part</h4><h6>Small</h6><header>x</header>',),
        )
        v17_readme_headings(db)
    (html,) = db.execute_sql("SELECT description_html FROM release").fetchone()
    assert (
        html == '<h2 id="a">Title</h2><p>&lt;h3 stays text</p><h3>Part</h3><h5>Small</h5><header>x</header>'
    )
