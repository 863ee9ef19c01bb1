"""A 100 KB file three ways, on the same synthetic store: through README.md's nginx with
`static_files = true` (nginx sends it from the serving tree of hard links, privindex is not
asked), from static nginx aliasing the same folder (the ceiling), and from privindex alone.

    python benchmarks/static_files.py --projects 5000 --connections 1,16,64 --duration 10

Each server runs alone, one after another; prints a Markdown table (req/s, p50, p99, MB/s).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

import loadgen
import peers
import synth

HERE = Path(__file__).resolve().parent


def servers(store: synth.SynthStore, work: Path) -> list[tuple[peers.Server, Path | None]]:
    """(server, the data dir whose serving tree it needs, or None) for each of the three."""
    tree = peers.privindex_behind_nginx(
        store.folder, work / "tree-data", work / "tree-proxy", static_files="true"
    )
    tree.name = "privindex-nginx-tree"
    alone = peers.privindex(store.folder, work / "alone-data")
    static = peers.nginx(work / "nginx-static", store.folder, b"", b"")
    return [(tree, work / "tree-data"), (static, None), (alone, None)]


def wait_for_tree(data_dir: Path, filename: str, timeout: float = 600) -> None:
    link = data_dir / "static" / "packages" / filename
    deadline = time.monotonic() + timeout
    while not link.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{link} was not linked within {timeout} s")
        time.sleep(0.1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=5000)
    p.add_argument("--connections", default="1,16,64")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    store = synth.build_store(args.cache_dir, args.projects, 3, print)
    work = args.cache_dir / "run-static-files"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    filename = store.file_100k
    path = f"/packages/{filename}"
    want = hashlib.sha256((store.folder / filename).read_bytes()).hexdigest()
    paths = loadgen.write_paths(work / "paths.txt", [(path, "")])
    client = "wrk" if loadgen.have_wrk() else "python"
    rows = []
    for server, tree_data in servers(store, work):
        running = peers.launch(server, work / f"{server.name}.log")
        try:
            if tree_data is not None:
                wait_for_tree(tree_data, filename)
            status, _headers, body = peers.http("GET", server.base + path)
            if status != 200 or hashlib.sha256(body).hexdigest() != want:
                raise RuntimeError(f"{server.name}: {path} answered {status} with other bytes")
            for connections in (int(c) for c in args.connections.split(",")):
                result = loadgen.run_load(server.base, paths, connections, args.duration, client, threads=2)
                rows.append((server.name, connections, result))
                print(f"{server.name} c={connections}: {result}", file=sys.stderr)
        finally:
            peers.stop(running)
    print(f"\n100 KB file, N={args.projects}, {args.duration:g} s per figure, client {client}\n")
    print("| server | connections | req/s | p50 ms | p99 ms | MB/s | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, connections, r in rows:
        print(
            f"| {name} | {connections} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['mb_per_s']:.0f} | {r['errors'] + r['bad_status']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
