#!/usr/bin/env python3
"""What PEP 752 namespaces cost on the read path: `Sources.source(name)` decides every page
and download from memory, and with grants it also asks whether a name falls under one
(`NamespaceRules.covers`: the name's `-` prefixes looked up in a set). Timed in-process for
names that are not local (the longest path: every check runs), with no grants and with
--grants of them, interleaved A B B A so a noisy machine hits both alike; medians.

    python benchmarks/namespaces.py [--grants 200] [--names 20000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from types import SimpleNamespace

from privindex.upstream.source_rules import NamespaceRules, Sources


def sources(grants: frozenset[str]) -> Sources:
    index = SimpleNamespace(snapshot=SimpleNamespace(projects={}))
    found = Sources(index, cache=object())  # type: ignore[arg-type]  # any cache: upstream on
    found.namespaces = NamespaceRules(grants)
    return found


def per_call_ns(srcs: Sources, names: list[str]) -> float:
    source = srcs.source
    started = time.perf_counter_ns()
    for name in names:
        source(name)
    return (time.perf_counter_ns() - started) / len(names)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grants", type=int, default=200)
    p.add_argument("--names", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    rng = random.Random(752)
    words = [f"w{i}" for i in range(500)]
    names = ["-".join(rng.choices(words, k=rng.randint(1, 5))) for _ in range(args.names)]
    granted = frozenset(f"team{i}" for i in range(args.grants))
    without, with_grants = sources(frozenset()), sources(granted)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(per_call_ns(without, names))
        b.append(per_call_ns(with_grants, names))
        b.append(per_call_ns(with_grants, names))
        a.append(per_call_ns(without, names))
    base, grants = statistics.median(a), statistics.median(b)
    print(f"Sources.source, {args.names} names not local, median of {2 * args.rounds} runs:")
    print(f"  no grants:          {base:7.0f} ns per call")
    print(f"  {args.grants} grants:        {grants:7.0f} ns per call  (+{grants - base:.0f} ns)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
