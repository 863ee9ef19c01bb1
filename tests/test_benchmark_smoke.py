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


def test_benchmark_smoke_run_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

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


def test_cold_index_benchmark_measures_both_stores_against_sha256sum(tmp_path):
    out = tmp_path / "cold.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "cold_index.py"),
            *("--small", "12", "--big", "2", "--mb", "1", "--repeat", "1"),
            *("--cache-dir", str(tmp_path / "cache"), "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    small, big = json.loads(out.read_text())
    assert (small["files"], big["files"]) == (15, 2)  # 3 projects x 4 files + run.py's three extras
    for store in (small, big):
        assert store["listed_s"] >= store["first_answer_s"] > 0
        for who in ("privindex", "sha256sum_one_core", "sha256sum_all_cores"):
            assert store[who]["files_s"] > 0 and store[who]["mb_s"] > 0, (who, store)
    assert "| small files | 15 |" in proc.stdout and "| big wheels (1 MB) | 2 |" in proc.stdout
