"""Prometheus metrics at /metrics (docs/metrics.md), with prometheus-client.

The middleware counts and times every request by its URL pattern's name, never by its path (a
path holds record and grant ids), and answers `/metrics` itself, ahead of the URLconf, to
scrapers on the allowed addresses. Everyone else's `/metrics` goes on down the chain to the
URLconf, where no pattern matches: the same 404 as any unknown URL. With `VRM_METRICS` off the
middleware removes itself at start-up, so it costs nothing.

The store's gauges are read when scraped (`StoreCollector`), by the process that answers, from
the apps' own selectors. Labels carry only route names, methods and status codes.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from auditor.selectors import ledger_status
from consent.selectors import grants_live_total
from portal.reminders import reminders_due_count

PATH = "/metrics"
# Methods a client could invent would each make a series; anything else is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A request no URL pattern matched (a 404, or one refused by middleware before resolving).
UNMATCHED = "<unmatched>"
# The API answers in 1-50 ms; sign-in (Argon2id, ~130 ms) and exports take longer.
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "vrm_http_requests",
    "Requests answered, by URL pattern name, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "vrm_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL pattern name.",
    ["route"],
    buckets=BUCKETS,
)


def route_of(request: HttpRequest) -> str:
    """Return the name of the URL pattern that answered (or its route when unnamed), never the path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name if match.url_name else match.route


def scraper_address(request: HttpRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return the address a scrape comes from, or None when it cannot be told.

    Behind a proxy a request that passed through it comes from the proxy's own (often loopback)
    address, so one carrying X-Forwarded-For is judged by the client the proxies saw.
    """
    raw = request.META.get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if settings.VRM_BEHIND_PROXY and forwarded is not None:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) < settings.VRM_PROXY_COUNT:
            return None
        raw = hops[-settings.VRM_PROXY_COUNT]
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class StoreCollector:
    """The store's gauges, each a count read at scrape time through the apps' selectors."""

    def collect(self) -> Iterator[Metric]:
        ledger = ledger_status()
        yield _gauge(
            "vrm_ledger_unsealed_entries",
            "Ledger entries after the newest sealed one.",
            ledger.unsealed_entries,
        )
        age = (
            (timezone.now() - ledger.oldest_unsealed_at).total_seconds() if ledger.oldest_unsealed_at else 0.0
        )
        yield _gauge(
            "vrm_ledger_oldest_unsealed_age_seconds",
            "Age of the oldest unsealed ledger entry (0: none).",
            age,
        )
        tasks = DBTaskResult.objects
        yield _gauge(
            "vrm_tasks_queued",
            "Background tasks waiting to run.",
            tasks.filter(status=TaskResultStatus.READY).count(),
        )
        yield _gauge(
            "vrm_tasks_failed", "Background tasks that failed (kept until pruned).", tasks.failed().count()
        )
        yield _gauge(
            "vrm_grants_live", "Consent grants active and inside their window now.", grants_live_total()
        )
        yield _gauge(
            "vrm_reminders_due",
            "Record due dates and grant ends inside their reminder windows.",
            reminders_due_count(),
        )

    def describe(self) -> Iterable[Metric]:
        return []  # read only when scraped: no database query at registration


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def scrape() -> bytes:
    """Return every metric in the Prometheus text format, from all workers in multiprocess mode."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The workers' counters and histograms, merged from their files in that directory.
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(StoreCollector())
    return generate_latest(registry)


class MetricsMiddleware:
    """Count and time every request, and answer /metrics to the allowed addresses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.VRM_METRICS:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.allowed = [ipaddress.ip_network(item, strict=False) for item in settings.VRM_METRICS_ALLOW]
        # One labelled child per series, found again by a dict look-up instead of labels()' checks.
        self.counters: dict[tuple[str, str, int], Callable[[], None]] = {}
        self.timers: dict[str, Callable[[float], None]] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == PATH and self._allowed(request):
            return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
        start = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - start
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        key = (route, method, response.status_code)
        count = self.counters.get(key)
        if count is None:
            count = self.counters[key] = REQUESTS.labels(route, method, str(response.status_code)).inc
        count()
        observe = self.timers.get(route)
        if observe is None:
            observe = self.timers[route] = LATENCY.labels(route).observe
        observe(elapsed)
        return response

    def _allowed(self, request: HttpRequest) -> bool:
        address = scraper_address(request)
        return address is not None and any(address in network for network in self.allowed)
