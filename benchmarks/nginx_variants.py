#!/usr/bin/env python3
"""Variants of README.md's nginx config in front of one privindex, wrk runs interleaved.

How the recommended config was chosen: the README's block as it is, without the /simple/
micro-cache, and with more idle upstream connections, each an nginx of its own in front of
the same privindex (send_files_via = x-accel-redirect), loaded one at a time, A B C C B A.
For the file tests, static nginx on the same folder runs in the same rotation (the ceiling,
measured seconds rather than minutes apart from the others).

    python benchmarks/nginx_variants.py --test project --connections 1,16
    python benchmarks/nginx_variants.py --test file_20m --connections 1,16 --rounds 6

Needs nginx, wrk and a run.py data dir for the store (`python benchmarks/run.py --only
privindex` once), which is copied.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402

VARIANTS = {
    "readme": lambda conf: conf,
    "no-microcache": lambda conf: re.sub(r"\n        proxy_(cache|ignore_headers|no_cache)[^\n]*", "", conf),
    "keepalive-64": lambda conf: conf.replace("keepalive 16;", "keepalive 64;"),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--test", choices=("project", "revalidate", "file_100k", "file_20m", "root"), default="project"
    )
    p.add_argument("--connections", default="1,16")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--projects", type=int, default=5000)
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    store = synth.build_store(args.cache_dir, args.projects, 4, print)
    work = args.cache_dir / "run-variants"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    seed = args.cache_dir / "run" / "privindex-data"
    if seed.is_dir():
        shutil.copytree(seed, work / "data")
    inner = peers.privindex(
        store.folder, work / "data", send_files_via="x-accel-redirect", trusted_proxy="127.0.0.1"
    )
    running = [peers.launch(inner, work / "privindex.log")]
    bases = {}
    try:
        for name, change in VARIANTS.items():
            port = peers.free_port()
            conf = peers.nginx_http_conf(
                work / name,
                change(peers.readme_nginx_config(port, inner.port, store.folder, work / name / "cache")),
            )
            server = peers.Server(
                name,
                ["nginx", "-c", str(conf), "-p", str(work / name), "-e", str(work / name / "error.log")],
                port,
            )
            running.append(peers.launch(server, work / f"{name}.log"))
            bases[name] = server.base
        if args.test.startswith("file"):
            static = peers.nginx(work / "nginx-static", store.folder, b"", b"")
            running.append(peers.launch(static, work / "nginx-static.log"))
            bases["nginx-static"] = static.base
        items = {
            "project": [(f"/simple/{n}/", "") for n in store.projects],
            "root": [("/simple/", "")],
            "file_100k": [(f"/packages/{store.file_100k}", "")],
            "file_20m": [(f"/packages/{store.file_20m}", "")],
        }
        if args.test == "revalidate":
            items["revalidate"] = [
                (f"/simple/{n}/", peers.http("GET", f"{inner.base}/simple/{n}/")[1]["etag"])
                for n in store.projects[:1000]
            ]
        paths = loadgen.write_paths(work / "paths.txt", items[args.test])
        got: dict[tuple[str, int], list[float]] = {}
        names = list(bases)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                for conns in (int(c) for c in args.connections.split(",")):
                    loadgen.wait_idle(running[0].pid, 0.5)
                    run = loadgen.run_load(bases[name], paths, conns, args.duration, "wrk")
                    if run["errors"] or run["bad_status"]:
                        raise RuntimeError(f"{name}: {run['errors']} errors, {run['bad_status']} bad answers")
                    got.setdefault((name, conns), []).append(run["rps"])
        print(f"{args.test}: req/s, median of {args.rounds} interleaved runs of {args.duration:g} s")
        for (name, conns), values in got.items():
            print(f"  {name} c={conns}: {statistics.median(values):.0f} {values}")
    finally:
        for r in running:
            peers.stop(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
