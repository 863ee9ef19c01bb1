"""The Trusted Publishing exchange over HTTP, where clients look for it.

twine, uv and pypa/gh-action-pypi-publish build `https://<host>/_/oidc/...` from the upload
URL's host, so these routes sit at the root of the public URL:

- `GET /_/oidc/audience` -> `{"audience": ...}`
- `POST /_/oidc/mint-token` `{"token": "<jwt>"}` -> `{"success": true, "token", "expires"}`;
  refusals are 422 in Warehouse's shape `{"message", "errors": [{"code", "description"}]}`,
  or 503 with Retry-After (code `issuer-unavailable`) while the issuer's keys cannot be had
- `POST /_/oidc/burn-token` `{"token": "<minted token>"}`: revokes it (uv calls it when done)
- `GET /.well-known/pytp[/...]`: PEP 807's discovery document (PEP 807 is a draft; we
  serve only the endpoint URLs, and its endpoints under `/_/pytp/` answer errors as RFC
  9457 problem+json).

The POSTs are exempt from CSRF on purpose: they carry no cookie authority, the JWT (or the
minted token) is the credential. GET and HEAD change nothing. This module parses and
answers; oidc/publishers.py owns the rules.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from privindex.api.http import audit_context
from privindex.oidc import publishers
from privindex.oidc.publishers import ExchangeRefused

bp = Blueprint("oidc", __name__)

MAX_JWT = 16 * 1024


def _settings():
    return current_app.extensions["privindex"].settings


def _verifier() -> publishers.Verifier:
    return current_app.extensions["privindex_oidc"]


@bp.get("/_/oidc/audience")
@bp.get("/_/pytp/audience")
def audience():
    return jsonify(audience=_settings().audience)


@bp.get("/.well-known/pytp")
@bp.get("/.well-known/pytp/<path:_upload_path>")
def discovery(_upload_path: str = ""):
    """PEP 807 (draft) discovery: where to ask for the audience and where to mint."""
    base = _settings().base_url
    return jsonify(
        {"audience-endpoint": f"{base}/_/pytp/audience", "token-mint-endpoint": f"{base}/_/pytp/mint-token"}
    )


@bp.post("/_/oidc/mint-token")
def mint_token():
    return _mint(problem=False)


@bp.post("/_/pytp/mint-token")
def mint_token_pytp():
    return _mint(problem=True)


@bp.post("/_/oidc/burn-token")
def burn_token():
    try:
        publishers.burn(_token_field(), audit_context(via="oidc"))
    except ExchangeRefused as exc:
        return _refusal(exc, problem=False)
    return jsonify(success=True)


def _token_field() -> str:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise ExchangeRefused("invalid-payload", 'the body must be JSON: {"token": "<token>"}')
    if len(body["token"]) > MAX_JWT:
        raise ExchangeRefused("invalid-payload", "the token is too long")
    return body["token"]


def _mint(problem: bool):
    try:
        minted = publishers.mint(_verifier(), _token_field(), audit_context(via="oidc"))
    except ExchangeRefused as exc:
        return _refusal(exc, problem)
    response = jsonify(success=True, token=minted.secret, expires=minted.expires)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(exc: ExchangeRefused, problem: bool):
    errors = [{"code": exc.code, "description": exc.description}]
    status = 422 if exc.retry_after is None else 503
    if problem:  # RFC 9457
        response = jsonify(
            type="about:blank",
            title="Token exchange refused",
            status=status,
            detail=f"{exc.code}: {exc.description}",
            errors=errors,
        )
        response.mimetype = "application/problem+json"
    else:
        response = jsonify(message="Token request failed", errors=errors)
    response.status_code = status
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
