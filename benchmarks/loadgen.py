"""Load generation and process accounting: wrk when present, a thread-pool client if not.

wrk (C, epoll) costs the 2-core machine far less CPU than any Python client, so the
server, not the client, is what gets measured; the Python client exists only so the smoke
run works where wrk is not installed, and its figures are marked as such. Both read a
"paths file" (one `path<TAB>etag<TAB>accept` per line, the last two optional) and pick a
random line per request, sending If-None-Match when the line has an ETag and Accept when it
names one (the JSON project pages of PEP 691).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

WRK_SCRIPT = r"""
local items = {}
init = function(args)
  for line in io.lines(args[1]) do
    local path, etag, accept = line:match("^([^\t]+)\t?([^\t]*)\t?(.*)$")
    if path then table.insert(items, {path, etag, accept}) end
  end
  math.randomseed(math.floor(os.clock() * 1e6) + os.time() + #items)
end
request = function()
  local item = items[math.random(#items)]
  local headers = {}
  if item[2] ~= "" then headers["If-None-Match"] = item[2] end
  if item[3] ~= "" then headers["Accept"] = item[3] end
  return wrk.format("GET", item[1], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"errors":%d,"bad_status":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def write_paths(path: Path, items: list[tuple[str, ...]]) -> Path:
    """items: (path, etag) or (path, etag, accept)."""
    path.write_text("".join("\t".join(item) + "\n" for item in items))
    return path


def run_load(
    base: str, paths_file: Path, connections: int, seconds: float, client: str, threads: int = 1
) -> dict:
    """Hammer base+path for `seconds`; returns requests, req/s, p50/p99 ms, MB/s, errors."""
    if client == "wrk":
        return _run_wrk(base, paths_file, connections, seconds, threads)
    return _run_python(base, paths_file, connections, seconds)


def _summary(
    requests: int,
    duration: float,
    nbytes: int,
    p50_ms: float,
    p99_ms: float,
    errors: int,
    bad_status: int,
    client: str,
) -> dict:
    return {
        "requests": requests,
        "seconds": round(duration, 3),
        "rps": round(requests / duration, 1) if duration else 0.0,
        "p50_ms": round(p50_ms, 3),
        "p99_ms": round(p99_ms, 3),
        "mb_per_s": round(nbytes / duration / 1e6, 1) if duration else 0.0,
        "errors": errors,
        "bad_status": bad_status,
        "client": client,
    }


def _run_wrk(base: str, paths_file: Path, connections: int, seconds: float, threads: int) -> dict:
    script = paths_file.parent / "random_paths.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    cmd = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        base,
        "--",
        str(paths_file),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    s = json.loads(line[len("WRKJSON ") :])
    return _summary(
        s["requests"],
        s["duration_us"] / 1e6,
        s["bytes"],
        s["p50_us"] / 1e3,
        s["p99_us"] / 1e3,
        s["errors"],
        s["bad_status"],
        "wrk",
    )


def _run_python(base: str, paths_file: Path, connections: int, seconds: float) -> dict:
    """One thread per connection, keep-alive, bounded by a deadline (GIL-bound: a fallback)."""
    items = [(line.split("\t") + ["", ""])[:3] for line in paths_file.read_text().splitlines() if line]
    host, port = base.split("//")[1].rstrip("/").split(":")
    latencies: list[float] = []
    counts = {"bytes": 0, "errors": 0, "bad_status": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine: list[float] = []
        nbytes = errors = bad = 0
        while time.monotonic() < deadline:
            path, etag, accept = rng.choice(items)
            headers = {"If-None-Match": etag} if etag else {}
            if accept:
                headers["Accept"] = accept
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                nbytes += len(resp.read())
                bad += resp.status >= 400
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["bytes"] += nbytes
            counts["errors"] += errors
            counts["bad_status"] += bad

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    duration = time.monotonic() - started
    latencies.sort()
    pct = (
        (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3)
        if latencies
        else (lambda q: 0.0)
    )
    return _summary(
        len(latencies),
        duration,
        counts["bytes"],
        pct(0.50),
        pct(0.99),
        counts["errors"],
        counts["bad_status"],
        "python",
    )


# -- process accounting ----------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (nginx workers, pypi-server's children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        p = pending.pop()
        tree.append(p)
        pending.extend(children.get(p, []))
    return tree


def memory_mb(pid: int) -> dict:
    """Summed VmRSS (now) and VmHWM (each process's peak) of the tree, in MB."""
    rss = hwm = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mb": round(rss / 1024, 1), "hwm_mb": round(hwm / 1024, 1)}


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(
    pid: int, window: float = 1.0, threshold: float = 0.05, timeout: float = 30.0
) -> tuple[float, bool]:
    """Wait until the server tree used < threshold of a core over one window; bounded.

    A test that starts while the server still digests the previous one's backlog would be
    charged for it. Returns (seconds waited, whether it went idle).
    """
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - before < threshold * window:
            return round(time.monotonic() - started, 2), True
        before = now
    return round(time.monotonic() - started, 2), False


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
