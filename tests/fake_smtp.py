"""A real SMTP server on loopback for the tests (aiosmtpd): STARTTLS required, with a
certificate from a throwaway CA (helpers.make_ca), and AUTH with one user name and password,
allowed only after STARTTLS. It keeps what it receives, refuses recipients at `refused.example`,
and can be stopped and started again on the same port (a mail server down, then back).
`mail_env` is the environment that points a privindex at it."""

from __future__ import annotations

import email
import email.message
import email.policy
import ssl
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import free_port
from helpers import make_ca

USER, PASSWORD = "mailer", "smtp-S3cret-pass"


class FakeSmtp:
    def __init__(self, folder: Path):
        self.ca, cert, key = make_ca(folder)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(cert, key)
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        self.received = threading.Condition()
        self.controller: Controller | None = None

    def url(self, user: str = USER, password: str = PASSWORD, host: str = "127.0.0.1") -> str:
        return f"smtp://{user}:{password}@{host}:{self.port}"

    def start(self) -> FakeSmtp:
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_require_tls=True,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @staticmethod
    def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.received:
            self.messages.append(message)  # type: ignore[arg-type]
            self.received.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30) -> list[email.message.EmailMessage]:
        with self.received:
            if not self.received.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"{len(self.messages)} messages arrived, expected {count}")
            return list(self.messages)

    def wait_for_mail(self, to: str, subject: str, timeout: float = 30) -> email.message.EmailMessage:
        """The first mail to `to` whose subject contains `subject`, waiting for it to arrive."""

        def found():
            return next((m for m in self.messages if m["To"] == to and subject in m["Subject"]), None)

        with self.received:
            if not self.received.wait_for(found, timeout):
                got = [(m["To"], m["Subject"]) for m in self.messages]
                raise AssertionError(f"no mail to {to} about {subject!r}; arrived: {got}")
            return found()  # type: ignore[return-value]

    def subjects(self, to: str) -> list[str]:
        with self.received:
            return [m["Subject"] for m in self.messages if m["To"] == to]


def mail_env(smtp: FakeSmtp, url: str | None = None, **extra: str) -> dict[str, str]:
    """A privindex's environment for mail through smtp (trusting its CA)."""
    return {
        "PRIVINDEX_SMTP_URL": url or smtp.url(),
        "PRIVINDEX_SMTP_CA_BUNDLE": str(smtp.ca),
        "PRIVINDEX_MAIL_FROM": "privindex@index.example",
        **extra,
    }
