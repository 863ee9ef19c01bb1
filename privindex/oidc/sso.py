"""Sign-in through an identity provider: OpenID Connect's authorization code flow with PKCE.

The rules of the flow live here; web/sso.py only carries them over HTTP. A sign-in starts
with fresh `state` (against forged callbacks), `nonce` (against replayed ID tokens) and a
PKCE verifier (S256, against stolen codes), which the browser's signed session keeps until
the callback, once. The code is exchanged at the provider's token endpoint (found by
discovery, with its keys, in identity_tokens.py: the one module that fetches and verifies
OpenID tokens) and the ID token verified there; here its `nonce` and the provider's rules
are checked at every sign-in (allowed email domains, required groups), so a person the
provider no longer admits is refused at the next one.

A provider's subject (issuer + `sub`) is linked to one user. The first sign-in creates the
user, unless a user has the email the provider verified: that account is linked only after
its owner proves it here (password and second factor, through the ordinary sign-in), so
a provider cannot take over an account by asserting an address.

The provider's MFA (`provider_mfa`) counts as the second factor only for a provider the
admin trusts for it: for this sign-in, and, remembered on the `sso_link` row until a sign-in
without it, for the user's tokens and uploads (accounts/users.py `has_second_factor`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from privindex.accounts import emails, users
from privindex.config import Settings, SSOProvider
from privindex.db.connection import database
from privindex.db.models import SsoLink, User
from privindex.i18n import _
from privindex.oidc import identity_tokens
from privindex.ops import audit
from privindex.ops.audit import Tag

ID_TOKEN_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "nonce")
MFA_METHODS = frozenset({"mfa", "hwk", "otp"})  # RFC 8176 values that mean a second factor
FLOW_SECONDS = 600  # a sign-in must come back from the provider within ten minutes


class SignInRefused(Exception):
    """The provider's answer does not let this person in. reason is the audit trail's word,
    str(exc) the one-line message for the person (translated, no secrets); username: the
    user here the provider's subject is linked to, if any."""

    def __init__(self, reason: str, message: str, username: str | None = None):
        super().__init__(message)
        self.reason, self.username = reason, username


@dataclass(frozen=True)
class Flow:
    """A started sign-in: where to send the browser, and what its session keeps."""

    url: str
    state: dict


@dataclass(frozen=True)
class Outcome:
    """Whom the provider's answer signs in (user), or which account it may link to once
    its owner proves it (link_to); provider_mfa: the provider vouched for a second factor."""

    claims: dict
    user: User | None = None
    link_to: User | None = None
    provider_mfa: bool = False


class Providers:
    """The configured providers, each with its issuer's discovery document and keys."""

    def __init__(self, settings: Settings):
        self.all = settings.sso_providers
        self._keys = {p.issuer: identity_tokens.IssuerKeys(p.issuer) for p in self.all}

    def get(self, issuer: str) -> SSOProvider | None:
        return next((p for p in self.all if p.issuer == issuer), None)

    def keys(self, provider: SSOProvider) -> identity_tokens.IssuerKeys:
        return self._keys[provider.issuer]


def _endpoint(discovery: dict, name: str, issuer: str) -> str:
    url = discovery.get(name)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise identity_tokens.FetchFailed(f"the discovery document of {issuer} has no {name}")
    if url.startswith("http://") and not issuer.startswith("http://"):
        raise identity_tokens.FetchFailed(f"the {name} of {issuer} is not https")
    return url


def begin(
    providers: Providers,
    provider: SSOProvider,
    redirect_uri: str,
    next_url: str,
    reauth_of: User | None = None,
) -> Flow:
    """A new sign-in; with reauth_of, a signed-in user confirming it is them (the provider
    is asked to authenticate them again: prompt=login, max_age=0). Raises
    identity_tokens.KeysUnavailable while the provider cannot be had."""
    discovery = providers.keys(provider).discovery()
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **({"prompt": "login", "max_age": "0"} if reauth_of is not None else {}),
        }
    )
    url = _endpoint(discovery, "authorization_endpoint", provider.issuer)
    return Flow(
        f"{url}{'&' if '?' in url else '?'}{query}",
        {
            "issuer": provider.issuer,
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": next_url,
            "at": time.time(),
            **({"reauth_of": reauth_of.id} if reauth_of is not None else {}),
        },
    )


def finish(
    providers: Providers, flow: dict | None, args: dict, redirect_uri: str, ctx: audit.Context
) -> tuple[SSOProvider, Outcome]:
    """The callback: check state, exchange the code (PKCE), verify the ID token and its
    nonce, apply the provider's rules, and find or create the user. Raises SignInRefused,
    or identity_tokens.KeysUnavailable / FetchFailed while the provider cannot be had."""
    provider = providers.get(str((flow or {}).get("issuer", "")))
    state = args.get("state") or ""
    if (
        flow is None
        or provider is None
        or not hmac.compare_digest(str(flow.get("state", "")).encode(), state.encode())
        or time.time() - float(flow.get("at", 0)) > FLOW_SECONDS
    ):
        raise SignInRefused(
            "sso_state", _("This sign-in was not started here or has expired. Please start again.")
        )
    if args.get("error") or not args.get("code"):
        raise SignInRefused("sso_denied", _("The identity provider did not sign you in."))
    keys = providers.keys(provider)
    try:
        answer = identity_tokens.fetch_json(
            _endpoint(keys.discovery(), "token_endpoint", provider.issuer),
            time.monotonic() + identity_tokens.FETCH_DEADLINE,
            form={
                "grant_type": "authorization_code",
                "code": args["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": flow["verifier"],
            },
            auth=_basic(provider),
        )
    except identity_tokens.FetchFailed as exc:
        if exc.status is not None and 400 <= exc.status < 500:  # a spent or foreign code, a wrong verifier
            raise SignInRefused("sso_code", _("The identity provider did not sign you in.")) from exc
        raise
    id_token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(id_token, str):
        raise identity_tokens.FetchFailed(f"the token endpoint of {provider.issuer} sent no ID token")
    try:
        claims = identity_tokens.verify(id_token, keys, provider.client_id, require=ID_TOKEN_CLAIMS)
    except identity_tokens.TokenInvalid as exc:
        raise SignInRefused("sso_token", _("The identity provider's answer does not verify.")) from exc
    if not hmac.compare_digest(str(claims["nonce"]).encode(), str(flow["nonce"]).encode()):
        raise SignInRefused("sso_nonce", _("The identity provider's answer does not verify."))
    try:
        admit(provider, claims)
    except SignInRefused as exc:
        link = _link_of(provider, claims)
        exc.username = link.user.username if link else None
        raise
    if "reauth_of" in flow:  # the same person again, never a new user or a link
        link = _link_of(provider, claims)
        if link is None or link.user_id != flow["reauth_of"]:
            raise SignInRefused("sso_reauth", _("You signed in at the identity provider as someone else."))
    return provider, _who(provider, claims, ctx)


def _basic(provider: SSOProvider) -> str:
    """client_secret_basic (RFC 6749 2.3.1: both parts form-encoded first)."""
    pair = f"{urlencode({'': provider.client_id})[1:]}:{urlencode({'': provider.client_secret})[1:]}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def verified_email(claims: dict) -> str | None:
    email = claims.get("email")
    if claims.get("email_verified") is True and isinstance(email, str) and "@" in email:
        return email.strip().lower()
    return None


def admit(provider: SSOProvider, claims: dict) -> None:
    """The provider's rules, at every sign-in: an allowed domain, a required group."""
    if provider.allowed_domains:
        email = verified_email(claims)
        if email is None or email.rsplit("@", 1)[1] not in provider.allowed_domains:
            raise SignInRefused(
                "sso_domain",
                _("Your account at %(label)s is not in a domain this index admits.", label=provider.label),
            )
    if provider.required_groups:
        groups = claims.get(provider.groups_claim)
        if not isinstance(groups, list) or not set(provider.required_groups) & {str(g) for g in groups}:
            raise SignInRefused(
                "sso_group",
                _("Your account at %(label)s is not in a group this index admits.", label=provider.label),
            )


def provider_mfa(provider: SSOProvider, claims: dict) -> bool:
    """Whether the provider's claims stand for the second factor here (trust_provider_mfa)."""
    if not provider.trust_provider_mfa:
        return False
    amr = claims.get("amr")
    if isinstance(amr, list) and MFA_METHODS & {str(m) for m in amr}:
        return True
    return bool(provider.acr) and claims.get("acr") == provider.acr


def _who(provider: SSOProvider, claims: dict, ctx: audit.Context) -> Outcome:
    subject = str(claims["sub"])
    mfa = provider_mfa(provider, claims)
    link = _link_of(provider, claims)
    if link is not None:
        if link.user.is_disabled:
            raise SignInRefused("disabled", _("This account is disabled."), link.user.username)
        SsoLink.update(last_login_at=time.time(), provider_mfa=mfa).where(SsoLink.id == link.id).execute()
        return Outcome(claims, user=link.user, provider_mfa=mfa)
    email = verified_email(claims)
    proven = emails.find_by_address(email) if email else None
    existing = proven.user if proven is not None and proven.user.removed_at is None else None
    if existing is not None:
        if existing.is_disabled:
            raise SignInRefused("disabled", _("This account is disabled."), existing.username)
        return Outcome(claims, link_to=existing, provider_mfa=mfa)
    with database.atomic():
        user = users.create_user(_free_username(provider, claims), None, ctx, provider=provider.issuer)
        if email and proven is None:  # the provider verified it: notices and resets may use it
            emails.add_address(user, email, ctx, verified=True)
        _link(provider.issuer, subject, user, ctx, mfa)
    return Outcome(claims, user=User.get_by_id(user.id), provider_mfa=mfa)


def reauth_provider(providers: Providers, user: User) -> SSOProvider | None:
    """The configured provider user is linked to, to confirm a sensitive action through."""
    issuers = [link.issuer for link in SsoLink.select().where(SsoLink.user == user)]
    return next((p for p in providers.all if p.issuer in issuers), None)


def _link_of(provider: SSOProvider, claims: dict) -> SsoLink | None:
    return SsoLink.get_or_none(SsoLink.issuer == provider.issuer, SsoLink.subject == str(claims["sub"]))


def _free_username(provider: SSOProvider, claims: dict) -> str:
    """A valid, unused username made of the configured claim (else the email's local part)."""
    raw = claims.get(provider.username_claim)
    if not isinstance(raw, str) or not raw.strip():
        raw = str(claims.get("email") or "").split("@")[0] or "user"
    base = re.sub(r"[^a-z0-9._-]+", "-", raw.strip().lower())
    base = re.sub(r"^[^a-z0-9]+", "", base)[:44] or "user"
    name, n = base, 1
    while User.select().where(User.username == name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _link(issuer: str, subject: str, user: User, ctx: audit.Context, provider_mfa: bool) -> None:
    now = time.time()
    SsoLink.create(
        issuer=issuer,
        subject=subject,
        user=user,
        created_at=now,
        last_login_at=now,
        provider_mfa=provider_mfa,
    )
    audit.record(Tag.USER_SSO_LINK, ctx, subject=user.username, issuer=issuer)


def link(issuer: str, subject: str, user: User, ctx: audit.Context, provider_mfa: bool = False) -> None:
    """Link a provider's subject to user, once its owner proved the account here;
    provider_mfa: the provider's sign-in carried MFA it is trusted for."""
    with database.atomic():
        if not SsoLink.select().where(SsoLink.issuer == issuer, SsoLink.subject == subject).exists():
            _link(issuer, subject, user, ctx, provider_mfa)


def forget_untrusted_mfa(providers: tuple[SSOProvider, ...]) -> None:
    """At start: a provider no longer trusted for its MFA (or no longer configured) stops
    standing for its users' second factor at once, not at their next sign-in."""
    trusted = [p.issuer for p in providers if p.trust_provider_mfa]
    SsoLink.update(provider_mfa=False).where(
        SsoLink.provider_mfa == True,  # noqa: E712 (peewee builds SQL from ==)
        SsoLink.issuer.not_in(trusted),
    ).execute()
