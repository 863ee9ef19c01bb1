"""Settings: one frozen dataclass, layered defaults < TOML < environment < CLI flags.

Every field is documented (with its default) in config.example.toml; a test keeps the two
in agreement. Unknown keys and bad values raise ConfigError naming the culprit, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "PRIVINDEX_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"


class ConfigError(Exception):
    """A setting is unknown or has a bad value; the message names it as it was given
    (`port`, `PRIVINDEX_PORT` or `--port`). field is the setting, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _bad(field: str, detail: str) -> ConfigError:
    return ConfigError(f"{field}: {detail}", field)


def _host_and_port(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, for webhook_allowed_hosts."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port is None:
            raise _bad("webhook_allowed_hosts", f"{entry!r} is not host or host:port")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if not host or (port is not None and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise _bad("webhook_allowed_hosts", f"{entry!r} is not host or host:port (a port is 1-65535)")
    return host.lower(), int(port) if port is not None else None


ISSUER_KINDS = ("gitlab", "github", "forgejo")
METRICS_ACCESS = ("", "public", "token", "addresses")
SEND_FILES_VIA = ("off", "x-accel-redirect", "x-sendfile")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.~")


@dataclass(frozen=True)
class OIDCIssuer:
    """A CI system whose identity tokens an admin trusts for Trusted Publishing.

    url is the issuer exactly as its tokens' `iss` claim says it (no trailing slash). Keys
    come from its OIDC discovery document, or from jwks_file when the index cannot reach it.
    """

    url: str
    kind: str
    jwks_file: Path | None = None


def _issuer_url(name: str, url: str) -> str:
    """An OpenID issuer without its trailing slash: https, or http on a loopback host (tests)."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise _bad(name, f"issuer {url!r} must be an https:// URL (http only on loopback, for tests)")
    return url


@dataclass(frozen=True)
class SSOProvider:
    """An identity provider people sign in through (OpenID Connect, code flow with PKCE).

    allowed_domains and required_groups are checked at every sign-in; trust_provider_mfa
    lets the provider's `amr` (mfa, hwk, otp) or `acr` (when acr is set) stand for the
    second factor.
    """

    issuer: str
    client_id: str
    client_secret: str = dataclasses.field(repr=False)  # never in a log line or a traceback
    label: str
    username_claim: str = "preferred_username"
    allowed_domains: tuple[str, ...] = ()
    required_groups: tuple[str, ...] = ()
    groups_claim: str = "groups"
    trust_provider_mfa: bool = False
    acr: str = ""


_SSO_STRINGS = ("issuer", "client_id", "client_secret", "label", "username_claim", "groups_claim", "acr")
_SSO_LISTS = ("allowed_domains", "required_groups")


def _sso_providers(value: Any) -> tuple[SSOProvider, ...]:
    """The TOML array of tables `[[sso_providers]]` as SSOProvider values, checked."""
    name = "sso_providers"
    if not isinstance(value, (list, tuple)):
        raise _bad(name, "expected an array of tables ([[sso_providers]] issuer = ..., client_id = ...)")
    providers: list[SSOProvider] = []
    for i, entry in enumerate(value):
        if isinstance(entry, SSOProvider):
            entry = dataclasses.asdict(entry)
        if not isinstance(entry, dict):
            raise _bad(name, f"entry {i + 1} is not a table")
        unknown = set(entry) - {f.name for f in fields(SSOProvider)}
        if unknown:
            raise _bad(name, f"entry {i + 1} has unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("issuer", "client_id", "client_secret", "label"):
            if not entry.get(key):
                raise _bad(name, f"entry {i + 1} needs {key}")
        for key in _SSO_STRINGS:
            if key in entry and not isinstance(entry[key], str):
                raise _bad(name, f"entry {i + 1}: {key} must be a string")
        for key in _SSO_LISTS:
            if key in entry and (
                not isinstance(entry[key], (list, tuple))
                or not all(isinstance(v, str) and v for v in entry[key])
            ):
                raise _bad(name, f"entry {i + 1}: {key} must be a list of strings")
        if not isinstance(entry.get("trust_provider_mfa", False), bool):
            raise _bad(name, f"entry {i + 1}: trust_provider_mfa must be true or false")
        issuer = _issuer_url(name, entry["issuer"])
        if any(p.issuer == issuer for p in providers):
            raise _bad(name, f"issuer {issuer!r} is listed twice")
        providers.append(
            SSOProvider(
                **{
                    **entry,
                    "issuer": issuer,
                    "allowed_domains": tuple(d.lower().lstrip("@") for d in entry.get("allowed_domains", ())),
                    "required_groups": tuple(entry.get("required_groups", ())),
                }
            )
        )
    return tuple(providers)


def _issuers(value: Any) -> tuple[OIDCIssuer, ...]:
    """The TOML array of tables `[[oidc_issuers]]` as OIDCIssuer values, checked."""
    name = "oidc_issuers"
    if not isinstance(value, (list, tuple)):
        raise _bad(name, "expected an array of tables ([[oidc_issuers]] url = ..., kind = ...)")
    issuers, seen = [], set()
    for i, entry in enumerate(value):
        if isinstance(entry, OIDCIssuer):
            entry = dataclasses.asdict(entry)
        if not isinstance(entry, dict):
            raise _bad(name, f"entry {i + 1} is not a table")
        unknown = set(entry) - {"url", "kind", "jwks_file"}
        if unknown:
            raise _bad(name, f"entry {i + 1} has unknown key(s) {', '.join(sorted(unknown))}")
        url, kind, jwks = entry.get("url"), entry.get("kind"), entry.get("jwks_file")
        if not isinstance(url, str) or not url:
            raise _bad(name, f'entry {i + 1} needs url = "https://..." (the issuer)')
        url = _issuer_url(name, url)
        if kind not in ISSUER_KINDS:
            raise _bad(name, f"issuer {url!r}: kind must be one of {', '.join(ISSUER_KINDS)}, got {kind!r}")
        if url in seen:
            raise _bad(name, f"issuer {url!r} is listed twice")
        if jwks is not None and (not isinstance(jwks, (str, Path)) or not str(jwks)):
            raise _bad(name, f"issuer {url!r}: jwks_file must be a path")
        seen.add(url)
        issuers.append(OIDCIssuer(url, kind, Path(jwks).expanduser() if jwks else None))
    return tuple(issuers)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    store: Path = Path("packages_store")
    data_dir: Path = Path("privindex_data")
    database_url: str = ""
    threads: int = 8
    public_url: str = ""
    trusted_proxy: str = ""
    send_files_via: str = "off"
    send_files_prefix: str = "/_privindex_files/"
    static_files: bool = False  # keep <data_dir>/static/packages/, hard links nginx sends
    read_access: str = "public"
    static_pages: bool = False  # pre-rendered Simple API pages under <data_dir>/static/ (nginx serves them)
    static_pages_auth_request: bool = False  # nginx asks /_privindex/read-check before serving one
    readme_images: str = "link"  # external images in a README: "hide", "link" or "show"
    require_2fa: bool = True
    require_verified_email: bool = True  # applies while smtp_url is set (verified_email_required)
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    max_upload_mb: int = 100
    max_archive_members: int = 50_000
    max_archive_size_mb: int = 2048
    max_compression_ratio: float = 50.0
    overwrite: bool = False
    rescan_interval: float = 1.0
    page_cache_size: int = 4096
    log_level: str = "info"
    log_sql: bool = False
    log_format: str = "text"
    metrics: bool = True
    metrics_access: str = ""
    metrics_addresses: str = "127.0.0.1/32, ::1/128"
    oidc_audience: str = ""
    oidc_issuers: tuple[OIDCIssuer, ...] = ()
    sso_providers: tuple[SSOProvider, ...] = ()
    attestation_trusted_root: str = ""  # "": the Sigstore trust root the sigstore package ships
    namespace_max_depth: int = 2  # PEP 752: hyphens a granted namespace may have
    upstream_url: str = ""
    upstream_page_ttl: float = 600.0
    upstream_timeout: float = 10.0
    upstream_ca_bundle: str = ""
    upstream_min_age: float = 0.0
    upstream_cache_max_gb: float = 20.0
    upstream_offline: bool = False
    upstream_page_deadline: float = 60.0
    upstream_file_deadline: float = 1800.0
    upstream_max_page_mb: int = 20
    upstream_max_file_mb: int = 2000
    upstream_page_memory_mb: int = 16  # upstream pages held in memory (their JSON size); the rest on disk
    upstream_file_hosts: str = ""
    upstream_workers: int = 0  # 0: threads // 2, at least 1
    retention_keep_prereleases: int = 0  # 0: keep every pre-release and dev release
    retention_dev_max_days: int = 0  # 0: dev releases never age out
    retention_interval_hours: float = 0.0  # 0: no scheduled run inside the server
    max_project_mb: int = 0  # 0: no per-project quota
    smtp_url: str = ""  # "": no mail
    smtp_ca_bundle: str = ""
    mail_from: str = ""
    outbox_poll_seconds: float = 2.0
    outbox_retry_base_seconds: float = 30.0
    outbox_retry_max_seconds: float = 3600.0
    outbox_max_attempts: int = 12
    webhook_allowed_hosts: str = ""
    webhook_timeout: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "oidc_issuers", _issuers(self.oidc_issuers))
        object.__setattr__(self, "sso_providers", _sso_providers(self.sso_providers))
        if not 0 <= self.port <= 65535:
            raise _bad("port", f"{self.port} is not a TCP port (0-65535)")
        if self.threads < 1:
            raise _bad("threads", f"must be at least 1, got {self.threads}")
        self.webhook_allowed_host_names  # noqa: B018  (its errors name the key at start)
        if self.read_access not in ("public", "token"):
            raise _bad("read_access", f"must be 'public' or 'token', got {self.read_access!r}")
        if self.static_files and self.read_access == "token":
            raise _bad(
                "static_files",
                "the serving tree has no read check, so a private index (read_access = 'token') "
                "cannot use it: leave static_files off (files go through privindex, or nginx "
                "with send_files_via = 'x-accel-redirect')",
            )
        if self.readme_images not in ("hide", "link", "show"):
            raise _bad("readme_images", f"must be 'hide', 'link' or 'show', got {self.readme_images!r}")
        if not 1 <= self.session_max_hours <= 24:  # NIST SP 800-63B-4, AAL2: sign in again within 24 h
            raise _bad("session_max_hours", f"must be 1 to 24, got {self.session_max_hours}")
        if not 1 <= self.session_idle_minutes <= self.session_max_hours * 60:
            raise _bad(
                "session_idle_minutes",
                f"must be 1 to {self.session_max_hours * 60} (session_max_hours), "
                f"got {self.session_idle_minutes}",
            )
        if self.max_upload_mb < 1:
            raise _bad("max_upload_mb", f"must be at least 1, got {self.max_upload_mb}")
        for name in ("max_archive_members", "max_archive_size_mb", "max_compression_ratio"):
            if getattr(self, name) < 1:
                raise _bad(name, f"must be at least 1, got {getattr(self, name)}")
        if self.rescan_interval <= 0:
            raise _bad("rescan_interval", f"must be positive, got {self.rescan_interval}")
        if self.page_cache_size < 0:
            raise _bad("page_cache_size", f"must be 0 or more, got {self.page_cache_size}")
        if self.database_url and urlsplit(self.database_url).scheme not in ("postgresql", "postgres"):
            raise _bad(
                "database_url",
                "must be empty (SQLite in the data dir) or "
                "postgresql://user:password@host:port/database, got a URL starting "
                f"{self.database_url.partition(':')[0]!r}",
            )
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise _bad("log_level", f"must be debug, info, warning or error, got {self.log_level!r}")
        if self.log_format not in ("text", "json"):
            raise _bad("log_format", f"must be 'text' or 'json', got {self.log_format!r}")
        if self.send_files_via not in SEND_FILES_VIA:
            raise _bad(
                "send_files_via",
                "must be 'off', 'x-accel-redirect' (nginx) or 'x-sendfile' (Apache, "
                f"lighttpd), got {self.send_files_via!r}",
            )
        prefix = self.send_files_prefix
        if (
            not prefix.startswith("/")
            or not prefix.endswith("/")
            or not set(prefix) <= _PREFIX_CHARS
            or "/../" in prefix
            or "/./" in prefix
            or "//" in prefix
        ):
            raise _bad(
                "send_files_prefix",
                "must be a URL path of letters, digits and /_-.~ that starts and "
                f"ends with '/', like /_privindex_files/, got {prefix!r}",
            )
        if self.metrics_access not in METRICS_ACCESS:
            raise _bad(
                "metrics_access",
                "must be 'public', 'token', 'addresses' or empty (the default: "
                "addresses or a token, and a token only when read_access is 'token'), "
                f"got {self.metrics_access!r}",
            )
        _ = self.metrics_networks  # a bad address is an error now, not at the first scrape
        if self.upstream_url:
            parts = urlsplit(self.upstream_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                # the URL itself is not repeated: it may carry a password
                raise _bad(
                    "upstream_url",
                    "must be an http or https URL with a host, like https://upstream.example/simple/ "
                    f"(got scheme {parts.scheme!r}{'' if parts.hostname else ', no host'})",
                )
        for name in ("upstream_page_ttl", "upstream_min_age"):
            if getattr(self, name) < 0:
                raise _bad(name, f"must be 0 or more, got {getattr(self, name)}")
        for name in (
            "upstream_timeout",
            "upstream_page_deadline",
            "upstream_file_deadline",
            "upstream_max_page_mb",
            "upstream_max_file_mb",
            "upstream_page_memory_mb",
        ):
            if getattr(self, name) <= 0:
                raise _bad(name, f"must be positive, got {getattr(self, name)}")
        for host in self.upstream_file_host_names:
            if not _HOST_NAME.fullmatch(host) and not _is_ip_address(host):
                raise _bad(
                    "upstream_file_hosts",
                    f"{host!r} is not a host name or IP address (no scheme, "
                    "port or path: e.g. files.upstream.example)",
                )
        if self.upstream_cache_max_gb <= 0:
            raise _bad("upstream_cache_max_gb", f"must be positive, got {self.upstream_cache_max_gb}")
        if self.upstream_workers and not 1 <= self.upstream_workers < self.threads:
            raise _bad(
                "upstream_workers",
                f"must be 0 (threads // 2) or 1 to threads - 1 ({self.threads - 1}), "
                f"so local pages always have a worker, got {self.upstream_workers}",
            )
        for name in ("retention_keep_prereleases", "retention_dev_max_days", "max_project_mb"):
            if getattr(self, name) < 0:
                raise _bad(name, f"must be 0 (off) or more, got {getattr(self, name)}")
        if self.retention_interval_hours < 0:
            raise _bad(
                "retention_interval_hours", f"must be 0 (off) or more, got {self.retention_interval_hours}"
            )
        if self.namespace_max_depth < 0:
            raise _bad("namespace_max_depth", f"must be 0 or more, got {self.namespace_max_depth}")
        if self.attestation_trusted_root:
            from privindex.auth.attestations import check_trusted_root

            try:
                check_trusted_root(self.attestation_trusted_root)
            except ValueError as exc:
                raise _bad(
                    "attestation_trusted_root",
                    f"{self.attestation_trusted_root} is not a Sigstore trusted_root.json ({exc})",
                ) from None
        self._check_notify()
        if self.upstream_ca_bundle and not Path(self.upstream_ca_bundle).is_file():
            raise _bad("upstream_ca_bundle", f"{self.upstream_ca_bundle} is not a file")
        if self.public_url:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise _bad("public_url", f"must look like https://host[:port], got {self.public_url!r}")
            if _is_ip_address(parts.hostname):
                raise _bad(
                    "public_url",
                    f"{parts.hostname} is an IP address, and browsers refuse an IP address "
                    "as the domain of a security key (WebAuthn RP ID). Give the server a host name "
                    "(LAN DNS or /etc/hosts, e.g. https://pypi.example.lan behind an HTTPS reverse "
                    "proxy), or use http://localhost:<port> on this machine",
                )

    def _check_notify(self) -> None:
        """The mail and webhook settings (privindex.notify)."""
        if self.smtp_url:
            parts = urlsplit(self.smtp_url)
            if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
                raise _bad(
                    "smtp_url",
                    "must look like smtp://user:password@host:587 (STARTTLS), smtps://...:465 "
                    "(TLS) or smtp+plain://127.0.0.1:25 (no TLS: loopback only), got a URL "
                    f"starting {self.smtp_url.partition(':')[0]!r}",
                )
            if parts.scheme == "smtp+plain" and not _is_loopback(parts.hostname):
                raise _bad(
                    "smtp_url",
                    f"smtp+plain:// (no TLS) is for a mail server on this machine only, not {parts.hostname}",
                )
            if "@" not in self.mail_from:
                raise _bad(
                    "mail_from",
                    "must be an address like privindex@example.org when smtp_url is set, "
                    f"got {self.mail_from!r}",
                )
        if self.smtp_ca_bundle and not Path(self.smtp_ca_bundle).is_file():
            raise _bad("smtp_ca_bundle", f"{self.smtp_ca_bundle} is not a file")
        for name in ("outbox_poll_seconds", "outbox_retry_base_seconds", "webhook_timeout"):
            if getattr(self, name) <= 0:
                raise _bad(name, f"must be positive, got {getattr(self, name)}")
        if self.outbox_retry_max_seconds < self.outbox_retry_base_seconds:
            raise _bad(
                "outbox_retry_max_seconds",
                f"must be at least outbox_retry_base_seconds ({self.outbox_retry_base_seconds}), "
                f"got {self.outbox_retry_max_seconds}",
            )
        if self.outbox_max_attempts < 1:
            raise _bad("outbox_max_attempts", f"must be at least 1, got {self.outbox_max_attempts}")

    def warnings(self) -> list[str]:
        """Settings that work but are likely a mistake: logged at start and shown by
        `privindex check`, never refused (a deployment relying on them keeps working)."""
        return [
            f"sso_providers: {p.label!r} ({p.issuer}) sets neither allowed_domains nor "
            "required_groups, so anyone this provider knows can create an account here; "
            "set one of them unless that is what you want"
            for p in self.sso_providers
            if not p.allowed_domains and not p.required_groups
        ]

    @property
    def webhook_allowed_host_names(self) -> tuple[tuple[str, int | None], ...]:
        """webhook_allowed_hosts parsed: comma- or space-separated `host` or `host:port`
        entries as (host in lower case, port); a bare host (port None) allows its URL
        scheme's default port only, so allowing a host opens no other service on it."""
        return tuple(_host_and_port(part) for part in self.webhook_allowed_hosts.replace(",", " ").split())

    @property
    def upstream_file_host_names(self) -> tuple[str, ...]:
        """upstream_file_hosts parsed: comma- or space-separated host names, lower case."""
        return tuple(part.lower().strip("[]") for part in self.upstream_file_hosts.replace(",", " ").split())

    @property
    def base_url(self) -> str:
        """The URL users type; defaults to localhost on the configured port."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::", "::1") else self.host
        return f"http://{host}:{self.port}"

    @property
    def verified_email_required(self) -> bool:
        """A verified primary address before a second factor: only with mail to verify it."""
        return self.require_verified_email and bool(self.smtp_url)

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying-party ID: the public URL's host name; keys are bound to it."""
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the public URL, as browsers report it in WebAuthn."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def audience(self) -> str:
        """The `aud` a CI identity token must name: oidc_audience, else the public host name
        (so a token minted for one index is useless at another trusting the same CI)."""
        return self.oidc_audience or self.rp_id

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def cookie_name(self, name: str) -> str:
        """Over https the `__Host-` prefix: browsers then take the cookie only with Secure,
        Path=/ and no Domain, so no other host or plain-http page can set or replace it.
        Browsers refuse the prefix without Secure, so plain http (localhost) keeps the bare name."""
        return ("__Host-" if self.secure_cookies else "") + name

    @property
    def database_path(self) -> Path:
        return self.data_dir / "privindex.sqlite3"

    @property
    def database(self) -> Path | str:
        """What db.connect opens: the PostgreSQL URL if set, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def upstream_worker_share(self) -> int:
        """Workers that may wait on the upstream at once; the others stay free for local pages."""
        return self.upstream_workers or max(1, self.threads // 2)

    @property
    def upstream_dir(self) -> Path:
        """The pull-through cache of the upstream index: pages/ and files/."""
        return self.data_dir / "upstream"

    @property
    def static_dir(self) -> Path:
        """The tree nginx serves with one `root`: simple/ (pre-rendered pages), packages/."""
        return self.data_dir / "static"

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """metrics_addresses parsed: comma- or space-separated addresses and CIDR networks."""
        networks = []
        for part in self.metrics_addresses.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise _bad("metrics_addresses", f"{part!r} is not an IP address or network (CIDR)") from None
        return tuple(networks)

    @property
    def metrics_mode(self) -> str:
        """Who may read /metrics: metrics_access, or when empty: a token only if the index is
        private (read_access = "token"), else the listed addresses or a token."""
        if self.metrics_access:
            return self.metrics_access
        return "token" if self.read_access == "token" else "addresses"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_project_bytes(self) -> int:
        return self.max_project_mb * 1024 * 1024


SMTP_SCHEMES = ("smtp", "smtps", "smtp+plain")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


_FIELDS = {f.name: f for f in fields(Settings)}
_TABLES = {"oidc_issuers": _issuers, "sso_providers": _sso_providers}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, from_text: bool, given_as: str | None = None) -> Any:
    """Turn a TOML or environment value into the field's type, or raise ConfigError naming
    the setting as it was given (given_as: e.g. PRIVINDEX_PORT)."""
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if from_text and str(value).strip().lower() in _TRUE | _FALSE:
                return str(value).strip().lower() in _TRUE
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if from_text:
                return int(value)
        elif kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if from_text:
                return float(value)
        elif kind == "Path":
            if isinstance(value, (str, Path)) and str(value):
                return Path(value).expanduser()
        elif name in _TABLES:
            if from_text:  # a list of tables has no sensible one-line spelling
                raise ConfigError(
                    f"{given_as or name}: set {name} in the config file "
                    f"([[{name}]] tables); it has no environment variable or flag",
                    name,
                )
            return _TABLES[name](value)
        elif isinstance(value, str):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{given_as or name}: expected {kind.lower()}, got {value!r}", name)


def load_settings(
    config_path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the layers; overrides (CLI flags) whose value is None are ignored."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}  # field -> how the winning value was given, for messages

    path = config_path or environ.get(CONFIG_ENV)
    if path:
        try:
            with open(path, "rb") as fh:
                table = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for key, value in table.items():
            if key not in _FIELDS:
                raise ConfigError(f"unknown key {key!r} in {path}")
            values[key] = _coerce(key, value, from_text=False)
            given_as[key] = key

    for env_key, value in environ.items():
        if not env_key.startswith(ENV_PREFIX) or env_key == CONFIG_ENV:
            continue
        key = env_key[len(ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            raise ConfigError(f"unknown environment variable {env_key}")
        values[key] = _coerce(key, value, from_text=True, given_as=env_key)
        given_as[key] = env_key

    for key, value in (overrides or {}).items():
        if value is not None:
            flag = "--" + key.replace("_", "-")
            values[key] = _coerce(key, value, from_text=True, given_as=flag)
            given_as[key] = flag

    try:
        return Settings(**values)
    except ConfigError as exc:
        name = given_as.get(exc.field or "", exc.field or "")
        if exc.field and name != exc.field:  # say PRIVINDEX_THREADS, not threads
            raise ConfigError(name + str(exc)[len(exc.field) :], exc.field) from None
        raise
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from None


def replace(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)
