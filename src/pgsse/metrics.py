"""``/metrics``: this process's figures for Prometheus (extra ``django-pgsse[metrics]``).

Pull-based: nothing is counted for Prometheus as pgsse works. The hub keeps its plain
counters (:class:`~pgsse.stats.HubStats`); at scrape time this view takes a snapshot on the
server's loop, asks PostgreSQL for ``pg_notification_queue_usage()`` (through the hub's
reader, within ``PROBE_TIMEOUT``), and a :class:`HubCollector` turns the lot into metric
families for ``prometheus_client`` to encode.

**One endpoint per worker process.** The figures live in each process's memory, so a scrape
describes the process that answered it. Give each worker its own port (the deployment guide
runs one server process per port behind the proxy) and scrape each one. prometheus_client's
multiprocess mode does not apply: it only aggregates its own metric types, written to files
on every change, which would put file writes in the delivery path.

**Off by default.** The view answers 404 until ``PGSSE["METRICS_ALLOW_FROM"]`` (client
networks) or ``PGSSE["METRICS_TOKEN"]`` (``Authorization: Bearer <token>``) is set; any
other client gets 403.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from pgsse.atomic_requests import never_atomic
from pgsse.conf import PgsseSettings, get_settings
from pgsse.hub import Hub, current_hub
from pgsse.log_reader import LogReader
from pgsse.stats import HubStats, PublishStats, publish_stats
from pgsse.subscription import EndReason

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["HubCollector", "Sample", "metrics", "take_sample"]

logger = logging.getLogger("pgsse.metrics")

_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Sample:
    """Everything one scrape reports, read at once."""

    #: None when no hub runs in this process yet (no stream, no lifespan startup).
    hub: HubStats | None
    publish: PublishStats
    #: ``pg_notification_queue_usage()``, None if PostgreSQL did not answer in time.
    queue_usage: float | None


async def take_sample(hub: Hub | None, timeout: float) -> Sample:
    """Read the hub's counters (on its loop) and PostgreSQL's notification queue usage."""
    stats = hub.stats() if hub is not None else None
    usage = None
    if hub is not None and isinstance(hub.reader, LogReader):
        try:
            async with asyncio.timeout(timeout):
                usage = await hub.reader.notification_queue_usage()
        except Exception as exc:  # timeout or database error: report the rest
            logger.warning("metrics: pg_notification_queue_usage() failed: %r", exc)
    return Sample(stats, publish_stats(), usage)


class HubCollector:
    """A prometheus_client collector over one :class:`Sample`."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        sample = self.sample
        published = CounterMetricFamily(
            "pgsse_published_events", "Events publish() appended to the log in this process."
        )
        published.add_metric([], sample.publish.events)
        yield published
        errors = CounterMetricFamily(
            "pgsse_publish_errors",
            "publish() calls that raised, by kind (invalid input, database error).",
            labels=["kind"],
        )
        for kind in ("invalid", "database"):
            errors.add_metric([kind], sample.publish.errors.get(kind, 0))
        yield errors
        if sample.queue_usage is not None:
            yield GaugeMetricFamily(
                "pgsse_notification_queue_usage",
                "pg_notification_queue_usage(): fraction of PostgreSQL's NOTIFY queue in use.",
                value=sample.queue_usage,
            )
        yield GaugeMetricFamily(
            "pgsse_hub_running", "1 if this process's hub runs.", value=int(sample.hub is not None)
        )
        if sample.hub is not None:
            yield from _hub_metrics(sample.hub, CounterMetricFamily, GaugeMetricFamily)
            yield _lag_histogram(sample.hub, HistogramMetricFamily)


def _hub_metrics(stats: HubStats, counter: Any, gauge: Any) -> Iterator[Metric]:
    yield gauge("pgsse_streams_open", "Streams open in this process.", value=stats.subscriptions)
    yield gauge("pgsse_channels", "Channels followed by open streams.", value=stats.channels)
    yield counter("pgsse_streams_opened", "Streams opened.", value=stats.streams_opened)
    refused = counter("pgsse_streams_refused", "Streams refused, by reason.", labels=["reason"])
    for reason in sorted({"process_full", "user_limit", *stats.streams_refused}):
        refused.add_metric([reason], stats.streams_refused.get(reason, 0))
    yield refused
    closed = counter("pgsse_streams_closed", "Streams ended, by reason.", labels=["reason"])
    for reason in sorted({*_END_REASONS, *stats.streams_closed}):
        closed.add_metric([reason], stats.streams_closed.get(reason, 0))
    yield closed
    yield counter(
        "pgsse_events_delivered",
        "Events handed to streams (one per stream).",
        value=stats.delivered,
    )
    yield gauge(
        "pgsse_listener_connected",
        "1 while the listener connection is up.",
        value=int(stats.listener_connected),
    )
    yield counter(
        "pgsse_listener_connections",
        "Listener connections made (1 + reconnects).",
        value=stats.listener_connections,
    )
    yield counter("pgsse_notifications", "Notifications received.", value=stats.notifications)
    yield counter(
        "pgsse_foreign_notifications",
        "Notifications pgsse did not send (ignored).",
        value=stats.foreign_notifications,
    )
    if stats.last_notification_age is not None:
        yield gauge(
            "pgsse_last_notification_age_seconds",
            "Seconds since the last notification arrived.",
            value=stats.last_notification_age,
        )
    yield counter("pgsse_catch_ups", "Catch-ups from the log.", value=stats.catch_ups)
    yield counter(
        "pgsse_log_reads",
        "Queries reading events from the log (replays, catch-ups).",
        value=stats.log_reads,
    )
    yield counter(
        "pgsse_shared_log_reads",
        "Replay and catch-up reads answered by another stream's read.",
        value=stats.shared_reads,
    )
    yield counter(
        "pgsse_events_missing",
        "Events found missing from the log without pruning to explain it.",
        value=stats.holes,
    )
    yield counter("pgsse_hub_failures", "Unexpected errors the hub survived.", value=stats.failures)


def _lag_histogram(stats: HubStats, histogram: Any) -> Metric:
    lag = stats.delivery_lag
    buckets = []
    seen = 0
    for bound, count in zip((*lag.bounds, float("inf")), lag.counts, strict=True):
        seen += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), seen))
    return histogram(  # type: ignore[no-any-return]
        "pgsse_delivery_lag_seconds",
        "Seconds from an event's created_at (its transaction's timestamp) to fan-out.",
        buckets=buckets,
        sum_value=lag.total,
    )


#: Every reason a stream ends for, reported even at zero (rates need a series from the start).
_END_REASONS = tuple(value for name, value in vars(EndReason).items() if name.isupper())


def _client_allowed(request: HttpRequest, settings: PgsseSettings) -> bool:
    """The request carries the token, or comes from an allowed network."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if settings.METRICS_TOKEN is not None and scheme.lower() == "bearer":
        return hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOW_FROM
    )


@never_atomic
@require_safe
@never_cache
async def metrics(request: HttpRequest) -> HttpResponse:
    """This process's metrics, for Prometheus (see the module's documentation)."""
    settings = get_settings()
    if not settings.METRICS_ALLOW_FROM and settings.METRICS_TOKEN is None:
        return HttpResponse(
            "Metrics are off: set PGSSE['METRICS_ALLOW_FROM'] or PGSSE['METRICS_TOKEN'].\n",
            status=404,
            content_type=_TEXT,
        )
    if not _client_allowed(request, settings):
        return HttpResponse(
            "Metrics are readable from the networks in PGSSE['METRICS_ALLOW_FROM'], or with "
            "'Authorization: Bearer <PGSSE['METRICS_TOKEN']>'.\n",
            status=403,
            content_type=_TEXT,
        )
    try:
        from prometheus_client import CollectorRegistry, ProcessCollector
        from prometheus_client.exposition import choose_encoder
    except ImportError:
        return HttpResponse(
            "Metrics need prometheus-client: pip install 'django-pgsse[metrics]'.\n",
            status=501,
            content_type=_TEXT,
        )
    sample = await take_sample(current_hub(), settings.PROBE_TIMEOUT)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(sample))
    ProcessCollector(registry=registry)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(registry), content_type=content_type)
