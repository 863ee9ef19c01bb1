"""How long retention takes to decide what goes at N projects with V versions each (default
20,000 x 5 = 100,000 file records, a third of them pre-releases or dev releases).

Fills a fresh SQLite database with file records and their publications (raw INSERTs: the
figure is the decision, not the filling), then times `retention.plan`, the part of
`privindex retention run --dry-run` and of every scheduled round that reads the database.

    .venv/bin/python benchmarks/retention.py
    .venv/bin/python benchmarks/retention.py --projects 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.config import Settings  # noqa: E402
from privindex.db.connection import database, open_database  # noqa: E402
from privindex.packages import retention  # noqa: E402

VERSIONS = ("1.0", "1.1", "2.0a1", "2.0.dev3", "2.0")


def fill(projects: int) -> None:
    now = time.time()
    with database.atomic():
        for p in range(projects):
            name = f"bench-{p:05d}"
            for i, version in enumerate(VERSIONS):
                filename = f"bench_{p:05d}-{version}-py3-none-any.whl"
                database.execute_sql(
                    "INSERT INTO dist_file (path, filename, project, name, version, size, mtime_ns, "
                    "sha256, upload_time) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (f"{name}/{filename}", filename, name, name, version, 10_000, "0" * 64, now),
                )
                database.execute_sql(
                    "INSERT INTO published_file (filename, project, sha256, published_at) "
                    "VALUES (?, ?, ?, ?)",
                    (filename, name, "0" * 64, now - (len(VERSIONS) - i) * 40 * 86400),
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(retention_keep_prereleases=1, retention_dev_max_days=30)
    with tempfile.TemporaryDirectory() as tmp:
        open_database(Path(tmp) / "bench.sqlite3")
        fill(args.projects)
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            doomed = retention.plan(settings)
            times.append(time.perf_counter() - started)
        print(
            f"retention.plan at {args.projects} projects, {args.projects * len(VERSIONS)} files: "
            f"{len(doomed)} files doomed; median {statistics.median(times):.3f} s, "
            f"min {min(times):.3f} s over {args.rounds} rounds"
        )


if __name__ == "__main__":
    main()
