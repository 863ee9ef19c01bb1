"""The servers under test: how to install, load, start and stop each, on the same files.

Each peer gets a virtualenv of its own under .cache/venvs (pip from PyPI), so its
dependencies never touch privindex's. privindex itself runs from the current checkout
with the interpreter running this script. Every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import synth

REPO = Path(__file__).resolve().parent.parent

VENVS = {
    # pypiserver picks waitress through bottle's "auto" server when it is installed;
    # [cache] brings watchdog, which the cached-dir backend needs.
    "pypiserver": ["pypiserver[cache]>=2.4,<2.5", "waitress"],
    "devpi": ["devpi-server>=6,<7"],
    "tools": ["pip>=24", "twine", "py-spy"],
}
DEVPI_USER, DEVPI_PASSWORD, DEVPI_INDEX = "bench", "bench-password", "dev"


def clean_env(**extra: str) -> dict[str, str]:
    """No PIP_*/TWINE_*/PRIVINDEX_* settings leak into a client or server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_", "PRIVINDEX_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, **extra)
    return env


def ensure_venv(cache: Path, name: str, log=print) -> Path:
    """The bin/ folder of .cache/venvs/<name>, created and filled on first use."""
    venv = cache / "venvs" / name
    marker = venv / "installed.txt"
    wanted = "\n".join(VENVS[name])
    if not marker.exists() or marker.read_text() != wanted:
        log(f"creating the {name} virtualenv in {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        # pip's machine-wide config (mirrors, certificates) is fine for installing.
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *VENVS[name]],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"installing {VENVS[name]} failed:\n{proc.stdout}{proc.stderr}")
        marker.write_text(wanted)
    return venv / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30
) -> tuple[int, dict, bytes]:
    """(status, headers with lower-case names, body); HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


# -- the servers -------------------------------------------------------------------------------


@dataclass
class Server:
    """How to start one server; `project` is a path template with {name}."""

    name: str
    argv: list[str]
    port: int
    root: str = "/simple/"
    project: str = "/simple/{name}/"
    ready: str | None = None  # a path answering 200 once the server has indexed everything
    env: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Running:
    server: Server
    proc: subprocess.Popen
    start_seconds: float  # process start -> first 200 from the Simple API root
    ready_seconds: float | None = None  # process start -> first 200 from Server.ready

    @property
    def pid(self) -> int:
        return self.proc.pid


def launch(server: Server, log_path: Path, timeout: float = 900) -> Running:
    """Start the process and poll its Simple API root until it answers 200."""
    log_file = open(log_path, "ab")
    started = time.monotonic()
    proc = subprocess.Popen(
        server.argv,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=server.env or clean_env(),
        start_new_session=True,
    )
    log_file.close()
    url = server.base + server.root
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log_path}")
        try:
            if http("GET", url, timeout=5)[0] == 200:
                running = Running(server, proc, round(time.monotonic() - started, 3))
                if server.ready:
                    while http("GET", server.base + server.ready, timeout=30)[0] != 200:
                        if proc.poll() is not None:
                            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log_path}")
                        time.sleep(0.02)
                    running.ready_seconds = round(time.monotonic() - started, 3)
                return running
        except OSError:
            pass
        time.sleep(0.01)
    stop(Running(server, proc, 0))
    raise RuntimeError(f"{server.name} did not answer {url} within {timeout} s; see {log_path}")


def stop(running: Running) -> None:
    """SIGTERM to the process group we created for it (never by name), SIGKILL if it lingers."""
    if running.proc.poll() is None:
        os.killpg(running.proc.pid, signal.SIGTERM)
        try:
            running.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait()


def privindex(store: Path, data_dir: Path, **settings: str) -> Server:
    """settings: PRIVINDEX_<NAME> environment settings, e.g. max_upload_mb="300"."""
    port = free_port()
    env = clean_env(PYTHONPATH=str(REPO))  # the checkout, whatever is installed
    env.update({f"PRIVINDEX_{k.upper()}": v for k, v in settings.items()})
    return Server(
        "privindex",
        [
            sys.executable,
            "-m",
            "privindex",
            "serve",
            "--store",
            str(store),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        port,
        env=env,
        ready="/readyz",
    )


def pypiserver(bin_dir: Path, store: Path, backend: str) -> Server:
    port = free_port()
    name = "pypiserver" if backend == "simple-dir" else f"pypiserver-{backend.split('-')[0]}"
    return Server(
        name,
        [
            str(bin_dir / "pypi-server"),
            "run",
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "--backend",
            backend,
            "-a",
            ".",
            "-P",
            ".",
            "--disable-fallback",
            str(store),
        ],
        port,
    )


def devpi(bin_dir: Path, serverdir: Path, index: str = f"{DEVPI_USER}/{DEVPI_INDEX}") -> Server:
    port = free_port()
    return Server(
        "devpi",
        [
            str(bin_dir / "devpi-server"),
            "--serverdir",
            str(serverdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        port,
        root=f"/{index}/+simple/",
        project=f"/{index}/+simple/{{name}}/",
    )


def nginx(workdir: Path, store: Path, pages: dict[str, bytes]) -> Server:
    """nginx over the same folder, with one pre-rendered project page for every project.

    The static ceiling: what serving pages and files costs with no application at all.
    pages: "root", "project" (HTML) and "project_json" (PEP 691), chosen by a `map` on
    Accept as a deployment that serves pre-rendered pages would.
    """
    port = free_port()
    folder = workdir / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "root.html").write_bytes(pages["root"])
    (folder / "project.html").write_bytes(pages["project"])
    (folder / "project.json").write_bytes(pages["project_json"])
    types = "types { text/html html; application/vnd.pypi.simple.v1+json json; }"
    conf = nginx_http_conf(
        workdir,
        f"""  map $http_accept $bench_project_page {{
    default /project.html;
    "~application/vnd\\.pypi\\.simple\\.v1\\+json" /project.json;
  }}
  server {{
    listen 127.0.0.1:{port};
    location = /simple/ {{ root {folder}; {types} try_files /root.html =404; }}
    location /simple/ {{ root {folder}; {types} try_files $bench_project_page =404; }}
    location /packages/ {{ alias {store}/; }}
  }}""",
    )
    return Server(
        "nginx",
        ["nginx", "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")],
        port,
        notes=["nginx serves one pre-rendered project page (HTML, or JSON by Accept) for every project"],
    )


def readme_nginx_config(
    port: int, upstream_port: int, store: Path, cache_dir: Path, static_dir: Path | None = None
) -> str:
    """The README's recommended nginx server (its `<!-- nginx-config -->` block) with this
    machine's ports and folders, and plain HTTP on loopback instead of TLS. static_dir is
    privindex's `<data_dir>/static` (None: a folder that does not exist, so every file goes
    to privindex). Fails loudly if the README changed shape, so the benchmark and the tests
    never measure another config."""
    static_dir = static_dir or cache_dir / "no-static-folder"
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- nginx-config -->", 1)[1].split("```nginx\n", 1)[1].split("```", 1)[0]
    changes = [
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port};"),
        (r"\n *ssl_certificate(_key)? [^;]*;", ""),
        (r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        (r"/var/cache/nginx/privindex", str(cache_dir)),
        (r"alias /srv/packages/;", f"alias {store.resolve()}/;"),
        (r"root /var/lib/privindex/static;", f"root {static_dir.resolve()};"),
    ]
    for pattern, replacement in changes:
        block, n = re.subn(pattern, lambda _m, new=replacement: new, block)
        if n == 0:
            raise RuntimeError(f"README.md's nginx config no longer has {pattern!r}; update peers.py")
    return block


def with_read_check(conf: str) -> str:
    """readme_nginx_config's block with its lines for a private index turned on (nginx asks
    privindex's read check before it serves a pre-rendered page)."""
    for line in ("auth_request /_privindex/read-check;", "error_page 401 = @privindex_pages;"):
        conf, n = re.subn(rf"# ({re.escape(line)})", r"\1", conf)
        if n == 0:
            raise RuntimeError(f"README.md's nginx config no longer has {line!r} to turn on; update peers.py")
    return conf


def privindex_settings() -> set[str]:
    """The setting names the privindex under test (this checkout) knows."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dataclasses, privindex.config as c; "
            "print(' '.join(f.name for f in dataclasses.fields(c.Settings)))",
        ],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(REPO)),
        check=True,
    )
    return set(probe.stdout.split())


def nginx_http_conf(workdir: Path, servers: str, workers: str = "auto") -> Path:
    """nginx.conf for a server block of ours: Debian's http defaults that matter (sendfile,
    mime types), temp paths in workdir, no access log (as for the static nginx)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"  {kind}_temp_path {workdir}/tmp-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(f"""{user}daemon off;
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
{temp}
{servers}
}}
""")
    return conf


def privindex_behind_nginx(
    store: Path, data_dir: Path, workdir: Path, send_files_via: str = "x-accel-redirect", **settings: str
) -> Server:
    """privindex on a loopback port behind nginx configured as README.md recommends, in one
    process group (a shell running both), so launch/stop/CPU/RSS treat them as one server."""
    inner = privindex(store, data_dir, send_files_via=send_files_via, trusted_proxy="127.0.0.1", **settings)
    port = free_port()
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    conf = nginx_http_conf(
        workdir, readme_nginx_config(port, inner.port, store, workdir / "cache", data_dir / "static")
    )
    nginx_cmd = " ".join(
        shlex.quote(a)
        for a in ["nginx", "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    )
    serve_cmd = " ".join(shlex.quote(a) for a in inner.argv)
    name = "privindex-nginx" if send_files_via != "off" else "privindex-nginx-plain"
    extra = "".join(f", {k}={v}" for k, v in settings.items())
    return Server(
        name,
        ["sh", "-c", f"{serve_cmd} & {nginx_cmd} & wait"],
        port,
        env=inner.env,
        notes=[f"privindex (send_files_via={send_files_via}{extra}) behind nginx with README.md's config"],
    )


# -- devpi: upload the store once into a private index, keep the server folder ------------------


def devpi_auth_header(base: str, user: str, password: str) -> dict:
    """Log in through devpi's API and return the X-Devpi-Auth header its token makes."""
    status, _h, body = http(
        "POST",
        f"{base}/+login",
        json.dumps({"user": user, "password": password}).encode(),
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    if status != 200:
        raise RuntimeError(f"devpi login failed: {status} {body[:300]!r}")
    token = json.loads(body)["result"]["password"]
    return {"X-Devpi-Auth": base64.b64encode(f"{user}:{token}".encode()).decode()}


def devpi_create_index(base: str, index: str = DEVPI_INDEX) -> dict:
    """A user and a private index with no bases (nothing ever goes to PyPI); returns auth."""
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    status, _h, body = http(
        "PUT",
        f"{base}/{DEVPI_USER}",
        json.dumps({"password": DEVPI_PASSWORD, "email": "bench@example.invalid"}).encode(),
        json_headers,
    )
    if status not in (201, 409):
        raise RuntimeError(f"devpi user creation failed: {status} {body[:300]!r}")
    auth = devpi_auth_header(base, DEVPI_USER, DEVPI_PASSWORD)
    status, _h, body = http(
        "PUT",
        f"{base}/{DEVPI_USER}/{index}",
        json.dumps({"type": "stage", "bases": [], "volatile": True}).encode(),
        {**json_headers, **auth},
    )
    if status not in (200, 201, 409):
        raise RuntimeError(f"devpi index creation failed: {status} {body[:300]!r}")
    return auth


def _name_version(filename: str) -> tuple[str, str]:
    stem = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename
    name, version = stem.split("-")[:2]
    return name.replace("_", "-"), version


def devpi_upload(base: str, auth: dict, path: Path, index: str = DEVPI_INDEX) -> None:
    """The legacy upload protocol (what twine speaks), with devpi's login token."""
    name, version = _name_version(path.name)
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in (
        (":action", "file_upload"),
        ("name", name),
        ("version", version),
        ("protocol_version", "1"),
        ("requires_python", ">=3.8"),
    ):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{path.name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    status, _h, body = http(
        "POST",
        f"{base}/{DEVPI_USER}/{index}/",
        b"".join(parts),
        {"Content-Type": f"multipart/form-data; boundary={boundary}", **auth},
        timeout=120,
    )
    if status != 200:
        raise RuntimeError(f"devpi upload of {path.name} failed: {status} {body[:300]!r}")


def devpi_init(bin_dir: Path, serverdir: Path) -> None:
    subprocess.run(
        [str(bin_dir / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi"],
        check=True,
        capture_output=True,
        env=clean_env(),
    )


def devpi_loaded(bin_dir: Path, cache: Path, store_folder: Path, key: str, workdir: Path, log=print) -> Path:
    """A devpi server folder holding every file of the store, built once per store size."""
    serverdir = cache / f"devpi-{key}"
    marker = serverdir / "benchmark-loaded.json"
    if marker.exists():
        return serverdir
    if serverdir.exists():
        shutil.rmtree(serverdir)  # an interrupted load
    files = synth.dist_files(store_folder)
    log(f"loading {len(files)} files into devpi (once; kept in {serverdir}) ...")
    started = time.monotonic()
    devpi_init(bin_dir, serverdir)
    server = devpi(bin_dir, serverdir)
    server.root = "/+api"  # the index does not exist yet
    running = launch(server, workdir / "devpi-load.log")
    try:
        auth = devpi_create_index(running.server.base)
        with ThreadPoolExecutor(4) as pool:
            for done, _ in enumerate(
                pool.map(lambda p: devpi_upload(running.server.base, auth, p), files), 1
            ):
                if done % 2000 == 0:
                    log(f"  devpi: {done}/{len(files)} uploaded")
    finally:
        stop(running)
    marker.write_text(json.dumps({"files": len(files), "seconds": round(time.monotonic() - started, 1)}))
    return serverdir
