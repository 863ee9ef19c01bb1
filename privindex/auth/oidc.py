"""Verifying CI identity tokens (OIDC JWTs): the one module that knows PyJWT.

A token is accepted only when it is RS256-signed by a key of a configured issuer and its
`iss`, `aud` (exactly one audience), `exp`, `iat` and `nbf` check out, with a small
leeway for clock skew. Keys come from the issuer's OIDC discovery document
(`/.well-known/openid-configuration` -> `jwks_uri`), cached, and fetched again when a
token names a key id we do not know (at most once a minute per issuer, so junk tokens
cannot make us hammer the issuer); or from a pinned JWKS file, never refreshed. The rules
about what a verified token may do live in trusted_publishing.py.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jwt

ALGORITHMS = ["RS256"]  # what GitHub, GitLab and Forgejo sign with; never HS256 or none
LEEWAY = 30  # seconds of clock skew tolerated on exp, iat and nbf
REFRESH_INTERVAL = 60.0  # seconds between two key fetches for one issuer
FETCH_TIMEOUT = 10.0
MAX_DOCUMENT = 1024 * 1024


class TokenInvalid(Exception):
    """The token does not verify. code is Warehouse's error code; the description says why,
    without quoting the token."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code, self.description = code, description


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
        raise TokenInvalid("invalid-token", f"the token must be signed with RS256, not {str(header.get('alg'))[:20]!r}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenInvalid("invalid-token", "the token has no issuer (iss)")
    return issuer


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


class IssuerKeys:
    """The public keys of one issuer: discovered and cached, or pinned from a file."""

    def __init__(self, issuer: str, jwks_file: Path | None = None):
        self.issuer = issuer.rstrip("/")
        self.jwks_file = jwks_file
        self._set: _KeySet | None = None
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            if self._set is None:
                self._set = self._load()
            if kid in self._set.keys:
                return self._set.keys[kid]
            if self.jwks_file is None and time.monotonic() - self._set.fetched_at >= REFRESH_INTERVAL:
                self._set = self._load()  # the issuer may have rotated its keys
                if kid in self._set.keys:
                    return self._set.keys[kid]
        raise TokenInvalid("invalid-token", "the token is signed with a key the issuer does not publish "
                                            "(unknown kid)")

    def _load(self) -> _KeySet:
        import jwt

        try:
            if self.jwks_file is not None:
                document = json.loads(Path(self.jwks_file).read_text())
            else:
                config = _fetch_json(f"{self.issuer}/.well-known/openid-configuration")
                jwks_uri = config.get("jwks_uri") if isinstance(config, dict) else None
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                    raise ValueError("its discovery document has no jwks_uri")
                document = _fetch_json(jwks_uri)
            keys = {}
            for entry in document.get("keys", []):
                if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig" or "kid" not in entry:
                    continue
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm="RS256")
        except (OSError, ValueError, AttributeError, TypeError, jwt.PyJWTError) as exc:
            raise TokenInvalid("invalid-token", f"the keys of issuer {self.issuer} cannot be read now "
                                                f"({type(exc).__name__}); try again later") from None
        return _KeySet(keys, time.monotonic())


def _fetch_json(url: str):
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "privindex-oidc"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 (configured URL)
        return json.loads(response.read(MAX_DOCUMENT + 1)[:MAX_DOCUMENT])


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
            token, key.key, algorithms=ALGORITHMS, audience=audience, issuer=keys.issuer, leeway=LEEWAY,
            options={"require": ["iss", "aud", "exp", "iat", "nbf", "jti"], "verify_nbf": True,
                     "verify_iat": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenInvalid("invalid-token", "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenInvalid("invalid-token", "the token is not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise TokenInvalid("invalid-token", f"the token's audience is not {audience!r} (set it in your CI, "
                                            "see GET /_/oidc/audience)") from None
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
