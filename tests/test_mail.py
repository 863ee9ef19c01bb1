"""Mail with a real SMTP server on loopback (tests/fake_smtp.py: aiosmtpd, STARTTLS with a
certificate from a throwaway CA, AUTH): `privindex mail test` sends, or says which step
failed and what to do, never showing the password; a server's outbox keeps a message while
the mail server is down and across a restart, and sends it once the mail server is back."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import assert_no_secrets, free_port, run_privindex, wait_until
from fake_smtp import PASSWORD, USER, FakeSmtp, mail_env

pytestmark = pytest.mark.slow  # the real CLI and servers


@pytest.fixture
def smtp(tmp_path):
    server = FakeSmtp(tmp_path).start()
    yield server
    server.stop()


def mail_test(tmp_path, env: dict, address: str = "ada@example.org", *more: str):
    (tmp_path / "data").mkdir(exist_ok=True)
    return run_privindex(
        "mail",
        "test",
        address,
        *more,
        data_dir=tmp_path / "data",
        store=tmp_path / "store",
        check=False,
        env=env,
    )


def test_mail_test_sends_over_starttls_with_auth(tmp_path, smtp):
    proc = mail_test(tmp_path, mail_env(smtp))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"sent: accepted by smtp://127.0.0.1:{smtp.port}")
    [message] = smtp.wait_for(1)
    assert (message["From"], message["To"], message["Subject"]) == (
        "privindex@index.example",
        "ada@example.org",
        "privindex: test message",
    )
    assert "Mail works" in message.get_content()
    assert_no_secrets([PASSWORD], proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("auth", "privindex: error: not sent, auth: 127.0.0.1 refused the user name or password in smtp_url"),
        (
            "recipient",
            "privindex: error: not sent, recipient: 127.0.0.1 refused the recipient nobody@refused",
        ),
        ("untrusted", "privindex: error: not sent, TLS: the certificate of 127.0.0.1 is not trusted"),
        ("dns", "privindex: error: not sent, DNS: cannot resolve mail.invalid"),
        ("connect", "privindex: error: not sent, connect: cannot connect to 127.0.0.1:"),
        ("smtps at starttls", "privindex: error: not sent, TLS: TLS with 127.0.0.1:"),
    ],
)
def test_mail_test_names_the_step_that_failed_and_what_to_do(tmp_path, smtp, case, expected):
    env, address = mail_env(smtp), "ada@example.org"
    if case == "auth":
        env["PRIVINDEX_SMTP_URL"] = smtp.url(password="wrong-" + PASSWORD)
    elif case == "recipient":
        address = "nobody@refused.example"
    elif case == "untrusted":
        del env["PRIVINDEX_SMTP_CA_BUNDLE"]
    elif case == "dns":
        env["PRIVINDEX_SMTP_URL"] = smtp.url(host="mail.invalid")
    elif case == "connect":
        env["PRIVINDEX_SMTP_URL"] = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{free_port()}"
    elif case == "smtps at starttls":  # an implicit-TLS URL at a STARTTLS server
        env["PRIVINDEX_SMTP_URL"] = f"smtps://{USER}:{PASSWORD}@127.0.0.1:{smtp.port}"
    proc = mail_test(tmp_path, env, address)
    assert proc.returncode == 1 and proc.stdout == ""
    progress, error = proc.stderr.splitlines()  # one line each, no traceback
    assert progress.startswith("sending a test message") and error.startswith(expected), error
    if case == "smtps at starttls":
        assert error.endswith("use smtp:// in smtp_url")
    assert_no_secrets([PASSWORD], proc.stderr)
    assert smtp.messages == []


def test_mail_settings_are_checked_by_name(tmp_path, smtp):
    plain = mail_test(tmp_path, mail_env(smtp, url="smtp+plain://mail.example.org:25"))
    assert plain.returncode == 2
    assert "PRIVINDEX_SMTP_URL" in plain.stderr and "this machine only" in plain.stderr
    no_from = mail_test(tmp_path, mail_env(smtp, PRIVINDEX_MAIL_FROM=""))
    assert no_from.returncode == 2 and "PRIVINDEX_MAIL_FROM" in no_from.stderr
    off = mail_test(tmp_path, {})
    assert off.returncode == 1 and "mail is off: set smtp_url" in off.stderr


def outbox_metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    return {
        line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("privindex_outbox_deliveries{") and 'kind="mail"' in line
    }


def test_a_message_queued_while_the_mail_server_is_down_survives_a_restart_and_is_sent(
    tmp_path, smtp, fresh_server
):
    smtp.stop()  # down
    env = mail_env(
        smtp,
        PRIVINDEX_OUTBOX_POLL_SECONDS="0.2",
        PRIVINDEX_OUTBOX_RETRY_BASE_SECONDS="0.5",
        PRIVINDEX_OUTBOX_RETRY_MAX_SECONDS="1",
    )
    server = fresh_server(populated=False, env=env)
    queued = run_privindex(
        "mail", "test", "ada@example.org", "--queue", data_dir=server.data_dir, store=server.store, env=env
    )
    assert queued.stdout.startswith("queued for ada@example.org")
    pending = 'kind="mail",status="pending"'
    wait_until(lambda: "connect: cannot connect" in server.log(), 30)  # tried, failed, kept
    assert outbox_metrics(server.url)[pending] == 1

    server.stop()
    server = fresh_server(populated=False, env=env)  # the same data dir: the outbox survives
    assert outbox_metrics(server.url)[pending] == 1
    smtp.start()  # back
    [message] = smtp.wait_for(1)
    assert message["To"] == "ada@example.org"
    wait_until(lambda: outbox_metrics(server.url)['kind="mail",status="sent"'] == 1, 10)
    assert outbox_metrics(server.url)[pending] == 0
    assert_no_secrets([PASSWORD], server.log_path)
