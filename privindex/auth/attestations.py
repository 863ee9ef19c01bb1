"""Sigstore verification of PEP 740 attestations, offline, as the public index does it.

pypi-attestations (the library Warehouse uses) turns an attestation into a Sigstore bundle
and a Trusted Publisher into the verification policy its certificate must meet: GitHub
Actions (repository + workflow file, from the certificate's Build Config URI) or GitLab CI
on gitlab.com (project path + CI file). sigstore checks the signature, the certificate's
chain to Fulcio and the transparency log entry against a trust root read from a file:
sigstore's own copy of the public good instance's trusted_root.json unless the setting
`attestation_trusted_root` names a newer one. Nothing is fetched: no TUF refresh, no Rekor
query, so an upload's answer never waits on the internet.

Both libraries are imported on first use: they cost start-up time the read path never needs.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError
    from sigstore.verify import Verifier

# The CI issuers whose identities the public good instance certifies, by the kind a
# PEP 740 publisher object gives: the only publishers whose attestations can verify.
SIGSTORE_ISSUERS = {
    "GitHub": "https://token.actions.githubusercontent.com",
    "GitLab": "https://gitlab.com",
}


class AttestationInvalid(ValueError):
    """An attestation that does not verify; the message is one line, safe to show."""


def verify(attestation: dict, publisher: dict, trusted_root: str = "") -> None:
    """Check that attestation (a PEP 740 attestation object) was signed, through Sigstore,
    by the CI identity of publisher (a PEP 740 publisher object); AttestationInvalid says
    why not. The statement's subject (file name and sha256) is packages/provenance.py's
    check, made before this one."""
    from pydantic import TypeAdapter, ValidationError
    from pypi_attestations import Attestation, AttestationType, Publisher
    from sigstore.errors import Error as SigstoreError

    try:
        identity = TypeAdapter(Publisher).validate_python(publisher)
        parsed = Attestation.model_validate(attestation)
    except ValidationError as exc:
        raise AttestationInvalid(f"not a verifiable attestation ({_first_error(exc)})") from None
    try:
        # _as_policy is how pypi-attestations' own Attestation.verify builds the policy; that
        # method takes no trust root of ours, so the two steps it makes are made here.
        _kind, payload = _verifier(trusted_root).verify_dsse(parsed.to_bundle(), identity._as_policy())
    except SigstoreError as exc:
        raise AttestationInvalid(_one_line(str(exc))) from None
    except ValueError as exc:  # a certificate or envelope cryptography cannot read
        raise AttestationInvalid(f"unreadable signature material ({_one_line(str(exc))})") from None
    predicate_type = json.loads(payload).get("predicateType")
    if predicate_type not in {t.value for t in AttestationType}:
        raise AttestationInvalid(f"unknown attestation type {predicate_type!r}")


@functools.lru_cache(maxsize=2)
def _verifier(trusted_root: str) -> Verifier:
    """The verifier for a trust root file ("": the one sigstore ships), read once."""
    from importlib import resources

    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    if not trusted_root:
        shipped = resources.files("sigstore._store") / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        trusted_root = str(shipped / "trusted_root.json")
    return Verifier(trusted_root=TrustedRoot.from_file(trusted_root))


def check_trusted_root(path: str) -> None:
    """Raise ValueError unless path holds a trust root sigstore can use (for config.py)."""
    try:
        _verifier(path)
    except Exception as exc:  # whatever sigstore or the JSON parser says: its first line
        raise ValueError(_one_line(str(exc).partition("\n")[0]) or type(exc).__name__) from None


def _first_error(exc: ValidationError) -> str:
    """pydantic's first complaint, in one line: where, and what."""
    first = exc.errors()[0]
    return _one_line(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
