"""Removing a user for good: refused while a project would be left without an owner; every
row that speaks for the user goes in one transaction, and the user row stays for the audit
trail.

Apart from users.py because the owner rule is permissions.py's, which imports (through
namespaces.py) users.py.
"""

from __future__ import annotations

import time

from privindex.accounts import permissions, sessions
from privindex.accounts.users import AccountError, revoke_tokens
from privindex.db.connection import database
from privindex.db.models import (
    EmailAddress,
    KnownDevice,
    NamespaceOwner,
    PendingAuth,
    ProjectRole,
    ProjectSubscription,
    RecoveryCode,
    SecurityKey,
    SsoLink,
    TeamMember,
    TrustedPublisher,
    User,
)
from privindex.i18n import _
from privindex.oidc import publishers
from privindex.ops import audit
from privindex.ops.audit import Tag


def remove_user(user: User, ctx: audit.Context) -> tuple[int, int]:
    """Remove a user for good. Refused while a project would have no owner left (their own
    role or a team's they are the last member of: give it another owner first). Their roles,
    team memberships and namespace grants go, their tokens are revoked (each audited), their
    sessions end and their second factors, password, email addresses, identity provider
    links, known devices and notice choices are deleted (another account may take the
    addresses; the provider's subject signs in as a new user). The row stays, disabled and
    marked removed: the audit trail refers to it, and the name cannot be taken by someone
    else. Returns (tokens revoked, roles removed)."""
    with database.atomic():
        last = permissions.sole_owned(user)
        if last:
            raise AccountError(
                _(
                    "'%(user)s' is the last owner of %(projects)s; give each another owner first",
                    user=user.username,
                    projects=", ".join(last),
                )
            )
        roles = ProjectRole.delete().where(ProjectRole.user == user).execute()
        sessions.end_all(user, ctx, reason="removed")
        revoked = revoke_tokens(user, ctx, reason="user_removed")
        for keyed in (
            TeamMember,
            NamespaceOwner,
            PendingAuth,
            SecurityKey,
            RecoveryCode,
            EmailAddress,
            SsoLink,
            KnownDevice,
            ProjectSubscription,
        ):
            keyed.delete().where(keyed.user == user).execute()
        _forget_pending_publishers(user, ctx)
        now = time.time()
        User.update(
            is_disabled=True,
            disabled_at=now,
            removed_at=now,
            password_hash=None,
            totp_secret=None,
            totp_last_counter=None,
            totp_enabled_at=None,
        ).where(User.id == user.id).execute()
        audit.record(Tag.USER_REMOVE, ctx, subject=user.username, tokens_revoked=revoked, roles_removed=roles)
    return revoked, roles


def _forget_pending_publishers(user: User, ctx: audit.Context) -> None:
    """A pending publisher (one that would create its project on its first upload) reserves
    the name against every other user's; its creator gone, nobody could use or remove it.
    Publishers of existing projects stay: the project's owners see and remove them."""
    pending = TrustedPublisher.select().where(
        TrustedPublisher.created_by == user, TrustedPublisher.project.is_null()
    )
    for publisher in pending:
        audit.record(
            Tag.PUBLISHER_REMOVE,
            ctx,
            subject=publishers.describe(publisher),
            project=publisher.pending_name,
            publisher=publisher.id,
            reason="user_removed",
        )
        publisher.delete_instance()
