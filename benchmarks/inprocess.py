#!/usr/bin/env python3
"""privindex's own cost per read-path request: the whole WSGI stack in-process, no HTTP.

On a shared machine HTTP figures move by +-30 % between runs; this times only what is
privindex's (middleware, access log with the handler `serve` installs writing to
/dev/null, routing, the page cache, the file answer), so a change to it shows. A/B two
checkouts, interleaved, medians:

    python benchmarks/inprocess.py --checkout /tmp/main-src --checkout .

Each checkout runs in a subprocess of its own (its own imports), on the same synthetic
store (N=500 by default), one row per read-path test, microseconds per request. Project
pages are asked in turn, so past page_cache_size (4,096) pages, as at --projects 20000,
every one is a page cache miss: the render's cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, logging, os, shutil, sys, time
checkout, store_dir, work, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, checkout)
from privindex.ops import logs
from privindex.app import create_app
from privindex.config import Settings
real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w")
logs.configure("info", False, "text")   # as `serve` does: the access log is formatted and written
sys.stderr = real_stderr
shutil.rmtree(work, ignore_errors=True)
from pathlib import Path
app = create_app(Settings(store=Path(store_dir), data_dir=Path(work))).wsgi_app
projects = sorted({f.split("-")[0].replace("_", "-") for f in os.listdir(store_dir) if f.startswith("syn_0")})
base = {"REQUEST_METHOD": "GET", "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "pip/24.0 CPython/3.11", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": None}
seen = {}
def start_response(status, headers, exc_info=None):
    seen["h"] = headers
def call(extra):
    body = app(dict(base, **extra), start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close:
        close()
pages = [{"PATH_INFO": f"/simple/{p}/"} for p in projects]
for env in pages:
    call(env)  # every page rendered once
etags = []
for env in pages:
    call(env)
    etags.append(dict(env, HTTP_IF_NONE_MATCH=dict(seen["h"])["ETag"]))
big = next(f for f in os.listdir(store_dir) if f.startswith("syn_file_100k"))
json_pages = [dict(env, HTTP_ACCEPT="application/vnd.pypi.simple.v1+json") for env in pages]
tests = {"root": [{"PATH_INFO": "/simple/"}], "project": pages, "project_json": json_pages,
         "revalidate": etags, "file_100k": [{"PATH_INFO": f"/packages/{big}"}]}
out = {}
for key, envs in tests.items():
    m = n // 4 if key in ("root", "file_100k") else n
    started = time.perf_counter()
    for i in range(m):
        call(envs[i % len(envs)])
    out[key] = (time.perf_counter() - started) / m * 1e6
print(json.dumps(out))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkout", action="append", type=Path, required=True, help="a source tree (repeat)")
    p.add_argument("--projects", type=int, default=500)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--requests", type=int, default=8000)
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    import synth

    store = synth.build_store(args.cache_dir, args.projects, 4, lambda m: print(m, file=sys.stderr))
    times: dict[int, dict[str, list[float]]] = {i: {} for i in range(len(args.checkout))}
    for round_ in range(args.rounds):
        order = range(len(args.checkout)) if round_ % 2 == 0 else reversed(range(len(args.checkout)))
        for i in order:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(args.checkout[i].resolve()),
                    str(store.folder),
                    str(args.cache_dir / f"inprocess-{i}"),
                    str(args.requests),
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"{args.checkout[i]}: {proc.stderr[-2000:]}")
            for key, us in json.loads(proc.stdout).items():
                times[i].setdefault(key, []).append(us)
    keys = list(times[0])
    print(f"us per request (median of {args.rounds} rounds)")
    print("| test | " + " | ".join(str(c) for c in args.checkout) + " |")
    print("|---|" + "---|" * len(args.checkout))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{statistics.median(times[i][key]):.1f}" for i in times) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
