"""How long the project search's typo tolerance takes at N names (default 20,000 local and
20,000 cached upstream names): `projects.typo_matches` over the names in memory,
without the FTS query before it or any HTTP.

    python benchmarks/fuzzy_search.py                 # N=20000
    python benchmarks/fuzzy_search.py --names 100000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privindex.packages.projects import typo_matches  # noqa: E402

PARTS = ["http", "client", "async", "parser", "yaml", "toml", "cache", "queue", "image", "audio", "token"]


def word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))


def names(n: int, rng: random.Random) -> list[str]:
    """Names like real ones: one to three parts, some of them common words."""
    return [
        "-".join(rng.choice(PARTS) if rng.random() < 0.3 else word(rng) for _ in range(rng.randint(1, 3)))
        + ("" if i % 7 else f"-{i}")
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(26)
    pool = tuple(dict.fromkeys(names(args.names * 2, rng)))  # local + upstream
    start = time.perf_counter()
    typo_matches(["first"], pool)
    print(f"the parts' index, once per change of the names: {(time.perf_counter() - start) * 1000:.1f} ms")
    for query in ("widgts", "asycn-clinet", "tokne"):
        words = query.split("-")
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            found = typo_matches(words, pool)
            times.append(time.perf_counter() - start)
        median = statistics.median(times) * 1000
        print(f"{query!r:16} {len(pool):>7} names: median {median:7.2f} ms, {len(found)} found")


if __name__ == "__main__":
    main()
