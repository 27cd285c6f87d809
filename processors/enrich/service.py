"""The enrich service: raw topics → canonical records, exactly once (Kafka transactions)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from common.config import KafkaSettings
from common.records import SCHEMA_VERSION, CdrRecord
from common.settings import load
from common.topics import Header, Topics
from processors.consumer import Record
from processors.enrich.dedupe import Deduper
from processors.enrich.recent import RecentIds
from processors.enrich.transform import EnrichError, enrich, origin
from processors.pipe import PipeSpec, transactional_pipe
from processors.runtime import Rejected, TransactionalPipe
from processors.transactions import Output
from yunhu.callbacks import CallbackKind

log = logging.getLogger(__name__)

_ENCODER: Final = msgspec.json.Encoder()
SERVICE: Final = "enrich"
SCHEMA_VERSION_HEADER: Final = str(SCHEMA_VERSION).encode()


ENRICH_NAMES: Final = {
    "group_id": "CALLSTREAM_ENRICH_GROUP",
    "instance": "CALLSTREAM_INSTANCE",
    "source_tz": "CALLSTREAM_SOURCE_TZ",
    "dedupe_window_hours": "CALLSTREAM_ENRICH_DEDUPE_HOURS",
    "dedupe_per_partition": "CALLSTREAM_ENRICH_DEDUPE_PER_PARTITION",
}


@dataclass(frozen=True, slots=True)
class EnrichSettings:
    group_id: str = "callstream-enrich"
    instance: str = "0"  # stable per replica: a restarted replica fences its predecessor
    source_tz: str = "Asia/Shanghai"
    dedupe_window_hours: float = 24.0
    dedupe_per_partition: int = 100_000  # record ids remembered per input partition
    metrics_port: int = 9101
    session_timeout_ms: int = 45_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnrichSettings:
        """`CALLSTREAM_ENRICH_{FIELD}`, but for the names below (`common.settings`)."""
        return load(cls, env, "CALLSTREAM_ENRICH_", ENRICH_NAMES)

    @property
    def transactional_id(self) -> str:
        return f"{self.group_id}-{self.instance}"


class Enricher:
    """The per-record transform; holds the time zone, topics and the deduper."""

    def __init__(self, topics: Topics, tz: ZoneInfo, deduper: Deduper) -> None:
        self.topics = topics
        self.tz = tz
        self.deduper = deduper

    def __call__(self, record: Record) -> list[Output]:
        kind: CallbackKind = "cdr" if record.topic == self.topics.cdr_raw else "callstate"
        headers = dict(record.headers)
        where = origin(headers, record.topic, record.partition, record.offset)
        try:
            enriched = enrich(kind, record.value or b"", headers, where, self.tz)
        except EnrichError as err:
            raise Rejected(str(err)) from None
        if not self.deduper.admit((record.topic, record.partition), enriched.record_id):
            return []
        topic = self.topics.cdr if isinstance(enriched, CdrRecord) else self.topics.callstate
        out_headers = [
            (Header.RECORD_ID, enriched.record_id.encode()),
            (Header.TENANT, enriched.tenant.encode()),
            (Header.SCHEMA_VERSION, SCHEMA_VERSION_HEADER),
        ]
        return [Output(topic, enriched.uuid.encode(), _ENCODER.encode(enriched), out_headers)]


@contextlib.asynccontextmanager
async def pipe(
    kafka: KafkaSettings, topics: Topics, settings: EnrichSettings
) -> AsyncIterator[TransactionalPipe]:
    """Build, start and (after the caller is done) close the enrich pipe."""
    deduper = Deduper(settings.dedupe_per_partition)
    outputs = {topics.callstate_raw: topics.callstate, topics.cdr_raw: topics.cdr}
    recent = RecentIds(kafka, outputs, deduper, settings.dedupe_window_hours)

    spec = PipeSpec(
        service=SERVICE,
        group_id=settings.group_id,
        transactional_id=settings.transactional_id,
        inputs=[topics.callstate_raw, topics.cdr_raw],
        deadletter_topic=topics.deadletter,
        session_timeout_ms=settings.session_timeout_ms,
    )
    enricher = Enricher(topics, ZoneInfo(settings.source_tz), deduper)
    async with transactional_pipe(kafka, spec, enricher, deduper, recent.on_assigned) as runner:
        yield runner
