"""Cold indexing of a store of big files, against sha256sum over the same files.

run.py's synthetic store holds 1.7 KB wheels, so its cold index measures per-file work
(zip directory, METADATA, database rows), not hashing. This store holds --files wheels of
--mb MB of random bytes each: here a cold `privindex serve` (every file read and hashed
by a process per core) should run near what coreutils' sha256sum reaches over the same
files with one process per core. Both read from the page cache (the files are read once
first), so neither measures the disk.

    python benchmarks/cold_index.py                 # 1,000 files x 1 MB, 3 cold starts
    python benchmarks/cold_index.py --files 200 --mb 5 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--mb", type=int, default=1, help="MB of random bytes per wheel [1]")
    p.add_argument("--repeat", type=int, default=3, help="cold starts, each on a fresh data dir [3]")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args(argv)

    folder = big_store(args.cache_dir, args.files, args.mb)
    subprocess.run(f"cat {folder}/* > /dev/null", shell=True, check=True)  # into the page cache
    hashes = sha256sum_rates(folder)
    store_mb = hashes["store_mb"]
    starts, readies = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="privindex-cold-") as data:
            running = peers.launch(peers.privindex(folder, Path(data)), Path(data) / "server.log")
            peers.stop(running)
            starts.append(running.start_seconds)
            readies.append(running.ready_seconds)
    start, ready = statistics.median(starts), statistics.median(readies)
    indexing = ready - start  # first answer to every file listed: the reading and hashing
    print(f"store: {args.files} files, {store_mb} MB; cold starts: {args.repeat}, medians")
    print(
        f"privindex: first answer {start:.2f} s, every file indexed {ready:.2f} s after start "
        f"({store_mb / ready:.0f} MB/s from start, {store_mb / indexing:.0f} MB/s from the first answer)"
    )
    print(
        f"sha256sum: {hashes['one_core']:.0f} MB/s on one core, {hashes['all_cores']:.0f} MB/s on "
        f"{os.cpu_count()} cores"
    )
    print(
        f"privindex / sha256sum on all cores: {store_mb / ready / hashes['all_cores']:.0%} from start, "
        f"{store_mb / indexing / hashes['all_cores']:.0%} from the first answer"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
