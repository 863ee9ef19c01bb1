"""Verifying OpenID tokens (JWTs): the one module that knows PyJWT and fetches issuers'
discovery documents and keys, for Trusted Publishing's CI identity tokens (publishers.py)
and for the ID tokens of sign-in through an identity provider (sso.py).

A token is accepted only when it is RS256-signed by a key of a configured issuer and its
`iss`, `aud` (exactly one audience), `exp`, `iat` and `nbf` check out, with a small
leeway for clock skew, and it has the claims its caller requires. Keys come from the
issuer's OIDC discovery document (`/.well-known/openid-configuration` -> `jwks_uri`), or
from a pinned JWKS file; the discovery document is kept for the sign-in's endpoints.

Fetching keys never holds up the server: it runs in a thread of its own, within one
overall deadline, and at most once a minute per issuer (the first time, when a token
names a key id we do not have, and after a failure), so junk tokens cannot make us hammer
the issuer or tie up workers. A request waits for a fetch only in its first half second;
otherwise, and while a failed fetch waits for its retry, it is refused at once with
KeysUnavailable (503, Retry-After). The issuer's answers are untrusted: size-capped,
fetched without following redirects, the discovery document must name the issuer and its
jwks_uri must be on the issuer's scheme, host and port. The rules about what a verified
token may do live in publishers.py and sso.py.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import jwt

log = logging.getLogger(__name__)
T = TypeVar("T")

ALGORITHMS = ["RS256"]  # what GitHub, GitLab and Forgejo sign with; never HS256 or none
LEEWAY = 30  # seconds of clock skew tolerated on exp, iat and nbf
REFRESH_INTERVAL = 60.0  # seconds between two key fetches for one issuer, whatever their outcome
FETCH_DEADLINE = 5.0  # seconds for discovery and JWKS together
REQUEST_WAIT = 0.5  # seconds after a fetch began during which requests wait for it
MAX_DOCUMENT = 256 * 1024  # bytes; GitHub's and GitLab's documents are a few KiB
CHUNK = 16 * 1024
CI_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "jti")  # what a CI identity token must carry


class TokenInvalid(Exception):
    """The token does not verify. code is Warehouse's error code; the description says why,
    without quoting the token."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


class KeysUnavailable(Exception):
    """The issuer's keys cannot be had now; ask again in retry_after seconds."""

    def __init__(self, description: str, retry_after: float):
        super().__init__(description)
        self.description, self.retry_after = description, max(1, math.ceil(retry_after))


def unverified_issuer(token: str) -> str:
    """The `iss` a token claims, to pick the issuer whose keys must verify it (nothing more
    is trusted before the signature is checked)."""
    import jwt  # with cryptography, 0.1 s of every start: imported when a token first comes

    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenInvalid("invalid-token", "the token is not a well-formed JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise TokenInvalid(
            "invalid-token", f"the token must be signed with RS256, not {str(header.get('alg'))[:20]!r}"
        )
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenInvalid("invalid-token", "the token has no issuer (iss)")
    return issuer


@dataclass
class _Fetch:
    """One attempt at an issuer's keys; error is why it failed, once done."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class FetchFailed(Exception):
    """A fetch from an issuer failed; the message is one line, safe to show. status: the
    HTTP status the issuer answered with, if it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class IssuerKeys:
    """The public keys of one issuer: discovered (or read from a pinned file) and cached,
    with its discovery document."""

    def __init__(self, issuer: str, jwks_file: Path | None = None):
        self.issuer = issuer.rstrip("/")
        self.jwks_file = jwks_file
        self._keys: dict[str, jwt.PyJWK] = {}  # the last keys fetched; kept when a later fetch fails
        self._discovery: dict | None = None  # the last discovery document fetched
        self._fetch: _Fetch | None = None  # the latest attempt
        self._lock = threading.Lock()  # guards _keys and _fetch; never held while fetching

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The key named kid; raises TokenInvalid when the issuer does not publish it."""
        key = self._wait_for(lambda: self._keys.get(kid) if kid is not None else None)
        if key is None:
            raise TokenInvalid(
                "invalid-token", "the token is signed with a key the issuer does not publish (unknown kid)"
            )
        return key

    def discovery(self) -> dict:
        """The issuer's discovery document (fetched like the keys, and with them). A person
        is waiting for it to sign in: the request waits for the whole fetch."""
        document = self._wait_for(lambda: self._discovery, FETCH_DEADLINE)
        if document is None:  # pragma: no cover - a fetch that succeeds sets it
            raise KeysUnavailable(f"issuer {self.issuer} has no discovery document", REFRESH_INTERVAL)
        return document

    def _wait_for(self, lookup: Callable[[], T | None], wait: float = REQUEST_WAIT) -> T | None:
        """What lookup finds, fetching first when it finds nothing (at most once a minute)
        and waiting for the fetch up to wait seconds after it began; None when a completed
        fetch did not provide it. Raises KeysUnavailable while the issuer cannot be had."""
        with self._lock:
            if (found := lookup()) is not None:
                return found
            fetch = self._fetch
            if fetch is None or time.monotonic() - fetch.started >= REFRESH_INTERVAL:
                fetch = self._fetch = _Fetch(
                    time.monotonic()
                )  # none yet, or the issuer may have rotated its keys
                threading.Thread(target=self._run, args=(fetch,), name="oidc-keys", daemon=True).start()
        fetch.done.wait(max(0.0, fetch.started + wait - time.monotonic()))
        with self._lock:
            if (found := lookup()) is not None:
                return found
        now = time.monotonic()
        if not fetch.done.is_set() and now < fetch.started + FETCH_DEADLINE:
            raise KeysUnavailable(
                f"the keys of issuer {self.issuer} are being fetched; try again in a few seconds",
                fetch.started + FETCH_DEADLINE - now,
            )
        if fetch.error or not fetch.done.is_set():
            raise KeysUnavailable(
                f"the keys of issuer {self.issuer} cannot be fetched "
                f"({fetch.error or 'no answer in time'}); try again later",
                fetch.started + REFRESH_INTERVAL - now,
            )
        return None

    def _run(self, fetch: _Fetch) -> None:
        try:
            keys, discovery = self._load(fetch.started + FETCH_DEADLINE)
        except FetchFailed as exc:
            fetch.error = str(exc)
            log.warning("OpenID: the keys of issuer %s cannot be fetched: %s", self.issuer, exc)
        except Exception as exc:  # a bug here must not pass for a fetch that found no keys
            fetch.error = f"unexpected {type(exc).__name__}"
            log.exception("OpenID: fetching the keys of issuer %s failed", self.issuer)
        else:
            with self._lock:
                self._keys, self._discovery = keys, discovery
        finally:
            fetch.done.set()

    def _load(self, deadline: float) -> tuple[dict[str, jwt.PyJWK], dict | None]:
        import jwt

        config = None
        if self.jwks_file is not None:
            try:
                document = json.loads(Path(self.jwks_file).read_text())
            except (OSError, ValueError) as exc:
                raise FetchFailed(f"{self.jwks_file}: {type(exc).__name__}") from None
        else:
            config = fetch_json(f"{self.issuer}/.well-known/openid-configuration", deadline)
            if not isinstance(config, dict) or str(config.get("issuer", "")).rstrip("/") != self.issuer:
                raise FetchFailed("its discovery document names another issuer")
            jwks_uri = config.get("jwks_uri")
            if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(self.issuer):
                raise FetchFailed("its discovery document's jwks_uri is not on the issuer's host")
            document = fetch_json(jwks_uri, deadline)
        keys = {}
        try:
            for entry in document.get("keys", []):
                if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig" or "kid" not in entry:
                    continue
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
        except (AttributeError, TypeError, ValueError, jwt.PyJWTError) as exc:
            raise FetchFailed(f"its JWKS cannot be read ({type(exc).__name__})") from None
        return keys, config


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx fails the fetch: the issuer's URLs are used as configured


_opener = urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str, deadline: float, form: dict[str, str] | None = None, auth: str = "") -> Any:
    """The JSON document at url, read whole before the deadline and within MAX_DOCUMENT;
    with form, POSTed as application/x-www-form-urlencoded (auth: an Authorization value)."""
    headers = {"Accept": "application/json", "User-Agent": "privindex-oidc"}
    if auth:
        headers["Authorization"] = auth
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    body = bytearray()
    try:
        with _opener.open(request, timeout=max(0.01, deadline - time.monotonic())) as response:  # noqa: S310
            while chunk := response.read1(CHUNK):
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise FetchFailed(f"{url} sent more than {MAX_DOCUMENT // 1024} KiB")
                if time.monotonic() > deadline:
                    raise TimeoutError
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchFailed(f"{url} answered {exc.code}", exc.code) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc  # URLError wraps the cause
        if isinstance(reason, TimeoutError):
            raise FetchFailed(f"{url} did not answer within {FETCH_DEADLINE:g} s") from None
        detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise FetchFailed(f"cannot reach {url} ({detail})") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise FetchFailed(f"{url} did not send JSON") from None


def verify(token: str, keys: IssuerKeys, audience: str, require: tuple[str, ...] = CI_CLAIMS) -> dict:
    """The token's claims, once its signature and registered claims check out and it has
    every claim in require."""
    import jwt

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise TokenInvalid("invalid-token", "the token is not a well-formed JWT") from None
    key = keys.key(kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=keys.issuer,
            leeway=LEEWAY,
            options={
                "require": list(require),
                "verify_nbf": True,
                "verify_iat": True,
            },
        )
    except jwt.ExpiredSignatureError:
        raise TokenInvalid("invalid-token", "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenInvalid("invalid-token", "the token is not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise TokenInvalid(
            "invalid-token",
            f"the token's audience is not {audience!r} (set it in your CI, see GET /_/oidc/audience)",
        ) from None
    except jwt.InvalidIssuerError:
        raise TokenInvalid("invalid-token", "the token's issuer does not match") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenInvalid("invalid-token", f"the token has no {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise TokenInvalid("invalid-token", "the token's signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise TokenInvalid("invalid-token", f"the token is invalid ({type(exc).__name__})") from None
    aud = claims["aud"]
    if not isinstance(aud, str) and not (isinstance(aud, list) and len(aud) == 1):
        raise TokenInvalid("invalid-token", "the token must name exactly one audience")
    if "jti" in require and (not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 256):
        raise TokenInvalid("invalid-token", "the token's jti is not a short string")
    return claims
