#!/usr/bin/env python3
"""The user-level figure of issue 30: `uv pip install` and `pip install` of real wheels.

install-set.txt pins 60 popular wheels (pure Python and binary, for CPython 3.11 on
x86-64 Linux) whose dependencies are all in the list. They are downloaded ONCE with
`pip download` into .cache/install-wheels/: the only step of the benchmarks that uses the
network (pip's own index, as pip is configured on the machine; no index is named). Then:

- the floor: each client installs the set from that folder (`--no-index --find-links`);
- privindex with a warm cache: a loopback privindex serves the folder as its store (the
  "upstream") and a second privindex has it as `upstream_url`;
- pypiserver and devpi (a private index loaded once with the folder) on the same folder.

Every install is isolated (no user config, no cache) into a fresh `--target` folder; each
source and client gets one untimed install first (it warms privindex's upstream cache and
the page cache), then --runs timed ones, round-robin over the sources (every server runs
meanwhile), so the machine's noise falls on all alike: medians, and their ratio to the
floor. pip is the tools virtualenv's (a current pip), and uv installs for that interpreter.

    python benchmarks/install.py [--packages 10] [--runs 3]
    python benchmarks/run.py --install 60 ...   (the same rows, in run.py's report and JSON)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import peers  # noqa: E402

HERE = Path(__file__).resolve().parent
SET_FILE = HERE / "install-set.txt"
CLIENTS = ("uv", "pip")
PEERS = ("pypiserver", "devpi")


def pins(count: int) -> list[str]:
    """The first `count` pins of the set (their dependencies are later in the list)."""
    lines = [line.strip() for line in SET_FILE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")][:count]


def ensure_wheels(cache: Path, log=print) -> Path:
    """The folder of the set's wheels, downloaded once (network) into cache/install-wheels."""
    folder = cache / "install-wheels"
    marker = folder / ".downloaded.txt"
    wanted = "\n".join(pins(10**6))
    if marker.exists() and marker.read_text() == wanted:
        return folder
    log(f"downloading the {len(wanted.splitlines())} wheels of {SET_FILE.name} once (network) ...")
    partial = cache / "install-wheels.partial"
    shutil.rmtree(partial, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(partial)]
        + wanted.splitlines(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pip download of {SET_FILE.name} failed (the pins are for CPython 3.11 on x86-64 "
            f"Linux; is the network reachable?):\n{proc.stderr[-1500:]}"
        )
    (partial / ".downloaded.txt").write_text(wanted)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def uv_binary() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        raise RuntimeError("uv is not installed: pip install uv into this virtualenv")
    return found


def install_command(
    client: str, python: str, source: list[str], requirements: list[str], target: Path
) -> list[str]:
    """source: ["--index-url", url] or ["--no-index", "--find-links", folder]; python: the
    interpreter whose pip installs (a current pip, from the tools virtualenv), and uv's target."""
    if client == "uv":
        return [
            uv_binary(),
            "pip",
            "install",
            "--no-config",
            "--no-cache",
            "--python",
            python,
            "--target",
            str(target),
            *source,
            *requirements,
        ]
    return [
        python,
        "-m",
        "pip",
        "install",
        "--isolated",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *source,
        *requirements,
    ]


def one_install(command: Callable[[Path], list[str]], work: Path) -> tuple[float, int] | str:
    """(seconds, dist-infos installed) of command(target) into a fresh target, or its error."""
    env = {k: v for k, v in peers.clean_env().items() if not k.startswith("UV_")}
    with tempfile.TemporaryDirectory(dir=work) as target:
        started = time.monotonic()
        proc = subprocess.run(command(Path(target)), capture_output=True, text=True, env=env, timeout=900)
        elapsed = time.monotonic() - started
        installed = sum(1 for p in Path(target).iterdir() if p.name.endswith(".dist-info"))
    if proc.returncode != 0:
        return f"install failed ({proc.returncode}): {proc.stderr[-800:]}"
    return elapsed, installed


def measure(cache: Path, work: Path, count: int, runs: int, servers: list[str], bins, log=print) -> dict:
    """The rows: {"packages", "clients": {client: {source: figures}}}. bins(venv) gives a
    peer virtualenv's bin/ (run.py's Context.bin); servers: which peers to include.

    Every source runs at once and the installs go round-robin (each round: every client from
    every source), so a noisy minute of this machine falls on all of them alike; round 0 is
    untimed (it warms privindex's upstream cache and the page cache)."""
    folder = ensure_wheels(cache, log)
    requirements = pins(count)
    python = str(bins("tools") / "python")  # a current pip (the dev virtualenv's may be old)
    shutil.rmtree(work, ignore_errors=True)
    (work / "proxy-store").mkdir(parents=True)
    sources: dict[str, list[str]] = {"find-links folder (floor)": ["--no-index", "--find-links", str(folder)]}
    running: list[peers.Running] = []
    try:
        up = peers.launch(peers.privindex(folder, work / "up-data"), work / "up.log")
        running.append(up)
        proxy = peers.privindex(
            work / "proxy-store", work / "proxy-data", upstream_url=up.server.base + "/simple/"
        )
        running.append(peers.launch(proxy, work / "proxy.log"))
        sources["privindex, warm upstream cache"] = ["--index-url", proxy.base + "/simple/"]
        for name in [s for s in PEERS if s in servers]:
            if name == "pypiserver":
                server = peers.pypiserver(bins("pypiserver"), folder, "simple-dir")
            else:
                serverdir = peers.devpi_loaded(bins("devpi"), cache, folder, "install-set", work, log)
                server = peers.devpi(bins("devpi"), serverdir)
            running.append(peers.launch(server, work / f"{name}.log"))
            sources[name] = ["--index-url", server.base + server.root]
        seconds: dict[tuple[str, str], list[float]] = {}
        out: dict = {"packages": len(requirements), "clients": {c: {} for c in CLIENTS}}
        for round_ in range(runs + 1):
            for client in CLIENTS:
                for source_name, source in sources.items():
                    if "error" in out["clients"][client].get(source_name, {}):
                        continue
                    result = one_install(partial(install_command, client, python, source, requirements), work)
                    if isinstance(result, str):
                        out["clients"][client][source_name] = {"error": f"{client} {result}"}
                        continue
                    if round_:
                        seconds.setdefault((client, source_name), []).append(result[0])
                    times = seconds.get((client, source_name), [])
                    out["clients"][client][source_name] = {
                        "seconds": loadgen.median(times) if times else None,
                        "runs": [round(t, 2) for t in times],
                        "installed": result[1],
                    }
            log(f"install: round {round_} of {runs} done")
        return out
    finally:
        for started in reversed(running):
            peers.stop(started)


def report(figures: dict) -> str:
    """One markdown table per client: median seconds and the ratio to the floor."""
    lines = [f"{figures['packages']} pinned requirements, installed with their dependencies:"]
    for client, sources in figures["clients"].items():
        floor = next(iter(sources.values()), {}).get("seconds")
        lines += ["", f"| {client} | median s | x floor | runs (s) | installed |", "|---|---|---|---|---|"]
        for source, f in sources.items():
            if "error" in f:
                lines.append(f"| {source} | failed: {' '.join(f['error'].split())[-200:]} | | | |")
                continue
            ratio = f"{f['seconds'] / floor:.2f}x" if floor else "-"
            lines.append(f"| {source} | {f['seconds']:.2f} | {ratio} | {f['runs']} | {f['installed']} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packages", type=int, default=60, help="the first K pins of install-set.txt [60]")
    p.add_argument("--runs", type=int, default=3, help="timed installs per source and client [3]")
    p.add_argument("--only", default="pypiserver,devpi", help="peers to include [pypiserver,devpi]")
    p.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    args = p.parse_args()
    bins = lambda venv: peers.ensure_venv(args.cache_dir, venv, print)  # noqa: E731
    servers = args.only.split(",")
    figures = measure(args.cache_dir, args.cache_dir / "run-install", args.packages, args.runs, servers, bins)
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
