#!/usr/bin/env python3
"""What nginx's read check adds to a pre-rendered page of a private index (issue 30: under
1 ms): README.md's nginx config with its private lines (auth_request to privindex's
/_privindex/read-check, answered from its memory of passed tokens) against the same config
without them, both over the same static pages of one privindex (read_access = "token",
static_pages, static_pages_auth_request), one keep-alive connection each, requests with
the token, interleaved rounds (A B B A ...); medians and p99 of the per-request times.

    python benchmarks/read_check.py [--projects 200] [--requests 2000] [--rounds 4]

Needs nginx.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
import synth  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=200)
    p.add_argument("--requests", type=int, default=2000, help="per round and config [2000]")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    store = synth.build_store(args.cache_dir, args.projects, 2, print)
    work = args.cache_dir / "run-read-check"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "data"
    inner = peers.privindex(
        store.folder,
        data,
        read_access="token",
        static_pages="true",
        static_pages_auth_request="true",
        trusted_proxy="127.0.0.1",
        require_2fa="false",
    )
    inner = dataclasses.replace(inner, root="/healthz", ready="/readyz")
    running = [peers.launch(inner, work / "privindex.log")]
    try:
        token = make_token(inner, store.folder, data)
        proxies = {}
        for private in (True, False):
            name = "with read check" if private else "without"
            folder = work / ("nginx-private" if private else "nginx-public")
            port = peers.free_port()
            http = peers.readme_nginx_config(
                port, inner.port, store.folder, folder / "cache", data / "static"
            )
            if private:
                http = peers.with_read_check(http)
            conf = peers.nginx_http_conf(folder, http, workers="1")
            argv = ["nginx", "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")]
            server = peers.Server(name, argv, port, root="/healthz")
            running.append(peers.launch(server, folder / "nginx.log"))
            proxies[name] = port
        paths = [f"/simple/{n}/" for n in store.projects]
        wait_for_pages(data / "static" / "simple", store.projects)
        auth = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        times: dict[str, list[float]] = {name: [] for name in proxies}
        for round_ in range(args.rounds):
            order = list(proxies) if round_ % 2 == 0 else list(reversed(proxies))
            for name in order:
                times[name] += timed_requests(proxies[name], paths, auth, args.requests)
        print(f"{args.projects} projects, {args.rounds} rounds of {args.requests} requests per config, c=1")
        print("| nginx config | median ms | p99 ms |")
        print("|---|---|---|")
        for name, values in times.items():
            values.sort()
            print(f"| {name} | {statistics.median(values):.3f} | {values[int(len(values) * 0.99)]:.3f} |")
        with_check, without = (statistics.median(times[n]) for n in proxies)
        print(f"\nadded by the read check (median): {with_check - without:.3f} ms")
    finally:
        for r in reversed(running):
            peers.stop(r)
    return 0


def make_token(server: peers.Server, store: Path, data: Path) -> str:
    cli = [sys.executable, "-m", "privindex"]
    where = ["--data-dir", str(data), "--store", str(store)]
    env = server.env

    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*cli, *args, *where], input=stdin, text=True, env=env, check=True, capture_output=True
        )
        return done.stdout.strip()

    run("user", "add", "reader", "--password-stdin", stdin="a long pass phrase 42\n")
    return run("token", "create", "reader", "--read-only")


def wait_for_pages(folder: Path, projects: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all((folder / n / "index.v1json").is_file() for n in projects):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the static pages did not appear in {folder}")
        time.sleep(0.1)


def timed_requests(port: int, paths: list[str], auth: str, count: int) -> list[float]:
    """Seconds -> milliseconds per request, one keep-alive connection, pip's Accept header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": auth, "Accept": "application/vnd.pypi.simple.v1+json"}
    out = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", random.choice(paths), headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - start) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"{resp.status} from port {port}")
    finally:
        conn.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
