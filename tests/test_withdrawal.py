"""A whole release is yanked or deleted in one transaction: a failure part-way changes
nothing (no file yanked, none deleted, no audit event), and deleted files leave the disk
only once the database has forgotten them."""

from __future__ import annotations

import pytest
from wheels import make_wheel

from privindex.accounts import users
from privindex.db.connection import bound
from privindex.db.models import AuditEvent
from privindex.ops import audit
from privindex.packages import withdrawal

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def release(make_app, tmp_path):
    """An app serving two files of demo 1.0 (1.0 and 1.0.0 are one version), and its admin."""
    store = tmp_path / "app" / "store"
    files = [make_wheel(store, "demo", "1.0"), make_wheel(store, "demo", "1.0.0")]
    app = make_app()
    with bound(app.extensions["privindex"].database):
        yield app, files, users.create_user("admin", None, audit.CLI, is_admin=True)


def fail_at_the_second(monkeypatch, event: str) -> None:
    """The second webhook event of this kind raises: the release is half-way through."""
    emit, seen = withdrawal.events.emit, []

    def failing(name: str, *args, **kwargs):
        if name == event:
            seen.append(name)
            if len(seen) == 2:
                raise OSError("disk full")
        return emit(name, *args, **kwargs)

    monkeypatch.setattr(withdrawal.events, "emit", failing)


def served(app) -> dict[str, object]:
    page = app.test_client().get("/simple/demo/", headers=JSON).json
    return {f["filename"]: f.get("yanked", False) for f in page["files"]}


def test_a_release_yank_failing_part_way_yanks_nothing(release, monkeypatch):
    app, files, admin = release
    services = app.extensions["privindex"]
    fail_at_the_second(monkeypatch, "file.yanked")
    with pytest.raises(OSError):
        withdrawal.set_release_yanked(services.index, admin, "demo", "1.0", True, "broken", audit.CLI)
    assert served(app) == {f.name: False for f in files}
    assert AuditEvent.select().where(AuditEvent.tag == "file:yank").count() == 0

    monkeypatch.undo()
    withdrawal.set_release_yanked(services.index, admin, "demo", "1.0", True, "broken", audit.CLI)
    assert served(app) == {f.name: "broken" for f in files}
    assert AuditEvent.select().where(AuditEvent.tag == "file:yank").count() == 2


def test_a_release_delete_failing_part_way_deletes_nothing(release, monkeypatch):
    app, files, admin = release
    services = app.extensions["privindex"]
    fail_at_the_second(monkeypatch, "file.deleted")
    with pytest.raises(OSError):
        withdrawal.delete_release(services.store, services.index, admin, "demo", "1.0", audit.CLI)
    assert all(f.exists() for f in files)
    assert served(app) == {f.name: False for f in files}
    assert AuditEvent.select().where(AuditEvent.tag == "file:delete").count() == 0

    monkeypatch.undo()
    assert withdrawal.delete_release(
        services.store, services.index, admin, "demo", "1.0", audit.CLI
    ) == sorted(f.name for f in files)
    assert not any(f.exists() for f in files)
    assert AuditEvent.select().where(AuditEvent.tag == "file:delete").count() == 2
