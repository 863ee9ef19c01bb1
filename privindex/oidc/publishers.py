"""Trusted Publishing: a CI job exchanges its identity token for a 15-minute upload token.

An admin trusts issuers (settings `oidc_issuers`); a project's owner trusts a publisher: a
repository and workflow on one of them (optionally a deployment environment). A verified
identity token whose claims match exactly one publisher is exchanged for an ordinary
privindex API token (stored hashed), scoped to that publisher's project alone, acting for
the user who added the publisher (so their rights still count: remove the user's role and
the publisher stops working), linked to the publisher, with the CI claims on record. Each
identity token is exchanged at most once (`jti`).

A pending publisher names a project that does not exist yet; its first exchange creates
the project, owned by the user who added it, as on PyPI (Warehouse creates the project at
mint time too, so the token can be scoped to it).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import peewee
from packaging.utils import InvalidName, canonicalize_name

from privindex.accounts import api_tokens, permissions
from privindex.accounts.users import AccountError
from privindex.config import OIDCIssuer, Settings
from privindex.db.connection import database
from privindex.db.models import ApiToken, OidcTokenUse, Project, ProjectRole, TrustedPublisher, User
from privindex.i18n import _
from privindex.oidc import identity_tokens
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.packages import projects

TOKEN_SECONDS = 15 * 60
WORKFLOW_DIRS = {"github": (".github",), "forgejo": (".forgejo", ".github", ".gitea")}


class ExchangeRefused(Exception):
    """The exchange is refused; code is Warehouse's error code, the description is safe to show.
    retry_after (seconds) when it may work later: the issuer's keys cannot be had now."""

    def __init__(self, code: str, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass(frozen=True)
class Minted:
    token: ApiToken
    secret: str
    expires: int
    project: str


# -- publishers --------------------------------------------------------------------------------


def _issuer(settings: Settings, kind: str, url: str | None) -> OIDCIssuer:
    """The configured issuer of that kind (the only one, or the one named by url)."""
    candidates = [
        i for i in settings.oidc_issuers if i.kind == kind and (url is None or i.url == url.rstrip("/"))
    ]
    if not candidates:
        suffix = " " + url if url else ""
        raise AccountError(
            _(
                "no %(kind)s issuer%(url)s is configured (oidc_issuers in the config file)",
                kind=kind,
                url=suffix,
            )
        )
    if len(candidates) > 1:
        raise AccountError(_("several %(kind)s issuers are configured: name one with --issuer", kind=kind))
    return candidates[0]


def _workflow(kind: str, workflow: str) -> str:
    """GitHub/Forgejo: the workflow's file name; GitLab: the CI file's path in the repository."""
    workflow = workflow.strip().lstrip("/")
    if kind != "gitlab":
        workflow = workflow.rpartition("/")[2]
        if not workflow.endswith((".yml", ".yaml")):
            raise AccountError(_("a workflow is a file name such as release.yml"))
    elif not workflow or "@" in workflow:
        raise AccountError(_("--workflow-ref is the CI file's path, such as .gitlab-ci.yml"))
    return workflow


def add_publisher(
    settings: Settings,
    project_name: str,
    kind: str,
    repository: str,
    workflow: str,
    creator: User,
    ctx: audit.Context,
    environment: str | None = None,
    repository_owner_id: str | None = None,
    issuer_url: str | None = None,
) -> TrustedPublisher:
    """Trust a CI workflow to upload to a project (or, pending, to create it).

    The creator must be an owner (or an admin) of an existing project; for a project that
    does not exist yet, any enabled user who could create it by uploading. No second factor
    is asked here: the web UI lets no one without one this far when require_2fa is on, and
    the CLI is the operator's."""
    issuer = _issuer(settings, kind, issuer_url)
    try:
        name = canonicalize_name(project_name, validate=True)
    except InvalidName:
        raise AccountError(_("'%(name)s' is not a valid project name", name=project_name[:100])) from None
    repository = repository.strip().strip("/")
    if repository.count("/") < 1 or any(not part for part in repository.split("/")) or len(repository) > 200:
        raise AccountError(_("a repository is owner/name (GitLab: group/subgroup/name)"))
    workflow = _workflow(kind, workflow)
    environment = (environment or "").strip() or None
    if creator.is_disabled:
        raise AccountError(_("the user '%(user)s' is disabled", user=creator.username))
    with database.atomic():
        project = Project.get_or_none(Project.name == name)
        if project is None and permissions.project_exists(name):
            if not creator.is_admin:
                raise AccountError(
                    _("the project '%(project)s' has no owner yet; ask an admin", project=name)
                )
            project = projects.ensure_project(name, ctx)
        if (
            project is None
            and not creator.is_admin
            and TrustedPublisher.select()
            .where(TrustedPublisher.pending_name == name, TrustedPublisher.created_by != creator)
            .exists()
        ):
            raise AccountError(_("another user has a pending publisher for '%(project)s'", project=name))
        if project is None:
            try:
                permissions.check_namespace(creator, name)
            except permissions.NamespaceReserved as exc:
                raise AccountError(str(exc)) from None
        if project is not None and not permissions.can_manage(creator, name):
            raise AccountError(
                _("only an owner of '%(project)s' (or an admin) may add a publisher", project=name)
            )
        publisher = TrustedPublisher.create(
            project=project,
            pending_name=None if project else name,
            kind=kind,
            issuer=issuer.url,
            repository=repository,
            repository_owner_id=repository_owner_id or None,
            workflow=workflow,
            environment=environment,
            created_by=creator,
            created_at=time.time(),
        )
        audit.record(
            Tag.PUBLISHER_ADD,
            ctx,
            subject=describe(publisher),
            project=name,
            publisher=publisher.id,
            kind=kind,
            issuer=issuer.url,
            repository=repository,
            workflow=workflow,
            environment=environment,
            pending=project is None,
            acts_for=creator.username,
        )
    return publisher


def remove_publisher(publisher_id: int, ctx: audit.Context, by: User | None = None) -> TrustedPublisher:
    """Stop trusting a publisher; tokens it minted are revoked too. by: the user asking
    (an owner or admin), None for the CLI."""
    publisher = TrustedPublisher.get_or_none(TrustedPublisher.id == publisher_id)
    if publisher is None:
        raise AccountError(_("there is no publisher %(id)s (see: privindex publisher list)", id=publisher_id))
    name = project_of(publisher)
    if by is not None and not (
        by.is_admin
        or (publisher.project is not None and permissions.can_manage(by, name))
        or (publisher.project is None and publisher.created_by_id == by.id)
    ):
        raise AccountError(
            _("only an owner of '%(project)s' (or an admin) may remove its publishers", project=name)
        )
    with database.atomic():
        now = time.time()
        live = ApiToken.select().where(
            ApiToken.publisher == publisher, ApiToken.revoked_at.is_null(), ApiToken.expires_at > now
        )
        for token in live:
            api_tokens.revoke_token(token.id, ctx)
        audit.record(
            Tag.PUBLISHER_REMOVE, ctx, subject=describe(publisher), project=name, publisher=publisher.id
        )
        publisher.delete_instance()
    return publisher


def list_publishers(project_name: str | None = None) -> list[TrustedPublisher]:
    query = TrustedPublisher.select().order_by(TrustedPublisher.id)
    if project_name is not None:
        name = canonicalize_name(project_name)
        project = Project.get_or_none(Project.name == name)
        condition = TrustedPublisher.pending_name == name
        if project is not None:
            condition |= TrustedPublisher.project == project
        query = query.where(condition)
    return list(query)


def project_of(publisher: TrustedPublisher) -> str:
    return publisher.project.name if publisher.project_id else publisher.pending_name


def describe(publisher: TrustedPublisher) -> str:
    """One line: where the publisher's uploads come from."""
    text = f"{publisher.kind}:{publisher.repository} {publisher.workflow}"
    return text + (f" (environment {publisher.environment})" if publisher.environment else "")


# PEP 740's publisher kinds, as Warehouse spells them in provenance objects
ATTESTATION_KINDS = {"github": "GitHub", "gitlab": "GitLab", "forgejo": "Forgejo"}


def attestation_identity(publisher_id: int) -> tuple[str, dict] | None:
    """The issuer and the publisher object of a PEP 740 attestation bundle for uploads made
    with a token minted by that publisher (Warehouse's shape: GitLab names the CI file
    `workflow_filepath`); None if the publisher was removed meanwhile."""
    publisher = TrustedPublisher.get_or_none(TrustedPublisher.id == publisher_id)
    if publisher is None:
        return None
    workflow_key = "workflow_filepath" if publisher.kind == "gitlab" else "workflow"
    return publisher.issuer, {
        "kind": ATTESTATION_KINDS.get(publisher.kind, publisher.kind),
        "repository": publisher.repository,
        workflow_key: publisher.workflow,
        "environment": publisher.environment,
    }


def recent_ci_publications(project_name: str, limit: int = 10) -> list[dict]:
    """The project's latest uploads made with minted tokens, with their CI claims."""
    found = []
    for event in audit.query(project=canonicalize_name(project_name), tag="file:"):
        details = json.loads(event.details)
        if isinstance(details.get("ci"), dict):
            found.append({"ts": event.ts, "filename": event.subject, **details["ci"]})
            if len(found) >= limit:
                break
    return found


# -- the exchange ------------------------------------------------------------------------------


class Verifier:
    """The configured issuers' keys (cached per server process)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._keys = {i.url: identity_tokens.IssuerKeys(i.url, i.jwks_file) for i in settings.oidc_issuers}
        self._kinds = {i.url: i.kind for i in settings.oidc_issuers}

    def verify(self, token: str) -> tuple[str, str, dict]:
        """(issuer url, kind, claims) of a token that verifies; raises oidc.TokenInvalid, or
        oidc.KeysUnavailable while the issuer's keys cannot be fetched."""
        claimed = identity_tokens.unverified_issuer(token).rstrip("/")
        keys = self._keys.get(claimed)
        if keys is None:
            raise identity_tokens.TokenInvalid(
                "invalid-token",
                "the token's issuer is not trusted by this index "
                "(an admin lists trusted issuers in oidc_issuers)",
            )
        return claimed, self._kinds[claimed], identity_tokens.verify(token, keys, self.settings.audience)


def _text(claims: dict, key: str) -> str | None:
    value = claims.get(key)
    return value if isinstance(value, str) else None


def ci_claims(kind: str, claims: dict) -> dict:
    """The claims that say where a build came from, as recorded with a minted token and its
    uploads: repository, workflow, ref, commit sha, environment, run."""
    if kind == "gitlab":
        return {
            "kind": kind,
            "repository": _text(claims, "project_path"),
            "workflow": _text(claims, "ci_config_ref_uri"),
            "ref": _text(claims, "ref"),
            "sha": _text(claims, "sha"),
            "environment": _text(claims, "environment"),
            "run": _text(claims, "pipeline_id"),
        }
    return {
        "kind": kind,
        "repository": _text(claims, "repository"),
        "workflow": _text(claims, "job_workflow_ref") or _text(claims, "workflow_ref"),
        "ref": _text(claims, "ref"),
        "sha": _text(claims, "sha"),
        "environment": _text(claims, "environment"),
        "run": _text(claims, "run_id"),
    }


def _before_ref(value: str | None) -> str:
    """The `<where>` of a workflow reference `<where>@<ref>`; "" unless it has exactly one
    `@` with text on both sides (a second `@` could move the boundary)."""
    where, at, ref = (value or "").partition("@")
    return where if at and ref and "@" not in ref else ""


def matches(publisher: TrustedPublisher, claims: dict) -> bool:
    """Whether the claims come from the publisher's repository and workflow (and environment).

    Each part is compared for equality, never by prefix or suffix. Repository paths and
    host names are case-insensitive (as GitHub, GitLab and Warehouse treat them); file
    paths are not. GitLab: project_path, and ci_config_ref_uri
    `<issuer host>/<project_path>//<ci file>@<ref>` (the host is the issuer URL without
    its scheme, as in Warehouse). GitHub and Forgejo (which follows GitHub's contract):
    repository, repository_owner_id when the publisher pins it, and job_workflow_ref
    `<repository>/.github/workflows/<file>@<ref>` (Forgejo may say workflow_ref and keep
    workflows in .forgejo/ or .gitea/)."""
    repository = publisher.repository.lower()
    if publisher.environment is not None and _text(claims, "environment") != publisher.environment:
        return False
    if publisher.kind == "gitlab":
        if (_text(claims, "project_path") or "").lower() != repository:
            return False
        project_uri, sep, ci_file = _before_ref(_text(claims, "ci_config_ref_uri")).partition("//")
        host = publisher.issuer.partition("://")[2]
        return (
            bool(sep)
            and project_uri.lower() == f"{host}/{repository}".lower()
            and ci_file == publisher.workflow
        )
    if (_text(claims, "repository") or "").lower() != repository:
        return False
    if (
        publisher.repository_owner_id
        and str(claims.get("repository_owner_id")) != publisher.repository_owner_id
    ):
        return False
    ref = _text(claims, "job_workflow_ref") or (
        _text(claims, "workflow_ref") if publisher.kind == "forgejo" else None
    )
    path = _before_ref(ref)
    owner_repo, workflow_path = path[: len(repository)], path[len(repository) :]
    return owner_repo.lower() == repository and any(
        workflow_path == f"/{folder}/workflows/{publisher.workflow}"
        for folder in WORKFLOW_DIRS[publisher.kind]
    )


def _match(issuer: str, claims: dict) -> TrustedPublisher:
    """The one publisher the claims match; a publisher naming the job's environment wins
    over one that names none (as on PyPI)."""
    found = [
        p for p in TrustedPublisher.select().where(TrustedPublisher.issuer == issuer) if matches(p, claims)
    ]
    if len(found) > 1:
        specific = [p for p in found if p.environment is not None]
        found = specific if specific else found
    if not found:
        raise ExchangeRefused(
            "invalid-publisher",
            "no trusted publisher matches this repository and workflow "
            "(and environment); a project owner adds one",
        )
    if len(found) > 1:
        raise ExchangeRefused(
            "invalid-publisher",
            f"{len(found)} publishers match this workflow "
            f"(projects {', '.join(sorted(project_of(p) for p in found))}); a minted token is "
            "for one project: give each project its own workflow file or environment",
        )
    return found[0]


_jti_lock = threading.Lock()


def mint(verifier: Verifier, token: str, ctx: audit.Context) -> Minted:
    """Exchange a CI identity token for an upload token; raises ExchangeRefused."""
    if not verifier.settings.oidc_issuers:
        raise ExchangeRefused(
            "not-enabled", "Trusted Publishing is not enabled on this index (no oidc_issuers are configured)"
        )
    try:
        issuer, kind, claims = verifier.verify(token)
    except identity_tokens.TokenInvalid as exc:
        raise ExchangeRefused(exc.code, exc.description) from None
    except identity_tokens.KeysUnavailable as exc:
        raise ExchangeRefused("issuer-unavailable", exc.description, exc.retry_after) from None
    record = ci_claims(kind, claims)
    with _jti_lock, database.atomic(lock_type="IMMEDIATE"):
        now = time.time()
        OidcTokenUse.delete().where(OidcTokenUse.expires_at < now - identity_tokens.LEEWAY).execute()
        try:
            OidcTokenUse.create(
                issuer=issuer, jti=claims["jti"], expires_at=float(claims["exp"]) + identity_tokens.LEEWAY
            )
        except peewee.IntegrityError:
            raise ExchangeRefused(
                "invalid-token", "this identity token was already exchanged (jti replayed)"
            ) from None
        publisher = _match(issuer, claims)
        creator = publisher.created_by
        if creator.is_disabled:
            raise ExchangeRefused("invalid-publisher", "the user who added this publisher is disabled")
        pending = publisher.project_id is None
        ctx = ctx.with_actor(creator)
        if pending:
            name = publisher.pending_name
            if permissions.project_exists(name):
                raise ExchangeRefused(
                    "invalid-pending-publisher",
                    f"the project {name!r} exists already: its owner must add this publisher to it",
                )
            try:  # a namespace granted since the publisher was added
                permissions.check_namespace(creator, name)
            except permissions.NamespaceReserved as exc:
                raise ExchangeRefused("invalid-pending-publisher", str(exc)) from None
            project = projects.ensure_project(name, ctx)
            ProjectRole.create(project=project, user=creator, role="owner")
            audit.record(
                Tag.ROLE_ADD,
                ctx,
                subject=creator.username,
                project=name,
                role="owner",
                publisher=publisher.id,
            )
            publisher.project, publisher.pending_name = project, None
            publisher.save()
        name = project_of(publisher)
        if not (creator.is_admin or permissions.user_role(creator, publisher.project)):
            raise ExchangeRefused(
                "invalid-publisher", f"the user who added this publisher may no longer upload to {name!r}"
            )
        row, secret = api_tokens.create_minted_token(
            creator, publisher.project, publisher.id, record, TOKEN_SECONDS, ctx
        )
        audit.record(
            Tag.TOKEN_MINT,
            ctx,
            subject=creator.username,
            project=name,
            token=row.id,
            publisher=publisher.id,
            pending=pending,
            expires=int(row.expires_at),
            ci=record,
        )
    return Minted(row, secret, int(row.expires_at), name)


def burn(secret: str, ctx: audit.Context) -> None:
    """Revoke a minted token once the CI job is done with it (uv asks for this)."""
    try:
        auth = api_tokens.authenticate_token(secret)
    except api_tokens.TokenRejected:
        raise ExchangeRefused("invalid-token", "no such live upload token") from None
    if auth.token.publisher_id is None:
        raise ExchangeRefused("invalid-token", "only tokens minted by Trusted Publishing can be burnt here")
    api_tokens.revoke_token(auth.token.id, ctx.with_actor(auth.user, auth.token.id))
