"""Load: 32 concurrent clients mixing installs, page reads, downloads and uploads against
one private server (so every request is also a token check). Nothing may fail, be lost
or be corrupted, and the database must never be locked.

CI runs it for 10 seconds; PRIVINDEX_LOAD_SECONDS=60 gives the full run.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import time
from collections import Counter

import pytest
import requests
from conftest import pip, start_server
from helpers import V1_JSON
from webclient import uploader
from wheels import make_wheel, upload

CLIENTS = 32
SECONDS = float(os.environ.get("PRIVINDEX_LOAD_SECONDS", "10"))


@pytest.mark.slow
def test_mixed_load_loses_nothing(tmp_path):
    server = start_server(tmp_path / "store", tmp_path / "data", env={"PRIVINDEX_READ_ACCESS": "token"})
    token = uploader(server, "loader")
    auth = ("__token__", token)
    for i in range(20):  # something to read from the start
        assert upload(server.url, token, make_wheel(tmp_path / "seed", f"seed{i}", "1.0")).status_code == 200

    statuses: Counter = Counter()
    uploaded: dict[str, str] = {}  # filename -> sha256 of what was sent
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(number: int) -> None:
        rng = random.Random(number)
        session = requests.Session()
        session.auth = auth
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                if number < 2:  # two clients install with pip, the heaviest thing users do
                    target = tmp_path / f"pip{number}-{n}"
                    url = server.index_url.replace("http://", f"http://__token__:{token}@")
                    pip(
                        "download",
                        "--no-deps",
                        "--index-url",
                        url,
                        "-d",
                        str(target),
                        f"seed{rng.randrange(20)}",
                    )
                    with lock:
                        statuses["pip-ok"] += 1
                    continue
                action = rng.random()
                if action < 0.15:
                    name = f"load{number}-{n}.0-py3-none-any.whl"
                    wheel = make_wheel(
                        tmp_path / "up",
                        f"load{number}",
                        f"{n}.0",
                        payload=os.urandom(rng.randrange(1000, 200_000)),
                    )
                    resp = upload(server.url, token, wheel)
                    if resp.status_code == 200:
                        with lock:
                            uploaded[name] = hashlib.sha256(wheel.read_bytes()).hexdigest()
                elif action < 0.6:
                    resp = session.get(
                        f"{server.index_url}seed{rng.randrange(20)}/", headers={"Accept": V1_JSON}, timeout=60
                    )
                elif action < 0.7:
                    resp = session.get(server.index_url, timeout=60)
                else:
                    seed = rng.randrange(20)
                    resp = session.get(
                        f"{server.url}/packages/seed{seed}/seed{seed}-1.0-py3-none-any.whl", timeout=60
                    )
                with lock:
                    statuses[resp.status_code] += 1
            except Exception as exc:  # recorded, and the test fails below
                with lock:
                    errors.append(f"client {number}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    print(f"\nload: {SECONDS:.0f} s, {CLIENTS} clients, statuses {dict(statuses)}, {len(uploaded)} uploads")
    assert errors == []
    assert set(statuses) <= {200, "pip-ok"}, statuses
    assert statuses[200] > CLIENTS and statuses["pip-ok"] >= 1
    # every accepted upload is listed and served intact
    session = requests.Session()
    session.auth = auth
    for name, sha256 in uploaded.items():
        project = name.split("-")[0]
        listing = {
            f["filename"]: f
            for f in session.get(
                f"{server.index_url}{project}/", timeout=30, headers={"Accept": V1_JSON}
            ).json()["files"]
        }
        assert listing[name]["hashes"]["sha256"] == sha256
        body = session.get(f"{server.url}/packages/{project}/{name}", timeout=30).content
        assert hashlib.sha256(body).hexdigest() == sha256
    log = server.log()
    assert "database is locked" not in log and "Traceback" not in log
    assert not re.search(r'privindex\.access: \S+ "[^"]*" 5\d\d ', log)
    server.stop()
