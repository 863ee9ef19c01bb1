"""Verifying CI identity tokens (OIDC JWTs): the one module that knows PyJWT.

A token is accepted only when it is RS256-signed by a key of a configured issuer and its
`iss`, `aud` (exactly one audience), `exp`, `iat` and `nbf` check out, with a small
leeway for clock skew. Keys come from the issuer's OIDC discovery document
(`/.well-known/openid-configuration` -> `jwks_uri`), or from a pinned JWKS file.

Fetching keys never holds up the server: it runs in a thread of its own, within one
overall deadline, and at most once a minute per issuer (the first time, when a token
names a key id we do not have, and after a failure), so junk tokens cannot make us hammer
the issuer or tie up workers. A request waits for a fetch only in its first half second;
otherwise, and while a failed fetch waits for its retry, it is refused at once with
KeysUnavailable (503, Retry-After). The issuer's answers are untrusted: size-capped,
fetched without following redirects, the discovery document must name the issuer and its
jwks_uri must be on the issuer's scheme, host and port. The rules about what a verified
token may do live in publishers.py.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import jwt

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]  # what GitHub, GitLab and Forgejo sign with; never HS256 or none
LEEWAY = 30  # seconds of clock skew tolerated on exp, iat and nbf
REFRESH_INTERVAL = 60.0  # seconds between two key fetches for one issuer, whatever their outcome
FETCH_DEADLINE = 5.0  # seconds for discovery and JWKS together
REQUEST_WAIT = 0.5  # seconds after a fetch began during which requests wait for it
MAX_DOCUMENT = 256 * 1024  # bytes; GitHub's and GitLab's documents are a few KiB
CHUNK = 16 * 1024


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


class _Unreadable(Exception):
    """A key fetch failed; the message is one line, safe to show."""


class IssuerKeys:
    """The public keys of one issuer: discovered (or read from a pinned file) and cached."""

    def __init__(self, issuer: str, jwks_file: Path | None = None):
        self.issuer = issuer.rstrip("/")
        self.jwks_file = jwks_file
        self._keys: dict[str, jwt.PyJWK] = {}  # the last keys fetched; kept when a later fetch fails
        self._fetch: _Fetch | None = None  # the latest attempt
        self._lock = threading.Lock()  # guards _keys and _fetch; never held while fetching

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            fetch = self._fetch
            if fetch is None or time.monotonic() - fetch.started >= REFRESH_INTERVAL:
                fetch = self._fetch = _Fetch(
                    time.monotonic()
                )  # none yet, or the issuer may have rotated its keys
                threading.Thread(target=self._run, args=(fetch,), name="oidc-keys", daemon=True).start()
        fetch.done.wait(max(0.0, fetch.started + REQUEST_WAIT - time.monotonic()))
        if kid in self._keys:
            return self._keys[kid]
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
        raise TokenInvalid(
            "invalid-token", "the token is signed with a key the issuer does not publish (unknown kid)"
        )

    def _run(self, fetch: _Fetch) -> None:
        try:
            keys = self._load(fetch.started + FETCH_DEADLINE)
        except _Unreadable as exc:
            fetch.error = str(exc)
            log.warning("Trusted Publishing: the keys of issuer %s cannot be fetched: %s", self.issuer, exc)
        except Exception as exc:  # a bug here must not pass for a fetch that found no keys
            fetch.error = f"unexpected {type(exc).__name__}"
            log.exception("Trusted Publishing: fetching the keys of issuer %s failed", self.issuer)
        else:
            with self._lock:
                self._keys = keys
        finally:
            fetch.done.set()

    def _load(self, deadline: float) -> dict[str, jwt.PyJWK]:
        import jwt

        if self.jwks_file is not None:
            try:
                document = json.loads(Path(self.jwks_file).read_text())
            except (OSError, ValueError) as exc:
                raise _Unreadable(f"{self.jwks_file}: {type(exc).__name__}") from None
        else:
            config = _fetch_json(f"{self.issuer}/.well-known/openid-configuration", deadline)
            if not isinstance(config, dict) or str(config.get("issuer", "")).rstrip("/") != self.issuer:
                raise _Unreadable("its discovery document names another issuer")
            jwks_uri = config.get("jwks_uri")
            if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(self.issuer):
                raise _Unreadable("its discovery document's jwks_uri is not on the issuer's host")
            document = _fetch_json(jwks_uri, deadline)
        keys = {}
        try:
            for entry in document.get("keys", []):
                if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig" or "kid" not in entry:
                    continue
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
        except (AttributeError, TypeError, ValueError, jwt.PyJWTError) as exc:
            raise _Unreadable(f"its JWKS cannot be read ({type(exc).__name__})") from None
        return keys


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx fails the fetch: the issuer's URLs are used as configured


_opener = urllib.request.build_opener(_NoRedirects)


def _fetch_json(url: str, deadline: float) -> Any:
    """The JSON document at url, read whole before the deadline and within MAX_DOCUMENT."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "privindex-oidc"}
    )
    body = bytearray()
    try:
        with _opener.open(request, timeout=max(0.01, deadline - time.monotonic())) as response:  # noqa: S310
            while chunk := response.read1(CHUNK):
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise _Unreadable(f"{url} sent more than {MAX_DOCUMENT // 1024} KiB")
                if time.monotonic() > deadline:
                    raise TimeoutError
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _Unreadable(f"{url} answered {exc.code}") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc  # URLError wraps the cause
        if isinstance(reason, TimeoutError):
            raise _Unreadable(f"{url} did not answer within {FETCH_DEADLINE:g} s") from None
        detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise _Unreadable(f"cannot reach {url} ({detail})") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise _Unreadable(f"{url} did not send JSON") from None


def verify(token: str, keys: IssuerKeys, audience: str) -> dict:
    """The token's claims, once its signature and registered claims check out."""
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
                "require": ["iss", "aud", "exp", "iat", "nbf", "jti"],
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
    if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= 256:
        raise TokenInvalid("invalid-token", "the token's jti is not a short string")
    return claims
