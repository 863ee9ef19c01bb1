"""Mail over SMTP (smtp_url, mail_from): queued in the outbox, sent by its sender thread.

smtp:// requires STARTTLS, smtps:// speaks TLS from the start, smtp+plain:// (no TLS) is only
for a mail server on this machine (config.py refuses it elsewhere). Certificates are checked
against the system's CAs or smtp_ca_bundle. A failure names its step (DNS, connect, TLS,
auth, sender, recipient) and what to do, for `privindex mail test` and the outbox's last
error; the password in smtp_url never appears in either (logs.redact_url).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from privindex.config import Settings
from privindex.notify import outbox
from privindex.ops import logs

SMTP_TIMEOUT = 30.0
DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "smtp+plain": 25}

_mail_on = False


def configure(settings: Settings) -> None:
    """Mail on or off in this process, from settings; with it on, the outbox's mail sender."""
    global _mail_on
    _mail_on = bool(settings.smtp_url)
    if _mail_on:
        outbox.register_sender("mail", Mailer(settings).send_payload, forget_after_send=("text", "html"))
    else:
        outbox.unregister_sender("mail")


def enqueue_mail(to: str, subject: str, text: str, html: str | None, key: str | None = None) -> None:
    """Queue a message in the caller's transaction; nothing when mail is off (no smtp_url).
    key: a message with the same key is queued once (outbox.enqueue)."""
    if _mail_on:
        outbox.enqueue("mail", {"to": to, "subject": subject, "text": text, "html": html}, key=key)


class MailError(Exception):
    """A message not sent: `step` is where it failed, the message says what to do."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True)
class SmtpServer:
    scheme: str
    host: str
    port: int
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    @property
    def shown(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


class Mailer:
    """Sends one message per connection: notices are few, and a fresh connection has no
    state to go stale between them."""

    def __init__(self, settings: Settings):
        self.server = SmtpServer.from_url(settings.smtp_url)
        self.sender = settings.mail_from
        self.tls = ssl.create_default_context(cafile=settings.smtp_ca_bundle or None)

    def send_payload(self, payload: dict) -> str:
        return self.send(payload["to"], payload["subject"], payload["text"], payload.get("html"))

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> str:
        """Send one message; what the server answered, or MailError naming the failed step."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        try:
            with self._connect() as smtp:
                self._authenticate(smtp)
                self._deliver(smtp, message, to)
        except MailError as exc:
            raise MailError(exc.step, logs.redact(str(exc).partition(": ")[2])) from None
        return f"accepted by {self.server.shown}"

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        try:
            socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise MailError(
                "DNS", f"cannot resolve {server.host} ({exc.strerror}); check the host in smtp_url"
            ) from None
        try:
            if server.scheme == "smtps":
                return smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT, context=self.tls)
            smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT)
        except ssl.SSLError as exc:
            raise MailError("TLS", _tls_advice(server, exc)) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                "connect",
                f"cannot connect to {server.host}:{server.port} ({exc}); is the mail server "
                "running there, and does a firewall let this machine reach it?",
            ) from None
        if server.scheme == "smtp":
            try:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        "TLS",
                        f"{server.host}:{server.port} does not offer STARTTLS; if it speaks TLS "
                        "from the start (usually port 465) use smtps:// in smtp_url",
                    )
                smtp.starttls(context=self.tls)
            except MailError:
                smtp.close()
                raise
            except ssl.SSLError as exc:
                smtp.close()
                raise MailError("TLS", _tls_advice(server, exc)) from None
            except (OSError, smtplib.SMTPException) as exc:
                smtp.close()
                raise MailError("TLS", f"STARTTLS with {server.host} failed ({exc})") from None
        return smtp

    def _authenticate(self, smtp: smtplib.SMTP) -> None:
        if not self.server.username:
            return
        try:
            smtp.login(self.server.username, self.server.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                "auth",
                f"{self.server.host} refused the user name or password in smtp_url "
                f"({_reply(exc)}); check them with the mail server's administrator",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise MailError(
                "auth",
                f"{self.server.host} offers no AUTH here; remove user:password from smtp_url "
                "or use the port that requires it (587)",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError("auth", f"signing in to {self.server.host} failed ({exc})") from None

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage, to: str) -> None:
        try:
            smtp.send_message(message)
        except smtplib.SMTPSenderRefused as exc:
            raise MailError(
                "sender",
                f"{self.server.host} refused the sender {self.sender} ({_reply(exc)}); set mail_from "
                "to an address this mail server may send from",
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            reasons = "; ".join(_reply(error) for error in exc.recipients.values())
            raise MailError(
                "recipient",
                f"{self.server.host} refused the recipient {to} ({reasons}); check the address",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError("send", f"{self.server.host} did not take the message ({exc})") from None


def _reply(error: smtplib.SMTPResponseException | tuple[int, bytes]) -> str:
    """An SMTP reply as `code text`, from an exception or a (code, text) pair."""
    if isinstance(error, smtplib.SMTPResponseException):
        code, text = error.smtp_code, error.smtp_error
    else:
        code, text = error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _tls_advice(server: SmtpServer, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the certificate of {server.host} is not trusted ({exc.verify_message}); "
            "if it is signed by your own CA, give its certificate as smtp_ca_bundle"
        )
    hint = (
        "; if the server starts plain and offers STARTTLS (usually port 587), use smtp:// in smtp_url"
        if server.scheme == "smtps"
        else ""
    )
    return f"TLS with {server.host}:{server.port} failed ({exc.reason or exc}){hint}"
