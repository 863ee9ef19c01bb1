"""API tokens (for twine, pip and CI): creating, revoking and checking them, each change audited.

Only the SHA-256 of a token is stored; the secret is shown once. A token works while it is
neither revoked nor expired and its user is enabled (disabling revokes them for good).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import peewee
from packaging.utils import canonicalize_name

from privindex.accounts import permissions
from privindex.accounts.users import AccountError, has_second_factor
from privindex.auth import token_format
from privindex.db.connection import database
from privindex.db.models import ApiToken, Project, TokenAddress, TokenProject, User
from privindex.i18n import _
from privindex.ops import audit, metrics
from privindex.ops.audit import Tag

LAST_USED_RESOLUTION = 60.0  # seconds; last_used_at is not rewritten on every request
MAX_EXPIRY_DAYS = 3650  # ten years: a longer life is "never" (empty), and the date stays computable


@dataclass(frozen=True)
class TokenAuth:
    """A token that checked out, and whose it is."""

    token: ApiToken
    user: User

    @property
    def ci_claims(self) -> dict | None:
        """For a token minted by Trusted Publishing: where the CI job said it came from."""
        return json.loads(self.token.ci_claims) if self.token.ci_claims else None

    def check_upload(self, name: str) -> None:
        """Raise permissions.UploadDenied unless this token may upload to the project."""
        permissions.check_upload(self.user, self.token.read_only, self.scope(), name)

    def scope(self) -> set[str] | None:
        """Normalized names of the projects the token is limited to; None = all the user's."""
        if self.token.all_projects:
            return None
        return {
            link.project.name
            for link in TokenProject.select(TokenProject, Project)
            .join(Project)
            .where(TokenProject.token == self.token)
        }


class TokenRejected(Exception):
    """A token that does not authenticate; the message is safe to show, `reason` is a short
    code (malformed, unknown, expired, revoked, disabled) for metrics."""

    def __init__(self, message: str, reason: str = "unknown"):
        super().__init__(message)
        self.reason = reason


def _rejected(message: str, reason: str) -> TokenRejected:
    """The one place a token failure is made, and so counted (metrics)."""
    observed = metrics.current()
    if observed is not None:
        observed.token_failed(reason)
    return TokenRejected(message, reason)


def create_token(
    user: User,
    ctx: audit.Context,
    description: str = "",
    projects: Sequence[str] = (),
    read_only: bool = False,
    expires_days: int | None = None,
    require_2fa: bool = False,
) -> tuple[ApiToken, str]:
    """Make a token; returns the row and the secret, which is never stored and never shown again.

    With require_2fa, a user without a second factor gets read-only tokens only: an upload
    token would be refused at every upload.
    """
    if user.is_disabled:
        raise AccountError(_("the user '%(user)s' is disabled", user=user.username))
    if require_2fa and not read_only and not has_second_factor(user):
        raise AccountError(
            _(
                "'%(user)s' has no second factor, and this server requires one to upload: "
                "sign in to the web UI and add a security key or an authenticator app (or run "
                "'privindex user totp NAME' on the server) first "
                "(or make a --read-only token)",
                user=user.username,
            )
        )
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise AccountError(
            _("a token's expiry is a whole number of days from 1 to %(most)d", most=MAX_EXPIRY_DAYS)
        )
    if len(description) > 200:
        raise AccountError(_("a token description has at most 200 characters"))
    names = sorted({canonicalize_name(p) for p in projects})
    secret = token_format.generate()
    with database.atomic():
        scoped = []
        for name in names:
            project = Project.get_or_none(Project.name == name)
            if project is None and user.is_admin and permissions.project_exists(name):
                project = Project.create(name=name, created_at=time.time())
                audit.record(Tag.PROJECT_CREATE, ctx, subject=name, project=name)
            if project is None or not (user.is_admin or permissions.user_role(user, project)):
                raise AccountError(
                    _(
                        "'%(user)s' is not an owner or maintainer of a project '%(project)s'; "
                        "a token can be limited only to such projects",
                        user=user.username,
                        project=name,
                    )
                )
            scoped.append(project)
        now = time.time()
        token = ApiToken.create(
            user=user,
            token_hash=token_format.digest(secret),
            prefix=token_format.display_prefix(secret),
            description=description,
            read_only=read_only,
            all_projects=not scoped,
            created_at=now,
            expires_at=now + expires_days * 86400 if expires_days else None,
        )
        for project in scoped:
            TokenProject.create(token=token, project=project)
        audit.record(
            Tag.TOKEN_CREATE,
            ctx,
            subject=user.username,
            token=token.id,
            description=description,
            projects=names or "all",
            read_only=read_only,
            expires_days=expires_days,
        )
    return token, secret


def create_minted_token(
    user: User, project: Project, publisher_id: int, ci_claims: dict, seconds: int, ctx: audit.Context
) -> tuple[ApiToken, str]:
    """An upload token minted by Trusted Publishing: scoped to one project, expiring in
    `seconds`, linked to its publisher, with the CI claims it was minted for. The caller
    (trusted_publishing.mint) holds the transaction and has checked the rights."""
    secret = token_format.generate()
    now = time.time()
    token = ApiToken.create(
        user=user,
        token_hash=token_format.digest(secret),
        prefix=token_format.display_prefix(secret),
        description=f"Trusted Publishing: {ci_claims.get('repository')} ({project.name})"[:200],
        read_only=False,
        all_projects=False,
        created_at=now,
        expires_at=now + seconds,
        publisher=publisher_id,
        ci_claims=json.dumps(ci_claims, sort_keys=True),
    )
    TokenProject.create(token=token, project=project)
    return token, secret


def revoke_token(token_id: int, ctx: audit.Context, owner: User | None = None) -> ApiToken:
    """Revoke a token (only the owner's, when owner is given). Revoking twice is harmless."""
    query = ApiToken.select().where(ApiToken.id == token_id)
    if owner is not None:
        query = query.where(ApiToken.user == owner)
    token = query.first()
    if token is None:
        raise AccountError(_("there is no token %(id)s (see: privindex token list)", id=token_id))
    if token.revoked_at is None:
        with database.atomic():
            token.revoked_at = time.time()
            token.save()
            audit.record(
                Tag.TOKEN_REVOKE,
                ctx,
                subject=token.user.username,
                token=token.id,
                description=token.description,
            )
    return token


def list_tokens(user: User | None = None) -> list[ApiToken]:
    query = ApiToken.select(ApiToken, User).join(User).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user == user)
    return list(query)


def matching_ids(text: str) -> list[int]:
    """The ids of the tokens a person means by text: its id (`12`, `#12`) or its description
    (any case), revoked ones too: the audit log filters on them."""
    text = text.strip()
    number = text.removeprefix("#")
    by_description = peewee.fn.LOWER(ApiToken.description) == text.lower()
    if number.isascii() and number.isdigit() and len(number) < 12:
        by_description |= ApiToken.id == int(number)
    return [row.id for row in ApiToken.select(ApiToken.id).where(by_description)]


def descriptions(ids: set[int]) -> dict[int, str]:
    """id -> description of the given tokens, for the audit log (one query per page)."""
    if not ids:
        return {}
    return {
        row.id: row.description
        for row in ApiToken.select(ApiToken.id, ApiToken.description).where(ApiToken.id.in_(ids))
    }


def token_status(token: ApiToken, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


_last_used_written: dict[int, float] = {}
_last_used_lock = threading.Lock()


def authenticate_token(secret: str, address: str | None = None) -> TokenAuth:
    """The token's row and user, or TokenRejected saying why (without echoing the token).
    address: the client's, whose first use with this token is recorded and told."""
    if not token_format.looks_like_token(secret):
        raise _rejected(f"Invalid API token: {token_format.malformed_reason(secret)}", "malformed")
    wanted = token_format.digest(secret)
    try:
        token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.token_hash == wanted).get()
    except ApiToken.DoesNotExist:
        raise _rejected("Invalid or non-existent API token", "unknown") from None
    if not hmac.compare_digest(token.token_hash, wanted):  # pragma: no cover - the lookup matched
        raise _rejected("Invalid or non-existent API token", "unknown")
    status = token_status(token)
    if status != "active":
        raise _rejected(
            f"This API token {'has expired' if status == 'expired' else 'has been revoked'}; "
            "create a new one",
            status,
        )
    if token.user.is_disabled:
        raise _rejected(f"The account {token.user.username!r} is disabled", "disabled")
    _touch(token)
    if address and token.publisher_id is None:
        _note_address(token, address)
    return TokenAuth(token, token.user)


_addresses_on_record: set[tuple[int, str]] = set()  # per process: (token id, address)


def _note_address(token: ApiToken, address: str) -> None:
    """A token's first use from an address is recorded and audited as token:new-address (so
    its owner is told). Not for minted tokens: CI runners come from ever new addresses, and
    such a token lives 15 minutes. After the first sight, a process asks its memory only."""
    if (token.id, address) in _addresses_on_record:
        return
    try:
        with database.atomic():
            known = TokenAddress.select().where(TokenAddress.token == token, TokenAddress.address == address)
            if not known.exists():
                TokenAddress.create(token=token, address=address, first_seen_at=time.time())
                ctx = audit.Context(actor=token.user, ip=address, token_id=token.id, via="token")
                audit.record(
                    Tag.TOKEN_NEW_ADDRESS,
                    ctx,
                    subject=token.user.username,
                    token=token.id,
                    description=token.description,
                )
    except peewee.OperationalError:  # a busy database must not fail the request: next time
        return
    _addresses_on_record.add((token.id, address))


def _touch(token: ApiToken) -> None:
    """Record last use, at most once a minute per token: reads must not queue on writes."""
    now = time.time()
    with _last_used_lock:
        if now - _last_used_written.get(token.id, 0.0) < LAST_USED_RESOLUTION:
            return
        _last_used_written[token.id] = now
    try:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
    except peewee.OperationalError:  # a busy database must not fail the request itself
        pass
