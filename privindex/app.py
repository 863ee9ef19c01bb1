"""create_app(): the one place where settings, database, store, index and views meet."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import peewee
from flask import Flask, Response, g, jsonify, request

from privindex import __version__
from privindex.accounts.api_tokens import TokenRejected, authenticate_token
from privindex.api import exchange, upload
from privindex.api.health import bp as health_bp
from privindex.api.health import indexing_report
from privindex.api.json_api import PREFIX as JSON_PREFIX
from privindex.api.json_api import JsonAPI
from privindex.api.read_check import PATH as READ_CHECK_PATH
from privindex.api.read_check import ReadCheck
from privindex.api.simple import ProxySend, SimpleAPI
from privindex.api.upload import UploadRequest
from privindex.auth.token_format import MalformedAuthorization, read_authorization
from privindex.config import Settings
from privindex.db.connection import bind, bind_to_requests, bound, connect, in_thread, unbind
from privindex.notify import mail, notices, webhook_sender
from privindex.oidc import publishers, sso
from privindex.ops.access_log import access_log
from privindex.ops.metrics import Metrics, may_read
from privindex.ops.request_ids import request_ids
from privindex.packages import serving_tree
from privindex.packages.archives import ArchiveLimits
from privindex.packages.index import Index, Progress
from privindex.packages.static_pages import StaticPages
from privindex.packages.store import Store
from privindex.upstream.source_rules import Sources
from privindex.web import init_web

log = logging.getLogger(__name__)

FAST_PREFIXES = ("/simple", "/packages/")


@dataclass
class Services:
    """What the views and the CLI share; reached as current_app.extensions['privindex']."""

    settings: Settings
    store: Store
    index: Index
    database: peewee.Database  # this app's own; see db/connection.py for how `database` finds it
    sources: Sources  # where each name comes from: here, the upstream, or both
    stop: threading.Event  # set on shutdown (server.py, a test's teardown): ends create_app's threads


def create_app(
    settings: Settings,
    progress: Progress | None = None,
    index_later: bool = False,
    stop: threading.Event | None = None,
) -> Flask:
    """The app on a loaded index; with index_later (what `serve` does) only what the database
    recorded is listed, and the caller runs index.catch_up() in the background. Setting stop
    (services.stop: the caller's, or a new one) ends the threads the app started."""
    app = Flask(__name__, static_folder=None)  # the web blueprint serves its own
    app.request_class = UploadRequest  # sets the body size limits, per endpoint
    for warning in settings.warnings():
        log.warning("%s", warning)

    db = connect(settings.database)
    store = Store(settings.store)
    store.root.mkdir(parents=True, exist_ok=True)
    index = Index(store, ArchiveLimits.from_settings(settings))
    with bound(db):
        if index_later:
            index.load_recorded()
        else:
            index.load(progress)
        sources = Sources(index, make_upstream_cache(settings))
        sources.reload()
        sso.forget_untrusted_mfa(settings.sso_providers)
    stop = stop if stop is not None else threading.Event()
    _keep_serving_tree(settings, index, sources, db, stop)
    mail.configure(settings)  # the outbox's senders in this process
    webhook_sender.configure(settings)
    services = Services(settings=settings, store=store, index=index, database=db, sources=sources, stop=stop)
    app.extensions["privindex"] = services
    app.extensions["privindex_notices"] = notices.attach(db, settings)  # None without mail
    _bind_to_app_contexts(app, db)

    if settings.static_pages:
        writer = StaticPages.from_settings(settings, sources)
        with bound(db):  # before anyone is served: no page that must not be served stays
            writer.prune()
        writer.follow()
        app.extensions["privindex_static_pages"] = writer  # server.py runs its thread
    read_guard = token_reader if settings.read_access == "token" else None
    app.extensions["privindex_read_guard"] = read_guard  # /readyz's counts: only for readers

    @app.get("/health")
    def health():
        if read_guard is not None and not read_guard(request.environ):
            return jsonify(status="ok")  # a private index tells strangers neither its size nor its version
        return jsonify(
            status="ok",
            version=__version__,
            projects=len(index.project_list()),
            files=index.file_count(),
            **indexing_report(index),
        )

    app.register_blueprint(health_bp)  # /healthz, /readyz
    app.register_blueprint(upload.bp)
    # Trusted Publishing: registered before init_web, which exempts every blueprint but the
    # web UI's from CSRF; these POSTs are authenticated by the JWT they carry, not a cookie
    app.register_blueprint(exchange.bp)
    app.extensions["privindex_oidc"] = publishers.Verifier(settings)
    app.extensions["privindex_sso"] = sso.Providers(settings)
    init_web(app)

    simple_api = SimpleAPI(
        index,
        page_cache_size=settings.page_cache_size,
        read_guard=read_guard,
        sources=sources,
        proxy_send=ProxySend.from_settings(settings.send_files_via, settings.send_files_prefix, store.root),
    )
    json_api = JsonAPI(simple_api, settings.page_cache_size, settings.public_url)
    routed = _route_read_path(simple_api, json_api, app.wsgi_app)
    if settings.metrics:
        metrics = Metrics(index, settings.data_dir, sources.cache)
        app.extensions["privindex_metrics"] = metrics
        simple_api.on_page_hit, simple_api.on_page_miss = metrics.page_hit, metrics.page_miss
        if sources.cache is not None:
            sources.cache.on_fetch = metrics.upstream_fetch
        _add_metrics_view(app, metrics, settings)
        routed = metrics.middleware(routed)
    app.wsgi_app = _read_check_first(  # type: ignore[method-assign]
        bind_to_requests(db, ReadCheck(read_guard)), bind_to_requests(db, request_ids(access_log(routed)))
    )
    return app


def _keep_serving_tree(
    settings: Settings, index: Index, sources: Sources, db: peewee.Database, stop: threading.Event
) -> None:
    """static_files: the tree of hard links nginx sends files from, kept by a thread of its
    own (until stop is set) that the index and the statuses tell of each change; without
    it, no tree is left."""
    if not settings.static_files:
        serving_tree.remove_tree(settings.data_dir)
        return
    folder = serving_tree.tree_folder(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    problem = serving_tree.filesystem_problem(store_root=index.store.root, data_dir=folder)
    if problem:
        log.error("%s", problem)
        serving_tree.remove_tree(settings.data_dir)
        return
    tree = serving_tree.ServingTree(index, folder, lambda name: sources.status(name).offers_files)
    with bound(db):  # before anyone is served: nothing withdrawn while stopped stays in the tree
        tree.prune()
    index.listeners.append(tree.changed)
    sources.status_listeners.append(tree.changed)
    threading.Thread(target=in_thread(db, tree.run), args=(stop,), name="serving-tree", daemon=True).start()


def _add_metrics_view(app: Flask, metrics: Metrics, settings: Settings) -> None:
    """/metrics for whoever metrics_access lets in (see Settings.metrics_mode)."""
    mode, networks = settings.metrics_mode, settings.metrics_networks

    @app.get("/metrics")
    def metrics_endpoint():
        if not may_read(mode, networks, request.environ, token_reader):
            hint = " or from an allowed address" if mode == "addresses" else ""
            return Response(
                f"Metrics need an API token (user __token__){hint}.\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Basic realm="privindex"'},
            )
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def make_upstream_cache(settings: Settings):
    """The upstream's client and cache, or None when no upstream_url is set."""
    if not settings.upstream_url:
        return None
    from privindex.upstream.cache import UpstreamCache
    from privindex.upstream.client import Limits, Upstream

    limits = Limits(
        timeout=settings.upstream_timeout,
        page_deadline=settings.upstream_page_deadline,
        file_deadline=settings.upstream_file_deadline,
        max_page_bytes=settings.upstream_max_page_mb * 1024**2,
        max_file_bytes=settings.upstream_max_file_mb * 1024**2,
        file_hosts=settings.upstream_file_host_names,
    )
    upstream = Upstream(settings.upstream_url, settings.upstream_timeout, settings.upstream_ca_bundle, limits)
    return UpstreamCache(
        upstream,
        settings.upstream_dir,
        ttl=settings.upstream_page_ttl,
        min_age=settings.upstream_min_age,
        max_bytes=int(settings.upstream_cache_max_gb * 1024**3),
        offline=settings.upstream_offline,
        workers=settings.upstream_worker_share,
        page_memory_bytes=settings.upstream_page_memory_mb * 1024**2,
    )


def _bind_to_app_contexts(app: Flask, db: peewee.Database) -> None:
    """`with app.app_context():` uses this app's database too, as code outside a request
    (tests, a shell) expects of a Flask app."""
    from flask import appcontext_pushed

    def push(sender: Flask, **_extra) -> None:
        g.setdefault("_privindex_db_tokens", []).append(bind(db))

    def pop(_exc: BaseException | None) -> None:
        for token in reversed(g.pop("_privindex_db_tokens", [])):
            unbind(token)

    appcontext_pushed.connect(push, app, weak=False)
    app.teardown_appcontext(pop)


def token_reader(environ: dict) -> bool:
    """Whether a read request carries a valid token (any scope, read-only included)."""
    try:
        credentials = read_authorization(environ.get("HTTP_AUTHORIZATION"))
        if credentials is None or not credentials.is_token:
            return False
        authenticate_token(credentials.secret, environ.get("REMOTE_ADDR"))
        return True
    except (MalformedAuthorization, TokenRejected):
        return False


def _read_check_first(read_check: Callable, app: Callable) -> Callable:
    """nginx's read check (one per pre-rendered page of a private index) outside the access
    log and request ids: nginx logs the request it guards, and the check stays well under a
    millisecond."""

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == READ_CHECK_PATH:
            return read_check(environ, start_response)
        return app(environ, start_response)

    return dispatch


def _route_read_path(fast: Callable, json_api: Callable, flask_app: Callable) -> Callable:
    """Send the hot read URLs to the plain-WSGI Simple API, the JSON API's to its own plain
    WSGI app, the rest to Flask."""

    def dispatch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(FAST_PREFIXES):
            return fast(environ, start_response)
        if path.startswith(JSON_PREFIX):
            return json_api(environ, start_response)
        return flask_app(environ, start_response)

    return dispatch
