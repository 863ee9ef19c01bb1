"""PostgreSQL as the database (`database_url`): the same schema steps, the version in a
table, the audit trail append-only there too, and the URL's password never printed.

The rest of the suite runs on PostgreSQL as well when TEST_PRIVINDEX_DATABASE_URL is set
(.ci/run does); the tests here that need a PostgreSQL server are skipped without one."""

from __future__ import annotations

import peewee
import pytest
import testdb
from conftest import free_port, run_privindex

from privindex.db.connection import connect, schema_version
from privindex.db.migrations import MIGRATIONS, Dialects, MissingDialect, run

pytestmark = pytest.mark.slow  # PostgreSQL processes and the real CLI

needs_postgres = pytest.mark.skipif(not testdb.ON_POSTGRES, reason="needs TEST_PRIVINDEX_DATABASE_URL")


def test_a_database_url_password_is_never_printed(tmp_path):
    url = f"postgresql://privindex:s3cret-PASSWORD@127.0.0.1:{free_port()}/privindex"
    proc = run_privindex(
        "user",
        "list",
        data_dir=tmp_path / "data",
        store=tmp_path / "store",
        check=False,
        env={"PRIVINDEX_DATABASE_URL": url},
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "s3cret-PASSWORD" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        "privindex: error: cannot open the database postgresql://privindex:***@127.0.0.1:"
    )
    assert not (tmp_path / "data" / "privindex.sqlite3").exists()


def test_a_database_url_that_is_not_postgresql_is_refused_by_name(tmp_path):
    proc = run_privindex(
        "user",
        "list",
        data_dir=tmp_path / "data",
        store=tmp_path / "store",
        check=False,
        env={"PRIVINDEX_DATABASE_URL": "mysql://root:hunter22@db/privindex"},
    )
    assert proc.returncode == 2 and "hunter22" not in proc.stderr and "Traceback" not in proc.stderr
    assert "PRIVINDEX_DATABASE_URL: must be empty" in proc.stderr and "postgresql://" in proc.stderr


@needs_postgres
def test_a_fresh_database_gets_every_step_and_an_append_only_audit_trail(tmp_path):
    data = tmp_path / "data"
    run_privindex(
        "user",
        "add",
        "carol",
        "--password-stdin",
        data_dir=data,
        store=tmp_path / "store",
        input="a long enough password\n",
    )
    assert testdb.query(data, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    assert {"user", "api_token", "published_file", "web_session", "trusted_publisher"} <= set(
        testdb.tables(data)
    )
    (event,) = testdb.query(data, "SELECT id, tag FROM audit_event")
    assert event[1] == "user:create"
    for sql in ("UPDATE audit_event SET tag = 'x'", "DELETE FROM audit_event", "TRUNCATE audit_event"):
        with pytest.raises(Exception, match="the audit trail is append-only"):
            testdb.query(data, sql)
    assert testdb.query(data, "SELECT id, tag FROM audit_event") == [event]
    # opening it again changes nothing
    assert run_privindex("user", "list", data_dir=data, store=tmp_path / "store").stdout.startswith("carol\t")
    assert testdb.query(data, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]


@needs_postgres
def test_a_database_from_a_newer_privindex_is_refused(tmp_path):
    data = tmp_path / "data"
    run_privindex("user", "list", data_dir=data, store=tmp_path / "store")
    testdb.query(data, "UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    proc = run_privindex("user", "list", data_dir=data, store=tmp_path / "store", check=False)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert f"written by a newer privindex (schema {len(MIGRATIONS) + 1}, this one knows" in proc.stderr


@needs_postgres
def test_a_step_written_for_sqlite_only_stops_the_migration_with_its_name(tmp_path):
    db = connect(testdb.url_for(tmp_path / "data"))
    try:
        assert schema_version(db) == len(MIGRATIONS)
        with pytest.raises(MissingDialect, match="schema step v9 has no postgresql variant"), db.atomic():
            run(
                db,
                [
                    "CREATE TABLE before_it (id INTEGER)",
                    Dialects(sqlite="CREATE VIRTUAL TABLE search USING fts5(name)", postgresql=None),
                ],
                "v9",
            )
        with pytest.raises(peewee.ProgrammingError):  # rolled back with its step
            db.execute_sql("SELECT * FROM before_it")
    finally:
        db.close()
