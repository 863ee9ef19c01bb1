#!/usr/bin/env python3
"""How long does an upload take while the folder watcher indexes a large hand copy?

Starts `privindex serve` from a checkout (default: this one), copies --files small wheels
(20 KB each) into the store by hand at once, and uploads one wheel every 0.2 s with the
legacy API while the watcher reads them, until every copied file is listed. Prints the
upload latencies (median and max) and how long indexing the copy took. Compare two
checkouts with --checkout:

    python benchmarks/upload_during_rescan.py                        # this checkout
    python benchmarks/upload_during_rescan.py --checkout /tmp/old    # e.g. a `git archive` of main
    python benchmarks/upload_during_rescan.py --in-process [CHECKOUT]  # Index.add during Index.refresh
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", type=Path, default=HERE, help="privindex source tree to run [this one]")
    parser.add_argument("--files", type=int, default=5000, help="wheels copied in by hand [5000]")
    args = parser.parse_args()

    import requests

    work = Path(tempfile.mkdtemp(prefix="privindex-rescan-bench-"))
    try:
        payload = os.urandom(20_000)
        source = work / "copy"
        source.mkdir()
        for i in range(args.files):
            name = f"hand-{i:05d}"
            (source / f"hand_{i:05d}-1.0-py3-none-any.whl").write_bytes(
                synth.wheel_bytes(name, "1.0", payload)
            )
        store, data = work / "store", work / "data"
        store.mkdir()
        data.mkdir()  # a fresh installation: the CLI acts only on a data dir that exists
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVINDEX_")}
        env.update(
            PYTHONPATH=str(args.checkout), PRIVINDEX_REQUIRE_2FA="false", PRIVINDEX_RESCAN_INTERVAL="1"
        )
        cli = [sys.executable, "-m", "privindex"]
        where = ["--store", str(store), "--data-dir", str(data)]
        subprocess.run(
            [*cli, "user", "add", "bench", "--password-stdin", *where],
            input="a long password\n",
            text=True,
            env=env,
            check=True,
            capture_output=True,
            cwd=args.checkout,
        )
        token = subprocess.run(
            [*cli, "token", "create", "bench", *where],
            text=True,
            env=env,
            check=True,
            capture_output=True,
            cwd=args.checkout,
        ).stdout.strip()
        log = open(work / "server.log", "w")
        proc = subprocess.Popen(
            [*cli, "serve", "--port", "0", *where],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=args.checkout,
        )  # cwd comes first on sys.path
        try:
            url = next(line.split()[2].rstrip("/") for line in proc.stdout if line.startswith("listening on"))
            threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()

            def upload(i: int) -> float:
                data_bytes = synth.wheel_bytes(f"upl-{i}", "1.0")
                fields = {
                    ":action": "file_upload",
                    "protocol_version": "1",
                    "name": f"upl-{i}",
                    "version": "1.0",
                    "filetype": "bdist_wheel",
                    "pyversion": "py3",
                    "metadata_version": "2.1",
                    "sha256_digest": hashlib.sha256(data_bytes).hexdigest(),
                }
                start = time.perf_counter()
                resp = requests.post(
                    f"{url}/legacy/",
                    data=fields,
                    auth=("__token__", token),
                    timeout=600,
                    files={"content": (f"upl_{i}-1.0-py3-none-any.whl", data_bytes)},
                )
                assert resp.status_code == 200, resp.text
                return time.perf_counter() - start

            quiet = [upload(i) for i in range(5)]
            copied = time.perf_counter()
            shutil.copytree(source, store / "handcopy")
            latencies, i = [], 5
            while True:
                with urllib.request.urlopen(f"{url}/health", timeout=600) as resp:
                    files = int(resp.read().decode().split('"files":')[1].split(",")[0].split("}")[0])
                if files >= args.files + i:
                    break
                latencies.append(upload(i))
                i += 1
                time.sleep(0.2)
            indexed = time.perf_counter() - copied
        finally:
            proc.terminate()
            proc.wait()
            log.close()
        print(f"checkout: {args.checkout}")
        print(f"upload, idle server: median {statistics.median(quiet) * 1000:.0f} ms")
        print(
            f"upload during the rescan of {args.files} hand-copied files: {len(latencies)} uploads, "
            f"median {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
            if latencies
            else "no upload happened during the rescan"
        )
        print(f"copy indexed after {indexed:.1f} s")
        print("latencies (ms):", " ".join(f"{x * 1000:.0f}" for x in latencies))
    finally:
        shutil.rmtree(work, ignore_errors=True)


IN_PROCESS = r"""
import inspect, os, shutil, sys, tempfile, threading, time
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import synth
from privindex.db.connection import open_database
from privindex.packages.index import Index
from privindex.packages.store import Store

n = int(sys.argv[1])
work = Path(tempfile.mkdtemp())
store = Store(work / "store")
store.root.mkdir()
open_database(work / "db.sqlite3")
(work / "store" / "upl").mkdir()
(work / "store" / "upl" / "upl_1-1.0-py3-none-any.whl").write_bytes(synth.wheel_bytes("upl-1", "1.0"))
index = Index(store)
index.load()
entry = index.file("upl/upl_1-1.0-py3-none-any.whl")
copy = work / "store" / "handcopy"
copy.mkdir()
payload = os.urandom(20_000)
for i in range(n):
    wheel = synth.wheel_bytes(f"hand-{i:05d}", "1.0", payload)
    (copy / f"hand_{i:05d}-1.0-py3-none-any.whl").write_bytes(wheel)
time.sleep(0.6)  # settled
new_api = "entry" in inspect.signature(Index.add).parameters
waits = []
refresher = threading.Thread(target=index.refresh)
started = time.perf_counter()
refresher.start()
while refresher.is_alive():
    time.sleep(0.1)
    t = time.perf_counter()
    index.add(entry) if new_api else index.add(entry.path)
    waits.append(time.perf_counter() - t)
refresher.join()
print(f"rescan of {n} files: {time.perf_counter() - started:.1f} s; Index.add during it: {len(waits)} calls, "
      f"max {max(waits) * 1000:.1f} ms")
shutil.rmtree(work)
"""


if __name__ == "__main__":
    if "--in-process" in sys.argv:  # Index.add while Index.refresh hashes a hand copy, no HTTP
        i = sys.argv.index("--in-process")
        checkout = sys.argv[i + 1] if len(sys.argv) > i + 1 else str(HERE)
        subprocess.run(
            [sys.executable, "-c", IN_PROCESS, "5000", str(Path(__file__).parent)],
            env={**os.environ, "PYTHONPATH": checkout},
            cwd=checkout,
            check=True,
        )
    else:
        main()
