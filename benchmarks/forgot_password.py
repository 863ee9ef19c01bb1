"""How long "Forgot password?" takes to answer, for an account that exists and for none.

The answer must not tell which: both paths look the text up and count it in the limiter,
and the link (a pending key, an audit event, a queued mail) is made once the answer is
written, when the server closes the response. Times the POST in-process (Flask's test
client, a fresh SQLite database, mail on) up to the rendered answer, each from its own
client address so the limiter never refuses; the response is closed (the link made)
outside the timing, as the server does after sending. Requests alternate, so load on a
shared machine falls on both alike.

    .venv/bin/python benchmarks/forgot_password.py              # 40 rounds
    .venv/bin/python benchmarks/forgot_password.py --rounds 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.accounts import emails, users  # noqa: E402
from privindex.app import create_app  # noqa: E402
from privindex.config import Settings  # noqa: E402
from privindex.db.connection import bound  # noqa: E402
from privindex.ops import audit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            store=Path(tmp) / "store",
            data_dir=Path(tmp) / "data",
            require_2fa=False,
            smtp_url="smtp://127.0.0.1:1",
            mail_from="bench@example.org",
        )
        app = create_app(settings)
        app.config["WTF_CSRF_ENABLED"] = False
        client = app.test_client()
        times: dict[str, list[float]] = {"exists": [], "missing": []}
        with bound(app.extensions["privindex"].database):
            for i in range(args.rounds + 2):
                user = users.create_user(f"u{i}", None, audit.CLI)
                emails.add_address(user, f"u{i}@example.org", audit.CLI, verified=True)
            for i in range(args.rounds + 2):
                for label, typed in (("exists", f"u{i}"), ("missing", f"nobody{i}")):
                    ip = f"10.{i // 250}.{i % 250}.{1 if label == 'exists' else 2}"
                    started = time.perf_counter()
                    answer = client.post(
                        "/forgot-password", data={"account": typed}, environ_base={"REMOTE_ADDR": ip}
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    answer.close()  # the link is made now, as after the server sent the answer
                    assert answer.status_code == 200, answer.status_code
                    if i >= 2:  # the first rounds warm up
                        times[label].append(elapsed)
    for label, ms in times.items():
        ms.sort()
        print(
            f"{label:8} median {statistics.median(ms):6.2f} ms, p10 {ms[len(ms) // 10]:6.2f} ms, n={len(ms)}"
        )


if __name__ == "__main__":
    main()
