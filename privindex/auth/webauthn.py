"""Security keys (FIDO2/U2F) through py_webauthn, as a second factor or as a passkey.

As a second factor: attestation none, user verification discouraged (a touch is the
factor; the password was the first), no resident keys. As a passkey: a resident
(discoverable) credential and user verification required, since the key alone then stands
for both factors (possession plus the PIN or fingerprint the authenticator checked).

The RP ID and origin come from settings.public_url, never from the request's Host header.
Challenges are raw bytes kept server-side by the caller.

py_webauthn (and the cryptography stack under it) is imported on first use: it is a
sixth of the server's start-up time and 15 MB of memory that the read path never needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

RP_NAME = "privindex"


class KeyRejected(Exception):
    """The browser's answer did not verify; the message is safe to show."""


@dataclass(frozen=True)
class StoredKey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]


@dataclass(frozen=True)
class NewKey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    aaguid: str


def _descriptors(keys: list[StoredKey]) -> list:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    result = []
    for key in keys:
        transports = [
            AuthenticatorTransport(t)
            for t in key.transports
            if t in AuthenticatorTransport._value2member_map_
        ]
        result.append(PublicKeyCredentialDescriptor(id=key.credential_id, transports=transports or None))
    return result


def registration_options(
    rp_id: str, username: str, user_handle: bytes, existing: list[StoredKey], passkey: bool = False
) -> tuple[dict, bytes]:
    """(options for navigator.credentials.create as JSON-ready dict, the challenge)."""
    import webauthn
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_name=username,
        user_id=user_handle,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED if passkey else ResidentKeyRequirement.DISCOURAGED,
            user_verification=(
                UserVerificationRequirement.REQUIRED if passkey else UserVerificationRequirement.DISCOURAGED
            ),
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json_dict(options), options.challenge


def verify_registration(
    credential: dict, challenge: bytes, rp_id: str, origin: str, require_uv: bool = False
) -> NewKey:
    import webauthn
    from webauthn.helpers import parse_registration_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        parsed = parse_registration_credential_json(json.dumps(credential))
        verified = webauthn.verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=require_uv,
        )
    except (WebAuthnException, ValueError, TypeError) as exc:
        raise KeyRejected(f"the security key's answer did not verify ({exc})") from None
    transports = [getattr(t, "value", t) for t in (parsed.response.transports or [])]
    return NewKey(
        verified.credential_id,
        verified.credential_public_key,
        verified.sign_count,
        transports,
        str(verified.aaguid),
    )


def authentication_options(
    rp_id: str, keys: list[StoredKey] | None, require_uv: bool = False
) -> tuple[dict, bytes]:
    """keys None: a passkey sign-in (empty allowCredentials, so the browser offers every
    passkey it has for rp_id; user verification required, as with require_uv)."""
    import webauthn
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import UserVerificationRequirement

    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=[] if keys is None else _descriptors(keys),
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if keys is None or require_uv
            else UserVerificationRequirement.DISCOURAGED
        ),
    )
    return options_to_json_dict(options), options.challenge


def _parsed_authentication(credential: dict):
    from webauthn.helpers import parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        return parse_authentication_credential_json(json.dumps(credential))
    except (WebAuthnException, ValueError, TypeError) as exc:
        raise KeyRejected(f"the security key's answer is malformed ({exc})") from None


def credential_id_of(credential: dict) -> bytes:
    """The raw id the browser says it used, to find the stored key to verify against."""
    return _parsed_authentication(credential).raw_id


def user_handle_of(credential: dict) -> bytes | None:
    """The user handle a passkey returned (unverified until the signature is): names whose
    passkey it claims to be."""
    return _parsed_authentication(credential).response.user_handle


class SignCountRegression(KeyRejected):
    """The key's counter went backwards: it may have been cloned."""


def verify_authentication(
    credential: dict, challenge: bytes, rp_id: str, origin: str, key: StoredKey, require_uv: bool = False
) -> int:
    """Verify a sign-in with key; returns the new sign count to store. require_uv: refuse an
    answer without the authenticator's user-verified flag."""
    import webauthn
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        verified = webauthn.verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count,
            require_user_verification=require_uv,
        )
    except WebAuthnException as exc:
        if "sign count" in str(exc).lower():
            raise SignCountRegression(str(exc)) from None
        raise KeyRejected(f"the security key's answer did not verify ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise KeyRejected(f"the security key's answer is malformed ({exc})") from None
    return verified.new_sign_count
