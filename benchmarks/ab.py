#!/usr/bin/env python3
"""HTTP A/B of two privindex checkouts on one store: both started warm, wrk runs interleaved.

run.py measures one server after another, minutes apart, so on a shared machine a
before/after comparison mixes the change with whatever else ran meanwhile. Here both
servers run at once (only one is loaded at a time) and each figure alternates A B B A;
the medians are compared.

    git archive main | (mkdir -p /tmp/main-src && tar -x -C /tmp/main-src)
    python benchmarks/ab.py --checkout /tmp/main-src --checkout . [--rounds 4] [--duration 3]

Needs wrk and a run.py data dir for the store (`python benchmarks/run.py --only privindex`
once), which is copied, so neither server indexes 25,000 files cold.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkout", action="append", type=Path, required=True, help="two source trees: A, then B"
    )
    p.add_argument("--projects", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--connections", default="16,64")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    if len(args.checkout) != 2:
        p.error("give --checkout twice")
    store = synth.build_store(args.cache_dir, args.projects, 4, print)
    seed = args.cache_dir / "run" / "privindex-data"
    work = args.cache_dir / "run-ab"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    servers, running = [], []
    try:
        for i, checkout in enumerate(args.checkout):
            data = work / f"data-{i}"
            if seed.is_dir():
                shutil.copytree(seed, data)
            server = peers.privindex(store.folder, data)
            server.env["PYTHONPATH"] = str(checkout.resolve())
            servers.append(server)
            running.append(peers.launch(server, work / f"server-{i}.log"))
        sample = random.Random(1).sample(store.projects, min(1000, len(store.projects)))
        tests = {
            "root": [("/simple/", "")],
            "project": [(f"/simple/{name}/", "") for name in store.projects],
            "revalidate": [
                (f"/simple/{name}/", peers.http("GET", f"{servers[1].base}/simple/{name}/")[1]["etag"])
                for name in sample
            ],
            "file_100k": [(f"/packages/{store.file_100k}", "")],
        }
        print(
            f"req/s, median of {args.rounds} interleaved runs of {args.duration:g} s; "
            f"A = {args.checkout[0]}, B = {args.checkout[1]}"
        )
        for key, items in tests.items():
            paths = loadgen.write_paths(work / f"paths-{key}.txt", items)
            for conns in (int(c) for c in args.connections.split(",")):
                got: list[list[float]] = [[], []]
                for round_ in range(args.rounds):
                    for i in (0, 1) if round_ % 2 == 0 else (1, 0):
                        loadgen.wait_idle(running[i].pid, 0.5)
                        got[i].append(
                            loadgen.run_load(servers[i].base, paths, conns, args.duration, "wrk")["rps"]
                        )
                a, b = statistics.median(got[0]), statistics.median(got[1])
                print(f"{key} c={conns}: A {a:.0f} {got[0]}  B {b:.0f} {got[1]}  B/A {b / a:.2f}", flush=True)
    finally:
        for r in running:
            peers.stop(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
