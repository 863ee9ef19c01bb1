"""`privindex serve`: build the app, index the store, run waitress until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer, create_server
from waitress.task import WSGITask

from privindex import __version__
from privindex.accounts import users
from privindex.api.simple import FILE_TAIL
from privindex.app import create_app
from privindex.config import Settings, replace
from privindex.db.connection import bound, in_thread
from privindex.notify import outbox
from privindex.ops import logs
from privindex.packages import retention, static_pages
from privindex.packages.index import Progress

log = logging.getLogger(__name__)


class _KeepAliveTask(WSGITask):
    """waitress 3.0.2 closes an HTTP/1.1 connection after any answer without a
    Content-Length, bodiless 304s and 204s included; pip revalidating pages then pays for
    a new connection each time. Keep the connection for those (the client may still ask
    to close).

    A wsgi.file_wrapper is also taken in the middle of a body (FILE_TAIL): waitress sends
    it from its main loop as it sends one returned as the whole body, so the worker is
    free at once however slowly the client reads (a cold upstream file's rest once its
    download landed)."""

    _bodiless_keepalive = False

    def get_environment(self):
        environ = super().get_environment()
        environ[FILE_TAIL] = True
        return environ

    def write(self, data):
        if not isinstance(data, ReadOnlyFileBasedBuffer):
            return super().write(data)
        try:
            if self.content_length is None or self.chunked_response:  # the wrapper must not be chunked
                for chunk in data:
                    super().write(cast(bytes, chunk))
                data.close()
                return
            super().write(b"")  # the headers, if they have not gone yet
            self.content_bytes_written += data.prepare(self.content_length - self.content_bytes_written)
            self.channel.write_soon(data)  # type: ignore[arg-type]  # waitress's own path does the same
        except ClientDisconnected:  # never queued: nothing else would close its file
            data.close()
            raise

    def build_response_header(self):
        request = cast(HTTPRequestParser, self.request)  # types-waitress has it as an Error
        self._bodiless_keepalive = (
            not self.has_body
            and self.version == "1.1"
            and request.headers.get("CONNECTION", "").lower() != "close"
        )
        try:
            return super().build_response_header()
        finally:
            self._bodiless_keepalive = False

    def set_close_on_finish(self):
        if not self._bodiless_keepalive:
            super().set_close_on_finish()


class _Channel(HTTPChannel):
    task_class = _KeepAliveTask


def configure_logging(level: str, log_sql: bool = False, fmt: str = "text") -> None:
    """stderr, secrets redacted, text or JSON lines, SQL statements only if asked for (see
    privindex.ops.logs)."""
    logs.configure(level, log_sql, fmt)


def progress_printer(echo: Callable[[str], None], every: float = 1.0) -> Progress:
    """A Progress callback that reports at most once per `every` seconds, and at the end."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= every:
            last = now
            echo(f"indexing the store: read {done}/{total} new or changed files")

    return report


class CannotListen(RuntimeError):
    """The address is taken or not ours; raised before the data dir is touched."""


class _AppLater:
    """The WSGI app waitress is given before it exists: the socket is bound first, so a busy
    port is reported before the data dir and the database are created."""

    app: Callable | None = None

    def __call__(self, environ: dict, start_response: Callable):
        return self.app(environ, start_response)  # type: ignore[misc]


def upstream_line(settings: Settings, sources) -> str:
    """The start-up line about the upstream: off, offline, reachable or not."""
    if not sources.upstream_on:
        return "upstream: off (only local packages are served)"
    url = sources.cache.upstream.shown_url
    if settings.upstream_offline:
        return f"upstream: {url} offline (no connections; serving the cache only)"
    problem = sources.cache.upstream.reachable()
    if problem:
        return f"upstream: {url} NOT reachable ({problem}); cached pages are served"
    return f"upstream: {url} reachable (names not known here are served from it)"


def _watch(
    catch_up: Callable[[], None], refresh: Callable[[], None], stop: threading.Event, interval: float
) -> None:
    """Index the store against what the database recorded, then Index.watch's loop, around
    a refresh that metrics may time."""
    try:
        catch_up()
    except Exception:  # the watcher's passes will find what is left
        log.exception("indexing the store failed")
    while not stop.wait(interval):
        try:
            refresh()
        except Exception:  # keep watching; the next pass may succeed
            log.exception("refreshing the index failed")


def _after_catch_up(index, watch: Callable, stop: threading.Event, interval: float) -> None:
    """watch(stop, interval) once the index has caught up with the store: the shadowing
    check asks the upstream about local names, which must all be known by then."""
    while index.indexing is not None and not stop.wait(0.1):
        pass
    watch(stop, interval)


def _follow_claims(sources, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            sources.reload(force=False)
        except Exception:  # keep following
            log.exception("reading the claimed project names and statuses failed")


def _retention_rounds(settings: Settings, store, index, stop: threading.Event) -> None:
    """The scheduled retention run (retention_interval_hours): one round at a time in this
    thread, so it never overlaps itself; of several processes on one database, the one whose
    conditional UPDATE takes the round runs it (retention.take_scheduled_round)."""
    interval = settings.retention_interval_hours * 3600
    while not stop.wait(min(interval, 60.0)):
        try:
            if retention.take_scheduled_round(interval):
                report = retention.run(settings, store, index, "retention-schedule")
                log.info("retention: deleted %d files, freed %d bytes", len(report.files), report.bytes)
        except Exception:  # the next round may succeed
            log.exception("the scheduled retention run failed")


def _stop_serving(_signum, _frame):
    raise KeyboardInterrupt


def serve(settings: Settings, echo: Callable[..., None], create_store: bool = True) -> None:
    """Serve until SIGINT/SIGTERM. Without create_store, a store folder that does not exist
    is an error (a mistyped --store would otherwise serve an empty index), reported after
    the port is bound so a busy port is named first, and before anything is created."""
    configure_logging(settings.log_level, settings.log_sql, settings.log_format)
    # Our own handlers, whatever was inherited: a server started in the background by a
    # script (or under nohup from one) inherits SIGINT as ignored, and Python then installs
    # no KeyboardInterrupt handler; Ctrl-C and `kill -INT` must still stop it.
    signal.signal(signal.SIGINT, _stop_serving)
    signal.signal(signal.SIGTERM, _stop_serving)

    proxy: dict[str, Any] = {}
    if settings.trusted_proxy:
        proxy = dict(
            trusted_proxy=settings.trusted_proxy,
            clear_untrusted_proxy_headers=True,
            trusted_proxy_headers="x-forwarded-for x-forwarded-host x-forwarded-proto",
        )
    later = _AppLater()
    try:
        server = create_server(
            later,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="privindex",
            # bind now, listen once the app is built: until then connections are refused
            _start=False,
            **proxy,
            # waitress spools bodies to disk past 512 KiB; let a too-large upload reach the app,
            # which answers with a message twine shows, instead of waitress's bare 413
            max_request_body_size=settings.max_upload_bytes + 16 * 1024 * 1024,
        )
    except OSError as exc:
        raise CannotListen(
            f"cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}; "
            "is another server running there? Choose another --port."
        ) from None
    if not isinstance(server, TcpWSGIServer):  # waitress made one server per address
        server.close()
        raise CannotListen(f"{settings.host} names several addresses; give one (127.0.0.1, say)")
    if not create_store and not settings.store.is_dir():
        server.close()
        raise RuntimeError(
            f"the store {settings.store.absolute()} does not exist; check --store, or create it "
            f"(mkdir -p {settings.store}, or serve with --create)"
        )
    server.channel_class = _Channel
    settings = replace(settings, port=int(server.getsockname()[1]))  # what waitress's effective_port holds

    stop = threading.Event()
    watcher: threading.Thread | None = None
    sender: threading.Thread | None = None
    try:
        # stderr is the log: with JSON logs, progress goes through logging like everything else
        say = log.info if settings.log_format == "json" else (lambda line: echo(line, err=True))
        app = create_app(settings, index_later=True, stop=stop)  # stop ends its threads too
        later.app = app
        index = app.extensions["privindex"].index
        refresh = index.refresh
        observed = app.extensions.get("privindex_metrics")
        if observed is not None:  # passes counted and timed
            refresh = observed.timed_rescan(refresh)
        watcher = threading.Thread(  # a new thread has an empty context: give it the app's database
            target=in_thread(app.extensions["privindex"].database, _watch),
            args=(partial(index.catch_up, progress_printer(say)), refresh, stop, settings.rescan_interval),
            name="store-watcher",
            daemon=True,
        )
        watcher.start()
        if settings.retention_interval_hours:
            threading.Thread(
                target=in_thread(app.extensions["privindex"].database, _retention_rounds),
                args=(settings, app.extensions["privindex"].store, index, stop),
                name="retention",
                daemon=True,
            ).start()
        sources = app.extensions["privindex"].sources
        database = app.extensions["privindex"].database
        writer = app.extensions.get("privindex_static_pages")
        if writer is not None:  # pre-rendered pages, rewritten as projects change
            threading.Thread(
                target=in_thread(database, writer.run), args=(stop,), name="static-pages", daemon=True
            ).start()
        elif static_pages.remove_all(settings.static_dir):  # never serve pages no one updates
            say(f"static_pages is off: removed the pre-rendered pages in {settings.static_dir}")
        sender = threading.Thread(  # mail and webhooks, from the outbox (privindex.notify.outbox)
            target=in_thread(database, outbox.run_sender),
            args=(settings, stop),
            name="outbox-sender",
            daemon=True,
        )
        sender.start()
        threading.Thread(  # claims, allowances and statuses set by the CLI, within a pass
            target=in_thread(database, _follow_claims),
            args=(sources, stop, settings.rescan_interval),
            name="project-names",
            daemon=True,
        ).start()
        if sources.upstream_on and not settings.upstream_offline:
            threading.Thread(
                target=in_thread(database, _after_catch_up),
                args=(index, sources.watch_shadowing, stop, settings.upstream_page_ttl or 600),
                name="upstream-shadowing",
                daemon=True,
            ).start()
        echo(upstream_line(settings, sources))
        server.accept_connections()
        with bound(app.extensions["privindex"].database):
            first_run = not users.list_users()
        if first_run:
            echo(
                "no user yet: create the first admin with:  privindex user add NAME --admin "
                f"--data-dir {settings.data_dir.absolute()} --store {settings.store.absolute()}"
            )
        url = settings.base_url
        echo(
            f"privindex {__version__} serving {len(index.project_list())} projects "
            f"({index.file_count()} files) from {settings.store.absolute()}; "
            "checking the store against them in the background (/readyz answers 200 when done)"
        )
        echo(f"listening on http://{settings.host}:{settings.port}/  (public URL {url}/)")
        if settings.read_access == "token":  # private: show where the token goes
            scheme, _sep, host = url.partition("://")
            echo(
                "install with:  pip install --index-url "
                f"{scheme}://__token__:<token>@{host}/simple/ <package>"
                "  (a read-only token: privindex token create NAME --read-only)"
            )
        else:
            echo(f"install with:  pip install --index-url {url}/simple/ <package>")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.close()
        for thread in (watcher, sender):  # the sender finishes the delivery it is making
            if thread is not None:
                thread.join(timeout=5)
    echo("privindex stopped")  # not after a failure: that is reported instead
