"""How long the project search and the project list take at N projects (default 20,000).

Fills a fresh database through the real path (releases.record from core metadata, so the
FTS5 triggers run), then times releases.search and projects.browse-style list queries
in-process, without HTTP: the figure is what a request spends in the database.

    .venv/bin/python benchmarks/search.py            # N=20000
    .venv/bin/python benchmarks/search.py --projects 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.db.connection import database, open_database  # noqa: E402
from privindex.packages import releases  # noqa: E402

WORDS = [
    "http",
    "client",
    "async",
    "parser",
    "yaml",
    "toml",
    "cache",
    "queue",
    "image",
    "audio",
    "token",
    "auth",
    "crypto",
    "sql",
    "orm",
    "grpc",
    "web",
    "flask",
    "django",
    "test",
    "mock",
    "plot",
    "data",
    "frame",
    "stream",
    "retry",
    "logging",
    "config",
    "cli",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projects", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        open_database(Path(tmp) / "bench.sqlite3")
        start = time.perf_counter()
        with database.atomic():
            for i in range(args.projects):
                name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
                summary = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize()
                raw = (
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i % 7}\nSummary: {summary}\n".encode()
                )
                releases.record(name, f"1.{i % 7}", name, raw)
        print(f"filled {args.projects} projects in {time.perf_counter() - start:.1f} s")
        for query in ("yaml", "http client", "pars", "flask-async", "data frame plot", "zzz-nothing"):
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                found, total = releases.search(query)
                times.append((time.perf_counter() - t0) * 1000)
            print(
                f"search {query!r:22} {total:6d} hits  p50 {statistics.median(times):6.2f} ms"
                f"  max {max(times):6.2f} ms"
            )


if __name__ == "__main__":
    main()
