"""The receiver's Prometheus metrics, in a registry of its own (one per app).

The two that move on every callback (requests, publish latency) are plain counters read
by a collector at scrape time: prometheus_client's labelled children take a lock and walk
the buckets on each call, a measurable share of the receiver's CPU per request.
"""

from __future__ import annotations

import bisect
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Final

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from common.http_serving import Served, ServerMetrics
from common.metrics import ServiceMetrics
from ingest.durable import DurableWriter

UNKNOWN = "unknown"
PUBLISH_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class LatencyHistogram:
    """Bucket counts and a sum, cumulated only when scraped."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(PUBLISH_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(PUBLISH_BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, PUBLISH_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class IngestMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.requests: Tally[tuple[str, str, int]] = Tally()
        self.publish = {"kafka": LatencyHistogram(), "spool": LatencyHistogram()}
        self.registry.register(_PerRequest(self))
        self.server = ServerMetrics("callstream_ingest", "CALLSTREAM_INGEST_MAX_CONNECTIONS")
        self.registry.register(self.server)
        self.deadletters = self.counter(
            "callstream_ingest_deadletters",
            "Bodies that did not decode, kept in the dead-letter topic",
            ["tenant", "kind", "reason"],
        )
        self.auth_failures = self.counter(
            "callstream_ingest_auth_failures",
            "Callbacks refused before reading, by reason",
            ["reason"],
        )
        self.in_flight = self.gauge("callstream_ingest_in_flight", "Callbacks being handled")
        self.spool_records = self.gauge(
            "callstream_ingest_spool_records", "Events waiting in the local spool"
        )
        self.spool_bytes = self.gauge("callstream_ingest_spool_bytes", "Size of the spool")
        self.spool_age = self.gauge(
            "callstream_ingest_spool_oldest_age_seconds", "Age of the oldest spooled event"
        )
        self.spooling = self.gauge(
            "callstream_ingest_spooling", "1 while new events go to the spool"
        )
        self.abandoned = self.gauge(
            "callstream_ingest_abandoned_sends",
            "Events spooled after a Kafka send that may still land: possible duplicates",
        )

    def watch_server(self, served: Served) -> None:
        self.server.served = served

    def count_request(self, tenant: str, kind: str, status: int) -> None:
        self.requests[tenant, kind, status] += 1

    def observe_publish(self, where: str, seconds: float) -> None:
        self.publish[where].observe(seconds)

    def watch(self, writer: DurableWriter) -> None:
        spool = writer.spool
        self.spool_records.set_function(lambda: spool.records)
        self.spool_bytes.set_function(lambda: spool.stored_bytes)
        self.spool_age.set_function(spool.oldest_age)
        self.spooling.set_function(lambda: float(writer.spooling))
        self.abandoned.set_function(lambda: writer.abandoned_sends)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PerRequest(Collector):
    def __init__(self, metrics: IngestMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "callstream_ingest_requests",
            "Callbacks answered, by tenant, kind and HTTP status",
            labels=["tenant", "kind", "status"],
        )
        for (tenant, kind, status), count in list(self._metrics.requests.items()):
            requests.add_metric([tenant, kind, str(status)], count)
        yield requests
        publish = HistogramMetricFamily(
            "callstream_ingest_publish_seconds",
            "Time to make an event durable, by where it went (kafka or spool)",
            labels=["where"],
        )
        for where, histogram in self._metrics.publish.items():
            publish.add_metric([where], histogram.cumulative(), histogram.total)
        yield publish
