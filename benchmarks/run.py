#!/usr/bin/env python3
"""privindex benchmarks: privindex against pypiserver, devpi and nginx, on the same files.

One command builds (or reuses) a synthetic store, starts each server in turn on it, loads
it with wrk, and prints one table with privindex's ratio to every peer; raw figures go to
benchmarks/results/latest.json. See benchmarks/README.md.

    python benchmarks/run.py                     # the full comparison (N=5000, M=4)
    python benchmarks/run.py --smoke             # seconds: tiny store, privindex alone
    python benchmarks/run.py --scale 20000,500   # privindex alone at two store sizes
    python benchmarks/run.py --issue30 --results-md   # issue 30's targets, into RESULTS.md

Servers run one after another, never together, and the harness waits for each to go idle
(CPU near zero) before every measurement, so one test's backlog is not charged to the next.
Figures taken from fewer than --min-requests requests are marked with '*'.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import peers  # noqa: E402
import results_md  # noqa: E402
import synth  # noqa: E402

HERE = Path(__file__).resolve().parent
ALL_SERVERS = ["privindex", "privindex-nginx", "pypiserver", "pypiserver-cached", "devpi", "nginx"]
PEERS = ["pypiserver", "pypiserver-cached", "devpi"]  # nginx is the ceiling, not a peer
# privindex behind nginx as README.md recommends: its cells show their ratio to nginx
BEHIND_NGINX = "privindex-nginx"
TESTS = {  # key -> row label
    "root": "GET /simple/",
    "project": "GET /simple/<random project>/",
    "project_json": "GET /simple/<random project>/ as JSON",
    "revalidate": "revalidate project (If-None-Match)",
    "file_100k": "GET 100 KB wheel",
    "file_20m": "GET 20 MB wheel",
}
# The file rows again behind nginx with send_files_via off (privindex sends the bytes):
# measured for the privindex-nginx column only; nginx's cells repeat its own file rows.
PLAIN_TESTS = {  # key -> (row label, the row it is compared with)
    "file_100k_plain": ("GET 100 KB wheel, no X-Accel-Redirect", "file_100k"),
    "file_20m_plain": ("GET 20 MB wheel, no X-Accel-Redirect", "file_20m"),
}
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"  # PEP 691's JSON page
REVALIDATE_SAMPLE = 1000
PRIVINDEX_UPLOAD_SETTINGS = {"PRIVINDEX_REQUIRE_2FA": "false"}
# Behind nginx, privindex writes pre-rendered pages and a serving tree of hard links under
# <data_dir>/static/ for nginx to serve (issue 30); a checkout without them is measured without.
STATIC_SETTINGS = {"static_pages": "true", "static_files": "true"}
# Issue 30's comparison: the default store and the scaling store (N x 5 = 100,000 files at
# N = 20,000), privindex alone at N = 500 for the scaling target, the user-level install.
ISSUE30_PRESET = [
    "--sizes=5000,20000",
    "--scale-base=500",
    "--connections=16,64",
    "--tests=root,project,project_json,file_100k",
    "--only=privindex,privindex-nginx,nginx,pypiserver,devpi",
    "--install=60",
    "--no-upload",
]
ISSUE30_TESTS = ("root", "project", "project_json", "file_100k")
RSS_FILES = 100_000  # issue 30: RSS under 150 MB at 100,000 files
PROFILE_RATE = 250  # py-spy samples per second


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=5000, help="N synthetic projects [5000]")
    p.add_argument("--versions", type=int, default=4, help="M wheel versions per project [4]")
    p.add_argument(
        "--only",
        default=",".join(ALL_SERVERS),
        help=f"comma-separated servers to run, in order [{','.join(ALL_SERVERS)}]",
    )
    p.add_argument("--connections", default="1,16,64", help="concurrency levels [1,16,64]")
    p.add_argument(
        "--tests",
        default=",".join([*TESTS, *PLAIN_TESTS]),
        help=f"comma-separated load tests [{','.join([*TESTS, *PLAIN_TESTS])}]",
    )
    p.add_argument("--duration", type=float, default=2.0, help="seconds per measurement [2]")
    p.add_argument("--repeat", type=int, default=3, help="measurements per figure; the median is kept [3]")
    p.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of unrecorded load before each test [1]"
    )
    p.add_argument(
        "--idle-window",
        type=float,
        default=1.0,
        help="before each measurement, wait until the server used < 5%% CPU for this long [1]",
    )
    p.add_argument(
        "--min-requests", type=int, default=200, help="fewer requests than this: figure marked * [200]"
    )
    p.add_argument("--pip-runs", type=int, default=3, help="timed `pip download` runs per server [3]")
    p.add_argument("--upload-mb", type=int, default=200, help="size of the twine upload test wheel [200]")
    p.add_argument("--no-upload", action="store_true", help="skip the twine upload test")
    p.add_argument("--python-client", action="store_true", help="use the Python client even if wrk exists")
    p.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads; 1 leaves the other core to the server [1]"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record privindex during each test at the middle concurrency level",
    )
    p.add_argument(
        "--scale",
        metavar="N1,N2",
        help="privindex alone at each store size (e.g. 20000,500); ratios are first / other",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds: N=20, M=2, privindex alone, short runs, Python client if no wrk",
    )
    p.add_argument(
        "--cache-dir", type=Path, default=HERE / ".cache", help="stores, venvs, devpi data [.cache]"
    )
    p.add_argument(
        "--upstream",
        action="store_true",
        help="add the pull-through cache rows (benchmarks/upstream.py) to the report",
    )
    p.add_argument(
        "--balanced",
        action="store_true",
        help="also two privindex processes on PostgreSQL behind nginx vs one (benchmarks/balanced.py)",
    )
    p.add_argument(
        "--sizes",
        metavar="N1,N2",
        help="run the servers at each store size, one table each, with issue 30's targets",
    )
    p.add_argument(
        "--scale-base",
        type=int,
        metavar="N",
        help="with --sizes: privindex alone at this size too, for 'largest N within 15%% of N'",
    )
    p.add_argument(
        "--install",
        type=int,
        default=0,
        metavar="K",
        help="add the install figure of the first K pins of install-set.txt (benchmarks/install.py) [0]",
    )
    p.add_argument("--install-runs", type=int, default=3, help="timed installs per source and client [3]")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="JSON",
        help="with --sizes: a run of the same command on the code before (privindex alone no worse)",
    )
    p.add_argument(
        "--results-md",
        type=Path,
        nargs="?",
        const=HERE / "RESULTS.md",
        metavar="MD",
        help="write the report as the newest section of RESULTS.md (or MD); replaces an earlier one",
    )
    p.add_argument(
        "--issue30",
        action="store_true",
        help=f"issue 30's targets in one run: {' '.join(ISSUE30_PRESET)} (options given win)",
    )
    p.add_argument("--report", type=Path, metavar="JSON", help="print the table and targets of a saved run")
    p.add_argument(
        "--out", type=Path, help="JSON results [results/latest.json; scale-latest.json with --scale]"
    )
    if "--issue30" in (sys.argv[1:] if argv is None else argv):
        p.set_defaults(**vars(p.parse_args(ISSUE30_PRESET)))
    args = p.parse_args(argv)
    if args.smoke:
        args.projects, args.versions = 20, 2
        args.only = "privindex,privindex-nginx" if shutil.which("nginx") else "privindex"
        args.connections, args.duration, args.repeat, args.warmup = "4", 1.0, 1, 0.0
        args.pip_runs, args.upload_mb, args.idle_window = 1, 5, 0.25
    if args.out is None:
        args.out = HERE / "results" / ("scale-latest.json" if args.scale else "latest.json")
    args.conns = [int(c) for c in args.connections.split(",")]
    args.servers = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.servers) - set(ALL_SERVERS)
    if unknown:
        p.error(f"unknown server(s) {sorted(unknown)}; choose from {ALL_SERVERS}")
    args.test_keys = [t.strip() for t in args.tests.split(",") if t.strip()]
    unknown = set(args.test_keys) - {*TESTS, *PLAIN_TESTS}
    if unknown:
        p.error(f"unknown test(s) {sorted(unknown)}; choose from {[*TESTS, *PLAIN_TESTS]}")
    return args


# -- one server ------------------------------------------------------------------------------


class Context:
    """What every server's run shares: the store, the work folder, the client, the options."""

    def __init__(self, args: argparse.Namespace, store: synth.SynthStore, workdir: Path):
        self.args, self.store, self.workdir = args, store, workdir
        self.client = "wrk" if loadgen.have_wrk() and not args.python_client else "python"
        self.pages: dict[str, bytes] | None = None  # privindex's pages, for nginx
        self.bins: dict[str, Path] = {}
        self.store_mb = sum(f.stat().st_size for f in store.files()) / 1e6
        known = peers.privindex_settings()
        self.static_settings = {k: v for k, v in STATIC_SETTINGS.items() if k in known}
        self.static_notes = [
            f"setting {k} is unknown to this privindex: measured without it"
            for k in STATIC_SETTINGS
            if k not in known
        ]

    def bin(self, venv: str) -> Path:
        if venv not in self.bins:
            self.bins[venv] = peers.ensure_venv(self.args.cache_dir, venv, log)
        return self.bins[venv]


def make_server(
    name: str, ctx: Context, data_dir: Path, send_files_via: str = "x-accel-redirect"
) -> peers.Server:
    store = ctx.store.folder
    if name == "privindex":
        return peers.privindex(store, data_dir)
    if name == BEHIND_NGINX:
        server = peers.privindex_behind_nginx(
            store, data_dir, ctx.workdir / f"{name}-proxy", send_files_via, **ctx.static_settings
        )
        server.notes += ctx.static_notes
        return server
    if name == "pypiserver":
        return peers.pypiserver(ctx.bin("pypiserver"), store, "simple-dir")
    if name == "pypiserver-cached":
        return peers.pypiserver(ctx.bin("pypiserver"), store, "cached-dir")
    if name == "devpi":
        key = f"N{ctx.store.manifest['projects']}-M{ctx.store.manifest['versions']}"
        serverdir = peers.devpi_loaded(ctx.bin("devpi"), ctx.args.cache_dir, store, key, ctx.workdir, log)
        return peers.devpi(ctx.bin("devpi"), serverdir)
    if name == "nginx":
        return peers.nginx(data_dir, store, ctx.pages or fallback_pages(ctx.store))
    raise ValueError(name)


class Live:
    """The server under test, restarted when a saturated run leaves it an endless backlog.

    wrk stops after its duration, but a server that needs a second per request still owes
    every request it had already read (64 connections: a minute of work). Waiting that out
    for every figure would take hours, so after a run that got fewer than two answers per
    connection, a server still busy after a short wait is restarted instead (with a note).
    """

    def __init__(self, server: peers.Server, logfile: Path):
        self.server, self.logfile = server, logfile
        self.running: peers.Running | None = None
        self.restarts, self.peak_mb = 0, 0.0

    @property
    def pid(self) -> int:
        return self.running.pid

    def start(self) -> float:
        self.running = peers.launch(self.server, self.logfile)
        loadgen.wait_idle(self.pid, timeout=60)
        return self.running.start_seconds

    @property
    def ready_seconds(self) -> float | None:
        return self.running.ready_seconds if self.running else None

    def stop(self) -> None:
        if self.running:
            self.peak_mb = max(self.peak_mb, loadgen.memory_mb(self.pid)["hwm_mb"])
            peers.stop(self.running)
            self.running = None

    def settle(self, window: float, after_saturated: bool) -> float:
        """Wait for idle; restart instead if a saturated server is still busy. Returns seconds."""
        waited, idle = loadgen.wait_idle(self.pid, window, timeout=2.5 * window if after_saturated else 30)
        if not idle and after_saturated:
            self.stop()
            self.start()
            self.restarts += 1
            peers.http("GET", self.server.base + self.server.root, timeout=120)  # rebuild its caches
            waited += loadgen.wait_idle(self.pid, window)[0]
        return waited


def bench_server(name: str, ctx: Context, label: str | None = None) -> dict:
    """Cold start, warm start, the load tests, pip download, upload: one server's figures."""
    label = label or name
    args, result = ctx.args, {"notes": [], "load_avg_before": round(os.getloadavg()[0], 1)}
    data_dir = ctx.workdir / f"{label}-data"
    # behind nginx: privindex's own data dir, warm (its cold start is privindex's, measured already)
    reuse = name == BEHIND_NGINX and (ctx.workdir / "privindex-data").is_dir()
    if reuse:
        data_dir = ctx.workdir / "privindex-data"
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)

    # Cold: a fresh data dir (privindex must read every file). Warm: the same data dir again.
    server = make_server(name, ctx, data_dir)
    result["notes"] += server.notes
    log(f"{label}: {'warm start (privindex data dir)' if reuse else 'cold start'} ...")
    live = Live(server, ctx.workdir / f"{label}.log")
    try:
        if not reuse:
            result["start_cold_s"] = live.start()
            result["ready_cold_s"] = live.ready_seconds
            result["rss_cold_mb"] = loadgen.memory_mb(live.pid)["rss_mb"]
            live.stop()
            live.peak_mb = 0.0
        result["start_warm_s"] = live.start()
        result["ready_warm_s"] = live.ready_seconds
        result["rss_warm_mb"] = loadgen.memory_mb(live.pid)["rss_mb"]
        if result.get("ready_cold_s"):
            result["index_mb_per_s"] = round(ctx.store_mb / result["ready_cold_s"], 1)
        log(
            f"{label}: started in {result.get('start_cold_s', '-')} s cold, {result['start_warm_s']} s warm; "
            f"RSS {result['rss_warm_mb']} MB"
        )
        if args.profile and name == "privindex":
            live.stop()
            profile_startup(server, ctx, label)
            live.start()
        if name == "privindex" and ctx.pages is None:
            project = server.base + server.project.format(name=ctx.store.projects[0])
            ctx.pages = {
                "root": peers.http("GET", server.base + server.root)[2],
                "project": peers.http("GET", project)[2],
                "project_json": peers.http("GET", project, headers={"Accept": JSON_ACCEPT})[2],
            }
        result["load"] = load_tests(label, live, ctx, result["notes"])
        if name != "nginx":
            live.settle(args.idle_window, after_saturated=True)
            result["pip_download"] = pip_download(server, ctx)
        if name == BEHIND_NGINX and set(PLAIN_TESTS) & set(args.test_keys):
            # the file rows again, privindex sending the bytes itself
            live.stop()
            live.server = make_server(name, ctx, data_dir, send_files_via="off")
            live.start()
            result["load"].update(load_tests(label, live, ctx, result["notes"], tests=PLAIN_TESTS))
    finally:
        live.stop()
    result["peak_rss_mb"] = live.peak_mb
    result["load_avg_after"] = round(os.getloadavg()[0], 1)  # 1-minute load: a busy machine shows here
    if live.restarts:
        result["notes"].append(
            f"restarted {live.restarts} times to drop the backlog of saturated runs "
            "(its peak RSS is the highest of its processes)"
        )
    if name not in ("nginx", BEHIND_NGINX) and not args.no_upload:  # behind nginx: privindex's upload
        try:
            result["upload"] = upload_test(name, ctx, label)
        except Exception as exc:  # the read figures are worth keeping without it
            result["upload"] = {"error": str(exc)}
    return result


def bench_servers(names: list[str], ctx: Context) -> dict[str, dict]:
    """Each server in turn on ctx's store; a failing one is an error entry, not the end."""
    results: dict[str, dict] = {}
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            results[name] = bench_server(name, ctx)
        except Exception as exc:  # one broken peer must not lose the others' figures
            log(f"{name}: FAILED: {exc}")
            results[name] = {"error": str(exc), "notes": []}
    for result in results.values():
        result["store_files"] = ctx.store.file_count
    return results


def load_tests(label: str, live: Live, ctx: Context, notes: list[str], tests: dict | None = None) -> dict:
    """The load tests chosen with --tests, of TESTS or PLAIN_TESTS (keys whose paths are those
    of the row named)."""
    args, rng, server = ctx.args, random.Random(1), live.server
    tests = tests or {key: (title, key) for key, title in TESTS.items()}
    tests = {key: test for key, test in tests.items() if key in args.test_keys}
    wanted = {same_as for _title, same_as in tests.values()}
    projects = [(server.project.format(name=p), "") for p in ctx.store.projects]
    paths: dict[str, list[tuple[str, ...]]] = {"root": [(server.root, "")], "project": projects}
    if "project_json" in wanted:
        paths["project_json"] = [(p, "", JSON_ACCEPT) for p, _ in projects]
    for key, project, filename in (
        ("file_100k", synth.FILE_100K, ctx.store.file_100k),
        ("file_20m", synth.FILE_20M, ctx.store.file_20m),
    ):
        if key in wanted:
            paths[key] = [(file_path(server, ctx, project, filename), "")]
    if "revalidate" in wanted:
        sample = rng.sample(projects, min(REVALIDATE_SAMPLE, len(projects)))
        if peers.http("GET", server.base + sample[0][0])[1].get("etag"):
            with ThreadPoolExecutor(8) as pool:
                etags = list(
                    pool.map(lambda item: peers.http("GET", server.base + item[0])[1].get("etag", ""), sample)
                )
            paths["revalidate"] = [(p, etag) for (p, _), etag in zip(sample, etags)]
        else:
            paths["revalidate"] = sample
            notes.append("no ETag on project pages: the revalidation test sends plain GETs")
    for items in paths.values():  # every single-URL test must answer 200 before it is timed
        if len(items) == 1 and peers.http("GET", server.base + items[0][0], timeout=120)[0] != 200:
            raise RuntimeError(f"{label}: {items[0][0]} does not answer 200")

    results: dict = {}
    saturated = True  # the ETag collection may have left work behind
    for key, (title, same_as) in tests.items():
        paths_file = loadgen.write_paths(ctx.workdir / f"paths-{label}-{key}.txt", paths[same_as])
        if args.warmup:
            live.settle(args.idle_window, saturated)
            warm = loadgen.run_load(server.base, paths_file, 1, args.warmup, ctx.client, args.wrk_threads)
            saturated = warm["requests"] < 2
        results[key] = {}
        for conns in args.conns:
            runs = []
            for _ in range(args.repeat):
                waited = live.settle(args.idle_window, saturated)
                profiler = maybe_profile(label, key, conns, live.running, ctx)
                run = loadgen.run_load(
                    server.base, paths_file, conns, args.duration, ctx.client, args.wrk_threads
                )
                if profiler:
                    profiler.join()
                run["idle_wait_s"] = waited
                runs.append(run)
                # Fewer than two answers per connection: every connection had a request still
                # queued when wrk stopped, the server owes a backlog; repeating costs minutes.
                saturated = run["requests"] < 2 * conns
                if saturated:
                    break
            results[key][str(conns)] = r = summarize(runs)
            r["rss_after_mb"] = loadgen.memory_mb(live.pid)["rss_mb"]
            log(
                f"{label}: {title} c={conns}: {r['rps']} req/s, p50 {r['p50_ms']} ms, "
                f"p99 {r['p99_ms']} ms ({r['requests']} requests, {r['errors'] + r['bad_status']} errors, "
                f"RSS {r['rss_after_mb']} MB)"
            )
    return results


def summarize(runs: list[dict]) -> dict:
    """Median of each figure over the repeats; requests and errors are totals."""
    out = {k: loadgen.median([r[k] for r in runs]) for k in ("rps", "p50_ms", "p99_ms", "mb_per_s")}
    out.update({k: sum(r[k] for r in runs) for k in ("requests", "errors", "bad_status")})
    out.update(client=runs[0]["client"], runs=runs)
    return out


def file_path(server: peers.Server, ctx: Context, project: str, filename: str) -> str:
    """The URL path of a file, as the server's own project page links it."""
    if server.name == "nginx":
        return f"/packages/{filename}"
    page_url = server.base + server.project.format(name=project)
    status, _h, body = peers.http("GET", page_url)
    for href in re.findall(r'href="([^"]+)"', body.decode()):
        if href.split("#")[0].endswith("/" + filename):
            return urlsplit(urljoin(page_url, href)).path
    raise RuntimeError(f"{server.name}: {page_url} ({status}) links no {filename}")


def fallback_pages(store: synth.SynthStore) -> dict[str, bytes]:
    """PEP 503 and PEP 691 pages for nginx when privindex did not run first to render them."""
    links = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in store.projects)
    module = store.projects[0].replace("-", "_")
    files = sorted(f.name for f in store.folder.glob(f"{module}-*"))
    project = "".join(f'<a href="../../packages/{f}">{f}</a><br>\n' for f in files)
    page = "<!DOCTYPE html>\n<html><body>\n{}</body></html>\n"
    as_json = {
        "meta": {"api-version": "1.0"},
        "name": store.projects[0],
        "files": [{"filename": f, "url": f"../../packages/{f}", "hashes": {}} for f in files],
    }
    return {
        "root": page.format(links).encode(),
        "project": page.format(project).encode(),
        "project_json": json.dumps(as_json).encode(),
    }


def maybe_profile(label: str, key: str, conns: int, running: peers.Running, ctx: Context):
    """With --profile, py-spy samples privindex through one measurement (in a thread)."""
    args = ctx.args
    middle = args.conns[len(args.conns) // 2]
    if not (args.profile and running.server.name == "privindex" and conns == middle):
        return None
    out = args.out.parent / "profiles" / f"{label}-{key}-c{conns}.txt"
    if out.exists():
        return None  # one profile per test, not per repeat
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(ctx.bin("tools") / "py-spy"),
        "record",
        "--pid",
        str(running.pid),
        "--duration",
        str(max(1, round(args.duration))),
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "raw",
        "--nonblocking",
        "--gil",
        "--output",
        str(out),
    ]

    def record() -> None:
        subprocess.run(cmd, capture_output=True)
        if out.exists():
            out.with_suffix(".summary.txt").write_text(profile_summary(out, max(1, round(args.duration))))

    thread = threading.Thread(target=record)
    thread.start()
    time.sleep(0.3)  # let py-spy attach
    return thread


def profile_startup(server: peers.Server, ctx: Context, label: str) -> None:
    """With --profile, one more warm start under py-spy, stopped once it has answered."""
    out = ctx.args.out.parent / "profiles" / f"{label}-warm-start.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = dataclasses.replace(
        server,
        argv=[
            str(ctx.bin("tools") / "py-spy"),
            "record",
            "--rate",
            str(PROFILE_RATE),
            "--format",
            "raw",
            "--output",
            str(out),
            "--",
            *server.argv,
        ],
    )
    running = peers.launch(spy, ctx.workdir / f"{label}-profile.log")
    os.killpg(running.proc.pid, signal.SIGINT)  # privindex stops on it; py-spy then writes
    running.proc.wait(timeout=60)
    if out.exists():
        out.with_suffix(".summary.txt").write_text(profile_summary(out, running.start_seconds, gil=False))


def profile_summary(raw: Path, seconds: float, top: int = 25, gil: bool = True) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks.

    Recorded with --gil, a sample exists only while some thread holds the GIL, so samples
    / (rate x seconds) is how busy the GIL was: near 100% means more threads cannot help.
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    package: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # per function, not per line
        n = int(count)
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        where = re.search(r"\(([^/)]+)", frames[-1])  # "f (waitress/task.py)" -> waitress
        key = where.group(1).split(".")[0] if where else "?"
        package[key] = package.get(key, 0) + n
    if gil:
        lines = [
            f"{total} samples of the GIL-holding thread in {seconds} s at {PROFILE_RATE} Hz: "
            f"the GIL was held about {100 * total / (PROFILE_RATE * seconds):.0f}% of the time"
        ]
    else:
        lines = [f"{total} samples of every thread in {seconds} s at {PROFILE_RATE} Hz"]
    for title, table in (("self, by package", package), ("self", own), ("inclusive", inclusive)):
        lines.append(f"\ntop {top} by {title} time:")
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


# -- clients: pip download and twine upload -----------------------------------------------------


def pip_python(ctx: Context) -> str:
    """The tools venv's current pip; the smoke run uses this interpreter's pip (no install)."""
    if ctx.args.smoke:
        return sys.executable
    return str(ctx.bin("tools") / "python")


def pip_download(server: peers.Server, ctx: Context) -> dict:
    """End-to-end `pip download` of a project with ten dependencies, all from this index."""
    times, python = [], pip_python(ctx)  # resolved first: creating the venv is not timed
    for _ in range(ctx.args.pip_runs):
        with tempfile.TemporaryDirectory(dir=ctx.workdir) as target:
            started = time.monotonic()
            proc = subprocess.run(
                [
                    python,
                    "-m",
                    "pip",
                    "download",
                    "--isolated",
                    "--no-cache-dir",
                    "--disable-pip-version-check",
                    "--index-url",
                    server.base + server.root,
                    "-d",
                    target,
                    ctx.store.deps_project,
                ],
                capture_output=True,
                text=True,
                env=peers.clean_env(),
                timeout=300,
            )
            elapsed = time.monotonic() - started
            got = len(os.listdir(target))
        if proc.returncode != 0 or got != len(ctx.store.manifest["deps"]) + 1:
            return {"error": f"pip download failed ({proc.returncode}, {got} files): {proc.stderr[-500:]}"}
        times.append(elapsed)
    return {"seconds": loadgen.median(times), "runs": [round(t, 3) for t in times]}


def twine_command(ctx: Context) -> list[str] | None:
    if not ctx.args.smoke:
        return [str(ctx.bin("tools") / "twine")]
    probe = subprocess.run([sys.executable, "-m", "twine", "--version"], capture_output=True)
    return [sys.executable, "-m", "twine"] if probe.returncode == 0 else None


def upload_test(name: str, ctx: Context, label: str) -> dict:
    """twine upload of a big wheel to a fresh, empty instance: time and server memory growth."""
    twine = twine_command(ctx)
    if twine is None:
        return {"skipped": "twine is not installed"}
    wheel = synth.upload_wheel(ctx.args.cache_dir, ctx.args.upload_mb)
    work = ctx.workdir / f"{label}-upload"
    shutil.rmtree(work, ignore_errors=True)
    (work / "store").mkdir(parents=True)
    user, password = "__token__", "x"
    if name == "privindex":
        token = privindex_token(work / "data")
        if token is None:
            return {"skipped": "privindex has no `user`/`token` commands yet (upload issue not merged)"}
        password = token
        server = peers.privindex(
            work / "store", work / "data", max_upload_mb=str(ctx.args.upload_mb + 16), require_2fa="false"
        )
        path = "/legacy/"
    elif name.startswith("pypiserver"):
        server = peers.pypiserver(
            ctx.bin("pypiserver"), work / "store", "simple-dir" if name == "pypiserver" else "cached-dir"
        )
        path = "/"
    elif name == "devpi":
        peers.devpi_init(ctx.bin("devpi"), work / "devpi")
        server = peers.devpi(ctx.bin("devpi"), work / "devpi")
        server.root = "/+api"
        user, password, path = (
            peers.DEVPI_USER,
            peers.DEVPI_PASSWORD,
            f"/{peers.DEVPI_USER}/{peers.DEVPI_INDEX}/",
        )
    else:
        return {"skipped": f"{name} takes no uploads"}
    running = peers.launch(server, ctx.workdir / f"{label}-upload.log")
    try:
        if name == "devpi":
            peers.devpi_create_index(server.base)
        loadgen.wait_idle(running.pid, window=ctx.args.idle_window)
        before = loadgen.memory_mb(running.pid)
        started = time.monotonic()
        proc = subprocess.run(
            [
                *twine,
                "upload",
                "--repository-url",
                server.base + path,
                "-u",
                user,
                "-p",
                password,
                "--disable-progress-bar",
                "--non-interactive",
                "--verbose",
                str(wheel),
            ],
            capture_output=True,
            text=True,
            env=peers.clean_env(),
            timeout=600,
        )
        elapsed = time.monotonic() - started
        after = loadgen.memory_mb(running.pid)
        project = wheel.name.split("-")[0].replace("_", "-")
        listed = (
            wheel.name in peers.http("GET", server.base + server.project.format(name=project))[2].decode()
        )
    finally:
        peers.stop(running)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if name == "privindex" and re.search(r"\b(404|405)\b", output):
            return {"skipped": "privindex has no upload endpoint yet (POST /legacy/ answered 404/405)"}
        return {"error": f"twine failed ({proc.returncode}): {output[-1500:]}"}
    if not listed:
        return {"error": f"twine succeeded but {wheel.name} is not on the project page"}
    return {
        "seconds": round(elapsed, 2),
        "mb": ctx.args.upload_mb,
        "rss_before_mb": before["rss_mb"],
        "peak_rss_mb": after["hwm_mb"],
        "growth_mb": round(after["hwm_mb"] - before["rss_mb"], 1),
    }


def privindex_token(data_dir: Path) -> str | None:
    """A user and an API token through privindex's CLI, or None if the CLI has no such commands.

    Uploads need a second factor by default; a benchmark user has none, so it is turned off.
    """
    cli = [sys.executable, "-m", "privindex"]
    env = peers.clean_env(PYTHONPATH=str(peers.REPO), **PRIVINDEX_UPLOAD_SETTINGS)
    if subprocess.run([*cli, "user", "--help"], capture_output=True, env=env).returncode != 0:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)  # the CLI acts only on a data dir that exists
    for step, stdin in (
        (["user", "add", "bench", "--password-stdin"], "bench-password-123\n"),
        (["token", "create", "bench"], None),
    ):
        proc = subprocess.run(
            [*cli, *step, "--data-dir", str(data_dir)], input=stdin, capture_output=True, text=True, env=env
        )
        if proc.returncode != 0:
            raise RuntimeError(f"privindex {' '.join(step)} failed: {proc.stderr.strip()}")
    words = proc.stdout.split()
    return max(words, key=len) if words else None  # the token is the longest word printed


# -- the report ---------------------------------------------------------------------------------


def rows(results: dict, conns: list[int], min_requests: int) -> list[tuple[str, dict, bool]]:
    """(label, {column: (text, value)}, higher_is_better) for every figure in the table."""
    out = []
    ordered = []  # each file row, then its no-X-Accel-Redirect row
    for key, title in TESTS.items():
        ordered.append((key, title, key))
        ordered += [(k, t, same) for k, (t, same) in PLAIN_TESTS.items() if same == key]
    for key, title, same_as in ordered:
        for c in conns:
            rps, lat = {}, {}
            for col, r in results.items():
                # nginx has no privindex setting: its cells in a no-X-Accel row are its file row's
                m = r.get("load", {}).get(same_as if col == "nginx" else key, {}).get(str(c))
                if m and m["requests"] == 0:  # not one answer within the duration
                    rps[col], lat[col] = ("0*", None), (f">{1000 * m['runs'][0]['seconds']:.0f}*", None)
                elif m:
                    star = "*" if m["requests"] < min_requests else ""
                    rps[col] = (f"{m['rps']:.0f}{star}", m["rps"])
                    lat[col] = (f"{m['p50_ms']:.1f}/{m['p99_ms']:.1f}{star}", m["p99_ms"])
            if any(key in r.get("load", {}) for r in results.values()):  # a test that ran
                out.append((f"{title} c={c} req/s", rps, True))
                out.append((f"{title} c={c} p50/p99 ms", lat, False))
    simple = [
        ("start to first answer, cold (s)", lambda r: r.get("start_cold_s"), False),
        ("start to first answer, warm (s)", lambda r: r.get("start_warm_s"), False),
        ("start to every file indexed, cold (s)", lambda r: r.get("ready_cold_s"), False),
        ("start to every file checked, warm (s)", lambda r: r.get("ready_warm_s"), False),
        ("cold indexing, store MB / s to ready", lambda r: r.get("index_mb_per_s"), True),
        ("RSS after warm start (MB)", lambda r: r.get("rss_warm_mb"), False),
        ("peak RSS after load tests (MB)", lambda r: r.get("peak_rss_mb"), False),
        ("pip download, 1 + 10 deps (s)", lambda r: r.get("pip_download", {}).get("seconds"), False),
        ("twine upload (s)", lambda r: r.get("upload", {}).get("seconds"), False),
        ("upload: server RSS growth (MB)", lambda r: r.get("upload", {}).get("growth_mb"), False),
        ("machine load average after its tests", lambda r: r.get("load_avg_after"), None),
    ]
    for title, get, higher in simple:
        cells = {col: (f"{get(r):g}", get(r)) for col, r in results.items() if get(r) is not None}
        if cells:
            out.append((title, cells, higher))
    return out


def table(results: dict, conns: list[int], min_requests: int, versus: str | None = None) -> str:
    """Every server side by side; each other column also shows first-column / that column,
    except privindex behind nginx, which shows that column / nginx ("x nginx"). With versus,
    every req/s figure shows that column / the versus column instead."""
    cols = list(results)
    first = cols[0]
    body = []
    for title, cells, higher in rows(results, conns, min_requests):
        line = [title]
        for col in cols:
            text, value = cells.get(col, ("-", None))
            ref = cells.get(first, (None, None))[1]
            ngx = cells.get("nginx", (None, None))[1]
            if versus:
                ref = cells.get(versus, (None, None))[1]
                if col != versus and value is not None and ref and higher:
                    text += f" ({value / ref:.2f}x {versus})"
            elif col == BEHIND_NGINX and col != first:
                if value is not None and ngx and higher is not None:
                    text += f" ({value / ngx:.2f}x nginx)"
            elif col != first and value and ref is not None and higher is not None:  # None: no ratio
                text += f" ({ref / value:.2f}x)"
            line.append(text)
        body.append(line)
    header = ["figure", *cols]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    fmt = lambda row: "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |"  # noqa: E731
    lines = [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)]
    return "\n".join(lines)


def req_per_s(load: dict, key: str, c: int) -> float:
    return load.get(key, {}).get(str(c), {}).get("rps") or 0


def ratio(load: dict, other: dict, key: str, c: int) -> float | None:
    """req/s of one server's load test over another's (None: the other has no figure)."""
    return req_per_s(load, key, c) / req_per_s(other, key, c) if req_per_s(other, key, c) else None


def judged(target: str, ratios: list[tuple], threshold: float, unit: str = "x") -> dict:
    """A target met when every (where, ratio) reaches threshold; None: no figures to judge."""
    ratios = [(c, r) for c, r in ratios if r is not None]
    met = min(r for _c, r in ratios) >= threshold if ratios else None
    where = lambda c: f"c={c}" if isinstance(c, int) else c  # noqa: E731  (a row key)
    detail = ", ".join(
        f"{where(c)}: {r:.2f}{unit}" if unit == "x" else f"{where(c)}: {r:.0%}" for c, r in ratios
    )
    return {"target": target, "met": met, "detail": detail or "no figures"}


def targets(results: dict, conns: list[int]) -> list[dict]:
    """The issue's targets that this run can judge: met is True, False or None (cannot say)."""
    out = []
    pv = results.get("privindex", {}).get("load")
    peer_loads = [results[p]["load"] for p in PEERS if results.get(p, {}).get("load")]

    def judge(target, ratios, threshold, unit="x"):
        out.append(judged(target, ratios, threshold, unit))

    if pv and peer_loads:
        for key in ("project", "root", "file_100k"):
            best = {c: max(req_per_s(load, key, c) for load in peer_loads) for c in conns}
            judge(
                f"{TESTS[key]}: >= 2x best peer req/s",
                [(c, req_per_s(pv, key, c) / best[c] if best[c] else None) for c in conns],
                2,
            )
    if pv and 16 in conns:
        for key in ("project", "root"):
            p99 = pv[key]["16"]["p99_ms"]
            out.append(
                {
                    "target": f"{TESTS[key]}: p99 <= 20 ms at 16 connections",
                    "met": p99 <= 20,
                    "detail": f"{p99} ms",
                }
            )
    ngx = results.get("nginx", {}).get("load")
    if pv and ngx:
        judge(
            "20 MB wheel: >= 80% of nginx req/s",
            [(c, ratio(pv, ngx, "file_20m", c)) for c in conns],
            0.8,
            unit="%",
        )
    started = results.get("privindex", {})
    if "start_cold_s" in started:
        out.append(
            {
                "target": "privindex answers within 1 s of start, cold and warm",
                "met": max(started["start_cold_s"], started["start_warm_s"]) < 1,
                "detail": f"cold {started['start_cold_s']} s (every file indexed after "
                f"{started.get('ready_cold_s')} s), warm {started['start_warm_s']} s",
            }
        )
    behind = results.get(BEHIND_NGINX, {}).get("load")
    if behind and ngx:
        judge(
            f"{TESTS['file_20m']} behind nginx (X-Accel-Redirect): >= 90% of nginx req/s",
            [(c, ratio(behind, ngx, "file_20m", c)) for c in conns if c in (1, 16)],
            0.9,
            unit="%",
        )
        if 16 in conns:
            judge(
                "every row behind nginx at c=16: >= 0.5x nginx req/s",
                [(key, ratio(behind, ngx, key, 16)) for key in TESTS],
                0.5,
            )
    upload = results.get("privindex", {}).get("upload", {})
    if "growth_mb" in upload:
        out.append(
            {
                "target": "upload grows privindex RSS by < 64 MB",
                "met": upload["growth_mb"] < 64,
                "detail": f"{upload['growth_mb']} MB for a {upload['mb']} MB wheel",
            }
        )
    elif upload:
        out.append(
            {
                "target": "upload grows privindex RSS by < 64 MB",
                "met": None,
                "detail": upload.get("skipped") or " ".join(upload.get("error", "").split())[-240:],
            }
        )
    return out


def issue30_targets(data: dict) -> list[dict]:
    """Issue 30's targets over a --sizes run: behind nginx >= 0.5x static nginx, the largest
    store within 15% of the smallest for privindex alone, RSS at 100,000 files, and (with
    --baseline) privindex alone no slower than the code before."""
    conns, sizes, out = data["meta"]["options"]["conns"], data["sizes"], []
    for n, results in sizes.items():
        behind, ngx = results.get(BEHIND_NGINX, {}).get("load"), results.get("nginx", {}).get("load")
        for key in ISSUE30_TESTS:
            if behind and ngx and key in ngx:
                out.append(
                    judged(
                        f"N={n}: {TESTS[key]} behind nginx >= 0.5x static nginx req/s",
                        [(c, ratio(behind, ngx, key, c)) for c in conns],
                        0.5,
                    )
                )
    alone = {n.split()[0]: r["privindex"] for n, r in sizes.items() if "load" in r.get("privindex", {})}
    if len(alone) >= 2:
        small, big = min(alone, key=int), max(alone, key=int)
        for key in ("project", "project_json"):
            if key in alone[small]["load"]:
                out.append(
                    judged(
                        f"privindex alone, {TESTS[key]}: N={big} within 15% of N={small}",
                        [(c, ratio(alone[big]["load"], alone[small]["load"], key, c)) for c in conns],
                        0.85,
                        unit="%",
                    )
                )
    if alone:
        n, r = max(alone.items(), key=lambda item: item[1]["store_files"])
        enough = r["store_files"] >= RSS_FILES
        out.append(
            {
                "target": f"privindex RSS under 150 MB at {RSS_FILES:,} files",
                "met": r["peak_rss_mb"] < 150 if enough else None,
                "detail": f"at N={n}, {r['store_files']:,} files: {r['rss_warm_mb']} MB after start, "
                f"peak {r['peak_rss_mb']} MB after the load tests"
                + ("" if enough else f" (not judged: fewer than {RSS_FILES:,} files)"),
            }
        )
    for n, before in data.get("baseline", {}).items():
        if n in alone:
            out.append(
                judged(
                    f"privindex alone at N={n}: no figure worse than the baseline run (10% for noise)",
                    [
                        (f"{key} c={c}", ratio(alone[n]["load"], before, key, c))
                        for key in before
                        for c in conns
                    ],
                    0.9,
                    unit="%",
                )
            )
    return out


def scale_targets(results: dict, conns: list[int]) -> list[dict]:
    (big_label, big), (small_label, small) = list(results.items())[0], list(results.items())[-1]
    out = []
    for c in conns:
        a, b = big["load"]["project"][str(c)]["rps"], small["load"]["project"][str(c)]["rps"]
        out.append(
            {
                "target": f"project page req/s at c={c}: {big_label} within 15% of {small_label}",
                "met": a >= 0.85 * b,
                "detail": f"{a} vs {b} ({a / b:.0%})",
            }
        )
    out.append(
        {
            "target": f"RSS under 150 MB at {big_label}",
            "met": big["peak_rss_mb"] < 150,
            "detail": f"{big['rss_warm_mb']} MB after start, peak {big['peak_rss_mb']} MB",
        }
    )
    out.append(
        {
            "target": f"warm restart to first answer under 1 s at {big_label}",
            "met": big["start_warm_s"] < 1,
            "detail": f"{big['start_warm_s']} s",
        }
    )
    out.append(
        {
            "target": f"cold start to first answer under 1 s at {big_label}",
            "met": big["start_cold_s"] < 1,
            "detail": f"{big['start_cold_s']} s; every file indexed after {big.get('ready_cold_s')} s",
        }
    )
    return out


def sha256sum_rates(folder: Path) -> dict:
    """MB/s of coreutils' sha256sum over the store's files, with one process and with one
    per core (xargs -P): the disk-and-hash speed a cold index can hope for."""
    out = {"store_mb": round(sum(f.stat().st_size for f in synth.dist_files(folder)) / 1e6, 1)}
    for label, parallel in (("one_core", 1), ("all_cores", os.cpu_count() or 1)):
        started = time.monotonic()
        subprocess.run(
            f"find . -type f ! -path './.*' -print0 | xargs -0 -n 500 -P {parallel} sha256sum > /dev/null",
            shell=True,
            cwd=folder,
            check=True,
        )
        out[label] = round(out["store_mb"] / (time.monotonic() - started), 1)
    return out


def versions(ctx: Context) -> dict:
    def cmd(argv):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    out = {
        "privindex": cmd([sys.executable, "-m", "privindex", "--version"]),
        "python": sys.version.split()[0],
        "client": ctx.client,
    }
    if ctx.client == "wrk":
        out["wrk"] = cmd(["wrk", "-v"])
    for name, venv, argv in (
        ("pypiserver", "pypiserver", ["pypi-server", "--version"]),
        ("devpi-server", "devpi", ["devpi-server", "--version"]),
        ("pip", "tools", ["pip", "--version"]),
    ):
        if name in ctx.bins or venv in ctx.bins:
            out[name] = cmd([str(ctx.bins[venv] / argv[0]), *argv[1:]])
    if {"nginx", BEHIND_NGINX} & set(ctx.args.servers):
        out["nginx"] = cmd(["nginx", "-v"])
    return out


def machine() -> dict:
    mem = next((x.split()[1] for x in open("/proc/meminfo") if x.startswith("MemTotal")), "0")
    model = next(
        (x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name")), "?"
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_avg_at_start": os.getloadavg(),
    }


def notes(results: dict) -> list[str]:
    out = []
    for name, r in results.items():
        for note in r.get("notes", []) + [r.get("error")] + [r.get("upload", {}).get("skipped")]:
            if note:
                out.append(f"note: {name}: {note}")
    return out


def verdicts(judged: list[dict]) -> list[str]:
    """The pass/fail lines of the targets."""
    out = ["", "targets:"] if judged else []
    for t in judged:
        verdict = {True: "MET   ", False: "MISSED", None: "n/a   "}[t["met"]]
        out.append(f"  {verdict} {t['target']}: {t['detail']}")
    return out


def sizes_report(data: dict) -> str:
    """A --sizes run: one table per store size with every req/s figure's ratio to static
    nginx, issue 30's targets, and the install figure."""
    meta, opts = data["meta"], data["meta"]["options"]
    conns, min_requests = opts["conns"], opts["min_requests"]
    lines = [
        f"privindex benchmarks, {meta['date']}, M={opts['versions']} versions per project, "
        f"client {meta['versions'].get('client')}, "
        f"{opts['duration']:g} s x {opts['repeat']} per figure (median)"
    ]
    for n, results in data["sizes"].items():
        shown = {name: r for name, r in results.items() if "error" not in r}
        files = next((r["store_files"] for r in results.values() if "store_files" in r), 0)
        versus = "nginx" if "nginx" in shown else None
        lines += ["", f"N = {n} projects ({files:,} files):", ""]
        lines += [table(shown, conns, min_requests, versus) if shown else "(no server produced figures)"]
        lines += notes(results)
    lines += [
        "",
        "(x nginx) = that column / static nginx on the same folder, for req/s: 1.00x is nginx's speed. "
        f"* = fewer than {min_requests} requests.",
    ]
    data["targets"] = issue30_targets(data)
    lines += verdicts(data["targets"])
    if data.get("install"):
        import install

        lines += ["", "user-level install (benchmarks/install.py):", "", install.report(data["install"])]
    return "\n".join(lines)


def report(data: dict) -> str:
    """The table, the notes and the targets, from the raw figures of a run (or a saved JSON)."""
    if "sizes" in data:
        return sizes_report(data)
    meta, results, opts = data["meta"], data["results"], data["meta"]["options"]
    conns, min_requests = opts["conns"], opts["min_requests"]
    shown = {name: r for name, r in results.items() if "error" not in r}
    scale = opts.get("scale")
    judged = scale_targets(shown, conns) if scale else targets(shown, conns)
    data["targets"] = judged
    first = next(iter(shown), "")
    lines = [
        f"privindex benchmarks, {meta['date']}, N={scale or opts['projects']} projects x "
        f"M={opts['versions']} versions, client {meta['versions'].get('client')}, "
        f"{opts['duration']:g} s x {opts['repeat']} per figure (median)",
        "",
        table(shown, conns, min_requests) if shown else "(no server produced figures)",
        "",
        f"(x) = {first} / that column: above 1 is better for req/s, below 1 for ms, s and MB. "
        f"(x nginx) = {BEHIND_NGINX} / nginx. * = fewer than {min_requests} requests.",
    ]
    lines += notes(results)
    if data.get("sha256sum"):
        h = data["sha256sum"]
        rates = ", ".join(
            f"{name} {r['index_mb_per_s']} MB/s" for name, r in shown.items() if r.get("index_mb_per_s")
        )
        lines.append(
            f"cold indexing ({h['store_mb']} MB of files, start to every file listed): {rates or '-'}; "
            f"sha256sum over the same files: {h['one_core']} MB/s on one core, "
            f"{h['all_cores']} MB/s on all cores"
        )
    lines += verdicts(judged)
    if data.get("upstream"):
        import upstream

        lines += [
            "",
            "pull-through cache (privindex in front of a loopback upstream privindex):",
            upstream.report(data["upstream"]),
        ]
    if data.get("balanced"):
        import balanced

        lines += [
            "",
            "load-balanced (nginx in front of privindex processes sharing one PostgreSQL):",
            balanced.report(data["balanced"]),
        ]
    return "\n".join(lines)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt  # so every `finally` stops the server it started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.report:
        data = json.loads(args.report.read_text())
        print(report(data))
        if args.results_md:
            results_md.write_section(args.results_md, results_md.section(data, report(data)))
        return 0
    started = time.monotonic()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    workdir = args.cache_dir / ("run-smoke" if args.smoke else "run")  # logs stay here for a look
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)

    results: dict[str, dict] = {}
    sizes: dict[str, dict] = {}
    if args.scale:
        for n in [int(n) for n in args.scale.split(",")]:
            store = synth.build_store(args.cache_dir, n, args.versions, log)
            ctx = Context(args, store, workdir)
            results[f"privindex N={n}"] = bench_server("privindex", ctx, label=f"privindex-N{n}")
    elif args.sizes:
        for n in [int(n) for n in args.sizes.split(",")]:
            ctx = Context(args, synth.build_store(args.cache_dir, n, args.versions, log), workdir / f"N{n}")
            sizes[str(n)] = bench_servers(args.servers, ctx)
        if args.scale_base:
            store = synth.build_store(args.cache_dir, args.scale_base, args.versions, log)
            base = bench_servers(["privindex"], Context(args, store, workdir / f"N{args.scale_base}"))
            sizes.setdefault(str(args.scale_base), base)
    else:
        store = synth.build_store(args.cache_dir, args.projects, args.versions, log)
        ctx = Context(args, store, workdir)
        results = bench_servers(args.servers, ctx)
    hashing = sha256sum_rates(ctx.store.folder) if shutil.which("sha256sum") and not sizes else None
    upstream_figures = None
    if args.upstream:
        import upstream  # benchmarks/upstream.py: privindex in front of a loopback upstream privindex

        upstream_figures = upstream.measure(
            args.cache_dir, min(args.projects, 200), args.duration, args.connections, 40
        )
    balanced_figures = None
    if args.balanced:
        import balanced  # benchmarks/balanced.py: nginx in front of two privindex processes on PostgreSQL

        balanced_figures = balanced.measure(
            args.cache_dir, min(args.projects, 1000), args.duration, args.connections
        )
    install_figures = None
    if args.install:
        import install  # benchmarks/install.py: uv and pip installs of real wheels

        install_figures = install.measure(
            args.cache_dir, workdir / "install", args.install, args.install_runs, args.servers, ctx.bin, log
        )
    meta["versions"] = versions(ctx)
    meta["seconds"] = round(time.monotonic() - started, 1)
    meta["load_avg_after"] = os.getloadavg()
    data = {"meta": meta, "results": results}
    if sizes:
        data["sizes"] = sizes
    if args.baseline:  # privindex alone's load figures per store size, from the run before
        before = json.loads(args.baseline.read_text()).get("sizes", {})
        data["baseline"] = {
            n.split()[0]: r["privindex"]["load"]
            for n, r in before.items()
            if "load" in r.get("privindex", {})
        }
    if install_figures:
        data["install"] = install_figures
    if hashing:
        data["sha256sum"] = hashing
    if upstream_figures:
        data["upstream"] = upstream_figures
    if balanced_figures:
        data["balanced"] = balanced_figures
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))  # first the raw figures, whatever happens next
    print(report(data))
    args.out.write_text(json.dumps(data, indent=1))  # now with the targets
    print(f"\nraw figures: {args.out}  ({meta['seconds']} s in all)")
    if args.results_md:
        results_md.write_section(args.results_md, results_md.section(data, report(data)))
        print(f"written to {args.results_md}")
    every = [*results.values(), *(r for by_name in sizes.values() for r in by_name.values())]
    return 0 if any("error" not in r for r in every) else 1


if __name__ == "__main__":
    sys.exit(main())
