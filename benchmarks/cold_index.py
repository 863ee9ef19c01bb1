"""Cold indexing against sha256sum over the same files, for a store of many small files and
a store of big wheels, in one run.

The small store is run.py's synthetic store (N projects x 3 wheels + an sdist each, plus
its 100 KB and 20 MB wheels: 4N + 3 files of 1-2 KB), where a cold index is per-file work
(the zip directory, METADATA, the database rows); the big store holds wheels of random
bytes, where it is hashing. For each: a cold `privindex serve` on a fresh data dir, start
to every file listed (/readyz 200), against coreutils' `sha256sum` over the same files
with one process and with one per core (xargs -P), and, for the small store, the floor
of any indexer written in Python (python_floor()); MB/s and files/s for each, the
slowest /healthz while it indexes, and the server's RSS once it has (its process tree),
and once a warm start on the same data dir is listed. Both read from the
page cache (each store is read once first), so neither measures the disk.

    python benchmarks/cold_index.py                          # 100,003 small files, 40 x 25 MB
    python benchmarks/cold_index.py --small 10000 --big 8 --mb 25 --repeat 1   # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402
from run import sha256sum_rates  # noqa: E402


def big_store(cache: Path, files: int, mb: int) -> Path:
    """files wheels of mb MB of random bytes each, built once under cache/."""
    root = cache / f"big-F{files}-S{mb}"
    done = root / "manifest.json"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        folder = root / "packages"
        folder.mkdir(parents=True)
        for i in range(files):
            name = f"big-{i:05d}"
            (folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl").write_bytes(
                synth.wheel_bytes(name, "1.0", os.urandom(mb * 1024 * 1024))
            )
            if i % 100 == 99:
                print(f"built {i + 1}/{files} files", flush=True)
        old = time.time() - 3600  # settled: not a copy in progress
        for entry in os.scandir(folder):
            os.utime(entry.path, (old, old))
        done.write_text(json.dumps({"files": files, "mb": mb}))
    return root / "packages"


class HealthProbe:
    """Polls /healthz every 50 ms, keeping the slowest answer after the first (the first
    answer is the start's own figure)."""

    def __init__(self, base: str):
        self.base, self.slowest, self.answered = base, 0.0, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            started = time.monotonic()
            try:
                status = peers.http("GET", self.base + "/healthz", timeout=30)[0]
            except OSError:
                continue  # not listening yet
            if status == 200:
                if self.answered:
                    self.slowest = max(self.slowest, time.monotonic() - started)
                self.answered = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _floor_facts(paths: list[str]) -> list[tuple[str, str, str, str]]:
    """The least any indexer learns of a file: its sha256, and its name and version by
    packaging's filename rules (one task of python_floor's pool)."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    rows = []
    for path in paths:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        filename = os.path.basename(path)
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
        rows.append((path, digest, str(name), str(version)))
    return rows


def python_floor(folder: Path) -> float:
    """Seconds for the floor of an indexer written in Python: a process per core reads and
    hashes each file (whole: these are the small store's files) and parses its filename, and
    one SQLite row per file is written, a transaction per 256. No archive is opened, no
    METADATA read: what privindex does beyond this is its checks and its listing."""
    paths = sorted(str(p) for p in synth.dist_files(folder))
    tasks = [paths[i : i + 256] for i in range(0, len(paths), 256)]
    with tempfile.TemporaryDirectory(prefix="privindex-floor-") as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.sqlite3")
        db.execute("CREATE TABLE file (path TEXT PRIMARY KEY, sha256 TEXT, name TEXT, version TEXT)")
        started = time.monotonic()
        with multiprocessing.get_context("spawn").Pool(os.cpu_count()) as pool:
            for rows in pool.imap(_floor_facts, tasks):
                with db:
                    db.executemany("INSERT INTO file VALUES (?, ?, ?, ?)", rows)
        seconds = time.monotonic() - started
        db.close()
    return seconds


def measure(label: str, folder: Path, repeat: int, floor: bool = False) -> dict:
    """Cold starts on folder (medians over repeat) and sha256sum over the same files."""
    subprocess.run(f"find {folder} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True)
    files = len(synth.dist_files(folder))
    hashes = sha256sum_rates(folder)
    starts, readies, slowest, rss, rss_warm = [], [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="privindex-cold-") as data:
            server = peers.privindex(folder, Path(data))
            probe = HealthProbe(server.base)
            running = peers.launch(server, Path(data) / "server.log")
            probe.stop()
            rss.append(loadgen.memory_mb(running.pid)["rss_mb"])
            peers.stop(running)
            warm = peers.launch(peers.privindex(folder, Path(data)), Path(data) / "server.log")
            rss_warm.append(loadgen.memory_mb(warm.pid)["rss_mb"])  # the same store, recorded
            peers.stop(warm)
            starts.append(running.start_seconds)
            readies.append(running.ready_seconds)
            slowest.append(probe.slowest)
    mb = hashes["store_mb"]
    ready = statistics.median(readies)
    floors = [python_floor(folder) for _ in range(repeat)] if floor else []
    seconds = {"one_core": mb / hashes["one_core"], "all_cores": mb / hashes["all_cores"]}
    return {
        "store": label,
        "files": files,
        "mb": mb,
        "first_answer_s": statistics.median(starts),
        "listed_s": ready,
        "slowest_healthz_ms": round(max(slowest) * 1000),
        "rss_mb": max(rss),
        "rss_warm_mb": max(rss_warm),
        "privindex": {"mb_s": mb / ready, "files_s": files / ready},
        "sha256sum_one_core": {"mb_s": hashes["one_core"], "files_s": files / seconds["one_core"]},
        "sha256sum_all_cores": {"mb_s": hashes["all_cores"], "files_s": files / seconds["all_cores"]},
        "vs_all_cores": (mb / ready) / hashes["all_cores"],
        "python_floor": {"mb_s": mb / min(floors), "files_s": files / min(floors)} if floors else None,
        # a smoke run's start (imports, the database) weighs more than its indexing
        "vs_all_cores_after_first_answer": (mb / (ready - statistics.median(starts))) / hashes["all_cores"],
    }


def report(results: list[dict], repeat: int) -> None:
    print(f"\ncold starts per store: {repeat} (medians); sha256sum on 1 and {os.cpu_count()} cores\n")
    print(
        "| store | files | MB | privindex: every file listed | sha256sum, one core | sha256sum, all cores "
        "| privindex / all cores (from the first answer) | first answer | slowest /healthz "
        "| RSS after | RSS after a warm start |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    floor_notes: list[str] = []
    for r in results:
        if r["python_floor"]:
            floor_vs_all = r["python_floor"]["mb_s"] / r["sha256sum_all_cores"]["mb_s"]
            privindex_vs_floor = r["privindex"]["files_s"] / r["python_floor"]["files_s"]
            floor_notes.append(
                f"- {r['store']}: the Python floor (python_floor(): read, sha256, filename, a row; "
                f"best of {repeat}) lists {_rate(r['python_floor'])}, {floor_vs_all:.0%} of all-core "
                f"sha256sum; privindex is at {privindex_vs_floor:.0%} of it"
            )
        print(
            f"| {r['store']} | {r['files']:,} | {r['mb']:,.0f} "
            f"| {r['listed_s']:.2f} s ({_rate(r['privindex'])}) "
            f"| {_rate(r['sha256sum_one_core'])} | {_rate(r['sha256sum_all_cores'])} "
            f"| {r['vs_all_cores']:.0%} ({r['vs_all_cores_after_first_answer']:.0%}) "
            f"| {r['first_answer_s']:.2f} s | {r['slowest_healthz_ms']} ms | {r['rss_mb']:.0f} MB "
            f"| {r['rss_warm_mb']:.0f} MB |"
        )
    if floor_notes:
        print("", *floor_notes, sep="\n")


def _rate(figures: dict) -> str:
    return f"{figures['mb_s']:.0f} MB/s, {figures['files_s']:,.0f} files/s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=100_000, help="files in the small store, about [100000]")
    p.add_argument("--big", type=int, default=40, help="big wheels [40]")
    p.add_argument("--mb", type=int, default=25, help="MB of random bytes per big wheel [25]")
    p.add_argument(
        "--repeat", type=int, default=3, help="cold starts per store, each on a fresh data dir [3]"
    )
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    args = p.parse_args(argv)

    small = synth.build_store(args.cache_dir, max(1, args.small // 4), 3).folder
    big = big_store(args.cache_dir, args.big, args.mb)
    results = [
        measure("small files", small, args.repeat, floor=True),
        measure(f"big wheels ({args.mb} MB)", big, args.repeat),
    ]
    report(results, args.repeat)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
