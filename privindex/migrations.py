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


MIGRATIONS = [v1_files]
