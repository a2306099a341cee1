"""Prometheus metrics: a collector that reads the store on each scrape, plus request
metrics kept in this process.

The store is the truth shared by every process (API, scheduler, delivery workers), so
poll, event and delivery metrics are read from it at scrape time: any API process
reports the same numbers and nothing has to be kept in sync. Each app gets its own
``CollectorRegistry``, so tests never share the global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.market import calendar
from app.market import repository as market
from app.status import repository
from app.status.health import store_problem
from app.status.service import sessions_behind
from app.web.deps import Services

POLL_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# Loopback deliveries take 1–30 ms; the delivery worker gives up at 15 s.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    15.0,
)
DELIVERY_WINDOW = timedelta(hours=24)
POLL_OUTCOMES = ("ok", "partial", "failed")
FINISHED_DELIVERIES = ("succeeded", "failed", "cancelled")


def _histogram(
    name: str, doc: str, bounds: tuple[float, ...], cumulative: list[int], count: int, total: float
) -> HistogramMetricFamily:
    buckets = [(f"{b:g}", float(c)) for b, c in zip(bounds, cumulative, strict=True)]
    buckets.append(("+Inf", float(count)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)


class StoreCollector(Collector):
    """Reads poll, data-age, event and delivery facts from the store on every scrape."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services()
        if services is None:  # scraped before the lifespan built the services
            return
        up = GaugeMetricFamily("crosswatch_store_up", "1 when the store answered this scrape")
        problem = store_problem(services.db)  # the store itself, not a pooled handle
        if problem is not None and problem.state == "down":
            up.add_metric([], 0.0)
            yield up
            return
        try:
            with services.db.transaction(write=False) as session:
                families = list(self._from_store(session, services))
        except Exception:  # a scrape must answer even when the store does not
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _from_store(self, session: Session, services: Services) -> Iterator[Metric]:
        polls = CounterMetricFamily(
            "crosswatch_polls",
            "Finished poll runs by outcome (ok, partial, failed)",
            labels=["outcome"],
        )
        by_outcome = repository.polls_by_status(session)
        for outcome in POLL_OUTCOMES:
            polls.add_metric([outcome], by_outcome.get(outcome, 0))
        yield polls
        durations = repository.poll_durations(session)
        cumulative = [sum(1 for d in durations if d <= b) for b in POLL_BUCKETS]
        yield _histogram(
            "crosswatch_poll_duration_seconds",
            "Duration of finished poll runs",
            POLL_BUCKETS,
            cumulative,
            len(durations),
            sum(durations),
        )
        ingested = CounterMetricFamily(
            "crosswatch_sessions_ingested",
            "Sessions stored by polls, per symbol and kind",
            labels=["symbol", "kind"],
        )
        for symbol, (added, revised) in sorted(repository.sessions_ingested(session).items()):
            ingested.add_metric([symbol, "added"], added)
            ingested.add_metric([symbol, "revised"], revised)
        yield ingested
        yield from self._data_age(session, services)
        events = CounterMetricFamily("crosswatch_events", "Stored events by type", labels=["type"])
        for kind, count in sorted(repository.events_by_type(session).items()):
            events.add_metric([kind], count)
        yield events
        yield from self._deliveries(session, services)

    def _data_age(self, session: Session, services: Services) -> Iterator[Metric]:
        expected = calendar.last_closed_session(services.clock())
        symbols = market.tracked_symbols(session)
        lasts = market.last_sessions(session, symbols)
        age = GaugeMetricFamily(
            "crosswatch_data_age_sessions",
            "Closed XNYS sessions missing after each symbol's newest stored session",
            labels=["symbol"],
        )
        newest = GaugeMetricFamily(
            "crosswatch_last_session_timestamp_seconds",
            "Each symbol's newest stored session (midnight UTC of its date)",
            labels=["symbol"],
        )
        for symbol in symbols:
            if symbol in lasts:
                age.add_metric([symbol], sessions_behind(lasts[symbol], expected))
                midnight = datetime.combine(lasts[symbol], clock_time.min, tzinfo=UTC)
                newest.add_metric([symbol], midnight.timestamp())
        yield age
        yield newest

    def _deliveries(self, session: Session, services: Services) -> Iterator[Metric]:
        by_status = repository.deliveries_by_status(session)
        if by_status is None:  # the webhook tables are not there yet
            return
        finished = CounterMetricFamily(
            "crosswatch_deliveries",
            "Finished deliveries by outcome (succeeded, failed, cancelled)",
            labels=["outcome"],
        )
        for outcome in FINISHED_DELIVERIES:
            finished.add_metric([outcome], by_status.get(outcome, 0))
        yield finished
        attempts = CounterMetricFamily(
            "crosswatch_delivery_attempts",
            "Delivery attempts by outcome (success, http_error, error)",
            labels=["outcome"],
        )
        for outcome, count in sorted(repository.attempts_by_outcome(session).items()):
            attempts.add_metric([outcome], count)
        yield attempts
        cumulative, count, total = repository.latency_histogram(session, LATENCY_BUCKETS)
        yield _histogram(
            "crosswatch_delivery_latency_seconds",
            "Latency of delivery attempts",
            LATENCY_BUCKETS,
            cumulative,
            count,
            total,
        )
        facts = repository.delivery_facts(session, services.clock(), DELIVERY_WINDOW)
        assert facts is not None
        backlog = GaugeMetricFamily(
            "crosswatch_outbox_backlog", "Pending deliveries", labels=["due"]
        )
        backlog.add_metric(["yes"], facts.due)
        backlog.add_metric(["no"], facts.backlog - facts.due)
        yield backlog
        oldest = GaugeMetricFamily(
            "crosswatch_outbox_oldest_due_age_seconds",
            "How long the oldest due delivery has waited (0 when none is due)",
        )
        waited = timedelta(0) if facts.oldest_due is None else services.clock() - facts.oldest_due
        oldest.add_metric([], waited.total_seconds())
        yield oldest
        endpoints = GaugeMetricFamily(
            "crosswatch_webhook_endpoints", "Subscriptions by health", labels=["state"]
        )
        endpoints.add_metric(["failing"], len(facts.failing))
        endpoints.add_metric(["disabled"], len(facts.disabled))
        endpoints.add_metric(
            ["healthy"], facts.subscriptions - len(facts.failing) - len(facts.disabled)
        )
        yield endpoints


class Metrics:
    """One app's registry: the store collector and this process's request histogram."""

    def __init__(self, services: Callable[[], Services | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(services))
        self.requests = Histogram(
            "crosswatch_http_request_duration_seconds",
            "HTTP requests served by this process, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )


class RequestMetrics:
    """Pure ASGI middleware timing each request under its route template (not its path,
    which would make one series per symbol or cursor)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Routing rewrites the scope (a mount moves the path into root_path): keep the
        # request's own, to find the route of a request no API route served.
        path, root_path = scope["path"], scope.get("root_path", "")

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route") or _plain_route(
                {**scope, "path": path, "root_path": root_path}
            )
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


def _plain_route(scope: Scope) -> BaseRoute | None:
    """The route that served ``scope`` when it was not an API route: Starlette's own
    routes (``/openapi.json``) and mounts (the docs' static files) leave no ``route`` in
    the scope. None when nothing matched (a 404)."""
    routes: Sequence[BaseRoute] = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def install(app: Starlette) -> Metrics:
    """Give ``app`` its own registry and time its requests (call in the app factory)."""
    metrics = metrics_for(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return metrics


def metrics_for(app: Starlette) -> Metrics:
    """``app``'s registry, created on first use (without request timing if not installed)."""
    metrics: Metrics | None = getattr(app.state, "metrics", None)
    if metrics is None:
        metrics = Metrics(lambda: getattr(app.state, "services", None))
        app.state.metrics = metrics
    return metrics
