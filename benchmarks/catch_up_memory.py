"""Index.catch_up in-process, cold (a fresh database) then warm (the same database, a new
process): the CPU time of the indexing thread and of the worker processes, and the memory
the process holds after (RSS; Python's arenas, of which how much is empty pools; glibc's
heap), without a server's own threads and libraries around it. CPU time is steadier than
wall time on a loaded machine; the memory tells what the cold path leaves behind.

    python benchmarks/catch_up_memory.py                 # run.py's N = 25,000 store: 100,003 files
    python benchmarks/catch_up_memory.py --small 2000    # a smoke run
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402


def one_start(store: Path, data: Path) -> dict:
    """catch_up in this process (run as a child by main); the figures as a dict."""
    from privindex.db.connection import open_database
    from privindex.packages.index import Index
    from privindex.packages.store import Store

    open_database(data / "privindex.db")
    index = Index(Store(store))
    index.load_recorded()
    started = time.monotonic()
    index.catch_up()
    wall = time.monotonic() - started
    me, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "files": index.file_count(),
        "wall_s": wall,
        "cpu_this_process_s": me.ru_utime + me.ru_stime,
        "cpu_workers_s": workers.ru_utime + workers.ru_stime,
        "rss_mb": _rss_mb(),
        **_python_arenas(),
        "glibc_heap_mb": _glibc_heap_mb(),
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def _python_arenas() -> dict:
    """Python's small-object arenas and their empty pools (sys._debugmallocstats, which
    writes to the C stderr: sent to a temporary file for the call)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()

    def number(label: str) -> int:
        found = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) if found else 0

    return {
        "python_arenas_mb": number("# arenas allocated current"),  # 1 MiB each (Python 3.10+)
        "python_empty_pools_mb": round(number("unused pools * 16384 bytes") / 2**20, 1),
    }


def _glibc_heap_mb() -> float | None:
    """glibc's heap, every arena (mallinfo2, glibc 2.33+); None elsewhere."""

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks")
            + ("uordblks", "fordblks", "keepcost")
        ]

    mallinfo2 = getattr(ctypes.CDLL(None), "mallinfo2", None)
    if mallinfo2 is None:
        return None
    mallinfo2.restype = MallInfo2
    return round(mallinfo2().arena / 2**20, 1)


def measure(store: Path) -> dict:
    """A cold start and a warm one, each in a process of its own."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="privindex-catch-up-") as data:
        for start in ("cold", "warm"):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(store), data],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            figures[start] = json.loads(proc.stdout.splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=100_000, help="files in the store, about [100000]")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    p.add_argument("--out", type=Path, help="write the figures as JSON here too")
    p.add_argument("--one", nargs=2, metavar=("STORE", "DATA"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one_start(Path(args.one[0]), Path(args.one[1]))))
        return 0
    store = synth.build_store(args.cache_dir, max(1, args.small // 4), 3).folder
    figures = measure(store)
    print(
        "\n| start | files | catch_up | CPU: this process | CPU: workers | RSS "
        "| Python arenas (empty pools) | glibc heap |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for start, f in figures.items():
        print(
            f"| {start} | {f['files']:,} | {f['wall_s']:.1f} s | {f['cpu_this_process_s']:.2f} s "
            f"| {f['cpu_workers_s']:.2f} s | {f['rss_mb']:.0f} MB "
            f"| {f['python_arenas_mb']} MB ({f['python_empty_pools_mb']} MB) | {f['glibc_heap_mb']} MB |"
        )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
