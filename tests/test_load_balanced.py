"""Two `privindex serve` processes on one PostgreSQL database and one package folder, behind
Debian's nginx on loopback as a load balancer (an `upstream` with both), driven by pip, uv
and twine through nginx only. Then one server is killed (SIGKILL) in the middle of an
upload it is receiving, and nothing is lost: every earlier upload is still listed and
downloadable with its hash, nothing partial is listed or left in the folder, the upload
lands when retried, and `privindex check` passes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import testdb
from conftest import free_port, nginx_conf, pip, privindex_cli, run_nginx, start_server, twine, uv, wait_until
from helpers import listed
from urllib3 import encode_multipart_formdata
from webclient import uploader
from wheels import make_wheel, upload_form

pytestmark = [
    pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian's nginx (.ci/run installs it)"),
    pytest.mark.skipif(
        not testdb.ON_POSTGRES and os.environ.get("CI") != "true",
        reason="needs TEST_PRIVINDEX_DATABASE_URL (PostgreSQL)",
    ),
]
if os.environ.get("CI") == "true" and not testdb.ON_POSTGRES:
    pytestmark = [pytest.mark.skip(reason="the PostgreSQL run of .ci/run covers this")]
pytestmark = [*pytestmark, pytest.mark.slow]  # two servers behind nginx, one killed; pip, uv, twine

FOLLOW = 2.0  # seconds: a server lists what another published within a watcher pass or two
TEMP_PREFIX = ".privindex-upload-"


def start_nginx(folder: Path, port: int, upstreams: list[str]) -> subprocess.Popen:
    """nginx balancing over upstreams (host:port), round robin; a dead one is skipped for
    30 s after a failed connection. Request bodies are passed on as they arrive
    (proxy_request_buffering off), so an upload is in the server while the client sends."""
    servers = "\n".join(f"server {u} max_fails=1 fail_timeout=30s;" for u in upstreams)
    http = f"""
        log_format lb '$request_method $uri $status $upstream_addr';
        upstream privindex {{
            {servers}
        }}
        server {{
            listen 127.0.0.1:{port};
            access_log {folder}/access.log lb;
            client_max_body_size 200m;
            location / {{
                proxy_pass http://privindex;
                proxy_request_buffering off;
                proxy_set_header Host $http_host;
                proxy_set_header X-Forwarded-For $remote_addr;
                proxy_set_header X-Forwarded-Proto $scheme;
            }}
        }}
        """
    return run_nginx(folder, nginx_conf(folder, http), port)


class Balanced:
    """What a client sees: one URL."""

    def __init__(self, url: str):
        self.url = url
        self.index_url = f"{url}/simple/"


@pytest.fixture
def cluster(tmp_path):
    store, data = tmp_path / "store", tmp_path / "data"
    servers = [start_server(store, data), start_server(store, data)]
    port = free_port()
    nginx = start_nginx(tmp_path / "nginx", port, [s.url.removeprefix("http://") for s in servers])
    yield servers, Balanced(f"http://127.0.0.1:{port}"), tmp_path / "nginx"
    nginx.terminate()
    nginx.wait(timeout=20)
    for server in servers:
        server.stop()


def established(port: int) -> int:
    """Open TCP connections whose local end is 127.0.0.1:port (a server's side of them)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        if local == f"0100007F:{port:04X}" and state == "01":
            count += 1
    return count


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(lb: Balanced, entry: dict) -> bytes:
    resp = requests.get(f"{lb.url}/packages/{entry['url'].split('/packages/')[1]}", timeout=30)
    resp.raise_for_status()
    return resp.content


def test_two_servers_behind_nginx_lose_nothing_when_one_is_killed_mid_upload(cluster, tmp_path):
    (one, two), lb, nginx_dir = cluster
    token = uploader(one, "lbuser")
    started = time.monotonic()

    # twine, pip and uv through the load balancer only
    small = [
        make_wheel(tmp_path / "dist", "lb-proj", v, payload=os.urandom(2048)) for v in ("1.0", "1.1", "1.2")
    ]
    for wheel in small:
        proc = twine(lb.url, token, wheel)
        assert proc.returncode == 0, proc.output
    # each server lists every upload (whichever server received it) under its digest
    for server in (one, two):
        wait_until(
            lambda server=server: (
                {n: f["hashes"]["sha256"] for n, f in listed(server, "lb-proj").items()}
                == {w.name: sha256(w.read_bytes()) for w in small}
            ),
            FOLLOW,
        )
    routed = (nginx_dir / "access.log").read_text()
    uploads_to = {line.split()[3] for line in routed.splitlines() if line.startswith("POST /legacy/ 200")}
    assert len(uploads_to) == 2, routed  # round robin: the uploads went to both servers
    pip(
        "install", "--no-deps", "--index-url", lb.index_url, "--target", str(tmp_path / "pip"), "lb-proj==1.1"
    )
    assert (tmp_path / "pip" / "lb_proj" / "__init__.py").read_text() == "VERSION = '1.1'\n"
    uv(
        "pip",
        "install",
        "--no-deps",
        "--index-url",
        lb.index_url,
        "--python",
        sys.executable,
        "--target",
        str(tmp_path / "uv"),
        "lb-proj==1.2",
    )
    assert (tmp_path / "uv" / "lb_proj" / "__init__.py").read_text() == "VERSION = '1.2'\n"

    # an 8 MB upload, sent slowly through nginx; kill the server nginx handed it to while
    # the body is still arriving
    big = make_wheel(tmp_path / "dist", "lb-proj", "2.0", payload=os.urandom(8 * 1024 * 1024))
    form, (filename, content) = upload_form(big)
    body, content_type = encode_multipart_formdata([*form.items(), ("content", (filename, content))])
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    ports = [int(s.url.rsplit(":", 1)[1]) for s in (one, two)]
    wait_until(lambda: sum(map(established, ports)) == 0, 10)  # earlier requests' connections are gone
    client = socket.create_connection(("127.0.0.1", int(lb.url.rsplit(":", 1)[1])), timeout=30)
    client.sendall(
        (
            f"POST /legacy/ HTTP/1.1\r\nHost: {lb.url.removeprefix('http://')}\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    client.sendall(body[: len(body) // 2])
    wait_until(lambda: sum(map(established, ports)) == 1, 10)  # nginx passes the body on: one server has it
    receiving = one if established(ports[0]) else two
    survivor = two if receiving is one else one
    receiving.proc.kill()  # SIGKILL: no handler runs, no clean-up
    receiving.proc.wait(timeout=10)
    answer = b""
    try:
        client.sendall(body[len(body) // 2 :])
        while chunk := client.recv(65536):
            answer += chunk
    except OSError:
        pass  # the connection may be cut: either way the client does not see a success
    finally:
        client.close()
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    # nginx says so too (once it has logged the request): the upload went to the server
    # killed, and failed there
    killed_at = re.escape(receiving.url.removeprefix("http://"))
    wait_until(
        lambda: re.search(
            rf"^POST /legacy/ 5\d\d {killed_at}$", (nginx_dir / "access.log").read_text(), re.M
        ),
        10,
    )

    # nothing lost, nothing partial: through the load balancer, every earlier upload is
    # listed with its hash and its bytes match; the interrupted file is nowhere
    entries = listed(lb, "lb-proj")
    assert {n: f["hashes"]["sha256"] for n, f in entries.items()} == {
        w.name: sha256(w.read_bytes()) for w in small
    }
    for wheel in small:
        assert sha256(fetch(lb, entries[wheel.name])) == sha256(wheel.read_bytes())
    leftovers = [
        p
        for p in tmp_path.joinpath("store").rglob("*")
        if p.is_file() and (p.name.startswith(TEMP_PREFIX) or p.name == big.name)
    ]
    assert leftovers == []
    assert privindex_cli(survivor, "check", check=False).returncode == 0

    # the upload, retried through the load balancer (the survivor takes it), lands whole
    proc = twine(lb.url, token, big)
    assert proc.returncode == 0, proc.output
    entry = listed(lb, "lb-proj")[big.name]
    assert entry["hashes"]["sha256"] == sha256(content) and sha256(fetch(lb, entry)) == sha256(content)

    # the killed server, started again (as systemd would), serves it too
    restarted = start_server(receiving.store, receiving.data_dir)
    try:
        wait_until(
            lambda: (
                listed(restarted, "lb-proj").get(big.name, {}).get("hashes", {}).get("sha256")
                == sha256(content)
            ),
            FOLLOW,
        )
        check = privindex_cli(restarted, "check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        restarted.stop()
    assert time.monotonic() - started < 60
