#!/usr/bin/env python3
"""Slow downloads against page latency, privindex alone (the embedded default, no nginx).

    python benchmarks/slow_clients.py [--mb 200] [--files 2] [--local-clients 16]
        [--upstream-clients 16] [--rate-mb 1] [--seconds 30] [--page-rate 50] [--code DIR]

privindex (threads at its default, 8) over the synthetic store (200 projects) plus --files
local wheels of --mb MB, in front of a second privindex on loopback as its upstream, whose
--files wheels of --mb MB are fetched once through it first, so they are in its cache.
Then --local-clients read the local wheels and --upstream-clients the cached upstream ones,
each at --rate-mb MB/s (a socket with a 16 KB receive buffer that reads and sleeps); every
other client asks for a Range (from a random offset to the end). Meanwhile 4 clients ask
for project pages at --page-rate requests a second in all, on a steady schedule: their
p50 and p99 are reported, first with no slow clients (the reference), then under them.
Target: page p99 under 20 ms.

--code runs another privindex source tree (a checkout of an older commit, for before and
after): `git worktree add /tmp/before <commit>`, then --code /tmp/before.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402
from helpers import SlowReader  # noqa: E402

PAGE_CLIENTS = 4
TARGET_P99_MS = 20.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=int, default=200, help="size of each big wheel [200]")
    p.add_argument("--files", type=int, default=2, help="big wheels, local and upstream each [2]")
    p.add_argument("--local-clients", type=int, default=16)
    p.add_argument("--upstream-clients", type=int, default=16)
    p.add_argument("--rate-mb", type=float, default=1.0, help="MB/s each slow client reads [1]")
    p.add_argument("--seconds", type=float, default=30.0, help="pages measured under the slow clients [30]")
    p.add_argument("--page-rate", type=float, default=50.0, help="page requests a second, in all [50]")
    p.add_argument("--code", type=Path, default=HERE.parent, help="the privindex source tree to run")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    figures = measure(args)
    print(report(figures))
    return 0 if figures["ok"] else 1


def big_wheels(folder: Path, prefix: str, count: int, mb: int) -> list[Path]:
    """count wheels of mb MB of random bytes in folder, made once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = f"{prefix}-{i}"
        path = folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(synth.wheel_bytes(name, "1.0", os.urandom(mb * 1024 * 1024)))
            tmp.rename(path)
        paths.append(path)
    return paths


def file_path(base: str, project: str) -> str:
    """The path of project's one file, as the page at base lists it."""
    with urllib.request.urlopen(f"{base}/simple/{project}/", timeout=60) as resp:
        page = resp.read().decode()
    href = page.split('href="', 1)[1].split('"', 1)[0].split("#", 1)[0]
    return "/packages/" + href.split("/packages/", 1)[1]


def page_load(
    base: str, projects: list[str], rate: float, stop: threading.Event, out: list, bad: list
) -> None:
    """One client asking for a page every 1/rate s (late requests go at once, not skipped)."""
    host, port = base.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    rng = random.Random(len(out))
    due = time.perf_counter()
    while not stop.is_set():
        due += 1 / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        started = time.perf_counter()
        try:
            conn.request("GET", f"/simple/{rng.choice(projects)}/")
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except OSError:
            conn.close()
            ok = False
        (out if ok else bad).append((time.perf_counter() - started) * 1000)


def pages(base: str, projects: list[str], rate: float, seconds: float) -> tuple[list[float], int]:
    """Page latencies in ms over `seconds` at `rate` requests a second, and the failures."""
    stop, out, bad = threading.Event(), [], []
    clients = [
        threading.Thread(target=page_load, args=(base, projects, rate / PAGE_CLIENTS, stop, out, bad))
        for _ in range(PAGE_CLIENTS)
    ]
    for c in clients:
        c.start()
    time.sleep(seconds)
    stop.set()
    for c in clients:
        c.join()
    return sorted(out), len(bad)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def measure(args: argparse.Namespace) -> dict:
    cache: Path = args.cache_dir
    store = synth.build_store(cache, 200, 2, print)
    work = cache / "run-slow-clients"
    shutil.rmtree(work / "run", ignore_errors=True)
    local_big = big_wheels(work / f"local-{args.mb}m", "slow-near", args.files, args.mb)
    upstream_big = big_wheels(work / f"upstream-{args.mb}m", "slow-far", args.files, args.mb)
    run = work / "run"
    for name, extra in (("store", local_big), ("up-store", upstream_big)):
        (run / name).mkdir(parents=True)
        for f in extra + (store.files() if name == "store" else []):
            os.link(f, run / name / f.name)  # hard links: no copies of the big files
    up = peers.privindex(run / "up-store", run / "up-data")
    proxy = peers.privindex(run / "store", run / "data", upstream_url=f"{up.base}/simple/")
    for server in (up, proxy):  # -P: the code from PYTHONPATH, not the working directory's
        server.argv.insert(1, "-P")
        server.env["PYTHONPATH"] = str(args.code.resolve())  # type: ignore[index]
    up_running = peers.launch(up, run / "up.log")
    proxy_running = peers.launch(proxy, run / "proxy.log")
    try:
        base = proxy.base
        local_paths = [file_path(base, p.name.split("-")[0].replace("_", "-")) for p in local_big]
        far_paths = [file_path(base, p.name.split("-")[0].replace("_", "-")) for p in upstream_big]
        for path in far_paths:  # into the cache, at full speed
            with urllib.request.urlopen(base + path, timeout=600) as resp:
                while resp.read(1024 * 1024):
                    pass
        idle, idle_bad = pages(base, store.projects, args.page_rate, min(args.seconds, 10))
        rng = random.Random(7)
        rate = int(args.rate_mb * 1024 * 1024)
        readers = []
        for i in range(args.local_clients + args.upstream_clients):
            paths = local_paths if i < args.local_clients else far_paths
            ranged = f"Range: bytes={rng.randrange(args.mb * 1024 * 1024 // 2)}-\r\n" if i % 2 else ""
            readers.append(SlowReader(base, paths[i % len(paths)], ranged, rate=rate, rcvbuf=16 * 1024))
        for r in readers:
            r.start()
        deadline = time.monotonic() + 10  # answers that do not start by then are counted missing
        for r in readers:
            r.started_answer.wait(max(0.0, deadline - time.monotonic()))
        started, cpu = time.monotonic(), loadgen.cpu_seconds(proxy_running.pid)
        received = sum(r.received for r in readers)
        loaded, loaded_bad = pages(base, store.projects, args.page_rate, args.seconds)
        elapsed = time.monotonic() - started
        delivered = (sum(r.received for r in readers) - received) / elapsed
        cores = (loadgen.cpu_seconds(proxy_running.pid) - cpu) / elapsed
        answered = sum(1 for r in readers if r.status.split()[1:2] in ([b"200"], [b"206"]))
        for r in readers:
            r.stop.set()
        for r in readers:
            r.join(10)
    finally:
        peers.stop(proxy_running)
        peers.stop(up_running)
    figures = {
        "code": str(args.code.resolve()),
        "mb": args.mb,
        "files": args.files,
        "local_clients": args.local_clients,
        "upstream_clients": args.upstream_clients,
        "rate_mb": args.rate_mb,
        "page_rate": args.page_rate,
        "idle": (statistics.median(idle), percentile(idle, 0.99), len(idle), idle_bad),
        "loaded": (
            statistics.median(loaded) if loaded else float("nan"),
            percentile(loaded, 0.99),
            len(loaded),
            loaded_bad,
        ),
        "readers_answered": answered,
        "delivered_mb_s": delivered / (1024 * 1024),
        "cores": cores,
    }
    figures["ok"] = figures["loaded"][1] < TARGET_P99_MS and not loaded_bad and answered == len(readers)
    return figures


def report(f: dict) -> str:
    clients = f["local_clients"] + f["upstream_clients"]
    lines = [
        f"privindex from {f['code']}, threads = 8 (the default), no nginx",
        f"{f['local_clients']} clients of {f['files']} local and {f['upstream_clients']} of "
        f"{f['files']} cached upstream files of {f['mb']} MB at {f['rate_mb']} MB/s each, "
        "every other one by Range: "
        f"{f['readers_answered']} of {clients} answered, {f['delivered_mb_s']:.1f} MB/s delivered in all; "
        f"privindex used {f['cores']:.2f} cores meanwhile",
        "| project pages at {:.0f} req/s | p50 ms | p99 ms | answered | failed |".format(f["page_rate"]),
        "|---|---|---|---|---|",
    ]
    for title, key in (("no slow clients", "idle"), (f"{clients} slow clients", "loaded")):
        p50, p99, n, bad = f[key]
        lines.append(f"| {title} | {p50:.1f} | {p99:.1f} | {n} | {bad} |")
    lines.append(
        f"target (p99 < {TARGET_P99_MS:.0f} ms under the slow clients): {'met' if f['ok'] else 'MISSED'}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
