#!/usr/bin/env python3
"""What does refusing a hostile archive cost? (issue 24, item 3)

Builds two sdists (tests/hostile_archives.py): 600,000 empty members before PKG-INFO, and
a gzip bomb (1 GiB of zeros in a 1 MB file). Times reading each the way an upload or the
indexer does, in a fresh process per run (distfile.read_facts, as the upload validates it:
wall and CPU time, peak RSS above the process's size before the read), then uploads each to a real
`privindex serve` through the legacy API (status, time to the answer, the server's peak
RSS). Medians of --runs runs. Compare a checkout from before the change with --checkout:

    python benchmarks/archive_bombs.py                        # this checkout
    python benchmarks/archive_bombs.py --checkout /tmp/old    # e.g. a `git archive` of main
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
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "tests"))
import hostile_archives  # noqa: E402
from wheels import upload_form  # noqa: E402

READ = """
import json, os, sys, time
from pathlib import Path
from privindex.packages.distfile import InvalidDistribution, read_facts

def rss(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) / 1024

limits = {}
if "PRIVINDEX_MAX_ARCHIVE_MEMBERS" in os.environ:  # --max-members, as the server reads it
    from privindex.packages.archives import ArchiveLimits
    limits = {"limits": ArchiveLimits(members=int(os.environ["PRIVINDEX_MAX_ARCHIVE_MEMBERS"]))}
before = rss("VmRSS:")
start, cpu = time.perf_counter(), time.process_time()
try:
    outcome = "accepted: " + read_facts(Path(sys.argv[1]), strict=True, **limits).name
except InvalidDistribution as exc:
    outcome = "refused: " + str(exc)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                  "rss_mb": rss("VmHWM:") - before, "outcome": outcome}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkout", type=Path, default=HERE, help="privindex source tree to run [this one]")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement [3]")
    parser.add_argument("--members", type=int, default=600_000, help="empty members before PKG-INFO [600000]")
    parser.add_argument("--max-members", type=int, help="max_archive_members [the setting's default]")
    parser.add_argument("--bomb-mb", type=int, default=1024, help="the gzip bomb's unpacked MiB [1024]")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="privindex-bombs-bench-"))
    try:
        start = time.perf_counter()
        files = {
            "many members": hostile_archives.many_members_sdist(work / "files", "many", "1.0", args.members),
            "gzip bomb": hostile_archives.gzip_bomb_sdist(
                work / "files", "bomb", "1.0", args.bomb_mb * hostile_archives.MiB
            ),
        }
        print(
            f"built in {time.perf_counter() - start:.1f} s: "
            + ", ".join(f"{k} {p.stat().st_size / 1e6:.2f} MB" for k, p in files.items())
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVINDEX_")}
        env.update(PYTHONPATH=str(args.checkout), PRIVINDEX_REQUIRE_2FA="false")
        if args.max_members:
            env["PRIVINDEX_MAX_ARCHIVE_MEMBERS"] = str(args.max_members)
        for kind, path in files.items():
            runs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, "-c", READ, str(path)],
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                        cwd=args.checkout,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
            print(
                f"in-process  {kind:12} {_median(runs, 'seconds'):7.3f} s "
                f"({_median(runs, 'cpu'):.3f} s CPU)  "
                f"peak +{_median(runs, 'rss_mb'):6.1f} MB  "
                f"({runs[0]['outcome'][:110]})"
            )
        _through_a_server(args, env, work, files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _through_a_server(args, env: dict, work: Path, files: dict[str, Path]) -> None:
    import requests

    cli = [sys.executable, "-m", "privindex"]
    where = ["--store", str(work / "store"), "--data-dir", str(work / "data")]
    run = dict(text=True, env=env, check=True, capture_output=True, cwd=args.checkout)
    for folder in ("store", "data"):  # a fresh installation: the CLI acts only on folders that exist
        (work / folder).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*cli, "user", "add", "bench", "--password-stdin", *where], input="a long password\n", **run
    )
    token = subprocess.run([*cli, "token", "create", "bench", *where], **run).stdout.strip()
    with open(work / "server.log", "w") as log:
        proc = subprocess.Popen(
            [*cli, "serve", "--port", "0", *where],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=args.checkout,
        )
    try:
        url = next(line.split()[2].rstrip("/") for line in proc.stdout if line.startswith("listening on"))
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        for kind, path in files.items():
            times, statuses = [], set()
            for _ in range(args.runs):
                form, part = upload_form(path)
                start = time.perf_counter()
                resp = requests.post(
                    f"{url}/legacy/",
                    data=form,
                    files={"content": part},
                    auth=("__token__", token),
                    timeout=600,
                )
                times.append(time.perf_counter() - start)
                statuses.add(f"{resp.status_code} {resp.reason[:90]}")
            print(
                f"upload      {kind:12} {statistics.median(times):7.3f} s  "
                f"server peak {_peak_rss_mb(proc.pid):6.1f} MB  ({' | '.join(sorted(statuses))})"
            )
    finally:
        proc.terminate()
        proc.wait(30)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


if __name__ == "__main__":
    main()
