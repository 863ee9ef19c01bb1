"""Shared fixtures: real distributions built for the session, live servers, in-process apps.

Every server under test is a real `privindex serve` process listening on a free
127.0.0.1 port; clients (pip, uv, twine, pypi-simple) talk to it over HTTP. Rules that
need no real client use the `app`, `client` and `runner` fixtures at the end instead, or
an `app_server` (the live-server helpers, in-process). Under pytest-xdist (`-n 4`) each
module runs on one worker and the TIMING_MODULES share one.
A test whose point is a real client or process is marked `slow`, so the fast loop
(`-m "not slow and not browser"`) stays quick; pyproject.toml lists the markers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hypothesis
import pytest
import testdb
from fake_issuer import issuers  # noqa: F401 (a fixture: the fake OIDC issuers, for every test module)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import peers  # noqa: E402  (benchmarks/peers.py: nginx configs, shared with the benchmarks)

# -- parallel runs (pytest-xdist: `-n 4`) ------------------------------------------------------

TIMING_MODULES = {
    "tests/test_hardening.py",  # the failed-login time compares two medians
    "tests/test_load.py",  # a load run
    "tests/test_load_balanced.py",  # a load run, with a time limit
    "tests/test_store.py",  # a dropped file is listed within 2 s
    "tests/security/test_hostile_upstream.py",  # deadlines; /healthz answers within 1 s meanwhile
}
"""Modules whose assertions are times: they run one after another on one worker, never
beside each other (other workers still run beside them: their margins allow for that)."""


# Hypothesis fails an example that takes over 200 ms ("DeadlineExceeded"), a time no
# property test asserts: with workers side by side on 2 shared cores a token check can take
# 300 ms. What the properties assert is unchanged; a test may still set its own deadline.
hypothesis.settings.register_profile("shared-cores", deadline=None)
hypothesis.settings.load_profile("shared-cores")


class ModulesOnOneWorker:
    """Each module's tests run on one worker, in order, so its module-scoped servers start
    once and a test that checks what the ones before it left (a log without 5xx) sees them
    (xdist's --dist loadfile); the TIMING_MODULES run as one group. (Our own, because
    xdist 3.8's `xdist_group` marks do nothing under pytest 9.2.) A plugin registered only
    where xdist is, so `-p no:xdist` still runs."""

    @staticmethod
    def pytest_xdist_make_scheduler(config, log):
        from xdist.scheduler import LoadScopeScheduling

        class ByModule(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                module = nodeid.split("::", 1)[0]
                return "timing" if module in TIMING_MODULES else module

        return ByModule(config, log)


# -- clients --------------------------------------------------------------------------------


def client_env(**extra: str) -> dict[str, str]:
    """The environment for pip/uv/twine: no machine-wide config may leak into a test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1", PIP_NO_INPUT="1"
    )
    env.update(extra)
    return env


def run(args: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=kwargs.pop("env", client_env()),
        timeout=kwargs.pop("timeout", 300),
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(
        [sys.executable, "-m", "pip", *args[:1], "--isolated", "--no-cache-dir", *args[1:]], check=check
    )


def uv(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    uv_bin = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    return run([uv_bin, *args[:2], "--no-config", "--no-cache", *args[2:]], check=check)


# -- distributions --------------------------------------------------------------------------


@dataclass
class Dists:
    """Files built once per session, by project."""

    folder: Path
    files: dict[str, list[Path]] = field(default_factory=dict)

    def all(self) -> list[Path]:
        return [p for files in self.files.values() for p in files]

    def one(self, suffix: str) -> Path:
        return next(p for p in self.all() if p.name.endswith(suffix))


SOURCE_PROJECTS = {
    # name, version, requires-python, dependencies
    "alpha-1.0": ("alpha", "1.0", ">=3.8", []),
    "alpha-2.0": ("alpha", "2.0", ">=3.9", []),
    "beta-pkg-0.1": ("Beta_Pkg", "0.1", ">=3.8", ["alpha>=2.0"]),
    "future-only-1.0": ("future-only", "1.0", ">=4", []),
}


def build_project(
    workdir: Path, out: Path, name: str, version: str, requires_python: str, deps: list[str]
) -> None:
    module = name.lower().replace("-", "_")
    src = workdir / f"{module}-{version}"
    (src / module).mkdir(parents=True)
    (src / module / "__init__.py").write_text(f'VERSION = "{version}"\n')
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        requires-python = "{requires_python}"
        dependencies = {deps!r}
        description = "A tiny test project"

        [tool.setuptools]
        packages = ["{module}"]
        """)
    )
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--sdist",
            "--wheel",
            "--outdir",
            str(out),
            str(src),
        ],
        env=client_env(),
    )


def make_handmade_sdist(out: Path) -> Path:
    """An sdist written by hand (no build backend involved), as some old tools made them."""
    path = out / "handmade-0.3.tar.gz"
    pkg_info = b"Metadata-Version: 2.1\nName: handmade\nVersion: 0.3\nRequires-Python: >=3.8,<4\n"
    with tarfile.open(path, "w:gz") as tar:
        for member, data in (("handmade-0.3/PKG-INFO", pkg_info), ("handmade-0.3/setup.py", b"")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _build_dists(tmp_path_factory) -> Path:
    """SOURCE_PROJECTS built (and the hand-made sdist), into a new folder."""
    out = tmp_path_factory.mktemp("dists-built")
    work = tmp_path_factory.mktemp("src")
    for name, version, rp, deps in SOURCE_PROJECTS.values():
        build_project(work, out, name, version, rp, deps)
    make_handmade_sdist(out)
    return out


def _built_dists(request, tmp_path_factory) -> Path:
    """The folder of SOURCE_PROJECTS built (and the hand-made sdist). Kept in pytest's cache
    (.pytest_cache), named by everything that goes into the files: setuptools takes most of
    a minute on a busy machine, and a rerun of the fast loop should not wait for it. Under
    a lock: of xdist's workers (or sessions side by side) the first builds, the others wait
    and read what it kept."""
    recipe = (SOURCE_PROJECTS, importlib.metadata.version("setuptools"), inspect.getsource(build_project))
    key = hashlib.sha256(repr(recipe).encode() + inspect.getsource(make_handmade_sdist).encode()).hexdigest()
    cache = getattr(request.config, "cache", None)  # none with -p no:cacheprovider
    if cache is None:
        return _build_dists(tmp_path_factory)
    kept = cache.mkdir("dists") / key[:16]
    with open(kept.with_name(f"{kept.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.is_dir():  # whole or not at all: a session without the lock may be reading it
            out = _build_dists(tmp_path_factory)
            partial = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
            shutil.copytree(out, partial)
            partial.rename(kept)
    return kept


@pytest.fixture(scope="session")
def dists(request, tmp_path_factory) -> Dists:
    out = tmp_path_factory.mktemp("dists")
    shutil.copytree(_built_dists(request, tmp_path_factory), out, dirs_exist_ok=True)
    result = Dists(out)
    for path in sorted(out.iterdir()):
        project = path.name.split("-")[0].lower().replace("_", "-")
        result.files.setdefault(project, []).append(path)
    return result


def populate(store: Path, dists: Dists) -> None:
    """alpha goes into a per-project folder, everything else lies flat: both layouts."""
    store.mkdir(parents=True, exist_ok=True)
    for path in dists.all():
        target = store / "alpha" if path.name.startswith("alpha-") else store
        target.mkdir(exist_ok=True)
        shutil.copy2(path, target / path.name)


# -- live servers ---------------------------------------------------------------------------


@dataclass
class LiveServer:
    proc: subprocess.Popen
    url: str
    store: Path
    data_dir: Path
    log_path: Path
    banner: list[str]
    env: dict = field(default_factory=dict)  # the PRIVINDEX_* settings it was started with
    reader: threading.Thread | None = None  # keeps reading stdout into banner

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)  # the last lines ("privindex stopped") are in banner now
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text()


_started: list[subprocess.Popen] = []


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_session():
    """A test that fails half-way may leave a server running; end them all at the end."""
    yield
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    testdb.drop_all()


def serve_command(store: Path, data_dir: Path, *args: str, port: int | str = 0) -> list[str]:
    """`python -m privindex serve` on store and data_dir, on port (0: a free one)."""
    return [
        *[sys.executable, "-m", "privindex", "serve", "--port", str(port)],
        *["--store", str(store), "--data-dir", str(data_dir), *args],
    ]


def start_server(
    store: Path,
    data_dir: Path,
    *args: str,
    env: dict | None = None,
    config: Path | None = None,
    indexed: bool = True,
    make_store: bool = True,
) -> LiveServer:
    """A server answering on a free port; with indexed, once it has also caught up with the
    store (files dropped in before the start are listed). With make_store the store folder
    is made first, as an operator does (serve refuses a --store that does not exist)."""
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if make_store:
        store.mkdir(parents=True, exist_ok=True)
    cmd = serve_command(store, data_dir, *args)
    if config:
        cmd += ["--config", str(config)]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVINDEX_")}
    env = {**testdb.env_for(data_dir), **(env or {})}
    base_env.update(env)
    with open(log_path, "a") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True, env=base_env)
    _started.append(proc)
    banner: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"server exited early:\n{log_path.read_text()}")
        banner.append(line.rstrip("\n"))
        if line.startswith("listening on "):
            url = line.split()[2].rstrip("/")
            server = LiveServer(proc, url, store, data_dir, log_path, banner, dict(env or {}))
            # keep reading stdout so the pipe never fills
            server.reader = threading.Thread(
                target=lambda: banner.extend(line.rstrip("\n") for line in proc.stdout), daemon=True
            )
            server.reader.start()
            wait_until(lambda url=url: http_status(f"{url}/health") == 200, 10)
            if indexed:
                wait_until(lambda url=url: "indexing" not in _readiness(url), 60)
            return server
    proc.kill()
    raise AssertionError("server did not start within 60 s")


def _readiness(url: str) -> dict:
    """/readyz's answer, 503 included (it says "indexing" to anyone; a private index's
    /health says only "ok" without a token)."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Debian's nginx runs these tests; CI always has it
needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and os.environ.get("CI") != "true",
    reason="needs Debian's nginx (.ci/run installs it)",
)


def run_nginx(folder: Path, conf: Path, port: int, *args: str) -> subprocess.Popen:
    """Debian's nginx on conf (prefix and error log in folder), once it listens on port;
    its start-up error fails the test."""
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, 20)
    return proc


def nginx_conf(folder: Path, http: str) -> Path:
    """folder/nginx.conf around http (upstream and server blocks): benchmarks/peers.py's
    skeleton (one worker, foreground, pid, error log and temp paths in folder)."""
    return peers.nginx_http_conf(folder, http, workers="1")


def wait_until(predicate, timeout: float, interval: float = 0.05) -> float:
    """Poll predicate until true; returns the seconds it took, fails after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="session")
def read_server(tmp_path_factory, dists) -> LiveServer:
    """A server over a store holding every test distribution; tests must not change it."""
    with served(tmp_path_factory.mktemp("read-server"), dists=dists) as server:
        yield server


@contextlib.contextmanager
def served(base: Path, *args: str, dists: Dists | None = None, **kwargs) -> Iterator[LiveServer]:
    """start_server on base/store (holding dists, if given) and base/data, for the with
    block: a module-scoped server fixture is `with served(...) as server: yield server`."""
    if dists is not None:
        populate(base / "store", dists)
    server = start_server(base / "store", base / "data", *args, **kwargs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_server(tmp_path, dists):
    """A server of the test's own, over a populated store it may change; stopped at the end."""
    servers: list[LiveServer] = []

    def make(*args: str, populated: bool = True, **kwargs) -> LiveServer:
        store = tmp_path / "store"
        if populated and not store.exists():
            populate(store, dists)
        server = start_server(store, tmp_path / "data", *args, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fresh_app(tmp_path, dists):
    """fresh_server's in-process twin: make(populated=True, **settings) -> an AppServer of the
    test's own, over tmp_path/store (populated unless told not to), for the with block."""
    with contextlib.ExitStack() as stack:

        def make(populated: bool = True, **values) -> AppServer:
            store = tmp_path / "store"
            if populated and not store.exists():
                populate(store, dists)
            return stack.enter_context(app_server(store, tmp_path / "data", **values))

        yield make


# -- uploads and accounts (through the real clients and the real CLI) ----------------------------


def twine(
    url: str,
    token: str,
    *files: Path | str,
    extra: tuple[str, ...] = (),
    username: str = "__token__",
    check: bool = False,
) -> subprocess.CompletedProcess:
    """`twine upload` of files to the server at url with an API token (wide lines, so a server
    message is never wrapped); .output is stdout and stderr together."""
    proc = run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--repository-url",
            f"{url}/legacy/",
            "-u",
            username,
            "-p",
            token,
            "--non-interactive",
            "--disable-progress-bar",
            *extra,
            *map(str, files),
        ],
        check=check,
        env=client_env(COLUMNS="500"),
    )
    proc.output = proc.stdout + proc.stderr
    return proc


def run_privindex(
    *args: str,
    data_dir: Path,
    store: Path,
    input: str | None = None,
    check: bool = True,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """`python -m privindex ARGS --data-dir D --store S`, without PRIVINDEX_* from outside."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVINDEX_")}
    full_env.update({**testdb.env_for(data_dir), **(env or {})})
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return run(
        [sys.executable, "-m", "privindex", *args, "--data-dir", str(data_dir), "--store", str(store)],
        check=check,
        env=full_env,
        timeout=120,
        **stdin,
    )


class Accounts:
    """Users and tokens made with the real CLI on a server's data dir; remembers every secret.
    On an AppServer's (app), in-process, as privindex_cli runs it."""

    def __init__(self, store: Path, data_dir: Path, env: dict | None = None, app: AppServer | None = None):
        self.store, self.data_dir, self.env, self.app = store, data_dir, env, app
        self.secrets: list[str] = []
        self.token_ids: dict[str, int] = {}

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        if self.app is not None:
            return self.app.cli(*args, input=input, check=check)
        return cli_in_process(
            *args, data_dir=self.data_dir, store=self.store, input=input, check=check, env=self.env
        )

    def user(self, name: str, admin: bool = False, password: str | None = None) -> str:
        password = password or f"pw-{name}-{os.urandom(6).hex()}"
        self.secrets.append(password)
        self.cli(
            "user", "add", name, "--password-stdin", *(["--admin"] if admin else []), input=password + "\n"
        )
        return password

    def token(self, username: str, *options: str) -> str:
        proc = self.cli("token", "create", username, *options)
        secret = proc.stdout.strip()
        self.secrets.append(secret)
        self.token_ids[secret] = int(proc.stderr.split("token ", 1)[1].split()[0])
        return secret

    def revoke(self, secret: str) -> None:
        self.cli("token", "revoke", str(self.token_ids[secret]))


@pytest.fixture
def accounts():
    """accounts(server) -> Accounts on that server's data dir (a LiveServer's or an AppServer's)."""
    return lambda server: Accounts(
        server.store, server.data_dir, server.env, server if isinstance(server, AppServer) else None
    )


def assert_no_secrets(secrets: list[str], *sources: Path | str | bytes) -> None:
    """None of the secrets occurs in any source (a file's bytes, or text/bytes given directly)."""
    assert secrets
    for source in sources:
        if isinstance(source, Path):
            data = source.read_bytes() if source.exists() else b""
            name = str(source)
        else:
            data = source.encode() if isinstance(source, str) else source
            name = repr(data[:60])
        for secret in secrets:
            assert secret.encode() not in data, f"a secret ({secret[:9]}...) appears in {name}"


# -- the privindex CLI against a server's data -------------------------------------------------


def invoke_cli(*args: str, data_dir: Path, store: Path, input: str | None = None, env: dict | None = None):
    """`privindex ARGS --data-dir D --store S` in this process (click's runner), without
    PRIVINDEX_* from outside: click's Result."""
    from click.testing import CliRunner

    from privindex.cli import main

    full_env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PRIVINDEX_")}
    full_env.update({**testdb.env_for(data_dir), **(env or {})})
    return CliRunner().invoke(
        main, [*args, "--data-dir", str(data_dir), "--store", str(store)], input=input, env=full_env
    )


def cli_in_process(
    *args: str,
    data_dir: Path,
    store: Path,
    input: str | None = None,
    check: bool = True,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """run_privindex's answer (stdout, stderr, code) from the same click commands run in this
    process: half a second less per call than a new interpreter. For the CLI as a test's
    tool; the CLI's own tests (test_cli_*) keep run_privindex."""
    result = invoke_cli(*args, data_dir=data_dir, store=store, input=input, env=env)
    if check and result.exit_code != 0:
        raise AssertionError(
            f"privindex {args} failed ({result.exit_code}):\n{result.stdout}\n{result.stderr}"
        ) from (result.exception if not isinstance(result.exception, SystemExit) else None)
    return subprocess.CompletedProcess(["privindex", *args], result.exit_code, result.stdout, result.stderr)


def privindex_cli(
    server, *args: str, stdin: str | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    """The CLI on a server's (or a backup's: anything with .store and .data_dir) data, with
    the settings the server was started with, as an operator's shell would have: in-process."""
    if isinstance(server, AppServer):
        return server.cli(*args, input=stdin, check=check, env=env)
    return cli_in_process(
        *args,
        data_dir=server.data_dir,
        store=server.store,
        input=stdin,
        check=check,
        env={**getattr(server, "env", {}), **(env or {})},
    )


def add_user(server: LiveServer, name: str, password: str, admin: bool = False) -> None:
    privindex_cli(
        server,
        "user",
        "add",
        name,
        "--password-stdin",
        *(["--admin"] if admin else []),
        stdin=password + "\n",
    )


def audit_json(server, *args: str) -> list[dict]:
    """`privindex audit --json ARGS` on a server's data: the events, newest first."""
    return [json.loads(line) for line in privindex_cli(server, "audit", "--json", *args).stdout.splitlines()]


# == in-process apps (flaskr style) ==============================================================
# For rules that need no real client: create_app on the test's own folders, Flask's test client,
# and the click CLI through CliRunner. The real pip/uv/twine/browser tests above stay the contract.


def pytest_configure(config):
    config.addinivalue_line("markers", "app_settings(**values): Settings for the `app` fixture")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(ModulesOnOneWorker())


@pytest.fixture
def make_app(tmp_path):
    """make_app(name="app", **settings) -> a Flask app with its own store and data dir."""

    made = []

    def make(name: str = "app", **values):
        from privindex.app import create_app
        from privindex.config import Settings

        data_dir = tmp_path / name / "data"
        values.setdefault("database_url", testdb.url_for(data_dir))
        made.append(create_app(Settings(store=tmp_path / name / "store", data_dir=data_dir, **values)))
        return made[-1]

    yield make
    for app in made:  # no polling thread outlives its test
        app.extensions["privindex"].stop.set()


@pytest.fixture
def app(request, make_app):
    """An app with default Settings, changed by @pytest.mark.app_settings(require_2fa=False, ...).
    Services and models called by the test body use its database. (Not an app context held
    open: requests would then share one `g`, and flask-login keeps the signed-in user there.)"""
    from privindex.db.connection import bound

    marker = request.node.get_closest_marker("app_settings")
    app = make_app(**(marker.kwargs if marker else {}))
    with bound(app.extensions["privindex"].database):
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


class AppRunner:
    """`privindex ARGS` in-process (click's CliRunner) on an app's data dir and store."""

    def __init__(self, app):
        self.settings = app.extensions["privindex"].settings

    def env(self) -> dict[str, str]:
        """The app's settings a CLI run must share, as the environment gives them."""
        s = self.settings
        env = {"PRIVINDEX_REQUIRE_2FA": str(s.require_2fa).lower(), "PRIVINDEX_READ_ACCESS": s.read_access}
        if s.database_url:
            env["PRIVINDEX_DATABASE_URL"] = s.database_url
        return env

    def invoke(self, *args: str, input: str | None = None, env: dict | None = None):
        s = self.settings
        return invoke_cli(
            *args, data_dir=s.data_dir, store=s.store, input=input, env={**self.env(), **(env or {})}
        )

    def add_user(self, name: str, *options: str, password: str) -> None:
        """`privindex user add NAME OPTIONS` with the password on stdin; fails the test if refused."""
        result = self.invoke("user", "add", name, "--password-stdin", *options, input=password + "\n")
        assert result.exit_code == 0, result.output


@pytest.fixture
def runner(app) -> AppRunner:
    return AppRunner(app)


def enrol_totp_cli(server, name: str):
    """`privindex user totp NAME` as an admin in a terminal would run it: read the otpauth
    URI it prints, type the code the "app" shows. Returns (pyotp.TOTP, recovery codes, output)."""
    import re

    import pyotp

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVINDEX_")}
    full_env.update(getattr(server, "env", {}) or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "privindex",
            "user",
            "totp",
            name,
            "--data-dir",
            str(server.data_dir),
            "--store",
            str(server.store),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    uri = proc.stdout.readline().strip()
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    totp = pyotp.TOTP(secret)
    # Not communicate(): it reads the pipe's descriptor, past what readline() has already
    # buffered (the QR code, when it arrived with the URI); the text stream keeps both.
    proc.stdin.write(totp.now() + "\n")
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()  # stderr is a few lines: no pipe fills
    proc.wait(timeout=60)
    assert proc.returncode == 0, err
    codes = re.findall(r"^[0-9a-f]{4}(?:-[0-9a-f]{4}){3}$", out, re.M)
    return totp, codes, uri + "\n" + out + err


# -- a live server's stand-in, in-process ------------------------------------------------------


@dataclass
class AppServer:
    """For tests whose point is the web UI's or the API's rules, not the server process:
    create_app on its own store and data dir, reached by requests (WebClient, helpers.listed,
    wheels.upload) at its .url through wsgi-intercept, with the CLI helpers (privindex_cli,
    add_user, audit_json, webclient.user_with_totp) run in-process by click's runner. The
    same calls as against a LiveServer, without a process start or a CLI process per call."""

    app: object
    url: str
    store: Path
    data_dir: Path
    log_path: Path  # what it logged, as a live server's stderr would have it
    env: dict = field(default_factory=dict)

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    def log(self) -> str:
        return self.log_path.read_text()

    def cli(
        self, *args: str, input: str | None = None, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """`privindex ARGS` on this app's data, as privindex_cli answers (stdout, stderr, code)."""
        return cli_in_process(
            *args,
            data_dir=self.data_dir,
            store=self.store,
            input=input,
            check=check,
            env={**AppRunner(self.app).env(), **self.env, **(env or {})},
        )


_intercepting = 0  # AppServers open: requests goes through wsgi-intercept while there are any


@contextlib.contextmanager
def app_server(store: Path, data_dir: Path, **values) -> Iterator[AppServer]:
    """An AppServer on store and data_dir with Settings(**values), for the with block."""
    global _intercepting
    from wsgi_intercept import add_wsgi_intercept, remove_wsgi_intercept, requests_intercept

    from privindex.app import create_app
    from privindex.config import Settings

    values.setdefault("database_url", testdb.url_for(data_dir))
    store.mkdir(parents=True, exist_ok=True)
    settings = Settings(store=store, data_dir=data_dir, **values)
    app = create_app(settings)
    host = f"app-{os.urandom(4).hex()}.test"
    if _intercepting == 0:
        requests_intercept.install()
    _intercepting += 1
    add_wsgi_intercept(host, 80, lambda: app)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    try:
        with _logging_to(log_path, settings.log_level, settings.log_format):
            yield AppServer(app, f"http://{host}", store, data_dir, log_path)
    finally:
        app.extensions["privindex"].stop.set()  # the threads create_app started end
        remove_wsgi_intercept(host, 80)
        _intercepting -= 1
        if _intercepting == 0:
            requests_intercept.uninstall()


@contextlib.contextmanager
def _logging_to(path: Path, level: str, fmt: str) -> Iterator[None]:
    """privindex's log records (the access log's too) into path, through the formatter and
    filters `serve` puts on its stderr (privindex.ops.logs.configure): the redaction and
    the request ids a log check looks at are the real ones. Records of every AppServer
    open at the time go to each one's file."""
    import logging

    from privindex.ops.logs import JsonFormatter, RedactSecrets, RequestIdFilter, TextFormatter

    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("privindex")
    was = logger.level
    logger.setLevel(level.upper())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(was)
        handler.close()
