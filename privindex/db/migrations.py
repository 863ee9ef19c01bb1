"""Schema migrations, in order: MIGRATIONS[i] takes the schema from version i to i + 1.

Each step is plain SQL frozen at the time it was written (never derived from the current
models), so an old database always upgrades along the same path.

Two dialects, one schema. A step lists its statements; a plain string is run on both
SQLite and PostgreSQL, and `Dialects(sqlite=..., postgresql=...)` gives each its own
text where they differ (types: REAL -> DOUBLE PRECISION, BLOB -> BYTEA, INTEGER PRIMARY
KEY -> SERIAL PRIMARY KEY, 0/1 flags -> BOOLEAN; `user` is quoted on PostgreSQL; the
audit trail's triggers are PL/pgSQL there; strftime -> extract(epoch ...)). A step
written for SQLite only (an FTS5 table, say) says `Dialects(sqlite=..., postgresql=None)`:
on PostgreSQL that step then stops the migration with a message naming it, rather than
run half a schema, until someone writes its PostgreSQL text. Either text may also be a
list of statements. The version lives in `PRAGMA user_version` on SQLite and in the
one-row `schema_version` table on PostgreSQL (connection.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import peewee


@dataclass(frozen=True)
class Dialects:
    """One statement (or list of statements) per dialect; postgresql=None: not written yet."""

    sqlite: str | Sequence[str]
    postgresql: str | Sequence[str] | None


Statement = str | Dialects


class MissingDialect(RuntimeError):
    """A schema step has no text for this database's dialect."""


def dialect(db: peewee.Database) -> str:
    return "postgresql" if isinstance(db, peewee.PostgresqlDatabase) else "sqlite"


def run(db: peewee.Database, statements: Sequence[Statement], step: str = "") -> None:
    """Run a step's statements in db's dialect (the caller holds the transaction)."""
    which = dialect(db)
    for statement in statements:
        if isinstance(statement, Dialects):
            text = getattr(statement, which)
            if text is None:
                raise MissingDialect(
                    f"schema step {step or '?'} has no {which} variant yet; this "
                    f"privindex cannot create its schema on {which}"
                )
            texts = [text] if isinstance(text, str) else list(text)
        else:
            texts = [statement]
        for sql in texts:
            db.execute_sql(sql)


def v1_files(db: peewee.Database) -> None:
    """Persisted per-file facts, so a restart does not rehash the store."""
    run(
        db,
        [
            Dialects(
                sqlite="""
        CREATE TABLE dist_file (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            requires_python TEXT,
            metadata BLOB,
            metadata_sha256 TEXT,
            upload_time REAL NOT NULL,
            yanked INTEGER NOT NULL DEFAULT 0,
            yanked_reason TEXT NOT NULL DEFAULT ''
        )
        """,
                postgresql="""
        CREATE TABLE dist_file (
            id SERIAL PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            size BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            requires_python TEXT,
            metadata BYTEA,
            metadata_sha256 TEXT,
            upload_time DOUBLE PRECISION NOT NULL,
            yanked BOOLEAN NOT NULL DEFAULT FALSE,
            yanked_reason TEXT NOT NULL DEFAULT ''
        )
        """,
            ),
            "CREATE INDEX dist_file_project ON dist_file (project)",
        ],
        "v1",
    )


def v2_accounts(db: peewee.Database) -> None:
    """Users, second factors, API tokens, projects and roles, the audit trail, and the
    short-lived server-side state of sign-ins (pending logins, WebAuthn challenges)."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE user (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            is_admin INTEGER NOT NULL DEFAULT 0,
            is_disabled INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            last_login_at REAL,
            session_version INTEGER NOT NULL DEFAULT 1,
            webauthn_user_handle BLOB NOT NULL,
            totp_secret TEXT,
            totp_last_counter INTEGER,
            totp_enabled_at REAL
        )""",
                postgresql="""CREATE TABLE "user" (
            id SERIAL PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            is_admin BOOLEAN NOT NULL DEFAULT FALSE,
            is_disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DOUBLE PRECISION NOT NULL,
            last_login_at DOUBLE PRECISION,
            session_version INTEGER NOT NULL DEFAULT 1,
            webauthn_user_handle BYTEA NOT NULL,
            totp_secret TEXT,
            totp_last_counter BIGINT,
            totp_enabled_at DOUBLE PRECISION
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE security_key (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            credential_id BLOB NOT NULL UNIQUE,
            public_key BLOB NOT NULL,
            sign_count INTEGER NOT NULL DEFAULT 0,
            transports TEXT NOT NULL DEFAULT '[]',
            aaguid TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL,
            UNIQUE (user_id, label)
        )""",
                postgresql="""CREATE TABLE security_key (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            credential_id BYTEA NOT NULL UNIQUE,
            public_key BYTEA NOT NULL,
            sign_count BIGINT NOT NULL DEFAULT 0,
            transports TEXT NOT NULL DEFAULT '[]',
            aaguid TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL,
            last_used_at DOUBLE PRECISION,
            UNIQUE (user_id, label)
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE recovery_code (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            used_at REAL
        )""",
                postgresql="""CREATE TABLE recovery_code (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            used_at DOUBLE PRECISION
        )""",
            ),
            "CREATE INDEX recovery_code_user ON recovery_code (user_id)",
            Dialects(
                sqlite="""CREATE TABLE project (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE project (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE project_role (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            UNIQUE (project_id, user_id)
        )""",
                postgresql="""CREATE TABLE project_role (
            id SERIAL PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            UNIQUE (project_id, user_id)
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE api_token (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            read_only INTEGER NOT NULL DEFAULT 0,
            all_projects INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            last_used_at REAL,
            expires_at REAL,
            revoked_at REAL
        )""",
                postgresql="""CREATE TABLE api_token (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            read_only BOOLEAN NOT NULL DEFAULT FALSE,
            all_projects BOOLEAN NOT NULL DEFAULT TRUE,
            created_at DOUBLE PRECISION NOT NULL,
            last_used_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION
        )""",
            ),
            "CREATE INDEX api_token_user ON api_token (user_id)",
            Dialects(
                sqlite="""CREATE TABLE token_project (
            id INTEGER PRIMARY KEY,
            token_id INTEGER NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            UNIQUE (token_id, project_id)
        )""",
                postgresql="""CREATE TABLE token_project (
            id SERIAL PRIMARY KEY,
            token_id INTEGER NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            UNIQUE (token_id, project_id)
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE audit_event (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            tag TEXT NOT NULL,
            actor_id INTEGER REFERENCES user (id),
            actor TEXT,
            subject TEXT,
            project TEXT,
            ip TEXT,
            user_agent TEXT,
            token_id INTEGER,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
                postgresql="""CREATE TABLE audit_event (
            id SERIAL PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            tag TEXT NOT NULL,
            actor_id INTEGER REFERENCES "user" (id),
            actor TEXT,
            subject TEXT,
            project TEXT,
            ip TEXT,
            user_agent TEXT,
            token_id INTEGER,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
            ),
            "CREATE INDEX audit_event_ts ON audit_event (ts)",
            "CREATE INDEX audit_event_actor ON audit_event (actor_id)",
            "CREATE INDEX audit_event_project ON audit_event (project)",
            # An audit trail is append-only: the database itself refuses edits and deletions.
            Dialects(
                sqlite=[
                    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
                    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
                ],
                postgresql=[
                    """CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""",
                    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
           FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
                    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
           FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
                    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
           FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
                ],
            ),
            Dialects(
                sqlite="""CREATE TABLE pending_auth (
            id INTEGER PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            purpose TEXT NOT NULL,
            challenge BLOB,
            data TEXT NOT NULL DEFAULT '{}',
            expires_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE pending_auth (
            id SERIAL PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            purpose TEXT NOT NULL,
            challenge BYTEA,
            data TEXT NOT NULL DEFAULT '{}',
            expires_at DOUBLE PRECISION NOT NULL
        )""",
            ),
        ],
        "v2",
    )


def v3_published_files(db: peewee.Database) -> None:
    """Published digests: the sha256 a filename was published with is the truth, whatever
    its bytes on disk say later. A row outlives a file deleted by hand (so a re-dropped
    file with other bytes is caught), not one deleted through privindex. `revision` grows
    with every new or changed publication, so a running server finds what a command
    (`privindex file accept|replace`) changed. Existing files are published with the
    digest their upload's audit event recorded, else the one on record."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE published_file (
            id INTEGER PRIMARY KEY,
            filename TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            published_at REAL NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0,
            withdrawn_sha256 TEXT,
            withdrawn_at REAL
        )""",
                postgresql="""CREATE TABLE published_file (
            id SERIAL PRIMARY KEY,
            filename TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            published_at DOUBLE PRECISION NOT NULL,
            revision BIGINT NOT NULL DEFAULT 0,
            withdrawn_sha256 TEXT,
            withdrawn_at DOUBLE PRECISION
        )""",
            ),
            "CREATE INDEX published_file_revision ON published_file (revision)",
            Dialects(
                sqlite="""INSERT OR IGNORE INTO published_file (filename, project, sha256, published_at)
           WITH named AS (
               SELECT substr(path, length(rtrim(path, replace(path, '/', ''))) + 1) AS filename,
                      project, sha256, upload_time, path
               FROM dist_file
           )
           SELECT filename, project,
                  coalesce((SELECT json_extract(a.details, '$.sha256') FROM audit_event a
                            WHERE a.tag IN ('file:add', 'file:overwrite') AND a.subject = named.filename
                            ORDER BY a.id DESC LIMIT 1), sha256),
                  upload_time
           FROM named ORDER BY path""",
                postgresql="""INSERT INTO published_file (filename, project, sha256, published_at)
           WITH named AS (
               SELECT regexp_replace(path, '^.*/', '') AS filename, project, sha256, upload_time, path
               FROM dist_file
           )
           SELECT filename, project,
                  coalesce((SELECT a.details::json ->> 'sha256' FROM audit_event a
                            WHERE a.tag IN ('file:add', 'file:overwrite') AND a.subject = named.filename
                            ORDER BY a.id DESC LIMIT 1), sha256),
                  upload_time
           FROM named ORDER BY path
           ON CONFLICT (filename) DO NOTHING""",
            ),
        ],
        "v3",
    )


def v4_sessions(db: peewee.Database) -> None:
    """The accounts' schema changes (server-side sessions, disable times).

    A web session is a row found by the SHA-256 of the key its cookie holds, so signing out
    ends it on the server. Users disabled before this version get a disable time, and their
    tokens are revoked (a re-enabled user's old tokens must not come back to life).
    """
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE web_session (
            id INTEGER PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            ip TEXT,
            user_agent TEXT,
            method TEXT NOT NULL DEFAULT 'password'
        )""",
                postgresql="""CREATE TABLE web_session (
            id SERIAL PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            created_at DOUBLE PRECISION NOT NULL,
            last_seen_at DOUBLE PRECISION NOT NULL,
            ip TEXT,
            user_agent TEXT,
            method TEXT NOT NULL DEFAULT 'password'
        )""",
            ),
            "CREATE INDEX web_session_user ON web_session (user_id)",
            Dialects(
                sqlite=[
                    "ALTER TABLE user ADD COLUMN disabled_at REAL",
                    "UPDATE user SET disabled_at = CAST(strftime('%s', 'now') AS REAL) WHERE is_disabled = 1",
                    """UPDATE api_token SET revoked_at = CAST(strftime('%s', 'now') AS REAL)
           WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM user WHERE is_disabled = 1)""",
                ],
                postgresql=[
                    'ALTER TABLE "user" ADD COLUMN disabled_at DOUBLE PRECISION',
                    """UPDATE "user" SET disabled_at = extract(epoch FROM now())::DOUBLE PRECISION
           WHERE is_disabled""",
                    """UPDATE api_token SET revoked_at = extract(epoch FROM now())::DOUBLE PRECISION
           WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM "user" WHERE is_disabled)""",
                ],
            ),
        ],
        "v4",
    )


def v5_trusted_publishing(db: peewee.Database) -> None:
    """Trusted Publishing: publishers (a CI repository + workflow trusted to upload to one
    project, or to create it: pending, while project_id is NULL), the identity tokens
    already exchanged (each `jti` once, kept until the token expires), and on api_token
    the publisher that minted a token and the CI claims it was minted for."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE trusted_publisher (
            id INTEGER PRIMARY KEY,
            project_id INTEGER REFERENCES project (id) ON DELETE CASCADE,
            pending_name TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('gitlab', 'github', 'forgejo')),
            issuer TEXT NOT NULL,
            repository TEXT NOT NULL,
            repository_owner_id TEXT,
            workflow TEXT NOT NULL,
            environment TEXT,
            created_by_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            CHECK ((project_id IS NULL) <> (pending_name IS NULL))
        )""",
                postgresql="""CREATE TABLE trusted_publisher (
            id SERIAL PRIMARY KEY,
            project_id INTEGER REFERENCES project (id) ON DELETE CASCADE,
            pending_name TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('gitlab', 'github', 'forgejo')),
            issuer TEXT NOT NULL,
            repository TEXT NOT NULL,
            repository_owner_id TEXT,
            workflow TEXT NOT NULL,
            environment TEXT,
            created_by_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            created_at DOUBLE PRECISION NOT NULL,
            CHECK ((project_id IS NULL) <> (pending_name IS NULL))
        )""",
            ),
            "CREATE INDEX trusted_publisher_project ON trusted_publisher (project_id)",
            "CREATE INDEX trusted_publisher_repository ON trusted_publisher (issuer, repository)",
            Dialects(
                sqlite="""CREATE TABLE oidc_token_use (
            id INTEGER PRIMARY KEY,
            issuer TEXT NOT NULL,
            jti TEXT NOT NULL,
            expires_at REAL NOT NULL,
            UNIQUE (issuer, jti)
        )""",
                postgresql="""CREATE TABLE oidc_token_use (
            id SERIAL PRIMARY KEY,
            issuer TEXT NOT NULL,
            jti TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            UNIQUE (issuer, jti)
        )""",
            ),
            "CREATE INDEX oidc_token_use_expires ON oidc_token_use (expires_at)",
            "ALTER TABLE api_token ADD COLUMN publisher_id INTEGER "
            "REFERENCES trusted_publisher (id) ON DELETE SET NULL",
            "ALTER TABLE api_token ADD COLUMN ci_claims TEXT",
        ],
        "v5",
    )


def v6_upstream(db: peewee.Database) -> None:
    """The upstream index: whether an admin allowed the upstream's files for a local name
    (merged after the local ones), and when that last changed. The cache itself lives in
    the data dir's upstream/ folder, not in the database."""
    run(
        db,
        [
            Dialects(
                sqlite="ALTER TABLE project ADD COLUMN allow_upstream INTEGER NOT NULL DEFAULT 0",
                postgresql="ALTER TABLE project ADD COLUMN allow_upstream BOOLEAN NOT NULL DEFAULT FALSE",
            ),
            Dialects(
                sqlite="ALTER TABLE project ADD COLUMN upstream_changed_at REAL",
                postgresql="ALTER TABLE project ADD COLUMN upstream_changed_at DOUBLE PRECISION",
            ),
        ],
        "v6",
    )


def v7_browse(db: peewee.Database) -> None:
    """What releases say about themselves, for the package browser, and a user's language.

    `release` keeps, per (project, version), what its core metadata says: the summary, the
    long description already rendered to sanitised HTML (readme_renderer, once, when a file
    is published or indexed: no page reads an archive or renders Markdown), the URLs and
    classifiers. `project_meta` holds each project's latest release and summary, and
    `project_search` is an FTS5 index over it (kept in step by triggers) for the search
    box. Rows for files already in the store are filled in at the next start. A removed user
    keeps a row (`removed_at`): the audit trail refers to it, and the name stays taken. On
    PostgreSQL the search index is a generated tsvector column with a GIN index instead of
    FTS5 (releases.search asks each in its own language).
    """
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE release (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            version TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            description_html TEXT NOT NULL DEFAULT '',
            description_type TEXT NOT NULL DEFAULT '',
            source_sha256 TEXT NOT NULL,
            urls TEXT NOT NULL DEFAULT '[]',
            classifiers TEXT NOT NULL DEFAULT '[]',
            requires_python TEXT,
            recorded_at REAL NOT NULL,
            UNIQUE (project, version)
        )""",
                postgresql="""CREATE TABLE release (
            id SERIAL PRIMARY KEY,
            project TEXT NOT NULL,
            version TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            description_html TEXT NOT NULL DEFAULT '',
            description_type TEXT NOT NULL DEFAULT '',
            source_sha256 TEXT NOT NULL,
            urls TEXT NOT NULL DEFAULT '[]',
            classifiers TEXT NOT NULL DEFAULT '[]',
            requires_python TEXT,
            recorded_at DOUBLE PRECISION NOT NULL,
            UNIQUE (project, version)
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE project_meta (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            latest_version TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT ''
        )""",
                postgresql="""CREATE TABLE project_meta (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            latest_version TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            search tsvector GENERATED ALWAYS AS
                (to_tsvector('simple', replace(name, '-', ' ') || ' ' || summary)) STORED
        )""",
            ),
            Dialects(
                sqlite=[
                    """CREATE VIRTUAL TABLE project_search USING fts5(
                name, summary, content='project_meta', content_rowid='id',
                tokenize='unicode61 remove_diacritics 2')""",
                    """CREATE TRIGGER project_meta_ai AFTER INSERT ON project_meta BEGIN
                INSERT INTO project_search (rowid, name, summary) VALUES (new.id, new.name, new.summary);
               END""",
                    """CREATE TRIGGER project_meta_ad AFTER DELETE ON project_meta BEGIN
                INSERT INTO project_search (project_search, rowid, name, summary)
                VALUES ('delete', old.id, old.name, old.summary);
               END""",
                    """CREATE TRIGGER project_meta_au AFTER UPDATE ON project_meta BEGIN
                INSERT INTO project_search (project_search, rowid, name, summary)
                VALUES ('delete', old.id, old.name, old.summary);
                INSERT INTO project_search (rowid, name, summary) VALUES (new.id, new.name, new.summary);
               END""",
                ],
                postgresql="CREATE INDEX project_meta_search ON project_meta USING GIN (search)",
            ),
            Dialects(
                sqlite="ALTER TABLE user ADD COLUMN locale TEXT",
                postgresql='ALTER TABLE "user" ADD COLUMN locale TEXT',
            ),
            Dialects(
                sqlite="ALTER TABLE user ADD COLUMN removed_at REAL",
                postgresql='ALTER TABLE "user" ADD COLUMN removed_at DOUBLE PRECISION',
            ),
        ],
        "v7",
    )


def v8_change_counter(db: peewee.Database) -> None:
    """Several processes on one PostgreSQL database: a counter every write to the tables a
    server keeps in memory (file facts and yanks, publications, claimed projects) bumps, by
    trigger, whichever process or command wrote. Each server's watcher polls it, as
    `PRAGMA data_version` is polled on SQLite (where this step does nothing: SQLite has
    that number already)."""
    tables = ("dist_file", "published_file", "project")
    run(
        db,
        [
            Dialects(
                sqlite=[],
                postgresql=[
                    """CREATE TABLE change_counter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            value BIGINT NOT NULL
        )""",
                    "INSERT INTO change_counter (id, value) VALUES (1, 0)",
                    """CREATE FUNCTION change_counter_bump() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN UPDATE change_counter SET value = value + 1 WHERE id = 1; RETURN NULL; END $$""",
                    *(
                        f"""CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()"""
                        for table in tables
                    ),
                ],
            )
        ],
        "v8",
    )


def v9_dist_file_filename(db: peewee.Database) -> None:
    """Each file record names its filename (the path's last part), so a start joins the
    records with their publications on a plain column: the same join on an expression of
    the path cost a third of a warm start at 100,000 files, and joining in Python held
    every publication in memory at once (30 MB that never went back to the system)."""
    run(
        db,
        [
            "ALTER TABLE dist_file ADD COLUMN filename TEXT NOT NULL DEFAULT ''",
            Dialects(
                sqlite="UPDATE dist_file SET filename = "
                "substr(path, length(rtrim(path, replace(path, '/', ''))) + 1)",
                postgresql="UPDATE dist_file SET filename = regexp_replace(path, '^.*/', '')",
            ),
        ],
        "v9",
    )


def v10_rate_limits(db: peewee.Database) -> None:
    """Sign-in rate limits held in the database, so every process sharing it counts the
    same attempts (auth/ratelimit.py). One row per attempt and per key kind (user, address):
    `pending` while its check runs (a reservation), then a counted failure, or deleted if
    the check passed. `ident` is an HMAC-SHA-256 of the name or address tried, never the text
    typed. Rows older than the limiter's longest window are deleted as attempts come."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE rate_limit_hit (
            id INTEGER PRIMARY KEY,
            scope TEXT NOT NULL,
            ident TEXT NOT NULL,
            at REAL NOT NULL,
            pending INTEGER NOT NULL DEFAULT 1
        )""",
                postgresql="""CREATE TABLE rate_limit_hit (
            id SERIAL PRIMARY KEY,
            scope TEXT NOT NULL,
            ident TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            pending BOOLEAN NOT NULL DEFAULT TRUE
        )""",
            ),
            "CREATE INDEX rate_limit_hit_key ON rate_limit_hit (scope, ident, at)",
            "CREATE INDEX rate_limit_hit_at ON rate_limit_hit (scope, at)",
        ],
        "v10",
    )


def v11_listing_indexes(db: peewee.Database) -> None:
    """Indexes that hold every column the project list needs (Index.load_recorded), so a
    start lists 20,000 projects from 100,000 file records without reading the records
    themselves: 0.09 s instead of 0.4 s. The first replaces the index on project alone."""
    run(
        db,
        [
            "CREATE INDEX dist_file_listing ON dist_file (project, name, filename, sha256)",
            "DROP INDEX dist_file_project",
            "CREATE INDEX published_file_listing ON published_file (filename, sha256, withdrawn_sha256)",
        ],
        "v11",
    )


def v12_project_status(db: peewee.Database) -> None:
    """PEP 792 project status markers: `active` (what every existing project is),
    `archived`, `quarantined` or `deprecated`, and the free-text reason shown with it."""
    run(
        db,
        [
            "ALTER TABLE project ADD COLUMN status TEXT NOT NULL DEFAULT 'active'",
            "ALTER TABLE project ADD COLUMN status_reason TEXT NOT NULL DEFAULT ''",
        ],
        "v12",
    )


def v13_namespaces(db: peewee.Database) -> None:
    """PEP 752 namespace grants: a normalized prefix that makes every name under it local
    (upstream/source_rules.py) and reserves new projects under it for its owners
    (accounts/permissions.py), unless `open`. Owners are users; a grant's history is in the
    audit trail, so a revoke deletes its rows. On PostgreSQL the grants and project roles
    (PEP 752's `owned`) bump change_counter like the tables of v8, so every server follows."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE namespace (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            open INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE namespace (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            open BOOLEAN NOT NULL DEFAULT FALSE,
            created_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE namespace_owner (
            id INTEGER PRIMARY KEY,
            namespace_id INTEGER NOT NULL REFERENCES namespace (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE
        )""",
                postgresql="""CREATE TABLE namespace_owner (
            id SERIAL PRIMARY KEY,
            namespace_id INTEGER NOT NULL REFERENCES namespace (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE
        )""",
            ),
            "CREATE UNIQUE INDEX namespace_owner_pair ON namespace_owner (namespace_id, user_id)",
            "CREATE INDEX namespace_owner_user ON namespace_owner (user_id)",
            Dialects(
                sqlite=[],
                postgresql=[
                    f"""CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()"""
                    for table in ("namespace", "namespace_owner", "project_role")
                ],
            ),
        ],
        "v13",
    )


def v14_retention(db: peewee.Database) -> None:
    """Retention and the cooldown's exemptions (issue 27). `retention_policy`: a project's
    overrides of the index-wide policy (NULL: the setting). `retention_run`: one row per run
    that deleted, summed for /metrics whichever process ran it. `retention_schedule`: the one
    row (made by the first round: an empty table keeps `migrate-db`'s target empty) whose
    conditional UPDATE elects the process that runs a scheduled round.
    `upstream_exemption`: names an admin lets past upstream_min_age (until: NULL for good)."""
    run(
        db,
        [
            """CREATE TABLE retention_policy (
            project TEXT PRIMARY KEY,
            keep_prereleases INTEGER,
            dev_max_days INTEGER
        )""",
            Dialects(
                sqlite="""CREATE TABLE retention_run (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            via TEXT NOT NULL
        )""",
                postgresql="""CREATE TABLE retention_run (
            id SERIAL PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            files INTEGER NOT NULL,
            bytes BIGINT NOT NULL,
            via TEXT NOT NULL
        )""",
            ),
            Dialects(
                sqlite="CREATE TABLE retention_schedule (id INTEGER PRIMARY KEY, next_run REAL NOT NULL)",
                postgresql="CREATE TABLE retention_schedule "
                "(id INTEGER PRIMARY KEY, next_run DOUBLE PRECISION NOT NULL)",
            ),
            Dialects(
                sqlite="CREATE TABLE upstream_exemption "
                "(name TEXT PRIMARY KEY, until REAL, created_at REAL NOT NULL)",
                postgresql="CREATE TABLE upstream_exemption "
                "(name TEXT PRIMARY KEY, until DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL)",
            ),
            Dialects(  # servers keep the exemptions in memory: a change is a change (see v8)
                sqlite=[],
                postgresql="""CREATE TRIGGER upstream_exemption_changed
           AFTER INSERT OR UPDATE OR DELETE ON upstream_exemption
           FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()""",
            ),
        ],
        "v14",
    )


def v15_notify(db: peewee.Database) -> None:
    """Notifications (issue 28). `outbox`: deliveries waiting to go out (mail, webhooks),
    written in the transaction of the action they announce and sent by a background thread
    with retries; `dedupe_key` (unique) makes an enqueue idempotent, `ref` names what a
    delivery belongs to (a webhook) so its log can be listed. `webhook`: a project's hooks
    (project NULL: index-wide); the secret is kept because it signs every delivery. Its ids
    are never reused (AUTOINCREMENT on SQLite, as SERIAL is): a delivery names its hook by id."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            dedupe_key TEXT UNIQUE,
            ref TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            outcome TEXT,
            duration REAL,
            created_at REAL NOT NULL,
            sent_at REAL
        )""",
                postgresql="""CREATE TABLE outbox (
            id SERIAL PRIMARY KEY,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            dedupe_key TEXT UNIQUE,
            ref TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            last_error TEXT,
            outcome TEXT,
            duration DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            sent_at DOUBLE PRECISION
        )""",
            ),
            "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
            "CREATE INDEX outbox_ref ON outbox (ref, created_at)",
            Dialects(
                sqlite="""CREATE TABLE webhook (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project TEXT,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE webhook (
            id SERIAL PRIMARY KEY,
            project TEXT,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            "CREATE INDEX webhook_project ON webhook (project)",
        ],
        "v15",
    )


def v16_email_addresses(db: peewee.Database) -> None:
    """Issue 28: people hear about their account and projects. `email_address`: a user's
    addresses (lower case, each on one account only, so a reset link finds one account),
    one primary, `verified_at` set when its link was followed (the links themselves are
    `pending_auth` rows). `known_device`: the SHA-256 of the device ids (a random id in a
    signed cookie) a user has signed in from, so a sign-in from a new one is noticed.
    `project_subscription`: a user's choice to hear of a project's uploads, yanks and
    deletions, where it differs from the default (on for owners, off for maintainers).
    `token_address`: the client addresses each API token was used from, so its first use
    from a new one is told."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE email_address (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            address TEXT NOT NULL UNIQUE,
            is_primary INTEGER NOT NULL DEFAULT 0,
            verified_at REAL,
            created_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE email_address (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            address TEXT NOT NULL UNIQUE,
            is_primary BOOLEAN NOT NULL DEFAULT FALSE,
            verified_at DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            "CREATE INDEX email_address_user ON email_address (user_id)",
            Dialects(
                sqlite="""CREATE TABLE known_device (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            device_hash TEXT NOT NULL,
            first_seen_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE known_device (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            device_hash TEXT NOT NULL,
            first_seen_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            "CREATE UNIQUE INDEX known_device_pair ON known_device (user_id, device_hash)",
            Dialects(
                sqlite="""CREATE TABLE project_subscription (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            enabled INTEGER NOT NULL
        )""",
                postgresql="""CREATE TABLE project_subscription (
            id SERIAL PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            enabled BOOLEAN NOT NULL
        )""",
            ),
            "CREATE UNIQUE INDEX project_subscription_pair ON project_subscription (user_id, project_id)",
            Dialects(
                sqlite="""CREATE TABLE token_address (
            id INTEGER PRIMARY KEY,
            token_id INTEGER NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            first_seen_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE token_address (
            id SERIAL PRIMARY KEY,
            token_id INTEGER NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
            address TEXT NOT NULL,
            first_seen_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            "CREATE UNIQUE INDEX token_address_pair ON token_address (token_id, address)",
        ],
        "v16",
    )


def v17_readme_headings(db: peewee.Database) -> None:
    """README headings one level down from their own, not two (releases._fit_page): the
    descriptions kept so far move up a level (h3 -> h2 ... h6 -> h5; what were h5 and h6
    before both became h6, so both are h5 now). Plain REPLACE, the same in both dialects;
    a lower number first, so nothing moves twice."""
    html = "description_html"
    for level in range(3, 7):
        html = f"REPLACE(REPLACE({html}, '<h{level}', '<h{level - 1}'), '</h{level}>', '</h{level - 1}>')"
    run(db, [f"UPDATE release SET description_html = {html}"], "v17")


def v18_audit_token_index(db: peewee.Database) -> None:
    """The audit log filters on the API token that acted: an index on (token_id, ts) counts
    and pages a token's events without reading the whole trail (20,000 rows and more)."""
    run(db, ["CREATE INDEX audit_event_token ON audit_event (token_id, ts)"], "v18")


def v19_sso_links(db: peewee.Database) -> None:
    """Sign-in through an identity provider (oidc/sso.py): `sso_link` ties a provider's
    subject (issuer + `sub`, which never changes, unlike a name or an email) to one user.
    The addresses a provider verifies are kept as the user's verified email addresses
    (v16's `email_address`), which is also what an unlinked user is found by to link."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE sso_link (
            id INTEGER PRIMARY KEY,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_login_at REAL
        )""",
                postgresql="""CREATE TABLE sso_link (
            id SERIAL PRIMARY KEY,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            created_at DOUBLE PRECISION NOT NULL,
            last_login_at DOUBLE PRECISION
        )""",
            ),
            "CREATE UNIQUE INDEX sso_link_subject ON sso_link (issuer, subject)",
            "CREATE INDEX sso_link_user ON sso_link (user_id)",
        ],
        "v19",
    )


def v20_passkeys(db: peewee.Database) -> None:
    """Passkeys (issue 29): `security_key.discoverable` marks a credential the key keeps on
    itself with user verification, so it signs in alone. `passkey_challenge`: a sign-in
    ceremony's single-use challenge before anyone is known (pending_auth needs a user)."""
    run(
        db,
        [
            Dialects(
                sqlite="ALTER TABLE security_key ADD COLUMN discoverable INTEGER NOT NULL DEFAULT 0",
                postgresql="ALTER TABLE security_key ADD COLUMN discoverable BOOLEAN NOT NULL DEFAULT FALSE",
            ),
            Dialects(
                sqlite="""CREATE TABLE passkey_challenge (
            key_hash TEXT PRIMARY KEY,
            challenge BLOB NOT NULL,
            expires_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE passkey_challenge (
            key_hash TEXT PRIMARY KEY,
            challenge BYTEA NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
            ),
        ],
        "v20",
    )


def v21_teams(db: peewee.Database) -> None:
    """Teams (issue 29): a named group of users that holds roles the way a user does, on a
    project (`owner` or `maintainer`) or on a namespace grant (its members may create
    projects under it). A member's rights come from the rows, read on every request, so
    removing a member or a role takes effect at once. Exactly one of project_id and
    namespace_id is set on a role; a team holds one role per project and per namespace.
    On PostgreSQL the tables bump change_counter like those of v13, so every server follows."""
    run(
        db,
        [
            Dialects(
                sqlite="""CREATE TABLE team (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )""",
                postgresql="""CREATE TABLE team (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL DEFAULT '',
            created_at DOUBLE PRECISION NOT NULL
        )""",
            ),
            Dialects(
                sqlite="""CREATE TABLE team_member (
            id INTEGER PRIMARY KEY,
            team_id INTEGER NOT NULL REFERENCES team (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            UNIQUE (team_id, user_id)
        )""",
                postgresql="""CREATE TABLE team_member (
            id SERIAL PRIMARY KEY,
            team_id INTEGER NOT NULL REFERENCES team (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
            UNIQUE (team_id, user_id)
        )""",
            ),
            "CREATE INDEX team_member_user ON team_member (user_id)",
            Dialects(
                sqlite="""CREATE TABLE team_role (
            id INTEGER PRIMARY KEY,
            team_id INTEGER NOT NULL REFERENCES team (id) ON DELETE CASCADE,
            project_id INTEGER REFERENCES project (id) ON DELETE CASCADE,
            namespace_id INTEGER REFERENCES namespace (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            CHECK ((project_id IS NULL) <> (namespace_id IS NULL)),
            UNIQUE (team_id, project_id),
            UNIQUE (team_id, namespace_id)
        )""",
                postgresql="""CREATE TABLE team_role (
            id SERIAL PRIMARY KEY,
            team_id INTEGER NOT NULL REFERENCES team (id) ON DELETE CASCADE,
            project_id INTEGER REFERENCES project (id) ON DELETE CASCADE,
            namespace_id INTEGER REFERENCES namespace (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            CHECK ((project_id IS NULL) <> (namespace_id IS NULL)),
            UNIQUE (team_id, project_id),
            UNIQUE (team_id, namespace_id)
        )""",
            ),
            "CREATE INDEX team_role_project ON team_role (project_id)",
            "CREATE INDEX team_role_namespace ON team_role (namespace_id)",
            Dialects(
                sqlite=[],
                postgresql=[
                    f"""CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()"""
                    for table in ("team", "team_member", "team_role")
                ],
            ),
        ],
        "v21",
    )


def v22_sso_link_mfa(db: peewee.Database) -> None:
    """Whether a user's last sign-in through a provider that trusts its MFA carried it
    (issue 29): then the provider's MFA is the user's second factor for tokens and uploads
    too, until a sign-in without it."""
    run(
        db,
        [
            Dialects(
                sqlite="ALTER TABLE sso_link ADD COLUMN provider_mfa INTEGER NOT NULL DEFAULT 0",
                postgresql="ALTER TABLE sso_link ADD COLUMN provider_mfa BOOLEAN NOT NULL DEFAULT FALSE",
            ),
        ],
        "v22",
    )


MIGRATIONS = [
    v1_files,
    v2_accounts,
    v3_published_files,
    v4_sessions,
    v5_trusted_publishing,
    v6_upstream,
    v7_browse,
    v8_change_counter,
    v9_dist_file_filename,
    v10_rate_limits,
    v11_listing_indexes,
    v12_project_status,
    v13_namespaces,
    v14_retention,
    v15_notify,
    v16_email_addresses,
    v17_readme_headings,
    v18_audit_token_index,
    v19_sso_links,
    v20_passkeys,
    v21_teams,
    v22_sso_link_mfa,
]
