"""The receiver's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ingest.durable import DurableWriter

UNKNOWN = "unknown"


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "callstream_ingest_requests", "Callbacks answered, by tenant, kind and HTTP status",
            ["tenant", "kind", "status"], registry=r,
        )  # fmt: skip
        self.publish_seconds = Histogram(
            "callstream_ingest_publish_seconds",
            "Time to make an event durable, by where it went (kafka or spool)",
            ["where"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.deadletters = Counter(
            "callstream_ingest_deadletters",
            "Bodies that did not decode, kept in the dead-letter topic",
            ["tenant", "kind", "reason"], registry=r,
        )  # fmt: skip
        self.auth_failures = Counter(
            "callstream_ingest_auth_failures", "Callbacks refused before reading, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("callstream_ingest_in_flight", "Callbacks being handled", registry=r)
        self.spool_records = Gauge(
            "callstream_ingest_spool_records", "Events waiting in the local spool", registry=r
        )
        self.spool_bytes = Gauge("callstream_ingest_spool_bytes", "Size of the spool", registry=r)
        self.spool_age = Gauge(
            "callstream_ingest_spool_oldest_age_seconds",
            "Age of the oldest spooled event",
            registry=r,
        )
        self.spooling = Gauge(
            "callstream_ingest_spooling", "1 while new events go to the spool", registry=r
        )
        self.abandoned = Gauge(
            "callstream_ingest_abandoned_sends",
            "Events spooled after a Kafka send that may still land: possible duplicates",
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._publish_children: dict[str, Histogram] = {}

    def count_request(self, tenant: str, kind: str, status: int) -> None:
        key = (tenant, kind, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(tenant, kind, str(status))
        child.inc()

    def observe_publish(self, where: str, seconds: float) -> None:
        child = self._publish_children.get(where)
        if child is None:
            child = self._publish_children[where] = self.publish_seconds.labels(where)
        child.observe(seconds)

    def watch(self, writer: DurableWriter) -> None:
        spool = writer.spool
        self.spool_records.set_function(lambda: spool.records)
        self.spool_bytes.set_function(lambda: spool.stored_bytes)
        self.spool_age.set_function(spool.oldest_age)
        self.spooling.set_function(lambda: float(writer.spooling))
        self.abandoned.set_function(lambda: writer.abandoned_sends)

    def render(self) -> bytes:
        return generate_latest(self.registry)
