"""A software WebAuthn authenticator (ES256, attestation "none") for server-side tests of
rules a browser never lets through: an answer without the user-verified flag, a user handle
nobody has. Browser tests use chromium's virtual authenticator instead."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftKey:
    """One credential on one relying party; uv: whether it says it verified the user."""

    def __init__(self, rp_id: str, origin: str, uv: bool = True):
        self.rp_id, self.origin, self.uv = rp_id, origin, uv
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle = b""
        self.sign_count = 0

    def _client_data(self, kind: str, options: dict) -> bytes:
        return json.dumps({"type": kind, "challenge": options["challenge"], "origin": self.origin}).encode()

    def _auth_data(self, extra: bytes = b"") -> bytes:
        flags = UP | (UV if self.uv else 0) | (AT if extra else 0)
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + self.sign_count.to_bytes(4, "big") + extra

    def register(self, options: dict) -> dict:
        """The credential JSON navigator.credentials.create would give for options."""
        self.user_handle = unb64u(options["user"]["id"])
        numbers = self.private.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        attested = (
            bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + cbor2.dumps(cose)
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": self._auth_data(attested)})
        return self._credential(
            clientDataJSON=b64u(self._client_data("webauthn.create", options)),
            attestationObject=b64u(attestation),
            transports=["usb"],
        )

    def sign_in(self, options: dict, user_handle: bytes | None = None) -> dict:
        """The credential JSON navigator.credentials.get would give (user_handle: another claim)."""
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", options)
        auth_data = self._auth_data()
        signature = self.private.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return self._credential(
            clientDataJSON=b64u(client_data),
            authenticatorData=b64u(auth_data),
            signature=b64u(signature),
            userHandle=b64u(self.user_handle if user_handle is None else user_handle),
        )

    def _credential(self, **response: object) -> dict:
        """The PublicKeyCredential's JSON form (its toJSON())."""
        credential_id = b64u(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": response,
        }
