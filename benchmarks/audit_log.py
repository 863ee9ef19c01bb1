"""How long the web UI's audit log takes at N events (default 20,000): the page an admin
opens, unfiltered and with each filter (user, event, token, date range), over Flask's test
client in-process, so the figure is the view's work (two queries, the sentences, the
template) without a network.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/audit_log.py            # N=20000
    PYTHONPATH=$PWD .venv/bin/python benchmarks/audit_log.py --events 100000
    PYTHONPATH=$PWD .venv/bin/python benchmarks/audit_log.py --drop-token-index   # before v18
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.accounts import users  # noqa: E402
from privindex.app import create_app  # noqa: E402
from privindex.config import Settings  # noqa: E402
from privindex.db.connection import bound, database  # noqa: E402
from privindex.db.models import ApiToken, AuditEvent, User  # noqa: E402
from privindex.ops import audit  # noqa: E402

PASSWORD = "correct horse battery"
DAY = 86400.0
TAGS = ["file:add", "user:login:success", "token:create", "file:yank", "user:login:failure"]


def fill(n: int, owner: User) -> None:
    """n events over the last 200 days, by 50 users; a third made with one of 200 tokens."""
    now = time.time()
    tokens = [
        ApiToken.create(
            user=owner, token_hash=f"h{i}", prefix="pi_", description=f"ci-{i}", created_at=now
        ).id
        for i in range(200)
    ]
    rows = []
    for i in range(n):
        rows.append(
            {
                "ts": now - i * (200 * DAY / n),
                "tag": TAGS[i % len(TAGS)],
                "actor": f"user{i % 50}",
                "subject": f"pkg{i % 300}-1.0-py3-none-any.whl",
                "project": f"pkg{i % 300}",
                "ip": "10.0.0.1",
                "token_id": tokens[i % 200] if i % 3 == 0 else None,
                "details": json.dumps({"version": "1.0", "via": "upload", "token_description": "ci"}),
            }
        )
    with database.atomic():
        for start in range(0, n, 1000):
            AuditEvent.insert_many(rows[start : start + 1000]).execute()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--drop-token-index", action="store_true", help="without migration v18's index")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(store=Path(tmp) / "store", data_dir=Path(tmp) / "data", require_2fa=False))
        with bound(app.extensions["privindex"].database):
            fill(args.events, users.create_user("boss", PASSWORD, audit.CLI, is_admin=True))
            if args.drop_token_index:
                database.execute_sql("DROP INDEX audit_event_token")
            client = app.test_client()
            page = client.get("/login").text
            csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
            client.post("/login", data={"csrf_token": csrf, "username": "boss", "password": PASSWORD})
            day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 100 * DAY))
            for label, query in (
                ("unfiltered", ""),
                ("user", "?user=user7"),
                ("event", "?tag=file:yank"),
                ("token", "?token=ci-17"),
                ("one day", f"?from={day}&to={day}"),
                ("last page", "?page=400"),
            ):
                times = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    resp = client.get("/audit" + query)
                    times.append(time.perf_counter() - start)
                    assert resp.status_code == 200, resp.status_code
                print(
                    f"{label:>10}: median {statistics.median(times) * 1000:.1f} ms, "
                    f"best {min(times) * 1000:.1f} ms ({args.events} events)"
                )


if __name__ == "__main__":
    main()
