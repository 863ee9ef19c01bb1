"""PEP 752 namespace grants: an admin reserves a name prefix for its owners.

A grant for `acme` covers the project `acme` and every normalized name that starts with
`acme-` (not `acmecorp`). Two effects, each decided where its rule lives: every name under a
grant is local by rule, its upstream files never served (upstream/source_rules.py, from
memory), and only the grant's owners may create projects under it (permissions.py), unless
the grant is open. The PEP's owner is "an entity"; privindex has users, not organizations,
so a grant has one or more owner users, and a team may hold a role on it (accounts/teams.py).
Projects that existed before the grant keep their owners and uploads, and a namespace has
at most `namespace_max_depth` hyphens, as the PEP recommends.
Open grants are privindex's own: the PEP's final text dropped them, but a team may want the
upstream closed for a prefix without choosing who may create projects under it.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

import peewee
from packaging.utils import InvalidName, canonicalize_name

from privindex.accounts.users import AccountError, get_user
from privindex.db.connection import database
from privindex.db.models import Namespace, NamespaceOwner, User
from privindex.i18n import _
from privindex.ops import audit
from privindex.ops.audit import Tag


@dataclass(frozen=True)
class Grant:
    name: str  # normalized
    owners: tuple[str, ...]  # usernames, sorted
    open: bool


def normalize(text: str) -> str:
    """A namespace is a valid project name, normalized (`Acme.Tools` -> `acme-tools`)."""
    try:
        return canonicalize_name(text, validate=True)
    except InvalidName:
        raise AccountError(
            _("'%(name)s' is not a valid project name, so it cannot be a namespace", name=text)
        ) from None


def covering(name: str, granted: Container[str]) -> list[str]:
    """The granted namespaces (a set, or a dict by name) a normalized project name falls
    under, shortest first: its `-`-separated prefixes that are granted, one lookup each."""
    return [prefix for prefix in prefixes(name) if prefix in granted]


def prefixes(name: str) -> Iterator[str]:
    """`a-b-c` -> `a`, `a-b`, `a-b-c`: every namespace that could cover the name."""
    end = name.find("-")
    while end != -1:
        yield name[:end]
        end = name.find("-", end + 1)
    yield name


def overlaps(a: str, b: str) -> bool:
    """PEP 752: grants overlap when one, with a hyphen appended, starts the other's."""
    return (a + "-").startswith(b + "-") or (b + "-").startswith(a + "-")


def list_grants() -> list[Grant]:
    rows = (
        Namespace.select(Namespace.name, Namespace.open, User.username)
        .join(NamespaceOwner, peewee.JOIN.LEFT_OUTER)
        .join(User, peewee.JOIN.LEFT_OUTER)
        .order_by(Namespace.name, User.username)
        .tuples()
    )
    grants: dict[str, tuple[list[str], bool]] = {}
    for name, is_open, username in rows:
        owners, _open = grants.setdefault(name, ([], bool(is_open)))
        if username:
            owners.append(username)
    return [Grant(n, tuple(o), is_open) for n, (o, is_open) in grants.items()]


def grants_for(name: str) -> list[Grant]:
    """The grants a normalized project name falls under (for pages, not the hot path)."""
    every = {g.name: g for g in list_grants()}
    return [every[n] for n in covering(name, every)]


def grant(prefix: str, usernames: Iterable[str], is_open: bool, ctx: audit.Context, max_depth: int) -> Grant:
    """Grant a namespace to users. Refused if it has more hyphens than max_depth (the
    setting namespace_max_depth; PEP 752 says an index SHOULD limit the depth) or overlaps a
    grant whose owners do not include all of them (PEP 752: only the owner of `foo-bar` may
    be granted `foo`)."""
    name = normalize(prefix)
    if name.count("-") > max_depth:
        raise AccountError(
            _(
                "'%(name)s' has %(depth)d hyphens, and a namespace may have at most %(limit)d "
                "(namespace_max_depth): grant a shorter prefix",
                name=name,
                depth=name.count("-"),
                limit=max_depth,
            )
        )
    owners = sorted({get_user(u).username for u in usernames})
    if not owners:
        raise AccountError(_("a namespace needs at least one owner"), "--owner USERNAME")
    with database.atomic():
        for existing in list_grants():
            if existing.name == name:
                raise AccountError(
                    _("the namespace '%(name)s' is already granted", name=name),
                    "see: privindex namespace list",
                )
            if overlaps(name, existing.name) and not set(owners) <= set(existing.owners):
                raise AccountError(
                    _(
                        "'%(name)s' overlaps the namespace '%(other)s', whose owners (%(owners)s) "
                        "it would take names from",
                        name=name,
                        other=existing.name,
                        owners=", ".join(existing.owners),
                    )
                )
        row = Namespace.create(name=name, open=is_open, created_at=time.time())
        for username in owners:
            NamespaceOwner.create(namespace=row, user=get_user(username))
        audit.record(Tag.NAMESPACE_GRANT, ctx, subject=name, owners=owners, open=is_open)
    return Grant(name, tuple(owners), is_open)


def revoke(prefix: str, ctx: audit.Context) -> None:
    """Remove a grant: names under it that no project claims come from the upstream again."""
    name = normalize(prefix)
    with database.atomic():
        row = Namespace.get_or_none(Namespace.name == name)
        if row is None:
            raise AccountError(
                _("there is no namespace '%(name)s'", name=name), "see: privindex namespace list"
            )
        owners = sorted(
            u
            for (u,) in User.select(User.username)
            .join(NamespaceOwner)
            .where(NamespaceOwner.namespace == row)
            .tuples()
        )
        row.delete_instance()  # its owner rows go with it (ON DELETE CASCADE)
        audit.record(Tag.NAMESPACE_REVOKE, ctx, subject=name, owners=owners, open=bool(row.open))


def may_create_under(user: User, name: str) -> list[Grant]:
    """The restricted grants over `name` that `user` does not own: empty if the user may
    create a project by that name (admins always may)."""
    if user.is_admin:
        return []
    return [g for g in grants_for(name) if not g.open and user.username not in g.owners]
