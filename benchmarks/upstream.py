#!/usr/bin/env python3
"""The pull-through cache: privindex in front of an upstream privindex, both on loopback.

    python benchmarks/upstream.py [--projects 200] [--duration 2] [--first 40]
    python benchmarks/run.py --upstream ...   (the same rows, in run.py's report and JSON)

Rows: a local project page on the proxy (the reference), a cached upstream project page,
a cached upstream 100 KB file, and the upstream's own page; then first-fetch overhead:
the median time of a first (uncached) page and file through the proxy minus the median
time of the same requests straight to the upstream. wrk, 1 thread, as in run.py.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402

HERE = Path(__file__).resolve().parent


def get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        resp.read()
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=200)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--connections", default="1,16")
    p.add_argument("--first", type=int, default=40, help="first fetches timed [40]")
    args = p.parse_args()
    print(report(measure(HERE / ".cache", args.projects, args.duration, args.connections, args.first)))
    return 0


def report(figures: dict) -> str:
    """The rows as a Markdown table, then the first-fetch overheads."""
    conns = figures["connections"]
    lines = [
        f"| figure | {' | '.join(f'c={c} req/s, p50/p99 ms' for c in conns)} |",
        "|---|" + "---|" * len(conns),
    ]
    for title, cells in figures["rows"].items():
        lines.append(f"| {title} | {' | '.join(f'{r[0]:.0f}, {r[1]:.1f}/{r[2]:.1f}' for r in cells)} |")
    first = figures["first_fetch_ms"]
    lines.append(
        f"\nfirst fetch of a page: {first['page_proxy']:.1f} ms through the proxy vs "
        f"{first['page_direct']:.1f} ms upstream directly (overhead "
        f"{first['page_proxy'] - first['page_direct']:.1f} ms, median of {first['n']})"
    )
    lines.append(
        f"first fetch of a file: {first['file_proxy']:.1f} ms through the proxy vs "
        f"{first['file_direct']:.1f} ms upstream directly (overhead "
        f"{first['file_proxy'] - first['file_direct']:.1f} ms)"
    )
    return "\n".join(lines)


def measure(cache: Path, projects: int, duration: float, connections: str, first: int) -> dict:
    """Run the rows; returns {"connections", "rows": {title: [(rps, p50, p99)...]},
    "first_fetch_ms": {...}} for a report or run.py's JSON."""
    conns = [int(c) for c in connections.split(",")]
    store = synth.build_store(cache, projects, 4, print)
    work = cache / "run-upstream"
    shutil.rmtree(work, ignore_errors=True)
    (work / "proxy-store").mkdir(parents=True)
    local = store.projects[0]
    for f in store.folder.iterdir():  # one project is local on the proxy too (the reference row)
        if f.name.startswith(local.replace("-", "_") + "-"):
            shutil.copy2(f, work / "proxy-store" / f.name)
    up = peers.launch(peers.privindex(store.folder, work / "up-data"), work / "up.log")
    proxy_server = peers.privindex(
        work / "proxy-store", work / "proxy-data", upstream_url=up.server.base + "/simple/", threads="8"
    )
    proxy = peers.launch(proxy_server, work / "proxy.log")
    try:
        upstream_name = synth.FILE_100K
        page = f"/simple/{upstream_name}/"
        get(proxy.server.base + page)
        body = urllib.request.urlopen(proxy.server.base + page).read().decode()
        href = next(h for h in body.split('href="')[1:] if store.file_100k in h.split('"')[0]).split('"')[0]
        file_path = "/packages/" + href.split("packages/", 1)[1].split("#")[0]
        get(proxy.server.base + file_path)  # cached now
        rows = {
            "local page on the proxy": (proxy.server.base, f"/simple/{local}/"),
            "cached upstream page": (proxy.server.base, page),
            "cached upstream 100 KB file": (proxy.server.base, file_path),
            "the upstream's own page": (up.server.base, page),
        }
        client = "wrk" if loadgen.have_wrk() else "python"
        figures: dict = {"connections": conns, "rows": {}}
        for title, (base, path) in rows.items():
            paths = loadgen.write_paths(work / "paths.txt", [(path, "")])
            cells = []
            for c in conns:
                loadgen.wait_idle(proxy.pid, 0.5)
                r = loadgen.run_load(base, paths, c, duration, client)
                cells.append((r["rps"], r["p50_ms"], r["p99_ms"]))
            figures["rows"][title] = cells
        # first fetches: pages and the files they list, proxy (uncached) vs upstream directly
        names = store.projects[1 : 1 + first]
        direct, through, fdirect, fthrough = [], [], [], []
        for name in names:
            direct.append(get(f"{up.server.base}/simple/{name}/"))
            through.append(get(f"{proxy.server.base}/simple/{name}/"))
            body = urllib.request.urlopen(f"{proxy.server.base}/simple/{name}/").read().decode()
            href = body.split('href="')[1].split('"')[0].split("#")[0]
            fname = href.rsplit("/", 1)[1]
            fdirect.append(get(f"{up.server.base}/packages/{fname}"))
            fthrough.append(get(urljoin(f"{proxy.server.base}/simple/{name}/", href)))
        med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
        figures["first_fetch_ms"] = {
            "n": len(names),
            "page_proxy": med(through),
            "page_direct": med(direct),
            "file_proxy": med(fthrough),
            "file_direct": med(fdirect),
        }
        return figures
    finally:
        peers.stop(proxy)
        peers.stop(up)


if __name__ == "__main__":
    sys.exit(main())
