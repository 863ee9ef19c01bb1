"""Schema migrations, in order: MIGRATIONS[i] takes the schema from version i to i + 1.

Each step is plain SQL frozen at the time it was written (never derived from the current
models), so an old database always upgrades along the same path.
"""

from __future__ import annotations

import peewee


def v1_files(db: peewee.SqliteDatabase) -> None:
    """Persisted per-file facts, so a restart does not rehash the store."""
    db.execute_sql(
        """
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
        """
    )
    db.execute_sql("CREATE INDEX dist_file_project ON dist_file (project)")


def v2_accounts(db: peewee.SqliteDatabase) -> None:
    """Users, second factors, API tokens, projects and roles, the audit trail, and the
    short-lived server-side state of sign-ins (pending logins, WebAuthn challenges)."""
    statements = [
        """CREATE TABLE user (
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
        """CREATE TABLE security_key (
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
        """CREATE TABLE recovery_code (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            used_at REAL
        )""",
        "CREATE INDEX recovery_code_user ON recovery_code (user_id)",
        """CREATE TABLE project (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE project_role (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'maintainer')),
            UNIQUE (project_id, user_id)
        )""",
        """CREATE TABLE api_token (
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
        "CREATE INDEX api_token_user ON api_token (user_id)",
        """CREATE TABLE token_project (
            id INTEGER PRIMARY KEY,
            token_id INTEGER NOT NULL REFERENCES api_token (id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,
            UNIQUE (token_id, project_id)
        )""",
        """CREATE TABLE audit_event (
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
        "CREATE INDEX audit_event_ts ON audit_event (ts)",
        "CREATE INDEX audit_event_actor ON audit_event (actor_id)",
        "CREATE INDEX audit_event_project ON audit_event (project)",
        # An audit trail is append-only: the database itself refuses edits and deletions.
        """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        """CREATE TABLE pending_auth (
            id INTEGER PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            purpose TEXT NOT NULL,
            challenge BLOB,
            data TEXT NOT NULL DEFAULT '{}',
            expires_at REAL NOT NULL
        )""",
    ]
    for statement in statements:
        db.execute_sql(statement)


def v3_published_files(db: peewee.SqliteDatabase) -> None:
    """Published digests: the sha256 a filename was published with is the truth, whatever
    its bytes on disk say later. A row outlives a file deleted by hand (so a re-dropped
    file with other bytes is caught), not one deleted through privindex. `revision` grows
    with every new or changed publication, so a running server finds what a command
    (`privindex file accept|replace`) changed. Existing files are published with the
    digest their upload's audit event recorded, else the one on record."""
    statements = [
        """CREATE TABLE published_file (
            id INTEGER PRIMARY KEY,
            filename TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            published_at REAL NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0,
            withdrawn_sha256 TEXT,
            withdrawn_at REAL
        )""",
        "CREATE INDEX published_file_revision ON published_file (revision)",
        """INSERT OR IGNORE INTO published_file (filename, project, sha256, published_at)
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
    ]
    for statement in statements:
        db.execute_sql(statement)


def v4_sessions(db: peewee.SqliteDatabase) -> None:
    """The accounts' schema changes (server-side sessions, disable times).

    A web session is a row found by the SHA-256 of the key its cookie holds, so signing out
    ends it on the server. Users disabled before this version get a disable time, and their
    tokens are revoked (a re-enabled user's old tokens must not come back to life).
    """
    statements = [
        """CREATE TABLE web_session (
            id INTEGER PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES user (id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            ip TEXT,
            user_agent TEXT,
            method TEXT NOT NULL DEFAULT 'password'
        )""",
        "CREATE INDEX web_session_user ON web_session (user_id)",
        "ALTER TABLE user ADD COLUMN disabled_at REAL",
        "UPDATE user SET disabled_at = CAST(strftime('%s', 'now') AS REAL) WHERE is_disabled = 1",
        """UPDATE api_token SET revoked_at = CAST(strftime('%s', 'now') AS REAL)
           WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM user WHERE is_disabled = 1)""",
    ]
    for statement in statements:
        db.execute_sql(statement)


def v5_trusted_publishing(db: peewee.SqliteDatabase) -> None:
    """Trusted Publishing: publishers (a CI repository + workflow trusted to upload to one
    project, or to create it: pending, while project_id is NULL), the identity tokens
    already exchanged (each `jti` once, kept until the token expires), and on api_token
    the publisher that minted a token and the CI claims it was minted for."""
    statements = [
        """CREATE TABLE trusted_publisher (
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
        "CREATE INDEX trusted_publisher_project ON trusted_publisher (project_id)",
        "CREATE INDEX trusted_publisher_repository ON trusted_publisher (issuer, repository)",
        """CREATE TABLE oidc_token_use (
            id INTEGER PRIMARY KEY,
            issuer TEXT NOT NULL,
            jti TEXT NOT NULL,
            expires_at REAL NOT NULL,
            UNIQUE (issuer, jti)
        )""",
        "CREATE INDEX oidc_token_use_expires ON oidc_token_use (expires_at)",
        "ALTER TABLE api_token ADD COLUMN publisher_id INTEGER REFERENCES trusted_publisher (id) ON DELETE SET NULL",
        "ALTER TABLE api_token ADD COLUMN ci_claims TEXT",
    ]
    for statement in statements:
        db.execute_sql(statement)


def v6_upstream(db: peewee.SqliteDatabase) -> None:
    """The upstream index: whether an admin allowed the upstream's files for a local name
    (merged after the local ones), and when that last changed. The cache itself lives in
    the data dir's upstream/ folder, not in the database."""
    statements = [
        "ALTER TABLE project ADD COLUMN allow_upstream INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE project ADD COLUMN upstream_changed_at REAL",
    ]
    for statement in statements:
        db.execute_sql(statement)


def v7_browse(db: peewee.SqliteDatabase) -> None:
    """What releases say about themselves, for the package browser, and a user's language.

    `release` keeps, per (project, version), what its core metadata says: the summary, the
    long description already rendered to sanitised HTML (readme_renderer, once, when a file
    is published or indexed: no page reads an archive or renders Markdown), the URLs and
    classifiers. `project_meta` holds each project's latest release and summary, and
    `project_search` is an FTS5 index over it (kept in step by triggers) for the search
    box. Rows for files already in the store are filled in at the next start. A removed user
keeps a row (`removed_at`): the audit trail refers to it, and the name stays taken.
    """
    statements = [
        """CREATE TABLE release (
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
        """CREATE TABLE project_meta (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            latest_version TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT ''
        )""",
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
        "ALTER TABLE user ADD COLUMN locale TEXT",
        "ALTER TABLE user ADD COLUMN removed_at REAL",
    ]
    for statement in statements:
        db.execute_sql(statement)


MIGRATIONS = [v1_files, v2_accounts, v3_published_files, v4_sessions, v5_trusted_publishing, v6_upstream,
              v7_browse]
