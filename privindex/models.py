"""peewee models. The tables themselves are created by privindex.migrations."""

from __future__ import annotations

import peewee

from privindex.db import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class DistFile(BaseModel):
    """What the store knows about one package file, keyed by its path in the store.

    size and mtime_ns tell whether the file on disk is still the one that was hashed.
    """

    path = peewee.TextField(unique=True)
    project = peewee.TextField(index=True)
    name = peewee.TextField()
    version = peewee.TextField()
    size = peewee.IntegerField()
    mtime_ns = peewee.IntegerField()
    sha256 = peewee.TextField()
    requires_python = peewee.TextField(null=True)
    metadata = peewee.BlobField(null=True)
    metadata_sha256 = peewee.TextField(null=True)
    upload_time = peewee.FloatField()
    yanked = peewee.BooleanField(default=False)
    yanked_reason = peewee.TextField(default="")
