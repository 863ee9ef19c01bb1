"""pip and uv, the clients our users actually run, install from a live server."""

from __future__ import annotations

import hashlib
import sys

import pytest
import requests
from conftest import pip, uv
from helpers import installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.database_neutral,
]  # pip and uv themselves


def test_pip_install_resolves_a_dependency_from_the_index(read_server, tmp_path):
    proc = pip("install", "--index-url", read_server.index_url, "--target", str(tmp_path / "t"), "Beta_Pkg")
    assert installed(tmp_path / "t") == {"beta_pkg-0.1.dist-info", "alpha-2.0.dist-info"}
    # pip resolved with the PEP 658 metadata files the index advertises
    assert "beta_pkg-0.1-py3-none-any.whl.metadata" in proc.stdout


def test_pip_respects_requires_python(read_server, tmp_path):
    proc = pip(
        "download",
        "--no-deps",
        "--index-url",
        read_server.index_url,
        "-d",
        str(tmp_path),
        "future-only",
        check=False,
    )
    assert proc.returncode != 0
    assert "Requires-Python" in proc.stdout + proc.stderr
    assert not list(tmp_path.iterdir())


def test_pip_download_gets_identical_bytes(read_server, dists, tmp_path):
    pip(
        "download",
        "--index-url",
        read_server.index_url,
        "-d",
        str(tmp_path),
        "--no-binary",
        ":none:",
        "alpha==1.0",
    )
    (got,) = tmp_path.iterdir()
    assert got.read_bytes() == (dists.folder / got.name).read_bytes()


def test_pip_download_of_an_sdist(read_server, dists, tmp_path):
    pip(
        "download",
        "--no-deps",
        "--no-build-isolation",
        "--index-url",
        read_server.index_url,
        "-d",
        str(tmp_path),
        "--no-binary",
        ":all:",
        "alpha==2.0",
    )
    (got,) = tmp_path.iterdir()
    assert got.name == "alpha-2.0.tar.gz"
    assert got.read_bytes() == (dists.folder / got.name).read_bytes()


def test_pip_require_hashes_with_the_published_hashes(read_server, tmp_path):
    doc = requests.get(
        f"{read_server.index_url}alpha/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    ).json()
    hashes = [f["hashes"]["sha256"] for f in doc["files"] if f["filename"].startswith("alpha-2.0")]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==2.0 " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n")
    pip(
        "install",
        "--require-hashes",
        "--index-url",
        read_server.index_url,
        "--target",
        str(tmp_path / "t"),
        "-r",
        str(requirements),
    )
    assert installed(tmp_path / "t") == {"alpha-2.0.dist-info"}
    # a wrong hash is refused: the published hashes are what protects the install
    requirements.write_text(f"alpha==2.0 --hash=sha256:{hashlib.sha256(b'x').hexdigest()}\n")
    proc = pip(
        "install",
        "--require-hashes",
        "--index-url",
        read_server.index_url,
        "--target",
        str(tmp_path / "t2"),
        "-r",
        str(requirements),
        check=False,
    )
    assert proc.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in proc.stderr


def test_uv_pip_install(read_server, tmp_path):
    uv(
        "pip",
        "install",
        "--index-url",
        read_server.index_url,
        "--python",
        sys.executable,
        "--target",
        str(tmp_path / "t"),
        "beta-pkg",
    )
    assert installed(tmp_path / "t") == {"beta_pkg-0.1.dist-info", "alpha-2.0.dist-info"}
