"""How long a recovery-code sign-in spends checking the code, with 8 salted argon2id codes.

A typed code is verified against each unused code of the user (salted hashes cannot be
looked up), so a wrong code (or the last one) is the worst case: 8 argon2id verifies.
Times second_factors.use_recovery_code in-process on a fresh SQLite database, without HTTP
or the rate limiter: the figure is what a sign-in spends on the codes.

    .venv/bin/python benchmarks/recovery_codes.py              # 20 rounds
    .venv/bin/python benchmarks/recovery_codes.py --rounds 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.accounts import second_factors, users  # noqa: E402
from privindex.db.connection import open_database  # noqa: E402
from privindex.ops import audit  # noqa: E402


def timed(action) -> tuple[float, float]:
    """(wall ms, CPU ms): on a shared machine the CPU time is the steadier figure."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        open_database(Path(tmp) / "bench.sqlite3")
        user = users.create_user("bench", None, audit.CLI)
        made = [timed(lambda: second_factors.regenerate_recovery_codes(user, audit.CLI)) for _ in range(3)]
        wrong = [
            timed(lambda: second_factors.use_recovery_code(user, "0000-0000-0000-0000", audit.CLI))
            for _ in range(args.rounds)
        ]
        right = []
        for _ in range(args.rounds):
            codes = second_factors.regenerate_recovery_codes(user, audit.CLI)
            right.append(timed(lambda c=codes[-1]: second_factors.use_recovery_code(user, c, audit.CLI)))
    for label, ms in (
        ("make 8 codes", made),
        ("wrong code, 8 unused (worst case)", wrong),
        ("right code, 8 unused", right),
    ):
        wall, cpu = [statistics.median(t[i] for t in ms) for i in (0, 1)]
        slowest = max(t[0] for t in ms)
        print(f"{label:36} median {wall:6.1f} ms (CPU {cpu:6.1f} ms), slowest {slowest:6.1f} ms, n={len(ms)}")


if __name__ == "__main__":
    main()
