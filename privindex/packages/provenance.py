"""PEP 740 provenance objects: a file's attestations, grouped by the publisher that made them.

One shape check for both ways a provenance object reaches privindex: fetched with a file
cached from an upstream (upstream/client.py), or built from an upload's `attestations`
field and its Trusted Publisher (`from_upload`). Either way each statement must be about
the file's name and the sha256 privindex computed. An upload's attestations are verified
too: signed through Sigstore's public good instance by its publisher's CI identity
(auth/attestations.py, offline); an upstream's are passed on as the upstream served them
(SECURITY.md, "Provenance"). A local file's provenance lies beside it in the store as
`<filename>.provenance` (SUFFIX), written and removed with the file (packages/publishing.py,
packages/withdrawal.py).
"""

from __future__ import annotations

import base64
import json

from packaging.utils import parse_sdist_filename, parse_wheel_filename

from privindex.auth import attestations as sigstore_attestations

SUFFIX = ".provenance"

# PEP 740's provenance object: one file's attestations, at most this big (Warehouse's hold a
# few per file, about 5 KB each)
PROVENANCE_MAX = 1024 * 1024
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def check_provenance(data: bytes, filename: str, sha256: str) -> None:
    """Refuse (ValueError) a provenance object that is not PEP 740's shape or whose
    attestations are not about this file: each statement's one subject must name filename
    (compared parsed, as the PEP says) with the sha256 the page gives for it. Signatures
    are not checked here: `from_upload` does that for uploads (SECURITY.md, "Provenance")."""
    doc = _object(_json(data), "provenance object")
    bundles = doc.get("attestation_bundles")
    if doc.get("version") != 1 or not isinstance(bundles, list) or not bundles:
        raise ValueError("not a version 1 provenance object with attestation bundles")
    for bundle in (_object(item, "attestation bundle") for item in bundles):
        attestations = bundle.get("attestations")
        if (
            not isinstance(bundle.get("publisher"), dict)
            or not isinstance(attestations, list)
            or not attestations
        ):
            raise ValueError("a bundle without a publisher or attestations")
        for attestation in (_object(item, "attestation") for item in attestations):
            envelope = _object(attestation.get("envelope"), "envelope")
            if attestation.get("version") != 1 or not isinstance(envelope.get("statement"), str):
                raise ValueError("not a version 1 attestation")
            statement = _object(_json(base64.b64decode(envelope["statement"], validate=True)), "statement")
            subjects = statement.get("subject")
            if (
                statement.get("_type") != STATEMENT_TYPE
                or not isinstance(subjects, list)
                or len(subjects) != 1
            ):
                raise ValueError("not an in-toto v1 statement about one subject")
            subject = _object(subjects[0], "subject")
            if _object(subject.get("digest"), "digest").get("sha256") != sha256:
                raise ValueError("an attestation about other bytes than the file's")
            if not isinstance(subject.get("name"), str) or not _same_file(subject["name"], filename):
                raise ValueError("an attestation about another file")


def _json(data: bytes | str) -> object:
    """json.loads, with nesting too deep for the parser refused like any other bad JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not a JSON object")
    return value


def _same_file(subject: str, filename: str) -> bool:
    """Whether a statement's subject names filename: both parsed, so a normalized spelling
    of the same wheel or sdist counts (PEP 740)."""
    if filename.endswith(".whl"):
        return subject.endswith(".whl") and parse_wheel_filename(subject) == parse_wheel_filename(filename)
    kind = ".zip" if filename.endswith(".zip") else ".tar.gz"  # filename is a distribution's
    return subject.endswith(kind) and parse_sdist_filename(subject) == parse_sdist_filename(filename)


def from_upload(
    attestations: str, filename: str, sha256: str, issuer: str, publisher: dict, trusted_root: str = ""
) -> bytes:
    """The provenance object (JSON bytes) for an upload's `attestations` field (twine sends a
    JSON list of PEP 740 attestation objects), each about the file and signed by publisher's
    CI identity (publisher: its PEP 740 object; issuer: the OIDC issuer its tokens come
    from); ValueError saying why not.

    A publisher on a CI the public good instance does not certify (a self-hosted GitLab,
    GitHub Enterprise Server, Forgejo) is refused rather than passed on unverified: its
    CI cannot have signed them there, and a provenance object nobody could verify would
    still look, to whoever reads it, like a claim that its publisher built the file."""
    if len(attestations) > PROVENANCE_MAX:
        raise ValueError(f"the attestations are larger than {PROVENANCE_MAX // 1024} KiB")
    try:
        items = _json(attestations)
    except ValueError:
        raise ValueError("the attestations are not JSON") from None
    if not isinstance(items, list) or not items:
        raise ValueError("the attestations are not a JSON list of attestation objects")
    doc = {"version": 1, "attestation_bundles": [{"publisher": publisher, "attestations": items}]}
    data = json.dumps(doc, separators=(",", ":")).encode()
    check_provenance(data, filename, sha256)
    if sigstore_attestations.SIGSTORE_ISSUERS.get(publisher["kind"]) != issuer:
        raise ValueError(
            f"attestations from the CI at {issuer} cannot be verified: Sigstore's public instance "
            "certifies only GitHub Actions and GitLab.com identities (upload without --attestations)"
        )
    for number, item in enumerate(items, 1):
        try:
            sigstore_attestations.verify(item, publisher, trusted_root)
        except sigstore_attestations.AttestationInvalid as exc:
            raise ValueError(f"attestation {number} does not verify: {exc}") from None
    return data
