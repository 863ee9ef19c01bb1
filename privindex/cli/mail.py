"""`privindex mail test ADDRESS`: send a message now, straight to the mail server, and say
which step failed and what to do; with --queue, through the running server's outbox."""

from __future__ import annotations

import click

from privindex.cli.common import fail, open_data, settings_options
from privindex.config import Settings


@click.group("mail")
def mail_group() -> None:
    """Mail (smtp_url, mail_from): notices go out through the server's outbox."""


@mail_group.command("test")
@settings_options
@click.argument("address")
@click.option(
    "--queue",
    is_flag=True,
    help="Queue it in the outbox for the running server to send, as it sends notices.",
)
def mail_test(settings: Settings, address: str, queue: bool) -> None:
    """Send a test message to ADDRESS through smtp_url."""
    from privindex.notify.mail import Mailer, MailError, SmtpServer, enqueue_mail

    if not settings.smtp_url:
        fail("mail is off: set smtp_url and mail_from (see config.example.toml), then run this again")
    if "@" not in address:
        fail(f"{address!r} is not a mail address")
    server = SmtpServer.from_url(settings.smtp_url)
    subject = "privindex: test message"
    text = (
        f"This test message was sent by privindex ({settings.base_url}) with `privindex mail test`.\n"
        "Mail works: notices will reach their recipients.\n"
    )
    if queue:
        with open_data(settings):
            enqueue_mail(address, subject, text, None)
        click.echo(
            f"queued for {address}: the running server sends it through {server.shown} within "
            f"{settings.outbox_poll_seconds:g} s; if it cannot, /admin/outbox shows why"
        )
        return
    click.echo(f"sending a test message to {address} through {server.shown} ...", err=True)
    try:
        answer = Mailer(settings).send(address, subject, text)
    except MailError as exc:
        fail(f"not sent, {exc}")
    click.echo(f"sent: {answer}; check the inbox of {address} (and its spam folder)")
