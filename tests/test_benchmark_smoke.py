"""The benchmark script runs end to end at a tiny size, so it cannot rot unnoticed.

Only that it works is checked: figures on a shared CI machine are not asserted on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.database_neutral,
]  # the benchmark scripts, their servers

ROOT = Path(__file__).resolve().parent.parent


def run_py(*argv: str) -> subprocess.CompletedProcess:
    """benchmarks/run.py with these options; it must succeed."""
    return run_benchmark("run.py", *argv)


def run_benchmark(script: str, *argv: str) -> subprocess.CompletedProcess:
    """benchmarks/<script> with these options; it must succeed."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *argv],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_benchmark_smoke_run_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    proc = run_py("--smoke", "--cache-dir", str(tmp_path / "cache"), "--out", str(out))

    header = next(line for line in proc.stdout.splitlines() if line.startswith("| figure"))
    assert "privindex" in header
    assert "GET /simple/<random project>/" in proc.stdout

    results = json.loads(out.read_text())["results"]["privindex"]
    assert "error" not in results
    for test in ("root", "project", "revalidate", "file_100k", "file_20m"):
        (figures,) = results["load"][test].values()
        assert figures["rps"] > 0, test
        assert figures["errors"] == figures["bad_status"] == 0, test
    assert results["start_warm_s"] > 0
    assert "seconds" in results["pip_download"], results["pip_download"]

    # privindex behind nginx as README.md recommends (the smoke run adds it where nginx is)
    if shutil.which("nginx") is None and os.environ.get("CI") != "true":
        return
    assert "privindex-nginx" in header and "x nginx" not in header
    behind = json.loads(out.read_text())["results"]["privindex-nginx"]
    assert "error" not in behind, behind
    for test in (
        "root",
        "project",
        "revalidate",
        "file_100k",
        "file_20m",
        "file_100k_plain",
        "file_20m_plain",
    ):
        (figures,) = behind["load"][test].values()
        assert figures["rps"] > 0, test
        assert figures["errors"] == figures["bad_status"] == 0, test
        if test.startswith("file_20m"):  # the bytes came, whoever sent them (not empty bodies)
            assert figures["mb_per_s"] >= 0.9 * 20 * figures["rps"], (test, figures)
    assert "seconds" in behind["pip_download"], behind["pip_download"]
    assert "GET 20 MB wheel, no X-Accel-Redirect" in proc.stdout


def test_issue30_run_puts_sizes_side_by_side_with_nginx_and_writes_results_md(tmp_path):
    """`run.py --issue30` at tiny sizes: one table per store size with each req/s figure's
    ratio to static nginx, a verdict per target of issue 30, and RESULTS.md's newest section
    on top of the older ones (which stay, below "History")."""
    if shutil.which("nginx") is None and os.environ.get("CI") != "true":
        pytest.skip("nginx is not installed")
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n## 2026-01-01: an older section\n\nkept as it was\n")
    out = tmp_path / "results.json"
    argv = [
        "--issue30",
        "--sizes",
        "20,40",
        "--scale-base",
        "10",
        "--only",
        "privindex,privindex-nginx,nginx",
    ]
    argv += ["--install", "0", "--connections", "4", "--duration", "1", "--repeat", "1", "--warmup", "0"]
    argv += ["--idle-window", "0.25", "--pip-runs", "1", "--cache-dir", str(tmp_path / "cache")]
    proc = run_py(*argv, "--out", str(out), "--results-md", str(md))

    for title in (
        "N = 20 projects (103 files):",
        "N = 40 projects (203 files):",
        "N = 10 projects (53 files):",
    ):
        assert title in proc.stdout
    json_row = next(
        line
        for line in proc.stdout.splitlines()
        if line.startswith("| GET /simple/<random project>/ as JSON c=4 req/s")
    )
    assert json_row.count("x nginx)") == 2, json_row  # privindex alone and behind nginx, not nginx itself
    verdicts = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  ")]
    for size in (20, 40):
        for row in (
            "GET /simple/",
            "GET /simple/<random project>/",
            "GET /simple/<random project>/ as JSON",
            "GET 100 KB wheel",
        ):
            line = next(v for v in verdicts if f"N={size}: {row} behind nginx >= 0.5x static nginx" in v)
            assert line.startswith(("MET", "MISSED")), line
    assert any(v.startswith(("MET", "MISSED")) and "N=40 within 15% of N=10" in v for v in verdicts), verdicts
    assert any(v.startswith("n/a") and "RSS under 150 MB at 100,000 files" in v for v in verdicts), verdicts

    sizes = json.loads(out.read_text())["sizes"]
    for size, servers in (("20", 3), ("40", 3), ("10", 1)):
        assert len(sizes[size]) == servers
        for name, result in sizes[size].items():
            assert "error" not in result, (size, name, result)
            for test in ("root", "project", "project_json", "file_100k"):
                (figures,) = result["load"][test].values()
                assert figures["rps"] > 0 and figures["errors"] == figures["bad_status"] == 0, (name, test)

    text = md.read_text()
    assert text.startswith("# Benchmark results\n")
    assert "--issue30 --sizes 20,40" in text and "**Load average**" in text
    assert text.index("N = 40 projects") < text.index("# History") < text.index("an older section")

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import results_md

    results_md.write_section(md, results_md.section(json.loads(out.read_text()), "a later run"))
    again = md.read_text()  # the generated section is replaced, the history is kept once
    assert "a later run" in again and "N = 40 projects" not in again
    assert again.count("# History") == 1 and again.count("kept as it was") == 1


def test_upstream_load_benchmark_runs_and_fetches_each_cold_file_once(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "upstream_load.py"),
            "--clients",
            "6",
            "--files",
            "2",
            "--mb",
            "1",
            "--rate-mb",
            "4",
            "--cache-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert "upstream requests per file: [1, 1]" in proc.stdout, proc.stdout + proc.stderr
    assert "file clients: 6 got 200, 6 with the exact bytes" in proc.stdout
    assert ", 0 did not," in proc.stdout  # every local page answered


def test_slow_clients_benchmark_runs_and_every_slow_client_is_answered(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "slow_clients.py"),
            *["--mb", "2", "--files", "1", "--local-clients", "2", "--upstream-clients", "2"],
            *["--seconds", "2", "--page-rate", "10", "--cache-dir", str(tmp_path)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert "4 of 4 answered" in proc.stdout, proc.stdout + proc.stderr
    assert "| 4 slow clients |" in proc.stdout and "| no slow clients |" in proc.stdout


def test_cold_index_benchmark_measures_both_stores_against_sha256sum(tmp_path):
    out = tmp_path / "cold.json"
    proc = run_benchmark(
        "cold_index.py",
        *("--small", "12", "--big", "2", "--mb", "1", "--repeat", "1"),
        *("--cache-dir", str(tmp_path / "cache"), "--out", str(out)),
    )
    small, big = json.loads(out.read_text())
    assert (small["files"], big["files"]) == (15, 2)  # 3 projects x 4 files + run.py's three extras
    for store in (small, big):
        assert store["listed_s"] >= store["first_answer_s"] > 0
        for who in ("privindex", "sha256sum_one_core", "sha256sum_all_cores"):
            assert store[who]["files_s"] > 0 and store[who]["mb_s"] > 0, (who, store)
        assert store["rss_mb"] > 0 and store["rss_warm_mb"] > 0  # after the cold start, after a warm one
    assert "| small files | 15 |" in proc.stdout and "| big wheels (1 MB) | 2 |" in proc.stdout


def test_catch_up_memory_benchmark_measures_a_cold_and_a_warm_start(tmp_path):
    out = tmp_path / "catch-up.json"
    proc = run_benchmark(
        "catch_up_memory.py", *("--small", "12", "--cache-dir", str(tmp_path / "cache"), "--out", str(out))
    )
    figures = json.loads(out.read_text())
    assert figures["cold"]["files"] == figures["warm"]["files"] == 15
    assert figures["cold"]["python_arenas_mb"] > 0 and figures["warm"]["rss_mb"] > 0
    assert "| cold | 15 |" in proc.stdout and "| warm | 15 |" in proc.stdout
