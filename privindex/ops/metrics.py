"""Prometheus metrics: what an operator graphs and alerts on, at /metrics.

Each app has its own CollectorRegistry (tests build many apps in one process; two must not
share counters). The WSGI middleware counts every request by a small fixed set of route
labels (never raw paths: a scanner must not be able to grow the series without bound),
its status and its latency up to the answer's start, and downloads with their bytes
(Content-Length of a 200/206 file answer). Label children are made once and kept in plain
dicts, so the hot path is a few dict lookups and prometheus_client's own per-value locks;
no database work. Index sizes, upstream cache use and the last `backup`/`check` are read at
scrape time. Services report events (sign-in and token failures, uploads, upstream
fetches, rescans) through `current()`, the metrics of the app answering this request, or
through callables handed to them when the app is wired.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from peewee import fn
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from privindex.db.models import OutboxItem, RetentionRun

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Indexed(Protocol):
    """What a scrape reads of the Index (its current snapshot). A protocol, not an import:
    the index's modules record audit events, which count here."""

    @property
    def snapshot(self) -> Any: ...


class SizedCache(Protocol):
    """What a scrape reads of the upstream cache."""

    def total_bytes(self) -> int: ...


ROUTES = ("simple_root", "simple_project", "file", "metadata", "upload", "web", "health", "other")
_HEALTH_PATHS = frozenset(("/health", "/healthz", "/readyz", "/metrics"))
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOGIN_KINDS = {  # user:login:failure reason -> what failed
    "invalid_password": "password",
    "disabled": "password",
    "invalid_password_reauth": "password",
    "invalid_totp": "second_factor",
    "invalid_recovery_code": "second_factor",
    "invalid_webauthn": "second_factor",
}

_current: ContextVar[Metrics | None] = ContextVar("privindex_metrics", default=None)


def current() -> Metrics | None:
    """The metrics of the app answering this request; None outside one (the CLI)."""
    return _current.get()


def route_of(path: str) -> str:
    """One of ROUTES for a path (before the status is known; see Middleware)."""
    if path.startswith("/simple"):
        return "simple_root" if path in ("/simple", "/simple/") else "simple_project"
    if path.startswith("/packages/"):
        return "metadata" if path.endswith(".metadata") else "file"
    if path.startswith("/legacy/") or path == "/legacy":
        return "upload"
    if path in _HEALTH_PATHS:
        return "health"
    return "web"


class Metrics:
    """The app's registry and the instruments; one per app."""

    def __init__(self, index: Indexed, data_dir: Path, upstream_cache: SizedCache | None = None):
        self.registry = r = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "privindex_http_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "privindex_http_request_duration_seconds",
            "Time to the start of the answer, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.downloads = Counter(
            "privindex_downloads", "Package files and metadata files sent (200/206)", ["route"], registry=r
        )
        self.download_bytes = Counter(
            "privindex_download_bytes", "Bytes of package files sent (Content-Length)", ["route"], registry=r
        )
        self.uploads = Counter(
            "privindex_uploads", "Uploads published (new or overwriting files)", registry=r
        )
        self.upload_bytes = Counter("privindex_upload_bytes", "Bytes of published uploads", registry=r)
        self.uploads_refused = Counter(
            "privindex_uploads_refused", "Uploads refused, by HTTP status", ["status"], registry=r
        )
        self.auth_failures = Counter(
            "privindex_auth_failures",
            "Failed sign-ins, second factors and API tokens, by kind and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.page_cache = Counter(
            "privindex_page_cache_lookups", "Simple API page cache lookups", ["result"], registry=r
        )
        self.rescans = Histogram(
            "privindex_store_rescan_duration_seconds",
            "Store watcher passes (count) and how long they took",
            registry=r,
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120, 600),
        )
        self.upstream_fetches = Counter(
            "privindex_upstream_fetches", "Fetches from the upstream index", ["kind", "outcome"], registry=r
        )
        r.register(_ScrapeTime(index, data_dir, upstream_cache))
        # (route, status) -> child: 200s made now (every route shows from the start), others
        # at their first use; after that a request costs a dict lookup, not .labels()
        self._children: dict[tuple[str, str], Counter] = {
            (route, "200"): self.requests.labels(route, "200") for route in ROUTES
        }
        self._latency = {route: self.latency.labels(route) for route in ROUTES}
        self._downloads = {
            route: (self.downloads.labels(route), self.download_bytes.labels(route))
            for route in ("file", "metadata")
        }
        self.page_hit = self.page_cache.labels("hit").inc
        self.page_miss = self.page_cache.labels("miss").inc

    # -- events reported by services ---------------------------------------------------

    def login_failed(self, reason: str) -> None:
        self.auth_failures.labels(LOGIN_KINDS.get(reason, "password"), reason).inc()

    def token_failed(self, reason: str) -> None:
        self.auth_failures.labels("token", reason).inc()

    def uploaded(self, size: int) -> None:
        self.uploads.inc()
        self.upload_bytes.inc(size)

    def upload_refused(self, status: int) -> None:
        self.uploads_refused.labels(str(status)).inc()

    def upstream_fetch(self, kind: str, outcome: str) -> None:
        self.upstream_fetches.labels(kind, outcome).inc()

    def timed_rescan(self, refresh: Callable[[], None]) -> Callable[[], None]:
        def timed() -> None:
            started = time.perf_counter()
            try:
                refresh()
            finally:
                self.rescans.observe(time.perf_counter() - started)

        return timed

    # -- HTTP ----------------------------------------------------------------------------

    def middleware(self, app: Callable) -> Callable:
        """Count and time every request; make this app's metrics `current()` meanwhile."""
        children, latency, downloads = self._children, self._latency, self._downloads
        requests = self.requests
        perf_counter = time.perf_counter

        def measured(environ: dict, start_response: Callable) -> Iterable[bytes]:
            started = perf_counter()
            route = route_of(environ.get("PATH_INFO", ""))
            seen: list = []

            def recording_start_response(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Any:
                seen.append(status)
                seen.append(headers)
                return start_response(status, headers, exc_info)

            token = _current.set(self)
            try:
                return app(environ, recording_start_response)
            finally:
                _current.reset(token)
                code = seen[-2][:3] if seen else "500"
                if route == "web" and code == "404":
                    route = "other"  # unknown paths: counted, but never as their own series
                child = children.get((route, code))
                if child is None:
                    child = children[(route, code)] = requests.labels(route, code)
                child.inc()
                latency[route].observe(perf_counter() - started)
                if route in downloads and code in ("200", "206") and environ.get("REQUEST_METHOD") == "GET":
                    count, size = downloads[route]
                    count.inc()
                    sent = environ.get("privindex.sent_bytes")  # the proxy sends them (send_files_via)
                    if sent is not None:
                        size.inc(sent)
                    else:
                        for name, value in seen[-1]:
                            if name.lower() == "content-length":
                                size.inc(int(value))
                                break

        return measured

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ScrapeTime:
    """Gauges computed when scraped: the index snapshot's size, the upstream cache's size,
    and when `privindex backup` and `check` last succeeded (they run as other processes and
    leave their time in the data dir; 0 means never)."""

    def __init__(self, index: Indexed, data_dir: Path, upstream_cache: SizedCache | None):
        self.index, self.data_dir, self.upstream_cache = index, data_dir, upstream_cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from privindex.ops.maintenance import last_successes

        snapshot = self.index.snapshot
        yield GaugeMetricFamily("privindex_index_projects", "Projects listed", value=len(snapshot.projects))
        yield GaugeMetricFamily("privindex_index_files", "Files listed", value=len(snapshot.files))
        yield GaugeMetricFamily(
            "privindex_index_bytes",
            "Bytes of the files listed",
            value=sum(f.size or 0 for f in snapshot.files.values()),
        )
        if self.upstream_cache is not None:
            yield GaugeMetricFamily(
                "privindex_upstream_cache_bytes",
                "Bytes of upstream files cached",
                value=self.upstream_cache.total_bytes(),
            )
        last = GaugeMetricFamily(
            "privindex_last_success_timestamp_seconds",
            "When `privindex backup` / `check` last succeeded (Unix time; 0: never)",
            labels=["job"],
        )
        runs = last_successes(self.data_dir)
        for job in ("backup", "check"):
            last.add_metric([job], runs.get(job, 0.0))
        yield last
        files, size = RetentionRun.select(fn.SUM(RetentionRun.files), fn.SUM(RetentionRun.bytes)).scalar(
            as_tuple=True
        )  # every process's runs, the command's too: read from the database
        yield CounterMetricFamily(
            "privindex_retention_deleted_files", "Files the retention policy deleted", value=files or 0
        )
        yield CounterMetricFamily(
            "privindex_retention_freed_bytes", "Bytes the retention policy freed", value=size or 0
        )
        yield _outbox_gauge()


def _outbox_gauge() -> GaugeMetricFamily:
    """Outbox rows by kind and status (pending, sent, failed), every process's: from the database."""
    gauge = GaugeMetricFamily(
        "privindex_outbox_deliveries",
        "Deliveries in the outbox (mail, webhook) by status",
        labels=["kind", "status"],
    )
    found = {(kind, status): 0 for kind in ("mail", "webhook") for status in ("pending", "sent", "failed")}
    rows = OutboxItem.select(OutboxItem.kind, OutboxItem.status, fn.COUNT(OutboxItem.id))
    for kind, status, number in rows.group_by(OutboxItem.kind, OutboxItem.status).tuples():
        found[(kind, status)] = number
    for (kind, status), number in sorted(found.items()):
        gauge.add_metric([kind, status], number)
    return gauge


# -- who may read /metrics -----------------------------------------------------------------


def may_read(
    mode: str, networks: Iterable[Network], environ: dict, has_valid_token: Callable[[dict], bool]
) -> bool:
    """metrics_access (Settings.metrics_mode) applied to a request."""
    if mode == "public":
        return True
    if mode == "addresses" and _from(environ.get("REMOTE_ADDR"), networks):
        return True
    return has_valid_token(environ)


def _from(address: str | None, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)
