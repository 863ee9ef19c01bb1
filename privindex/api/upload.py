"""The legacy upload API (what `twine upload` speaks), validated the way PyPI validates.

authenticate (token) -> validate the form -> check the project permission -> validate the
file (digests, archive, metadata) -> publishing.publish_upload (claim, publish, record,
audit in one transaction, then index). This module parses the request and answers. The
file part was streamed by Werkzeug into a hidden temporary file inside the store
(store.IncomingFile), hashed on the way in; any refusal deletes it, so a refused upload
leaves nothing behind but an `upload:refused` audit event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, Request, current_app, request
from packaging.utils import InvalidName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from werkzeug.exceptions import RequestEntityTooLarge

from privindex.accounts import api_tokens
from privindex.accounts.permissions import NamespaceReserved, UploadDenied
from privindex.api.http import audit_context, plain_response
from privindex.auth import token_format
from privindex.oidc import publishers
from privindex.ops import audit, metrics
from privindex.ops.audit import Tag
from privindex.packages import provenance, publishing
from privindex.packages.archives import ArchiveLimits
from privindex.packages.distfile import InvalidDistribution, parse_filename, read_facts
from privindex.packages.store import IncomingFile, UploadTooLarge
from privindex.upstream import source_rules

bp = Blueprint("upload", __name__)

FILETYPES = {"bdist_wheel": (".whl",), "sdist": (".tar.gz", ".zip")}
DIGESTS = ("sha256", "blake2_256", "md5")
TOKEN_HINT = (
    "Create an API token (web UI: Tokens, or: privindex token create USER) and upload "
    "with username __token__ and the token as the password."
)


class Refused(Exception):
    def __init__(self, status: int, message: str, project: str | None = None, rule: str | None = None):
        super().__init__(message)
        self.status, self.message, self.project, self.rule = status, message, project, rule


FORM_OVERHEAD = 1024 * 1024  # the upload's other fields
WEB_FORM_LIMIT = 1024 * 1024  # every other form (sign-in, settings) is tiny


class UploadRequest(Request):
    """Streams uploaded file parts into the store instead of the system temp folder, and
    holds every other request body to a small size."""

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:  # set on this request, as Flask allows
            return self._max_content_length
        if self.blueprint == bp.name:
            return current_app.extensions["privindex"].settings.max_upload_bytes + FORM_OVERHEAD
        return WEB_FORM_LIMIT

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        services = current_app.extensions["privindex"]
        return services.store.incoming(services.settings.max_upload_bytes)

    def make_form_data_parser(self):
        # Werkzeug's parser silently turns a ValueError into an empty form; an upload must
        # see it (UploadTooLarge is one: 413, not "invalid :action"). Other views keep the default.
        parser = super().make_form_data_parser()
        parser.silent = self.blueprint != bp.name
        return parser


@bp.post("/legacy/")
@bp.post("/")
def upload():
    ctx = audit_context(via="upload")
    try:
        auth = _authenticate(request.headers.get("Authorization"))
        ctx = ctx.with_actor(auth.user, auth.token.id)
        return _accept(auth, ctx)
    except Refused as exc:
        rule = {"rule": exc.rule} if exc.rule else {}
        audit.record(
            Tag.UPLOAD_REFUSED, ctx, project=exc.project, reason=exc.message, status=exc.status, **rule
        )
        headers = {"WWW-Authenticate": 'Basic realm="privindex"'} if exc.status == 401 else None
        return plain_response(exc.status, exc.message, headers)


def _authenticate(header: str | None) -> api_tokens.TokenAuth:
    try:
        credentials = token_format.read_authorization(header)
    except token_format.MalformedAuthorization as exc:
        raise Refused(401, f"Malformed Authorization header: {exc}") from None
    if credentials is None:
        raise Refused(401, f"Uploads need an API token. {TOKEN_HINT}")
    if not credentials.is_token:
        raise Refused(403, f"Username/password authentication is not accepted for uploads. {TOKEN_HINT}")
    try:
        return api_tokens.authenticate_token(credentials.secret, request.remote_addr)
    except api_tokens.TokenRejected as exc:
        raise Refused(403, str(exc)) from None


@dataclass(frozen=True)
class UploadForm:
    project: str  # normalized
    version: Version
    filename: str
    incoming: IncomingFile
    digests: dict[str, str]
    attestations: str  # PEP 740: a JSON list, as twine --attestations sends it; "" if none


def _accept(auth: api_tokens.TokenAuth, ctx: audit.Context):
    services = current_app.extensions["privindex"]
    settings = services.settings
    form = _read_form()
    try:
        publishing.check_upload(
            auth,
            form.project,
            settings.require_2fa,
            account_url=f"{settings.base_url}/account/security",
            sources=services.sources,
        )
    except UploadDenied as exc:
        rule = source_rules.REFUSED_RULE if isinstance(exc, source_rules.UpstreamClaimed) else None
        raise Refused(_denied_status(exc), str(exc), form.project, rule) from None
    facts = _check_file(form)
    attested = _provenance(auth, form) if form.attestations else None
    try:
        published = publishing.publish_upload(
            services.store,
            services.index,
            auth,
            ctx,
            form.project,
            form.version,
            form.filename,
            form.incoming,
            facts,
            overwrite=services.settings.overwrite,
            max_project_bytes=settings.max_project_bytes,
            provenance=attested,
        )
    except UploadDenied as exc:
        raise Refused(_denied_status(exc), str(exc), form.project) from None
    except (publishing.AlreadyExists, publishing.QuotaExceeded) as exc:
        raise Refused(400, str(exc), form.project) from None
    if published.outcome == "identical":
        return plain_response(200, "OK, the identical file is already there; nothing changed")
    observed = metrics.current()
    if observed is not None:
        observed.uploaded(facts.size)
    return plain_response(200, "OK")


def _denied_status(exc: UploadDenied) -> int:
    """403, but 409 Conflict for a name in someone else's namespace, as PEP 752 requires."""
    return 409 if isinstance(exc, NamespaceReserved) else 403


def _read_form() -> UploadForm:
    try:
        form, files = request.form, request.files
    except (UploadTooLarge, RequestEntityTooLarge):
        raise _too_large() from None
    except ValueError as exc:  # a multipart body Werkzeug cannot parse
        raise Refused(400, f"The upload is not a valid multipart/form-data body: {exc}") from None

    def single(key: str) -> str:
        values = form.getlist(key)
        if len(values) > 1:
            raise Refused(400, f"The field {key!r} was sent more than once")
        return values[0].strip() if values else ""

    if single(":action") != "file_upload":
        raise Refused(400, "Invalid value for :action: only file_upload is supported")
    if (single("protocol_version") or "1") != "1":
        raise Refused(400, "Unknown protocol_version: only version 1 is supported")
    name, version_text, filetype = single("name"), single("version"), single("filetype")
    try:
        project = canonicalize_name(name, validate=True)
    except InvalidName:
        raise Refused(400, f"{name[:100]!r} is an invalid value for Name") from None
    try:
        version = Version(version_text)
    except ValueError:  # InvalidVersion, or a number of over 4,300 digits that int() refuses
        raise Refused(
            400, f"{version_text[:100]!r} is an invalid value for Version: see PEP 440", project
        ) from None
    if filetype not in FILETYPES:
        raise Refused(
            400, f"{filetype[:40]!r} is an invalid value for filetype: use bdist_wheel or sdist", project
        )

    uploads = files.getlist("content")
    if len(uploads) != 1:
        raise Refused(400, "The upload must carry exactly one file, in the field 'content'", project)
    incoming, filename = uploads[0].stream, uploads[0].filename or ""
    if not isinstance(incoming, IncomingFile):
        raise Refused(400, "The file part of the upload is malformed", project)
    if (
        not filename
        or filename != filename.strip()
        or filename.startswith(".")
        or len(filename) > 255
        or any(c in filename for c in "/\\\0")
        or not filename.isascii()
        or not filename.isprintable()
    ):
        raise Refused(
            400, f"Invalid filename {filename[:100]!r}: a bare wheel or sdist filename is needed", project
        )
    try:
        file_project, file_version = parse_filename(filename)
    except InvalidDistribution as exc:
        raise Refused(400, f"Invalid distribution filename: {exc}", project) from None
    if filename.endswith(".whl") and (bad := _unknown_platforms(filename)):
        raise Refused(400, f"Invalid platform tag {sorted(bad)[0][:40]!r} in {filename[:100]}", project)
    if not filename.endswith(FILETYPES[filetype]):
        raise Refused(400, f"Invalid file extension for {filetype}: {filename}", project)
    if file_project != project:
        raise Refused(400, f"Start filename for {name!r} with {project.replace('-', '_')!r}", project)
    if file_version != version:
        raise Refused(
            400, f"Version in filename should be {str(version)!r}, not {str(file_version)!r}", project
        )
    if incoming.size == 0:
        raise Refused(400, "The uploaded file is empty", project)

    sent = {kind: single(f"{kind}_digest").lower() for kind in DIGESTS}
    if not any(sent.values()):
        raise Refused(
            400, "Include at least one message digest (sha256_digest or blake2_256_digest)", project
        )
    actual = incoming.digests()
    for kind, value in sent.items():
        if value and value != actual[kind]:
            raise Refused(
                400,
                f"The {kind} digest supplied does not match the uploaded file "
                "(was it changed or truncated on the way?)",
                project,
            )
    return UploadForm(project, version, filename, incoming, actual, single("attestations"))


def _provenance(auth: api_tokens.TokenAuth, form: UploadForm) -> bytes:
    """The upload's attestations as a PEP 740 provenance object under its Trusted Publisher,
    each verified to be signed by that publisher's CI: as on PyPI, only an upload with a
    token minted by Trusted Publishing may carry them, since the publisher is who the
    attestations must come from."""
    publisher_id = auth.token.publisher_id
    found = publishers.attestation_identity(publisher_id) if publisher_id is not None else None
    if found is None:
        raise Refused(400, "Attestations are only supported when using Trusted Publishing", form.project)
    issuer, publisher = found
    trusted_root = current_app.extensions["privindex"].settings.attestation_trusted_root
    try:
        return provenance.from_upload(
            form.attestations, form.filename, form.digests["sha256"], issuer, publisher, trusted_root
        )
    except ValueError as exc:
        raise Refused(400, f"Invalid attestations for {form.filename}: {exc}", form.project) from None


# The platform tags wheels are built for; anything else (say "any.tar.gz", which packaging
# reads as the tags "any", "tar" and "gz") is a mistake or a disguise.
_PLATFORM_TAG = re.compile(
    r"any|win32|win_(amd64|arm64|ia64)|(many|musl)linux\w+|macosx_\d+_\d+_\w+|linux_\w+"
    r"|ios_\w+|android_\w+|emscripten_\w+|pyodide_\w+"
)


def _unknown_platforms(filename: str) -> set[str]:
    _name, _version, _build, tags = parse_wheel_filename(filename)
    return {tag.platform for tag in tags if not _PLATFORM_TAG.fullmatch(tag.platform)}


def _check_file(form: UploadForm):
    try:
        facts = read_facts(
            form.incoming.path,
            form.filename,
            sha256=form.digests["sha256"],
            strict=True,
            limits=ArchiveLimits.from_settings(current_app.extensions["privindex"].settings),
        )
    except InvalidDistribution as exc:
        raise Refused(400, f"Invalid distribution file: {exc}", form.project) from None
    if canonicalize_name(facts.name) != form.project:
        raise Refused(
            400, f"The file's metadata names project {facts.name[:100]!r}, not {form.project!r}", form.project
        )
    try:
        if facts.version is None or Version(facts.version) != form.version:
            raise InvalidVersion
    except ValueError:  # InvalidVersion, or a number int() refuses
        raise Refused(
            400,
            f"The file's metadata gives version {str(facts.version)[:50]!r}, not {str(form.version)!r}",
            form.project,
        ) from None
    return facts


def _too_large() -> Refused:
    limit = current_app.extensions["privindex"].settings.max_upload_mb
    return Refused(413, f"File too large: the limit is {limit} MiB (setting max_upload_mb)")
