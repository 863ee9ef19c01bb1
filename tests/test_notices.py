"""Issue 28 with real parts: verified addresses, security notices, password reset by email.

A real `privindex serve` sends through a real SMTP server on loopback (tests/fake_smtp.py:
aiosmtpd, STARTTLS and AUTH); the tests read the mails it catches and follow their links
with a plain HTTP client, as a person clicking them would.
"""

from __future__ import annotations

import email.message
import re
from urllib.parse import urlsplit

import pytest
from conftest import add_user, assert_no_secrets, privindex_cli, start_server, twine, wait_until
from fake_smtp import FakeSmtp, mail_env
from fake_upstream import FakeUpstream
from webclient import PASSWORD, WebClient
from wheels import make_wheel

NEW_PASSWORD = "a brand new horse staple"
LINK = re.compile(r"(http://\S+/(?:verify-email|reset-password)/\S+)")


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def link_in(message: email.message.EmailMessage) -> str:
    found = LINK.search(text_of(message))
    assert found, text_of(message)
    return found.group(1)


@pytest.fixture
def mailbox(tmp_path):
    box = FakeSmtp(tmp_path).start()
    yield box
    box.stop()


@pytest.fixture
def server(tmp_path, mailbox):
    live = start_server(
        tmp_path / "store",
        tmp_path / "data",
        env=mail_env(mailbox, PRIVINDEX_OUTBOX_POLL_SECONDS="0.2"),
    )
    yield live
    live.stop()


def follow(link: str) -> tuple[WebClient, str]:
    """Open a mailed link in a fresh browser session: (the session, the link's path)."""
    parts = urlsplit(link)
    visitor = WebClient(f"{parts.scheme}://{parts.netloc}")
    page = visitor.get(parts.path)
    assert page.status_code == 200, page.text
    return visitor, parts.path


def test_verify_an_address_then_a_second_factor_then_reset_the_password_by_mail(server, mailbox):
    add_user(server, "alice", PASSWORD)
    alice = WebClient(server.url)
    alice.login("alice", PASSWORD)

    # require_verified_email (default with mail on): no second factor before a verified address
    security = alice.get("/account/security")
    assert "Verify your primary email address" in security.text
    refused = alice.post("/account/totp/new", page=security.text)
    assert 'id="totp-secret"' not in refused.text

    add_user(server, "mallory", PASSWORD)  # an unproven claim on alice's address blocks no one
    privindex_cli(server, "user", "email", "mallory", "alice@example.org")
    added = alice.post("/account/emails", {"address": "Alice@Example.org"}, page=security.text)
    assert alice.flashes(added) == ["We sent a link to alice@example.org: follow it to verify the address."]
    verify = mailbox.wait_for_mail("alice@example.org", "Verify your email address")
    assert "alice" in text_of(verify) and "48 hours" in text_of(verify)
    visitor, path = follow(link_in(verify))
    done = visitor.post(path, page=visitor.last.text)
    assert done.status_code == 200 and "alice@example.org is verified" in done.text
    again = visitor.post(path)
    assert again.status_code == 404, "a verification link works once"

    totp, codes, _ = alice.enrol_totp()
    added = mailbox.wait_for_mail("alice@example.org", "A second factor was added")
    body = text_of(added)
    assert "If this was not you" in body and "When:" in body and "From: 127.0.0.1" in body

    # Forgot password: the same answer whether or not an account matches
    stranger = WebClient(server.url)
    assert "Forgot password?" in stranger.get("/login").text
    form = stranger.get("/forgot-password").text
    for typed in ("nobody@example.org", "alice@example.org"):
        answer = stranger.post("/forgot-password", {"account": typed}, page=form)
        assert answer.status_code == 200 and "Check your mail" in answer.text
    reset = mailbox.wait_for_mail("alice@example.org", "Reset your password")
    assert "30 minutes" in text_of(reset)
    visitor, path = follow(link_in(reset))
    changed = visitor.post(
        path, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}, page=visitor.last.text
    )
    assert changed.url.endswith("/login") and "signed out everywhere" in changed.text
    assert (
        visitor.post(
            path, {"password": "another horse battery", "password2": "another horse battery"}
        ).status_code
        == 404
    )

    # every session ended; the new password works, and still asks for the second factor
    assert alice.get("/account/security").url.split("?")[0].endswith("/login")
    assert WebClient(server.url).login("alice", PASSWORD).url.endswith("/login")
    assert WebClient(server.url).login("alice", NEW_PASSWORD).url.endswith("/login/2fa")
    mailbox.wait_for_mail("alice@example.org", "Your password was reset")

    all_mail = [m.as_bytes() for m in mailbox.messages]
    assert_no_secrets([PASSWORD, NEW_PASSWORD, totp.secret, *codes], *all_mail)


def test_a_reset_link_older_than_30_minutes_is_refused(server, mailbox):
    add_user(server, "carol", PASSWORD)
    privindex_cli(server, "user", "email", "carol", "carol@example.org", "--verified")
    stranger = WebClient(server.url)
    stranger.post("/forgot-password", {"account": "carol"}, page=stranger.get("/forgot-password").text)
    visitor, path = follow(link_in(mailbox.wait_for_mail("carol@example.org", "Reset your password")))
    age_reset_links(server, seconds=31 * 60)
    assert visitor.get(path).status_code == 404
    assert visitor.post(path, {"password": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code == 404
    assert not WebClient(server.url).login("carol", PASSWORD).url.endswith("/login"), (
        "the password is unchanged"
    )
    key = path.rsplit("/", 1)[1]
    assert key not in server.log(), "the access log line of the reset page holds no key"
    assert "GET /reset-password/[redacted]" in server.log()


def age_reset_links(server, seconds: float) -> None:
    """Time travel for the links: their expiry moved `seconds` into the past."""
    from privindex.config import Settings
    from privindex.db.connection import bound, connect
    from privindex.db.models import PendingAuth

    settings = Settings(
        store=server.store,
        data_dir=server.data_dir,
        database_url=server.env.get("PRIVINDEX_DATABASE_URL", ""),
    )
    db = connect(settings.database)
    with bound(db):
        PendingAuth.update(expires_at=PendingAuth.expires_at - seconds).where(
            PendingAuth.purpose == "password-reset"
        ).execute()
    db.close()


def test_forgot_password_requests_are_rate_limited_per_account(server, mailbox):
    add_user(server, "dave", PASSWORD)
    privindex_cli(server, "user", "email", "dave", "dave@example.org", "--verified")
    stranger = WebClient(server.url)
    form = stranger.get("/forgot-password").text
    statuses = [
        stranger.post("/forgot-password", {"account": "dave"}, page=form).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_a_sign_in_from_a_new_device_is_told_but_not_the_first_ever(server, mailbox):
    add_user(server, "erin", PASSWORD)
    privindex_cli(server, "user", "email", "erin", "erin@example.org", "--verified")
    WebClient(server.url).login("erin", PASSWORD)  # the account's first browser: not news
    WebClient(server.url).login("erin", PASSWORD)  # another browser
    notice = mailbox.wait_for_mail("erin@example.org", "Sign-in from a new device")
    assert "a browser it was not used from before" in text_of(notice)
    privindex_cli(server, "user", "disable", "erin")  # a later mail: all before it have arrived
    mailbox.wait_for_mail("erin@example.org", "Your account was disabled")
    assert mailbox.subjects("erin@example.org") == [
        "[privindex] Sign-in from a new device",
        "[privindex] Your account was disabled",
    ]


def test_an_account_whose_primary_address_is_claimed_keeps_getting_notices(server, mailbox):
    add_user(server, "frank", PASSWORD)
    add_user(server, "grace", PASSWORD)
    frank = WebClient(server.url)
    frank.login("frank", PASSWORD)
    page = frank.get("/account/security").text
    for address in ("shared@example.org", "frank@example.org"):  # the first is primary, unproven
        frank.post("/account/emails", {"address": address}, page=page)
    visitor, path = follow(link_in(mailbox.wait_for_mail("frank@example.org", "Verify your email address")))
    assert "frank@example.org is verified" in visitor.post(path, page=visitor.last.text).text
    privindex_cli(server, "user", "email", "grace", "shared@example.org")  # claimed by grace
    privindex_cli(server, "user", "disable", "frank")
    notice = mailbox.wait_for_mail("frank@example.org", "Your account was disabled")
    assert "frank" in text_of(notice), "his oldest verified address is primary now"


def test_notices_arrive_in_the_users_language(server, mailbox):
    add_user(server, "bruno", PASSWORD)
    privindex_cli(server, "user", "email", "bruno", "bruno@example.org", "--verified")
    bruno = WebClient(server.url)
    bruno.login("bruno", PASSWORD)
    bruno.post("/language", {"locale": "de"})  # saved on the account
    privindex_cli(server, "user", "disable", "bruno")
    notice = mailbox.wait_for_mail("bruno@example.org", "deaktiviert")
    assert "Kommandozeile" in text_of(notice), "from where: the command line, in German"
    assert "bruno" in html_of(notice)


def test_project_notices_reach_owners_and_subscribed_maintainers_and_admins_hear_of_upstream_names(
    tmp_path, mailbox, accounts
):
    public = FakeUpstream()
    public.add("taken", make_wheel(tmp_path / "public", "taken", "1.0"))
    public.start()
    live = start_server(
        tmp_path / "store",
        tmp_path / "data",
        "--upstream",
        public.url,
        env=mail_env(mailbox, PRIVINDEX_OUTBOX_POLL_SECONDS="0.2", PRIVINDEX_REQUIRE_2FA="false"),
    )
    try:
        acc = accounts(live)
        passwords = {}
        for name, admin in (("olga", False), ("mia", False), ("root", True)):
            passwords[name] = acc.user(name, admin=admin)
            acc.cli("user", "email", name, f"{name}@example.org", "--verified")
        token = acc.token("olga")
        wheels = tmp_path / "wheels"
        assert twine(live.url, token, make_wheel(wheels, "mine", "1.0")).returncode == 0
        acc.cli("project", "add-maintainer", "mine", "mia")
        told = text_of(mailbox.wait_for_mail("olga@example.org", "New upload to mine"))
        assert "mine-1.0-py3-none-any.whl was uploaded to mine" in told

        # mia, a maintainer, hears nothing until she subscribes on her account page
        mia = WebClient(live.url)
        mia.login("mia", passwords["mia"])
        page = mia.get("/account").text
        assert 'name="project" value="mine">' in page, "a maintainer's box starts unticked"
        assert twine(live.url, token, make_wheel(wheels, "mine", "2.0")).returncode == 0
        wait_until(
            lambda: mailbox.subjects("olga@example.org").count("[privindex] New upload to mine") == 2, 30
        )
        mia.post("/account/notices", {"project": "mine"}, page=page)
        assert twine(live.url, token, make_wheel(wheels, "mine", "3.0")).returncode == 0
        assert "mine-3.0-py3-none-any.whl" in text_of(
            mailbox.wait_for_mail("mia@example.org", "New upload to mine")
        )
        assert mailbox.subjects("mia@example.org").count("[privindex] New upload to mine") == 1

        created = text_of(mailbox.wait_for_mail("olga@example.org", "An API token was created"))
        assert "upload to every project" in created and "the command line on the server" in created
        first_use = text_of(
            mailbox.wait_for_mail("olga@example.org", "An API token was used from a new address")
        )
        assert "used from 127.0.0.1 for the first time" in first_use
        assert (
            mailbox.subjects("olga@example.org").count("[privindex] An API token was used from a new address")
            == 1
        )

        for version in ("2.0", "2.1", "2.2"):  # a CI job retrying: the admins hear of it once a day
            assert twine(live.url, token, make_wheel(wheels, "taken", version)).returncode != 0
        told = text_of(mailbox.wait_for_mail("root@example.org", "the name is the public index's"))
        assert "privindex project claim taken" in told
        acc.token("root")  # a later mail to root: any repeat of the refusal would be before it
        mailbox.wait_for_mail("root@example.org", "An API token was created")
        refusals = [s for s in mailbox.subjects("root@example.org") if "public index" in s]
        assert len(refusals) == 1, refusals
        assert "olga@example.org" not in [m["To"] for m in mailbox.messages if "public index" in m["Subject"]]
        assert_no_secrets([token, *acc.secrets], *(m.as_bytes() for m in mailbox.messages))
    finally:
        live.stop()
        public.stop()
