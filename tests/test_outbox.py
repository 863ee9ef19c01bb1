"""The outbox's rules, in-process: an action rolled back sends nothing, a key queues once,
failures are retried with a doubling back-off up to a cap and given up after the last
attempt, an admin may send a delivery again, and two senders never take the same row.
The real parts (a mail server, a webhook receiver, a restart): tests/test_notify.py."""

from __future__ import annotations

import json
import threading
import time

import pytest

from privindex.config import Settings, replace
from privindex.db.connection import bound, database
from privindex.db.models import OutboxItem
from privindex.notify import outbox
from privindex.ops import audit

FAST = dict(outbox_retry_base_seconds=1.0, outbox_retry_max_seconds=4.0, outbox_max_attempts=3)


@pytest.fixture
def sent():
    """A webhook sender that records payloads, or raises what the test put in `fail`."""
    got: list[dict] = []
    fail: list[Exception] = []

    def send(payload: dict) -> str:
        if fail:
            raise fail.pop(0)
        got.append(payload)
        return "HTTP 204"

    outbox.register_sender("webhook", send)
    yield got, fail
    outbox.unregister_sender("webhook")


def settings(app) -> Settings:
    return replace(app.extensions["privindex"].settings, **FAST)


def due_now() -> None:
    OutboxItem.update(next_attempt_at=0).where(OutboxItem.status == "pending").execute()


def test_a_rolled_back_action_sends_nothing_and_a_key_queues_once(app, sent):
    got, _fail = sent

    class Refused(Exception):
        pass

    with pytest.raises(Refused), database.atomic():
        outbox.enqueue("webhook", {"n": 1})
        raise Refused
    with database.atomic():
        outbox.enqueue("webhook", {"n": 2}, key="release:x:1")
        outbox.enqueue("webhook", {"n": 3}, key="release:x:1")
    while outbox.deliver_due(settings(app)):
        pass
    assert got == [{"n": 2}]
    row = OutboxItem.get()
    assert (row.status, row.attempts, row.outcome) == ("sent", 1, "HTTP 204")
    with pytest.raises(ValueError, match="unknown outbox kind"):
        outbox.enqueue("pigeon", {})


def test_failures_back_off_doubling_to_the_cap_then_fail_and_can_be_sent_again(app, sent):
    got, fail = sent
    s = settings(app)
    assert [outbox.backoff(s, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 4.0]
    outbox.enqueue("webhook", {"n": 1})
    fail.extend(RuntimeError(f"HTTP 500 #{n}") for n in range(3))
    for attempt in (1, 2):
        before = time.time()
        assert outbox.deliver_due(s)
        row = OutboxItem.get()
        assert (row.status, row.attempts, row.last_error) == ("pending", attempt, f"HTTP 500 #{attempt - 1}")
        assert row.next_attempt_at >= before + outbox.backoff(s, attempt)
        assert not outbox.deliver_due(s)  # not due yet
        due_now()
    assert outbox.deliver_due(s)
    row = OutboxItem.get()
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500 #2")
    due_now()
    assert not outbox.deliver_due(s) and got == []  # failed rows wait for an admin

    outbox.send_again(row.id, audit.CLI)
    assert outbox.deliver_due(s) and got == [{"n": 1}]
    assert OutboxItem.get().status == "sent"
    assert [e.tag for e in audit.query(tag="outbox:")] == ["outbox:send-again"]


def test_an_undeliverable_one_fails_at_once_and_a_sent_mail_forgets_its_text(app, sent):
    _got, fail = sent
    fail.append(outbox.Undeliverable("the webhook was removed"))
    outbox.enqueue("webhook", {"n": 1})
    assert outbox.deliver_due(settings(app))
    assert OutboxItem.get().status == "failed"

    outbox.register_sender("mail", lambda payload: None, forget_after_send=("text",))
    try:
        outbox.enqueue("mail", {"to": "a@example.org", "text": "reset: https://x/reset/SECRET"})
        assert outbox.deliver_due(settings(app))
    finally:
        outbox.unregister_sender("mail")
    mail = OutboxItem.get(OutboxItem.kind == "mail")
    assert mail.status == "sent" and "SECRET" not in mail.payload
    with pytest.raises(outbox.OutboxError, match="sent mail"):
        outbox.send_again(mail.id, audit.CLI)


def test_a_kind_without_a_sender_waits(app, sent):
    outbox.enqueue("mail", {"to": "a@example.org"})
    assert not outbox.deliver_due(settings(app))
    assert OutboxItem.get().status == "pending"


def test_a_malformed_row_fails_with_a_clear_error_and_the_sender_goes_on(app, sent):
    got, _fail = sent
    mails: list[dict] = []
    outbox.register_sender("mail", mails.append)
    try:
        OutboxItem.insert_many(
            [
                dict(kind=kind, payload=payload, next_attempt_at=0, created_at=0)
                for kind, payload in (("mail", "not json{"), ("pigeon", "{}"), ("webhook", "[1]"))
            ]
        ).execute()
        outbox.enqueue("mail", {"to": "a@example.org"})
        outbox.enqueue("webhook", {"n": 1})
        while outbox.deliver_due(settings(app)):
            pass
    finally:
        outbox.unregister_sender("mail")
    assert mails == [{"to": "a@example.org"}] and got == [{"n": 1}]
    failed = {row.kind: row.last_error for row in OutboxItem.select().where(OutboxItem.status == "failed")}
    assert failed["mail"].startswith("the payload is not JSON")
    assert failed["pigeon"] == "unknown kind 'pigeon': this version sends mail, webhook"
    assert failed["webhook"] == "the payload is not a JSON object"


def test_two_senders_never_claim_the_same_row(app):
    for n in range(40):
        outbox.enqueue("webhook", {"n": n})
    db = app.extensions["privindex"].database
    claimed: list[int] = []

    def claim_all() -> None:
        with bound(db):
            while (item := outbox.claim(("webhook",))) is not None:
                claimed.append(item.id)

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(row.id for row in OutboxItem.select())


def test_a_mail_failed_for_good_forgets_its_text_and_keeps_whom_and_what_for_the_admin(app):
    def refuse(payload: dict) -> None:
        raise outbox.Undeliverable("550 no such mailbox")

    outbox.register_sender("mail", refuse, forget_after_send=("text", "html"))
    try:
        outbox.enqueue(
            "mail",
            {
                "to": "a@example.org",
                "subject": "Reset your password",
                "text": "https://x/r/SECRET",
                "html": "SECRET",
            },
        )
        assert outbox.deliver_due(settings(app))
    finally:
        outbox.unregister_sender("mail")
    mail = OutboxItem.get(OutboxItem.kind == "mail")
    assert mail.status == "failed" and "SECRET" not in mail.payload
    assert json.loads(mail.payload) == {"to": "a@example.org", "subject": "Reset your password"}
    with pytest.raises(outbox.OutboxError, match="failed mail's text is not kept"):
        outbox.send_again(mail.id, audit.CLI)
