#!/usr/bin/env python3
"""privindex alone at two store sizes, interleaved: project pages (HTML and JSON) at N
projects against N = --base, for issue 30's "within 15%" target.

run.py --scale measures one size after the other, each after a cold start, so a noisy
minute of a shared machine lands on one side only. Here both servers run on warm data
dirs (indexed once, untimed), started in turn and alternating which goes first, and
every figure is a median over the rounds. With --fill, every page is asked once before
the timing (a long-running server has seen them); with --page-cache-size, the page cache
holds that many pages, for the memory that a figure costs (RSS after each round).

    python benchmarks/scaling.py                       # N = 20,000 against 500, 4 rounds
    python benchmarks/scaling.py --fill --page-cache-size 65536 --rounds 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
FORMATS = {"html": "text/html", "json": JSON_ACCEPT}


def paths_files(store: synth.SynthStore, work: Path, n: int) -> dict[str, Path]:
    """wrk's path lists: every project of the store, once per format."""
    out = {}
    for fmt, accept in FORMATS.items():
        items = [(f"/simple/{p}/", "", accept) for p in store.projects]
        out[fmt] = loadgen.write_paths(work / f"paths-{n}-{fmt}.txt", items)
    return out


def ask_every_page(base: str, store: synth.SynthStore) -> None:
    urls = [(f"{base}/simple/{p}/", accept) for accept in FORMATS.values() for p in store.projects]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: peers.http("GET", item[0], headers={"Accept": item[1]}), urls))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=20_000, help="the large store's N [20000]")
    p.add_argument("--base", type=int, default=500, help="the small store's N [500]")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3, help="per figure, after 1 s unrecorded [3]")
    p.add_argument("--connections", default="16,64")
    p.add_argument("--fill", action="store_true", help="ask every page once before the timing")
    p.add_argument("--page-cache-size", help="privindex's page_cache_size for both servers")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    if not loadgen.have_wrk():
        raise SystemExit("wrk is missing: apt-get install wrk")
    work = args.cache_dir / "scaling"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    settings = {"page_cache_size": args.page_cache_size} if args.page_cache_size else {}
    sizes = (args.projects, args.base)
    stores = {n: synth.build_store(args.cache_dir, n, 4) for n in sizes}
    paths = {n: paths_files(stores[n], work, n) for n in sizes}
    for n in sizes:  # the cold index, once and untimed: every round starts warm
        peers.stop(peers.launch(peers.privindex(stores[n].folder, work / f"data-{n}"), work / "server.log"))
    conns = [int(c) for c in args.connections.split(",")]
    rates: dict[tuple[int, str, int], list[float]] = {}
    rss: dict[int, list[float]] = {}
    for round_ in range(args.rounds):
        for n in sizes if round_ % 2 == 0 else reversed(sizes):
            server = peers.privindex(stores[n].folder, work / f"data-{n}", **settings)
            running = peers.launch(server, work / "server.log")
            try:
                loadgen.wait_idle(running.pid)
                if args.fill:
                    ask_every_page(server.base, stores[n])
                for fmt in FORMATS:
                    for c in conns:
                        loadgen.run_load(server.base, paths[n][fmt], c, 1, "wrk")
                        figure = loadgen.run_load(server.base, paths[n][fmt], c, args.seconds, "wrk")
                        rates.setdefault((n, fmt, c), []).append(figure["rps"])
                rss.setdefault(n, []).append(loadgen.memory_mb(running.pid)["rss_mb"])
            finally:
                peers.stop(running)
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)
    print(f"privindex alone, N = {args.projects} against N = {args.base}, {args.rounds} interleaved rounds")
    print(f"(fill: {args.fill}, page_cache_size: {args.page_cache_size or 'default'}); median req/s\n")
    print(f"| project page | N = {args.projects} | N = {args.base} | ratio | runs |")
    print("|---|---|---|---|---|")
    for fmt in FORMATS:
        for c in conns:
            big, small = (statistics.median(rates[n, fmt, c]) for n in sizes)
            big_runs, small_runs = ([round(x) for x in rates[n, fmt, c]] for n in sizes)
            runs = f"{big_runs} / {small_runs}"
            print(f"| {fmt} c={c} | {big:.0f} | {small:.0f} | {big / small:.0%} | {runs} |")
    print(
        f"\nRSS after the load (max over rounds): N = {args.projects}: {max(rss[sizes[0]]):.0f} MB, "
        f"N = {args.base}: {max(rss[sizes[1]]):.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
