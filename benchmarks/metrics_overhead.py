#!/usr/bin/env python3
"""What the metrics middleware costs on the read path: /simple/<project>/ with metrics on and
off, two servers over one store, measured back to back and interleaved (A B B A ...) so a
noisy shared machine hits both alike; medians of the runs.

    python benchmarks/metrics_overhead.py [--projects 500] [--rounds 6] [--duration 3] [--connections 1,16]
    python benchmarks/metrics_overhead.py --in-process     # the WSGI stack alone, no HTTP: microseconds

wrk, 1 thread (the other core stays with the server), random projects per request as in
run.py. The target (issue 13) is an overhead under 5% in req/s. On a shared machine the
HTTP figures swing by tens of percent between runs; --in-process times the whole WSGI
stack (access log included) for a page request, with and without metrics, interleaved,
which is steady enough to see the middleware's few microseconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=500)
    p.add_argument("--rounds", type=int, default=6, help="A/B pairs per connection count [6]")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--connections", default="1,16")
    p.add_argument("--in-process", action="store_true", help="time the WSGI stack without HTTP")
    args = p.parse_args()
    cache = HERE / ".cache"
    store = synth.build_store(cache, args.projects, 4, print)
    if args.in_process:
        return in_process(store, cache / "run-metrics-inproc", args.rounds)
    work = cache / "run-metrics"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    client = "wrk" if loadgen.have_wrk() else "python"
    servers = {
        "metrics on": peers.launch(
            peers.privindex(store.folder, work / "on-data", metrics="true"), work / "on.log"
        ),
        "metrics off": peers.launch(
            peers.privindex(store.folder, work / "off-data", metrics="false"), work / "off.log"
        ),
    }
    paths = loadgen.write_paths(work / "paths.txt", [(f"/simple/{n}/", "") for n in store.projects])
    try:
        for running in servers.values():  # warm: every page rendered once
            loadgen.run_load(running.server.base, paths, 4, 2, client)
        print(
            f"client {client}; {args.projects} projects; {args.rounds} interleaved rounds of "
            f"{args.duration:g} s per server and connection count\n"
        )
        print("| connections | metrics off req/s | metrics on req/s | overhead | p50 off / on ms |")
        print("|---|---|---|---|---|")
        for conns in map(int, args.connections.split(",")):
            rps: dict[str, list[float]] = {name: [] for name in servers}
            p50: dict[str, list[float]] = {name: [] for name in servers}
            for round_ in range(args.rounds):
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    running = servers[name]
                    loadgen.wait_idle(running.pid, 0.5)
                    r = loadgen.run_load(running.server.base, paths, conns, args.duration, client)
                    if r["errors"] or r["bad_status"]:
                        raise RuntimeError(f"{name}: errors in the run: {r}")
                    rps[name].append(r["rps"])
                    p50[name].append(r["p50_ms"])
            off, on = statistics.median(rps["metrics off"]), statistics.median(rps["metrics on"])
            print(
                f"| {conns} | {off:.0f} | {on:.0f} | {(off - on) / off * 100:+.1f}% | "
                f"{statistics.median(p50['metrics off']):.2f} / {statistics.median(p50['metrics on']):.2f} |"
            )
            print(
                f"|   | runs: {', '.join(f'{x:.0f}' for x in rps['metrics off'])} | "
                f"{', '.join(f'{x:.0f}' for x in rps['metrics on'])} | | |"
            )
    finally:
        for running in servers.values():
            peers.stop(running)
    return 0


def in_process(store: synth.SynthStore, work: Path, rounds: int, n: int = 20000) -> int:
    import logging
    import time

    sys.path.insert(0, str(HERE.parent))
    from privindex.app import create_app
    from privindex.config import Settings

    shutil.rmtree(work, ignore_errors=True)
    logging.getLogger("privindex.access").setLevel(logging.INFO)  # formatted, written nowhere
    logging.getLogger().addHandler(logging.NullHandler())
    apps = {
        on: create_app(Settings(store=store.folder, data_dir=work / str(on), metrics=on)).wsgi_app
        for on in (False, True)
    }
    base = {
        "REQUEST_METHOD": "GET",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_USER_AGENT": "pip",
    }
    paths = [f"/simple/{name}/" for name in store.projects]

    def per_request(app, count: int) -> float:
        start = time.perf_counter()
        for i in range(count):
            app(dict(base, PATH_INFO=paths[i % len(paths)]), lambda status, headers, exc_info=None: None)
        return (time.perf_counter() - start) / count * 1e6

    for app in apps.values():
        per_request(app, 2000)  # every page rendered once
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(rounds * 2):
        for on in (False, True) if round_ % 2 == 0 else (True, False):
            times[on].append(per_request(apps[on], n))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"in-process WSGI stack, /simple/<project>/ (cached page): metrics off {off:.1f} us, "
        f"on {on:.1f} us per request: +{on - off:.1f} us (medians of {rounds * 2} x {n} requests)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
