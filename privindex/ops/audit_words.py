"""The audit trail in words: each tag of `audit.Tag` as a translated sentence with its facts
(for the web UI's audit log), and a short name per tag (for its event filter).

Sentences leave out who acted and when (the log shows both in their own columns) and name
the object: "Revoked the API token “ci-upload” (id 4) of alice." Detail codes that are
words to a program (`invalid_totp`, `sign_out_everywhere`) become words to a person here.
A tag added to `audit.Tag` without a sentence fails tests/test_web_admin.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from privindex.i18n import _
from privindex.ops.audit import Tag


class Facts(dict):
    """An event's facts (subject, project, details); a missing one reads as an empty text."""

    def __missing__(self, key: str) -> str:
        return ""


def sign_in_method(code: object) -> str:
    """How a session was opened, in words (the audit log's sentences, the account's sessions)."""
    return {
        "password": _("a password"),
        "totp": _("an authenticator app"),
        "webauthn": _("a security key"),
        "recovery_code": _("a recovery code"),
        "passkey": _("a passkey"),
        "sso": _("single sign-on"),
    }.get(str(code), str(code))


def _login_failure(code: object) -> str:
    return {
        "invalid_password": _("wrong password"),
        "disabled": _("the account is disabled"),
        "invalid_totp": _("wrong authenticator code"),
        "invalid_recovery_code": _("wrong recovery code"),
        "invalid_webauthn": _("the security key was refused"),
        "invalid_password_reauth": _("wrong password at the password re-check"),
    }.get(str(code), str(code))


def _session_end(code: object) -> str:
    return {
        "password_change": _("password changed"),
        "2fa_reset": _("second factors reset"),
        "disabled": _("account disabled"),
        "removed": _("account removed"),
        "sign_out_everywhere": _("signed out everywhere"),
        "revoked": _("ended on the account page"),
        "cli": _("ended from the command line"),
        "user_disabled": _("account disabled"),
        "user_removed": _("account removed"),
    }.get(str(code), str(code))


def _role(code: object) -> str:
    return {"owner": _("owner"), "maintainer": _("maintainer")}.get(str(code), str(code))


def _token(f: Facts) -> str:
    return f["description"] or f["token_description"] or "-"


def _file_delete(f: Facts) -> str:
    if f["policy"] == "retention":
        return _(
            "Retention deleted %(file)s of %(project)s (%(rule)s).",
            file=f["subject"],
            project=f["project"],
            rule=f["reason"],
        )
    return _("Deleted %(file)s of %(project)s.", file=f["subject"], project=f["project"])


_SENTENCES: dict[Tag, Callable[[Facts], str]] = {
    Tag.USER_CREATE: lambda f: (
        _("Created the admin %(user)s.", user=f["subject"])
        if f["admin"]
        else _("Created the user %(user)s.", user=f["subject"])
    ),
    Tag.USER_DISABLE: lambda f: _("Disabled the user %(user)s.", user=f["subject"]),
    Tag.USER_ENABLE: lambda f: _("Enabled the user %(user)s.", user=f["subject"]),
    Tag.USER_REMOVE: lambda f: _("Removed the user %(user)s.", user=f["subject"]),
    Tag.USER_PASSWORD_CHANGE: lambda f: _("Set a new password for %(user)s.", user=f["subject"]),
    Tag.USER_LOGIN_SUCCESS: lambda f: _(
        "%(user)s signed in with %(method)s.", user=f["subject"], method=sign_in_method(f["method"])
    ),
    Tag.USER_LOGIN_FAILURE: lambda f: _(
        "A sign-in as %(user)s failed: %(reason)s.", user=f["subject"], reason=_login_failure(f["reason"])
    ),
    Tag.USER_SESSION_REVOKED: lambda f: _(
        "Ended the web sessions of %(user)s (%(reason)s): %(count)s.",
        count=f["sessions"] or 1,
        user=f["subject"],
        reason=_session_end(f["reason"]),
    ),
    Tag.USER_2FA_ADD: lambda f: _(
        "Added %(method)s as a second factor of %(user)s.",
        method=sign_in_method(f["method"]),
        user=f["subject"],
    ),
    Tag.USER_2FA_REMOVE: lambda f: _(
        "Removed %(method)s from the second factors of %(user)s.",
        method=sign_in_method(f["method"]),
        user=f["subject"],
    ),
    Tag.USER_2FA_RESET: lambda f: _("Removed every second factor of %(user)s.", user=f["subject"]),
    Tag.USER_RECOVERY_CODES_GENERATE: lambda f: _("Made new recovery codes for %(user)s.", user=f["subject"]),
    Tag.USER_RECOVERY_CODE_USE: lambda f: _(
        "%(user)s used a recovery code (%(left)s left).", user=f["subject"], left=f["remaining"]
    ),
    Tag.WEBAUTHN_SIGN_COUNT_REGRESSION: lambda f: _(
        "The security key “%(label)s” of %(user)s counted backwards: it may have been copied.",
        label=f["label"],
        user=f["subject"],
    ),
    Tag.TOKEN_CREATE: lambda f: _(
        "Created the API token “%(token)s” (id %(id)s) for %(user)s.",
        token=_token(f),
        id=f["token"],
        user=f["subject"],
    ),
    Tag.TOKEN_REVOKE: lambda f: _(
        "Revoked the API token “%(token)s” (id %(id)s) of %(user)s.",
        token=_token(f),
        id=f["token"],
        user=f["subject"],
    ),
    Tag.TOKEN_MINT: lambda f: _(
        "Trusted Publishing issued a short-lived upload token (id %(id)s) for %(project)s.",
        id=f["token"],
        project=f["project"],
    ),
    Tag.PUBLISHER_ADD: lambda f: _(
        "Added the trusted publisher %(publisher)s to %(project)s.",
        publisher=f["subject"],
        project=f["project"],
    ),
    Tag.PUBLISHER_REMOVE: lambda f: _(
        "Removed the trusted publisher %(publisher)s from %(project)s.",
        publisher=f["subject"],
        project=f["project"],
    ),
    Tag.PROJECT_CREATE: lambda f: _("Created the project %(project)s.", project=f["project"] or f["subject"]),
    Tag.ROLE_ADD: lambda f: _(
        "Made %(user)s %(role)s of %(project)s.",
        user=f["subject"],
        role=_role(f["role"]),
        project=f["project"],
    ),
    Tag.ROLE_REMOVE: lambda f: _(
        "%(user)s is no longer %(role)s of %(project)s.",
        user=f["subject"],
        role=_role(f["role"]),
        project=f["project"],
    ),
    Tag.FILE_ADD: lambda f: _(
        "Uploaded %(file)s (version %(version)s) to %(project)s.",
        file=f["subject"],
        version=f["version"],
        project=f["project"],
    ),
    Tag.FILE_OVERWRITE: lambda f: _(
        "Uploaded new content for %(file)s (version %(version)s) of %(project)s.",
        file=f["subject"],
        version=f["version"],
        project=f["project"],
    ),
    Tag.FILE_REPLACE: lambda f: _(
        "Published new content for %(file)s of %(project)s.", file=f["subject"], project=f["project"]
    ),
    Tag.FILE_CHANGED_ON_DISK: lambda f: _(
        "Withdrew %(file)s of %(project)s: its bytes on disk changed.",
        file=f["subject"],
        project=f["project"],
    ),
    Tag.FILE_YANK: lambda f: _("Yanked %(file)s of %(project)s.", file=f["subject"], project=f["project"]),
    Tag.FILE_UNYANK: lambda f: _(
        "Unyanked %(file)s of %(project)s.", file=f["subject"], project=f["project"]
    ),
    Tag.FILE_DELETE: _file_delete,
    Tag.UPLOAD_REFUSED: lambda f: _(
        "Refused an upload to %(project)s: %(reason)s", project=f["project"] or "-", reason=f["reason"]
    ),
    Tag.PROJECT_CLAIM: lambda f: _(
        "Claimed %(project)s: the upstream index is hidden for it.", project=f["project"] or f["subject"]
    ),
    Tag.PROJECT_UPSTREAM_ALLOW: lambda f: _(
        "Allowed the upstream's files for %(project)s.", project=f["project"] or f["subject"]
    ),
    Tag.PROJECT_UPSTREAM_REVOKE: lambda f: _(
        "Hid the upstream's files for %(project)s.", project=f["project"] or f["subject"]
    ),
    Tag.PROJECT_STATUS: lambda f: _(
        "Set the status of %(project)s to %(status)s.", project=f["project"], status=f["status"]
    ),
    Tag.PROJECT_RETENTION_SET: lambda f: _(
        "Changed the retention rules of %(project)s.", project=f["project"]
    ),
    Tag.UPSTREAM_EXEMPT: lambda f: _("Let %(project)s past the upstream cooldown.", project=f["subject"]),
    Tag.UPSTREAM_UNEXEMPT: lambda f: _(
        "%(project)s waits for the upstream cooldown again.", project=f["subject"]
    ),
    Tag.UPSTREAM_SHADOWED: lambda f: _(
        "The upstream index publishes %(project)s too; clients still get only the local files.",
        project=f["project"] or f["subject"],
    ),
    Tag.NAMESPACE_GRANT: lambda f: _(
        "Granted the namespace %(name)s to %(owners)s.",
        name=f["subject"],
        owners=", ".join(f["owners"] or ()),
    ),
    Tag.NAMESPACE_REVOKE: lambda f: _("Revoked the namespace %(name)s.", name=f["subject"]),
    Tag.TEAM_CREATE: lambda f: _("Created the team %(team)s.", team=f["subject"]),
    Tag.TEAM_DELETE: lambda f: _("Deleted the team %(team)s.", team=f["subject"]),
    Tag.TEAM_MEMBER_ADD: lambda f: _(
        "Added %(user)s to the team %(team)s.", user=f["subject"], team=f["team"]
    ),
    Tag.TEAM_MEMBER_REMOVE: lambda f: _(
        "Removed %(user)s from the team %(team)s.", user=f["subject"], team=f["team"]
    ),
    Tag.TEAM_ROLE_GRANT: lambda f: _(
        "Gave the team %(team)s the role %(role)s on %(target)s.",
        team=f["subject"],
        role=f["role"],
        target=f["project"] or f["namespace"],
    ),
    Tag.TEAM_ROLE_REVOKE: lambda f: _(
        "Took the role %(role)s on %(target)s from the team %(team)s.",
        team=f["subject"],
        role=f["role"],
        target=f["project"] or f["namespace"],
    ),
    Tag.WEBHOOK_ADD: lambda f: _(
        "Added the webhook %(hook)s to %(url)s for %(project)s.",
        hook=f["subject"],
        url=f["url"],
        project=f["project"] or _("the whole index"),
    ),
    Tag.WEBHOOK_REMOVE: lambda f: _("Removed the webhook %(hook)s.", hook=f["subject"]),
    Tag.OUTBOX_SEND_AGAIN: lambda f: _("Queued delivery %(item)s to be sent again.", item=f["subject"]),
    Tag.USER_EMAIL_ADD: lambda f: _(
        "Added the address %(address)s to %(user)s.", address=f["address"], user=f["subject"]
    ),
    Tag.USER_EMAIL_VERIFY: lambda f: _(
        "Verified the address %(address)s of %(user)s.", address=f["address"], user=f["subject"]
    ),
    Tag.USER_EMAIL_PRIMARY: lambda f: _(
        "%(address)s is now the primary address of %(user)s.", address=f["address"], user=f["subject"]
    ),
    Tag.USER_EMAIL_REMOVE: lambda f: _(
        "Removed the address %(address)s from %(user)s.", address=f["address"], user=f["subject"]
    ),
    Tag.USER_PASSWORD_RESET_REQUEST: lambda f: _(
        "Mailed a password reset link for %(user)s to %(address)s.", user=f["subject"], address=f["address"]
    ),
    Tag.USER_PASSWORD_RESET: lambda f: _(
        "Reset the password of %(user)s by a mailed link.", user=f["subject"]
    ),
    Tag.TOKEN_NEW_ADDRESS: lambda f: _(
        "The API token “%(description)s” was used from a new address.", description=f["description"]
    ),
    Tag.USER_ADMIN_GRANT: lambda f: _("Made %(user)s an administrator.", user=f["subject"]),
    Tag.USER_ADMIN_REVOKE: lambda f: _("%(user)s is no longer an administrator.", user=f["subject"]),
    Tag.USER_SSO_LINK: lambda f: _(
        "Linked %(user)s to the identity provider %(issuer)s.", user=f["subject"], issuer=f["issuer"]
    ),
    Tag.USER_LOGIN_PASSKEY: lambda f: _(
        "%(user)s signed in with the passkey “%(label)s”.", user=f["subject"], label=f["label"]
    ),
}


def sentence(tag: str, subject: str | None, project: str | None, details: Mapping[str, object]) -> str:
    """The event as a sentence in the reader's language; an unknown tag (from a newer
    privindex) as itself."""
    facts = Facts(details)
    facts.update(subject=subject or "", project=project or "")
    try:
        words = _SENTENCES[Tag(tag)]
    except (ValueError, KeyError):
        return tag
    return words(facts)


def tag_name(tag: Tag) -> str:
    """A short name for the event filter; a tag without one (from a newer privindex) as itself."""
    name = _TAG_NAMES.get(tag)
    return name() if name else tag.value


_TAG_NAMES: dict[Tag, Callable[[], str]] = {
    Tag.USER_CREATE: lambda: _("User created"),
    Tag.USER_DISABLE: lambda: _("User disabled"),
    Tag.USER_ENABLE: lambda: _("User enabled"),
    Tag.USER_REMOVE: lambda: _("User removed"),
    Tag.USER_PASSWORD_CHANGE: lambda: _("Password set"),
    Tag.USER_LOGIN_SUCCESS: lambda: _("Sign-in"),
    Tag.USER_LOGIN_FAILURE: lambda: _("Failed sign-in"),
    Tag.USER_SESSION_REVOKED: lambda: _("Sessions ended"),
    Tag.USER_2FA_ADD: lambda: _("Second factor added"),
    Tag.USER_2FA_REMOVE: lambda: _("Second factor removed"),
    Tag.USER_2FA_RESET: lambda: _("Second factors reset"),
    Tag.USER_RECOVERY_CODES_GENERATE: lambda: _("Recovery codes made"),
    Tag.USER_RECOVERY_CODE_USE: lambda: _("Recovery code used"),
    Tag.WEBAUTHN_SIGN_COUNT_REGRESSION: lambda: _("Security key counted backwards"),
    Tag.TOKEN_CREATE: lambda: _("API token created"),
    Tag.TOKEN_REVOKE: lambda: _("API token revoked"),
    Tag.TOKEN_MINT: lambda: _("Trusted Publishing token issued"),
    Tag.PUBLISHER_ADD: lambda: _("Trusted publisher added"),
    Tag.PUBLISHER_REMOVE: lambda: _("Trusted publisher removed"),
    Tag.PROJECT_CREATE: lambda: _("Project created"),
    Tag.ROLE_ADD: lambda: _("Role given"),
    Tag.ROLE_REMOVE: lambda: _("Role taken away"),
    Tag.FILE_ADD: lambda: _("File uploaded"),
    Tag.FILE_OVERWRITE: lambda: _("File overwritten"),
    Tag.FILE_REPLACE: lambda: _("File replaced"),
    Tag.FILE_CHANGED_ON_DISK: lambda: _("File changed on disk"),
    Tag.FILE_YANK: lambda: _("File yanked"),
    Tag.FILE_UNYANK: lambda: _("File unyanked"),
    Tag.FILE_DELETE: lambda: _("File deleted"),
    Tag.UPLOAD_REFUSED: lambda: _("Upload refused"),
    Tag.PROJECT_CLAIM: lambda: _("Name claimed"),
    Tag.PROJECT_UPSTREAM_ALLOW: lambda: _("Upstream allowed"),
    Tag.PROJECT_UPSTREAM_REVOKE: lambda: _("Upstream hidden"),
    Tag.PROJECT_STATUS: lambda: _("Project status set"),
    Tag.PROJECT_RETENTION_SET: lambda: _("Retention changed"),
    Tag.UPSTREAM_EXEMPT: lambda: _("Cooldown exemption added"),
    Tag.UPSTREAM_UNEXEMPT: lambda: _("Cooldown exemption removed"),
    Tag.UPSTREAM_SHADOWED: lambda: _("Name shadowed upstream"),
    Tag.NAMESPACE_GRANT: lambda: _("Namespace granted"),
    Tag.NAMESPACE_REVOKE: lambda: _("Namespace revoked"),
    Tag.TEAM_CREATE: lambda: _("Team created"),
    Tag.TEAM_DELETE: lambda: _("Team deleted"),
    Tag.TEAM_MEMBER_ADD: lambda: _("Team member added"),
    Tag.TEAM_MEMBER_REMOVE: lambda: _("Team member removed"),
    Tag.TEAM_ROLE_GRANT: lambda: _("Team role granted"),
    Tag.TEAM_ROLE_REVOKE: lambda: _("Team role revoked"),
    Tag.WEBHOOK_ADD: lambda: _("Webhook added"),
    Tag.WEBHOOK_REMOVE: lambda: _("Webhook removed"),
    Tag.OUTBOX_SEND_AGAIN: lambda: _("Delivery sent again"),
    Tag.USER_EMAIL_ADD: lambda: _("Email address added"),
    Tag.USER_EMAIL_VERIFY: lambda: _("Email address verified"),
    Tag.USER_EMAIL_PRIMARY: lambda: _("Primary email address changed"),
    Tag.USER_EMAIL_REMOVE: lambda: _("Email address removed"),
    Tag.USER_PASSWORD_RESET_REQUEST: lambda: _("Password reset requested"),
    Tag.USER_PASSWORD_RESET: lambda: _("Password reset"),
    Tag.TOKEN_NEW_ADDRESS: lambda: _("API token used from a new address"),
    Tag.USER_ADMIN_GRANT: lambda: _("Administrator rights given"),
    Tag.USER_ADMIN_REVOKE: lambda: _("Administrator rights taken away"),
    Tag.USER_SSO_LINK: lambda: _("Identity provider linked"),
    Tag.USER_LOGIN_PASSKEY: lambda: _("Passkey sign-in"),
}
