"""peewee models. The tables themselves are created by privindex.db.migrations."""

from __future__ import annotations

import peewee

from privindex.db.connection import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class DistFile(BaseModel):
    """What the store knows about one package file, keyed by its path in the store.

    size and mtime_ns tell whether the file on disk is still the one that was hashed.
    """

    path = peewee.TextField(unique=True)
    filename = peewee.TextField(default="")  # the path's last part: what publications are keyed by
    project = peewee.TextField()  # indexed with name, filename and sha256 (migrations.v11)
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


class PublishedFile(BaseModel):
    """The digest a filename was published with (by upload, by an admin, or when a file
    dropped in by hand was first indexed). withdrawn_sha256 is set while the bytes on disk
    differ from it: the file is then not served."""

    filename = peewee.TextField(unique=True)
    project = peewee.TextField()
    sha256 = peewee.TextField()
    published_at = peewee.FloatField()
    revision = peewee.IntegerField(default=0, index=True)
    withdrawn_sha256 = peewee.TextField(null=True)
    withdrawn_at = peewee.FloatField(null=True)


class User(BaseModel):
    """A person. Usernames are stored lower-case; machines act through ApiToken."""

    username = peewee.TextField(unique=True)
    password_hash = peewee.TextField(null=True)  # None until the user sets one
    is_admin = peewee.BooleanField(default=False)
    is_disabled = peewee.BooleanField(default=False)
    created_at = peewee.FloatField()
    last_login_at = peewee.FloatField(null=True)
    session_version = peewee.IntegerField(default=1)  # unused since v4 (server-side sessions)
    webauthn_user_handle = peewee.BlobField()
    totp_secret = peewee.TextField(null=True)
    totp_last_counter = peewee.IntegerField(null=True)
    totp_enabled_at = peewee.FloatField(null=True)
    disabled_at = peewee.FloatField(null=True)
    locale = peewee.TextField(null=True)  # the language the user chose; None: the browser's
    removed_at = peewee.FloatField(null=True)  # removed: kept for the audit trail, never enabled again


class SsoLink(BaseModel):
    """An identity provider's subject (issuer + `sub`) signing in as one user."""

    issuer = peewee.TextField()
    subject = peewee.TextField()
    user = peewee.ForeignKeyField(User, backref="sso_links", on_delete="CASCADE")
    created_at = peewee.FloatField()
    last_login_at = peewee.FloatField(null=True)
    provider_mfa = peewee.BooleanField(default=False)  # the last sign-in through it carried trusted MFA


class SecurityKey(BaseModel):
    user = peewee.ForeignKeyField(User, backref="security_keys", on_delete="CASCADE")
    label = peewee.TextField()
    credential_id = peewee.BlobField(unique=True)
    public_key = peewee.BlobField()
    sign_count = peewee.IntegerField(default=0)
    transports = peewee.TextField(default="[]")
    aaguid = peewee.TextField(default="")
    created_at = peewee.FloatField()
    last_used_at = peewee.FloatField(null=True)
    discoverable = peewee.BooleanField(default=False)  # a passkey: signs in alone (v20)


class RecoveryCode(BaseModel):
    user = peewee.ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    code_hash = peewee.TextField()
    created_at = peewee.FloatField()
    used_at = peewee.FloatField(null=True)


class Project(BaseModel):
    """A project someone has rights on, or claimed by an admin. Projects that exist only as
    files have no row. A row makes the name local: the upstream is hidden for it unless
    allow_upstream."""

    name = peewee.TextField(unique=True)  # normalized
    created_at = peewee.FloatField()
    allow_upstream = peewee.BooleanField(default=False)  # merge the upstream's files (v5)
    upstream_changed_at = peewee.FloatField(null=True)
    status = peewee.TextField(default="active")  # PEP 792 (v13): packages/project_status.py
    status_reason = peewee.TextField(default="")


class ProjectRole(BaseModel):
    project = peewee.ForeignKeyField(Project, backref="roles", on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, backref="roles", on_delete="CASCADE")
    role = peewee.TextField()  # 'owner' or 'maintainer'


class Namespace(BaseModel):
    """A PEP 752 namespace grant (v14): the prefix and its `-` children are local by rule."""

    name = peewee.TextField(unique=True)  # normalized
    open = peewee.BooleanField(default=False)  # anyone may create projects under it
    created_at = peewee.FloatField()


class NamespaceOwner(BaseModel):
    namespace = peewee.ForeignKeyField(Namespace, backref="owners", on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, backref="namespaces", on_delete="CASCADE")


class Team(BaseModel):
    """A group of users holding roles on projects and namespaces (v21): accounts/teams.py."""

    name = peewee.TextField(unique=True)  # lower-case, like usernames
    description = peewee.TextField(default="")
    created_at = peewee.FloatField()


class TeamMember(BaseModel):
    team = peewee.ForeignKeyField(Team, backref="members", on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, backref="teams", on_delete="CASCADE")


class TeamRole(BaseModel):
    """A team's role on one project or on one namespace grant (exactly one is set)."""

    team = peewee.ForeignKeyField(Team, backref="roles", on_delete="CASCADE")
    project = peewee.ForeignKeyField(Project, null=True, backref="team_roles", on_delete="CASCADE")
    namespace = peewee.ForeignKeyField(Namespace, null=True, backref="team_roles", on_delete="CASCADE")
    role = peewee.TextField()  # 'owner' or 'maintainer'


class ApiToken(BaseModel):
    """Only the SHA-256 of the token is stored; prefix is what lists show."""

    user = peewee.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    token_hash = peewee.TextField(unique=True)
    prefix = peewee.TextField()
    description = peewee.TextField(default="")
    read_only = peewee.BooleanField(default=False)
    all_projects = peewee.BooleanField(default=True)
    created_at = peewee.FloatField()
    last_used_at = peewee.FloatField(null=True)
    expires_at = peewee.FloatField(null=True)
    revoked_at = peewee.FloatField(null=True)
    publisher = peewee.DeferredForeignKey("TrustedPublisher", null=True, on_delete="SET NULL")
    ci_claims = peewee.TextField(null=True)  # JSON: the CI claims a minted token was made for


class TrustedPublisher(BaseModel):
    """A CI repository + workflow trusted to upload to a project (pending: to create the
    project named pending_name, on its first exchange). Minted tokens act for created_by."""

    project = peewee.ForeignKeyField(Project, null=True, backref="publishers", on_delete="CASCADE")
    pending_name = peewee.TextField(null=True)
    kind = peewee.TextField()
    issuer = peewee.TextField()
    repository = peewee.TextField()
    repository_owner_id = peewee.TextField(null=True)
    workflow = peewee.TextField()
    environment = peewee.TextField(null=True)
    created_by = peewee.ForeignKeyField(User, on_delete="CASCADE")
    created_at = peewee.FloatField()


class OidcTokenUse(BaseModel):
    """An identity token already exchanged: its jti, kept until the token expires."""

    issuer = peewee.TextField()
    jti = peewee.TextField()
    expires_at = peewee.FloatField()


class TokenProject(BaseModel):
    token = peewee.ForeignKeyField(ApiToken, backref="project_links", on_delete="CASCADE")
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE")


class AuditEvent(BaseModel):
    ts = peewee.FloatField()
    tag = peewee.TextField()
    actor_id = peewee.IntegerField(null=True)
    actor = peewee.TextField(null=True)
    subject = peewee.TextField(null=True)
    project = peewee.TextField(null=True)
    ip = peewee.TextField(null=True)
    user_agent = peewee.TextField(null=True)
    token_id = peewee.IntegerField(null=True)
    details = peewee.TextField(default="{}")


class PendingAuth(BaseModel):
    """Server-side, single-use, expiring state: a half-finished sign-in, a WebAuthn
    challenge, a password set-up link. Found by the hash of a random key."""

    key_hash = peewee.TextField(unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    purpose = peewee.TextField()
    challenge = peewee.BlobField(null=True)
    data = peewee.TextField(default="{}")
    expires_at = peewee.FloatField()


class PasskeyChallenge(BaseModel):
    """A passkey sign-in's single-use challenge, made before anyone is known; found by the
    hash of a random key the browser holds, like PendingAuth."""

    key_hash = peewee.TextField(primary_key=True)
    challenge = peewee.BlobField()
    expires_at = peewee.FloatField()


class WebSession(BaseModel):
    """A signed-in browser. The cookie holds a random key; only its SHA-256 is stored, so
    deleting the row signs that browser out at once."""

    key_hash = peewee.TextField(unique=True)
    user = peewee.ForeignKeyField(User, backref="web_sessions", on_delete="CASCADE")
    created_at = peewee.FloatField()
    last_seen_at = peewee.FloatField()
    ip = peewee.TextField(null=True)
    user_agent = peewee.TextField(null=True)
    method = peewee.TextField(default="password")


class Release(BaseModel):
    """What one version's core metadata says, read once when a file is published or indexed;
    description_html is already rendered and sanitised (readme_renderer)."""

    project = peewee.TextField()
    version = peewee.TextField()
    summary = peewee.TextField(default="")
    description_html = peewee.TextField(default="")
    description_type = peewee.TextField(default="")
    source_sha256 = peewee.TextField()  # of the core metadata it was made from
    urls = peewee.TextField(default="[]")  # [[label, url], ...], http(s) only
    classifiers = peewee.TextField(default="[]")
    requires_python = peewee.TextField(null=True)
    recorded_at = peewee.FloatField()


class ProjectMeta(BaseModel):
    """A project's latest release and its summary: what the list and the search show."""

    name = peewee.TextField(unique=True)
    display_name = peewee.TextField()
    latest_version = peewee.TextField()
    summary = peewee.TextField(default="")


class RateLimitHit(BaseModel):
    """One sign-in attempt against one limit key (auth/ratelimit.py): pending while its
    check runs, then a counted failure. ident is an HMAC-SHA-256, never the name typed."""

    scope = peewee.TextField()  # "<limiter>/<kind>", e.g. "password/user"
    ident = peewee.TextField()
    at = peewee.FloatField()
    pending = peewee.BooleanField(default=True)


class RetentionPolicy(BaseModel):
    """A project's overrides of the index-wide retention settings (NULL: the setting)."""

    project = peewee.TextField(primary_key=True)  # normalized
    keep_prereleases = peewee.IntegerField(null=True)
    dev_max_days = peewee.IntegerField(null=True)


class RetentionRun(BaseModel):
    """A retention run that deleted files: summed for /metrics."""

    at = peewee.FloatField()
    files = peewee.IntegerField()
    bytes = peewee.BigIntegerField()
    via = peewee.TextField()


class RetentionSchedule(BaseModel):
    """One row: when the next scheduled retention round is due (any process may take it)."""

    next_run = peewee.FloatField()


class UpstreamExemption(BaseModel):
    """A name an admin lets past the upstream cooldown (upstream_min_age), until a time or for good."""

    name = peewee.TextField(primary_key=True)  # normalized
    until = peewee.FloatField(null=True)
    created_at = peewee.FloatField()


class OutboxItem(BaseModel):
    """A delivery waiting to go out, sent, or given up on (privindex.notify.outbox)."""

    kind = peewee.TextField()  # 'mail' | 'webhook'
    payload = peewee.TextField()  # JSON, what the kind's sender needs
    dedupe_key = peewee.TextField(null=True, unique=True)
    ref = peewee.TextField(null=True)  # what it belongs to ('webhook:<id>'), for its log
    status = peewee.TextField(default="pending")  # pending | sent | failed
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.FloatField()
    last_error = peewee.TextField(null=True)
    outcome = peewee.TextField(null=True)  # what the target answered last ('HTTP 204')
    duration = peewee.FloatField(null=True)  # seconds the last attempt took
    created_at = peewee.FloatField()
    sent_at = peewee.FloatField(null=True)

    class Meta:
        table_name = "outbox"


class Webhook(BaseModel):
    """A webhook: a project's (project set) or index-wide (None), for some events."""

    project = peewee.TextField(null=True)  # normalized name
    url = peewee.TextField()
    secret = peewee.TextField()  # signs each delivery, so it is kept (SECURITY.md)
    events = peewee.TextField()  # space-separated event names
    created_at = peewee.FloatField()


class EmailAddress(BaseModel):
    """A user's email address (v16); the primary verified one receives notices."""

    user = peewee.ForeignKeyField(User, backref="email_addresses", on_delete="CASCADE")
    address = peewee.TextField(unique=True)  # lower case
    is_primary = peewee.BooleanField(default=False)
    verified_at = peewee.FloatField(null=True)
    created_at = peewee.FloatField()


class KnownDevice(BaseModel):
    """A device (the id in its signed device cookie, hashed) a user has signed in from (v16)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    device_hash = peewee.TextField()
    first_seen_at = peewee.FloatField()


class ProjectSubscription(BaseModel):
    """A user's choice about a project's upload, yank and delete notices, where it differs
    from the default (on for owners, off for maintainers) (v16)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    project = peewee.ForeignKeyField(Project, on_delete="CASCADE")
    enabled = peewee.BooleanField()


class TokenAddress(BaseModel):
    """A client address an API token was used from (v16): a new one is audited and told."""

    token = peewee.ForeignKeyField(ApiToken, on_delete="CASCADE")
    address = peewee.TextField()
    first_seen_at = peewee.FloatField()
