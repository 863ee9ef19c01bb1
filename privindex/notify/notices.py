"""Notices by mail: what happened to an account or a project, told to the people concerned.

Security notices follow the audit trail: `attach` makes every audit event of a database
pass through `on_event` in the transaction that records it, so a notice is written to the
outbox (`mail.enqueue_mail`) exactly when its event is, and a rolled-back action sends
nothing. Each says what happened, when, from where (address, browser, or the command
line), and what to do if it was not them; in the recipient's language (their saved one,
else English), as plain text and HTML from the templates beside this module. A notice
never carries a secret: it is made from the audit event, which cannot hold one.

Who hears: a user's own events go to their primary verified address; a Trusted
Publisher's change to the project's owners; uploads, yanks and deletions to the project's
subscribers (notify/subscriptions.py); an upload refused because the name is the public
index's to the admins, once a day per name (a retrying CI job must not flood them). Links
(verify an address, reset a password) are mailed by `send_link`. Without `smtp_url`
nothing is written: a LAN without mail works as before.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import jinja2
import peewee
from babel.dates import format_datetime
from babel.support import NullTranslations, Translations

from privindex.accounts import emails, permissions
from privindex.config import Settings
from privindex.db.models import AuditEvent, User
from privindex.notify import mail, subscriptions
from privindex.ops import audit
from privindex.ops.audit import Tag
from privindex.upstream.source_rules import REFUSED_RULE

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = ("en", "de", "fr")


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated when a mail is made."""
    return message


@dataclass(frozen=True)
class Notice:
    subject: str  # both: %(name)s fields from the event: user, project, file and its details
    summary: str
    security: bool = True  # ends with "if this was not you"
    daily: bool = False  # one mail per project, recipient and (UTC) day


SECURITY_ADVICE = N_(
    "If this was not you, sign in and change your password at once, check your second factors "
    "and API tokens, and tell your administrator."
)
ADMIN_ADVICE = N_("If you do not know why, ask your administrator.")

NOTICES: dict[Tag, Notice] = {
    Tag.USER_PASSWORD_CHANGE: Notice(
        N_("Your password was changed"), N_("The password of your account %(user)s was changed.")
    ),
    Tag.USER_PASSWORD_RESET: Notice(
        N_("Your password was reset"),
        N_(
            "The password of your account %(user)s was reset with a link mailed to you; "
            "all its sessions were ended."
        ),
    ),
    Tag.USER_2FA_ADD: Notice(
        N_("A second factor was added to your account"),
        N_("A second factor (%(factor)s) was added to your account %(user)s."),
    ),
    Tag.USER_2FA_REMOVE: Notice(
        N_("A second factor was removed from your account"),
        N_("A second factor (%(factor)s) was removed from your account %(user)s."),
    ),
    Tag.USER_2FA_RESET: Notice(
        N_("Your second factors were reset"),
        N_("An administrator removed every second factor of your account %(user)s."),
    ),
    # these go to the primary address as it was before the change (see Notices.on_event)
    Tag.USER_EMAIL_ADD: Notice(
        N_("An email address was added to your account"),
        N_("The address %(address)s was added to your account %(user)s."),
    ),
    Tag.USER_EMAIL_PRIMARY: Notice(
        N_("Your primary email address was changed"),
        N_("Notices and password reset links for your account %(user)s now go to %(address)s."),
    ),
    Tag.USER_EMAIL_REMOVE: Notice(
        N_("An email address was removed from your account"),
        N_("The address %(address)s was removed from your account %(user)s."),
    ),
    Tag.USER_RECOVERY_CODES_GENERATE: Notice(
        N_("New recovery codes were made"),
        N_("New recovery codes were made for your account %(user)s; the old ones no longer work."),
    ),
    Tag.USER_RECOVERY_CODE_USE: Notice(
        N_("A recovery code was used"),
        N_("A recovery code was used to sign in to your account %(user)s; %(remaining)s are left."),
    ),
    Tag.TOKEN_CREATE: Notice(
        N_("An API token was created"),
        N_("An API token (%(description)s) was created for your account %(user)s; it may %(scope)s."),
    ),
    Tag.TOKEN_NEW_ADDRESS: Notice(
        N_("An API token was used from a new address"),
        N_(
            "Your API token (%(description)s) of the account %(user)s was used from %(address)s "
            "for the first time."
        ),
    ),
    Tag.USER_LOGIN_SUCCESS: Notice(
        N_("Sign-in from a new device"),
        N_("Your account %(user)s was signed in to from a browser it was not used from before."),
    ),
    Tag.USER_DISABLE: Notice(
        N_("Your account was disabled"),
        N_("An administrator disabled your account %(user)s; its API tokens were revoked."),
        security=False,
    ),
    Tag.USER_ENABLE: Notice(
        N_("Your account was enabled"),
        N_("An administrator enabled your account %(user)s again."),
        security=False,
    ),
    Tag.PUBLISHER_ADD: Notice(
        N_("A Trusted Publisher was added"),
        N_("A Trusted Publisher (%(repository)s, %(workflow)s) may now publish %(project)s."),
    ),
    Tag.PUBLISHER_REMOVE: Notice(
        N_("A Trusted Publisher was removed"),
        N_("A Trusted Publisher (%(repository)s, %(workflow)s) may no longer publish %(project)s."),
    ),
    Tag.FILE_ADD: Notice(
        N_("New upload to %(project)s"), N_("%(file)s was uploaded to %(project)s."), security=False
    ),
    Tag.FILE_YANK: Notice(
        N_("A file of %(project)s was yanked"), N_("%(file)s of %(project)s was yanked."), security=False
    ),
    Tag.FILE_DELETE: Notice(
        N_("A file of %(project)s was deleted"), N_("%(file)s of %(project)s was deleted."), security=False
    ),
    Tag.UPLOAD_REFUSED: Notice(
        N_("An upload was refused: the name is the public index's"),
        N_(
            "An upload to %(project)s was refused because the public index has a project of "
            "that name. If it should be local, claim it: privindex project claim %(project)s"
        ),
        security=False,
        daily=True,
    ),
}

EMAIL_TAGS = {Tag.USER_EMAIL_ADD, Tag.USER_EMAIL_PRIMARY, Tag.USER_EMAIL_REMOVE}

VERIFY = Notice(
    N_("Verify your email address"),
    N_("Follow this link within 48 hours to confirm that %(address)s belongs to your account %(user)s:"),
)
RESET = Notice(
    N_("Reset your password"),
    N_("Follow this link within 30 minutes to choose a new password for your account %(user)s:"),
)
LINK_ADVICE = N_("If you did not ask for this, ignore this mail: nothing changes.")


@cache
def _translations(locale: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [locale]) if locale != "en" else NullTranslations()


@cache
def _templates(locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("privindex.notify", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def locale_of(user: User) -> str:
    return user.locale if user.locale in LANGUAGES else "en"


class Notices:
    """The notices of one server (or CLI command), made from its settings."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_event(self, event: AuditEvent) -> None:
        notice = NOTICES.get(Tag(event.tag))
        if notice is None:
            return
        details = json.loads(event.details or "{}")
        for user in self._recipients(event, details):
            # an address change is told where notices went before it: a session taken
            # over must not be able to move them away unnoticed
            address = (
                details.get("previous") if Tag(event.tag) in EMAIL_TAGS else emails.primary_verified(user)
            )
            if address:
                self._send(user, address, notice, event, details)

    def _recipients(self, event: AuditEvent, details: dict) -> list[User]:
        tag = Tag(event.tag)
        if tag is Tag.USER_LOGIN_SUCCESS and not details.get("new_device"):
            return []
        if tag in (Tag.FILE_ADD, Tag.FILE_YANK, Tag.FILE_DELETE):
            return subscriptions.subscribers(event.project or "")
        if tag in (Tag.PUBLISHER_ADD, Tag.PUBLISHER_REMOVE):
            return _owners(event.project or "")
        if tag is Tag.UPLOAD_REFUSED:
            if details.get("rule") != REFUSED_RULE:
                return []
            return list(User.select().where(User.is_admin == True, User.is_disabled == False))  # noqa: E712
        user = User.get_or_none(User.username == event.subject)
        return [user] if user is not None else []

    def _send(self, user: User, address: str, notice: Notice, event: AuditEvent, details: dict) -> None:
        locale = locale_of(user)
        fields = self._fields(user, event, details, locale)
        when = format_datetime(datetime.fromtimestamp(event.ts, UTC), "long", tzinfo=UTC, locale=locale)
        where = self._where(event, details, locale)
        advice = (
            SECURITY_ADVICE if notice.security else ADMIN_ADVICE if event.subject == user.username else ""
        )
        key = None
        if notice.daily:
            day = datetime.fromtimestamp(event.ts, UTC).date().isoformat()
            key = f"{event.tag}:{event.project}:{day}:{address}"
        self._mail(user, address, notice, fields, advice=advice, when=when, where=where, key=key)

    def send_link(self, user: User, address: str, which: str, link: str) -> None:
        """Mail a verification ("verify") or password reset ("reset") link to address."""
        notice = VERIFY if which == "verify" else RESET
        fields = defaultdict(str, user=user.username, address=address)
        self._mail(user, address, notice, fields, advice=LINK_ADVICE, link=link)

    def _mail(
        self,
        user: User,
        address: str,
        notice: Notice,
        fields: dict,
        advice: str,
        link: str = "",
        when: str = "",
        where: str = "",
        key: str | None = None,
    ) -> None:
        locale = locale_of(user)
        gettext = _translations(locale).gettext
        values = {
            "subject": gettext(notice.subject) % fields,
            "summary": gettext(notice.summary) % fields,
            "advice": gettext(advice) if advice else "",
            "link": link,
            "when": when,
            "where": where,
            "user": user.username,
            "site": self.settings.base_url,
            "account_url": self.settings.base_url + "/account",
        }
        env = _templates(locale)
        mail.enqueue_mail(
            address,
            f"[privindex] {values['subject']}",
            env.get_template("notice.txt").render(values),
            env.get_template("notice.html").render(values),
            key=key,
        )

    def _fields(self, user: User, event: AuditEvent, details: dict, locale: str) -> dict:
        gettext = _translations(locale).gettext
        fields: dict = defaultdict(str, {k: v for k, v in details.items() if isinstance(v, str | int)})
        fields.update(user=user.username, project=event.project or "", file=event.subject or "")
        fields.setdefault("address", event.ip or "")
        fields["factor"] = " ".join(str(details[k]) for k in ("method", "label") if details.get(k))
        if Tag(event.tag) is Tag.TOKEN_CREATE:
            fields["scope"] = _scope(details, gettext)
        return fields

    def _where(self, event: AuditEvent, details: dict, locale: str) -> str:
        gettext = _translations(locale).gettext
        if details.get("via") == "cli":
            return gettext("the command line on the server")
        where = event.ip or "?"
        if event.user_agent:
            where += f" ({event.user_agent})"
        if event.actor and event.actor != event.subject:
            where += " · " + gettext("by %(user)s") % {"user": event.actor}
        return where


def _scope(details: dict, gettext) -> str:
    projects = details.get("projects")
    target = ", ".join(projects) if isinstance(projects, list) else gettext("every project")
    if details.get("read_only"):
        return gettext("read %(target)s") % {"target": target}
    return gettext("upload to %(target)s") % {"target": target}


def _owners(project: str) -> list[User]:
    return [user for user, role in permissions.role_holders(project) if role == "owner"]


def attach(db: peewee.Database, settings: Settings) -> Notices | None:
    """Send db's notices while settings have mail on; returns the Notices (None: no mail)."""
    if not settings.smtp_url:
        return None
    notices = Notices(settings)
    audit.listen(db, notices.on_event)
    return notices
