#!/usr/bin/env python3
"""Cold upstream downloads under load: do local pages and /healthz keep answering?

    python benchmarks/upstream_load.py [--clients 32] [--files 4] [--mb 20] [--rate-mb 1] [--cache-dir DIR]

privindex (threads = 8, upstream_workers at its default, 4) in front of a deliberately
slow upstream on loopback (tests/test_upstream.py's FakeUpstream: each file download sent
at --rate-mb MB/s, every request counted). --clients clients fetch --files cold files of
--mb MB (client i wants file i % files) and retry a 503 after its Retry-After, as pip and
uv do; meanwhile 8 clients read local project pages and one polls /healthz every 0.1 s.
Reported: local page p50/p99, /healthz answered every time, upstream requests per file
(1 each is the goal) and every client that got a 200 got the exact bytes (sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import random
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import peers  # noqa: E402
import synth  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402

PAGE_CLIENTS = 8


def get(port: int, path: str, timeout: float = 120) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--mb", type=int, default=20)
    p.add_argument("--rate-mb", type=float, default=1.0)
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    figures = measure(args.cache_dir, args.clients, args.files, args.mb, args.rate_mb)
    print(report(figures))
    return 0 if figures["ok"] else 1


def measure(cache: Path, clients: int, files: int, mb: int, rate_mb: float) -> dict:
    store = synth.build_store(cache, 200, 2, print)  # the local projects
    work = cache / "run-upstream-load"
    shutil.rmtree(work, ignore_errors=True)
    (work / "blobs").mkdir(parents=True)
    fake = FakeUpstream()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for i in range(files):
        blob = work / "blobs" / f"cold_{i}-1.0-py3-none-any.whl"
        blob.write_bytes(os.urandom(mb * 1024 * 1024))
        fake.add(f"cold-{i}", blob, uploaded=old)
    fake.rate = int(rate_mb * 1024 * 1024)
    fake.start()
    proxy = peers.launch(
        peers.privindex(store.folder, work / "data", upstream_url=fake.url, threads="8"), work / "proxy.log"
    )
    port = proxy.server.port
    try:
        for i in range(files):  # the pages are cached; the files are cold
            assert get(port, f"/simple/cold-{i}/")[0] == 200
        done = threading.Event()
        page_ms: list[float] = []
        page_failures: list[float] = []  # anything but a 200
        health: list[tuple[int, float]] = []  # (status or 0, ms)
        outcomes: list[dict] = []

        def fetch(i: int) -> None:
            name = f"cold_{i % files}-1.0-py3-none-any.whl"
            path = f"/packages/.upstream/cold-{i % files}/{name}"
            refused, started = 0, time.monotonic()
            while True:
                status, headers, body = get(port, path)
                if status != 503:
                    break
                refused += 1
                time.sleep(float(headers.get("Retry-After", "1")))
            outcomes.append(
                {
                    "status": status,
                    "refused": refused,
                    "seconds": time.monotonic() - started,
                    "exact": hashlib.sha256(body).digest() == hashlib.sha256(fake.blobs[name]).digest(),
                }
            )

        def pages(seed: int) -> None:
            rng = random.Random(seed)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not done.is_set():
                started = time.perf_counter()
                try:
                    conn.request("GET", f"/simple/{rng.choice(store.projects)}/")
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                except OSError:
                    conn.close()  # reconnects on the next request
                    status = 0
                (page_ms if status == 200 else page_failures).append((time.perf_counter() - started) * 1000)

        def poll_health() -> None:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    status = get(port, "/healthz", timeout=5)[0]
                except OSError:
                    status = 0
                health.append((status, (time.perf_counter() - started) * 1000))
                time.sleep(0.1)

        background = [threading.Thread(target=pages, args=(s,)) for s in range(PAGE_CLIENTS)]
        background.append(threading.Thread(target=poll_health))
        for t in background:
            t.start()
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(fetch, range(clients)))
            seconds = time.monotonic() - started
        finally:
            done.set()
            for t in background:
                t.join()
    finally:
        peers.stop(proxy)
        fake.stop()
    per_file = [fake.requests[f"/files/cold_{i}-1.0-py3-none-any.whl"] for i in range(files)]
    page_ms.sort()
    figures = {
        "clients": clients,
        "files": files,
        "mb": mb,
        "rate_mb": rate_mb,
        "seconds": seconds,
        "pages": len(page_ms),
        "page_failures": len(page_failures),
        "page_p50_ms": statistics.median(page_ms),
        "page_p99_ms": page_ms[int(len(page_ms) * 0.99) - 1],
        "page_max_ms": page_ms[-1],
        "health_polls": len(health),
        "health_ok": sum(1 for s, _ms in health if s == 200),
        "health_max_ms": max(ms for _s, ms in health),
        "upstream_requests_per_file": per_file,
        "ok_clients": sum(1 for o in outcomes if o["status"] == 200),
        "exact_clients": sum(1 for o in outcomes if o["status"] == 200 and o["exact"]),
        "refusals": sum(o["refused"] for o in outcomes),
        "client_median_s": statistics.median(o["seconds"] for o in outcomes),
    }
    figures["ok"] = (
        figures["page_p99_ms"] < 100
        and not page_failures
        and figures["health_ok"] == figures["health_polls"]
        and per_file == [1] * files
        and figures["exact_clients"] == clients
    )
    return figures


def report(f: dict) -> str:
    return "\n".join(
        [
            f"{f['clients']} clients, {f['files']} cold files of {f['mb']} MB at {f['rate_mb']} MB/s "
            f"from the upstream, threads = 8: all done in {f['seconds']:.1f} s",
            f"local pages ({PAGE_CLIENTS} clients): {f['pages']} answered 200, {f['page_failures']} did not, "
            f"p50 {f['page_p50_ms']:.1f} ms, "
            f"p99 {f['page_p99_ms']:.1f} ms, max {f['page_max_ms']:.1f} ms",
            f"/healthz: {f['health_ok']} of {f['health_polls']} polls answered 200 "
            f"(slowest {f['health_max_ms']:.1f} ms)",
            f"upstream requests per file: {f['upstream_requests_per_file']}",
            f"file clients: {f['ok_clients']} got 200, {f['exact_clients']} with the exact bytes; "
            f"{f['refusals']} 503s retried; median {f['client_median_s']:.1f} s per client",
            "targets met" if f["ok"] else "TARGETS MISSED",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
