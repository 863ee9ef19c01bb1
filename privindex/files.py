"""What owners do to files already published: yank, unyank, delete. Each is audited.

Yanking keeps the file installable by exact pin (PEP 592) and is the reversible choice;
deleting removes it from the store for good.
"""

from __future__ import annotations

import contextlib

from privindex import audit, publications, releases
from privindex.audit import Tag
from privindex.db import database
from privindex.i18n import _
from privindex.index import Index, IndexedFile, forget_facts, save_yank
from privindex.models import User
from privindex.permissions import can_manage
from privindex.users import AccountError
from privindex.store import Store

REASON_MAX = 200


def _file(index: Index, user: User, project_name: str, filename: str) -> IndexedFile:
    if not can_manage(user, project_name):
        raise AccountError(_("only an owner of the project or an admin may do that"))
    project = index.project(project_name)
    found = next((f for f in project.files if f.filename == filename), None) if project else None
    if found is None:
        raise AccountError(_("there is no file '%(file)s' in '%(project)s'", file=filename, project=project_name))
    return found


def set_yanked(index: Index, user: User, project_name: str, filename: str, yanked: bool, reason: str,
               ctx: audit.Context) -> None:
    target = _file(index, user, project_name, filename)
    reason = " ".join(reason.split())[:REASON_MAX]
    with database.atomic():
        save_yank(target.path, yanked, reason)
        audit.record(Tag.FILE_YANK if yanked else Tag.FILE_UNYANK, ctx, subject=filename, project=project_name,
                     reason=reason if yanked else None)
        if index.set_yanked(target.path, yanked, reason) is None:  # deleted meanwhile: roll back
            raise AccountError(_("there is no file '%(file)s' in '%(project)s'", file=filename,
                                 project=project_name))


def delete(store: Store, index: Index, user: User, project_name: str, filename: str,
           ctx: audit.Context) -> None:
    """Delete a file for good; its filename may then be published anew (docs/architecture.md)."""
    target = _file(index, user, project_name, filename)
    with database.atomic():
        forget_facts(target.path)
        publications.forget(target.filename)
        releases.files_removed(target.project)
        audit.record(Tag.FILE_DELETE, ctx, subject=filename, project=project_name, sha256=target.sha256)
        with contextlib.suppress(FileNotFoundError):  # deleted by hand meanwhile: the same end
            store.remove(target.path)
    index.discard(target.path)
