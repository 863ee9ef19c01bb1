""" "Forgot password?" in-process (Flask's test client): its answers must not tell whether an
account matches, the rate limit's buckets included."""

from __future__ import annotations

import json

import pytest

from privindex.accounts import emails, users
from privindex.db.models import OutboxItem, PendingAuth
from privindex.ops import audit

MAIL_ON = {"require_2fa": False, "smtp_url": "smtp://127.0.0.1:1", "mail_from": "pidx@example.org"}


@pytest.mark.app_settings(**MAIL_ON)
def test_the_limit_is_per_text_typed_whether_or_not_an_account_matches(app):
    dave = users.create_user("dave", None, audit.CLI)
    emails.add_address(dave, "dave@example.org", audit.CLI, verified=True)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()

    def ask(typed: str, n: int) -> int:  # from a new client address each time
        return client.post(
            "/forgot-password", data={"account": typed}, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}
        ).status_code

    for typed in ("dave", "nobody"):
        assert [ask(typed, n) for n in range(4)] == [200, 200, 200, 429], typed
        # another spelling is another bucket, for an account as for no account
        assert ask(f" {typed.upper()}@Example.org ", 9) == 200
        assert ask(f"{typed}@example.org", 9) == 200


@pytest.mark.app_settings(**MAIL_ON)
def test_the_link_is_made_after_the_answer_so_both_answers_take_the_same_work(app):
    """(The time taken is measured in benchmarks/, not here.) The server closes a response
    once written; only then is the link made and its mail queued."""
    dave = users.create_user("dave", None, audit.CLI)
    emails.add_address(dave, "dave@example.org", audit.CLI, verified=True)
    app.config["WTF_CSRF_ENABLED"] = False
    answer = app.test_client().post("/forgot-password", data={"account": "dave"})
    assert answer.status_code == 200 and b"Check your mail" in answer.data
    assert not PendingAuth.select().exists() and not OutboxItem.select().exists()
    answer.close()
    assert PendingAuth.get().purpose == "password-reset"
    assert json.loads(OutboxItem.get().payload)["to"] == "dave@example.org"
