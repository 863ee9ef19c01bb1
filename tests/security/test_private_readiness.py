"""A private index (`read_access = "token"`) tells strangers nothing about its size: while
the store is indexed after a start, /readyz says "indexing" to anyone, and how many files
are indexed and left only to a request with a valid token (as /health does). A public
index tells anyone."""

from __future__ import annotations

import testdb
from wheels import make_wheel

from privindex.accounts import api_tokens, users
from privindex.app import create_app
from privindex.config import Settings
from privindex.db.connection import bound
from privindex.ops import audit


def indexing_app(tmp_path, read_access: str):
    """An app started on a store of three recorded wheels, not yet caught up with the disk."""
    data_dir = tmp_path / "data"
    settings = Settings(
        store=tmp_path / "store",
        data_dir=data_dir,
        database_url=testdb.url_for(data_dir),
        read_access=read_access,
        require_2fa=False,
    )
    for n in range(3):
        make_wheel(tmp_path / "store", f"counted{n}", "1.0")
    create_app(settings)  # records the three
    return create_app(settings, index_later=True)


def test_a_private_index_shows_indexing_counts_only_to_a_token(tmp_path):
    app = indexing_app(tmp_path, "token")
    with bound(app.extensions["privindex"].database):
        user = users.create_user("reader", "correct horse battery", audit.CLI)
        _, token = api_tokens.create_token(user, audit.CLI, read_only=True)
    client = app.test_client()

    for auth in (None, ("__token__", "pypi-not-a-real-token"), ("reader", "correct horse battery")):
        stranger = client.get("/readyz", auth=auth)
        assert stranger.status_code == 503
        assert stranger.json == {"status": "indexing"}
    reader = client.get("/readyz", auth=("__token__", token))
    assert reader.status_code == 503 and reader.json["status"] == "indexing"
    assert reader.json["indexing"] == {"files_indexed": 3, "files_left": None}  # not yet counted


def test_a_public_index_shows_indexing_counts_to_anyone(tmp_path):
    ready = indexing_app(tmp_path, "public").test_client().get("/readyz")
    assert ready.status_code == 503 and ready.json["indexing"]["files_indexed"] == 3
