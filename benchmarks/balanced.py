#!/usr/bin/env python3
"""Two privindex processes behind an nginx load balancer, against one behind the same nginx.

    python benchmarks/balanced.py [--projects 200] [--duration 2] [--connections 1,16,64]
    python benchmarks/run.py --balanced ...   (the same rows, in run.py's report and JSON)

Both processes share one PostgreSQL database (a throw-away cluster started the way
.ci/run does: Debian's PostgreSQL, initdb into a temp folder as `postgres`, a loopback
port, fsync off; or the admin URL in BENCH_DATABASE_URL) and one store. One nginx
(one worker) listens on two ports: one proxies to the first process only, the other
balances over both (round robin, keep-alive to the upstreams in both cases). Rows:
`GET /simple/<random project>/` through each port, wrk with 1 thread, as in run.py. On
a 2-core machine wrk, nginx and the servers share the cores: read the ratio, not the
absolute figures. Skipped, with a message, when PostgreSQL or nginx is not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import peers  # noqa: E402
import synth  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS = {
    "one": "nginx -> 1 process, GET /simple/<random project>/",
    "two": "nginx -> 2 processes (one PostgreSQL), GET /simple/<random project>/",
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--projects", type=int, default=200)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--connections", default="1,16,64")
    args = p.parse_args()
    print(report(measure(HERE / ".cache", args.projects, args.duration, args.connections)))
    return 0


def report(figures: dict) -> str:
    """The rows as a Markdown table and the two-process/one-process ratio; or why skipped."""
    if figures.get("skipped"):
        return f"load-balanced rows skipped: {figures['skipped']}"
    conns = figures["connections"]
    lines = [
        f"| figure | {' | '.join(f'c={c} req/s, p50/p99 ms' for c in conns)} |",
        "|---|" + "---|" * len(conns),
    ]
    for key, title in ROWS.items():
        cells = figures["rows"][key]
        lines.append(f"| {title} | {' | '.join(f'{r[0]:.0f}, {r[1]:.1f}/{r[2]:.1f}' for r in cells)} |")
    ratios = [
        f"c={c}: {two[0] / one[0]:.2f}x" if one[0] else f"c={c}: n/a"
        for c, one, two in zip(conns, figures["rows"]["one"], figures["rows"]["two"])
    ]
    lines.append(f"\ntwo processes / one process: {', '.join(ratios)} ({os.cpu_count()} CPUs)")
    if figures.get("errors"):
        lines.append(f"note: {figures['errors']} requests failed or got a status other than 200")
    return "\n".join(lines)


def _run(*argv: str, as_postgres: bool = False) -> None:
    if as_postgres and os.geteuid() == 0:
        argv = ("runuser", "-u", "postgres", "--", *argv)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@contextmanager
def postgres() -> Iterator[str | None]:
    """An admin URL: BENCH_DATABASE_URL, else a throw-away cluster (None if none can be made)."""
    if os.environ.get("BENCH_DATABASE_URL"):
        yield os.environ["BENCH_DATABASE_URL"]
        return
    bins = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
    )
    if not bins:
        yield None
        return
    pg_bin = bins[-1]
    folder = Path(tempfile.mkdtemp(prefix="privindex-bench-pg."))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = peers.free_port()
    started = False
    try:
        _run(
            str(pg_bin / "initdb"),
            "-D",
            str(folder / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            as_postgres=True,
        )
        _run(
            str(pg_bin / "pg_ctl"),
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
            as_postgres=True,
        )
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run(str(pg_bin / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop", as_postgres=True)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(admin_url: str, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def balancer(work: Path, single: str, both: list[str]) -> tuple[peers.Server, int, int]:
    """One nginx, two ports: the first proxies to `single`, the second balances over `both`."""
    port_one, port_two = peers.free_port(), peers.free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"  {kind}_temp_path {work}/tmp-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    proxy = """proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $http_host;"""
    conf = work / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
{temp}
  upstream one {{ server {single}; keepalive 64; }}
  upstream two {{ {" ".join(f"server {b};" for b in both)} keepalive 64; }}
  server {{ listen 127.0.0.1:{port_one}; location / {{ proxy_pass http://one; {proxy} }} }}
  server {{ listen 127.0.0.1:{port_two}; location / {{ proxy_pass http://two; {proxy} }} }}
}}
""")
    server = peers.Server(
        "nginx-lb", ["nginx", "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")], port_one
    )
    return server, port_one, port_two


def measure(cache: Path, projects: int, duration: float, connections: str) -> dict:
    """Run the rows; returns {"connections", "rows": {"one"|"two": [(rps, p50, p99)...]}},
    or {"skipped": why}."""
    if shutil.which("nginx") is None:
        return {"skipped": "nginx is not installed (apt-get install nginx)"}
    conns = [int(c) for c in connections.split(",")]
    with postgres() as admin_url:
        if admin_url is None:
            return {
                "skipped": "PostgreSQL is not installed (apt-get install postgresql), "
                "nor BENCH_DATABASE_URL set"
            }
        store = synth.build_store(cache, projects, 4, print)
        work = cache / "run-balanced"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        url = fresh_database(admin_url, "privindex_bench_balanced")
        running: list[peers.Running] = []
        try:
            for i in (1, 2):  # one after the other: the second finds the facts the first recorded
                server = peers.privindex(store.folder, work / "data", database_url=url)
                server.root = "/readyz"  # ready: the store indexed (a start indexes in the background)
                running.append(peers.launch(server, work / f"privindex-{i}.log"))
            lb, port_one, port_two = balancer(
                work,
                *(f"127.0.0.1:{r.server.port}" for r in running[:1]),
                [f"127.0.0.1:{r.server.port}" for r in running],
            )
            running.append(peers.launch(lb, work / "nginx.log"))
            paths = loadgen.write_paths(
                work / "paths.txt", [(f"/simple/{name}/", "") for name in store.projects]
            )
            client = "wrk" if loadgen.have_wrk() else "python"
            figures: dict = {"connections": conns, "rows": {}, "client": client}
            for key, port in (("one", port_one), ("two", port_two)):
                cells = []
                for c in conns:
                    for r in running[:2]:
                        loadgen.wait_idle(r.pid, 0.5)
                    loadgen.run_load(f"http://127.0.0.1:{port}", paths, c, min(1.0, duration), client)  # warm
                    result = loadgen.run_load(f"http://127.0.0.1:{port}", paths, c, duration, client)
                    cells.append((result["rps"], result["p50_ms"], result["p99_ms"]))
                    figures["errors"] = figures.get("errors", 0) + result["errors"] + result["bad_status"]
                    time.sleep(0.2)
                figures["rows"][key] = cells
            return figures
        finally:
            for r in reversed(running):
                peers.stop(r)


if __name__ == "__main__":
    sys.exit(main())
