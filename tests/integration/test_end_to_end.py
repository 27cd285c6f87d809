"""The whole pipeline as processes: simulator → ingest → enrich → recordings → S3."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import msgspec

from common.records import CdrRecord, RecordingRecord
from common.schemas import topic_schemas
from common.topics import Topics
from devkit.sim import running_simulator, sim_tenants_toml
from tests.integration.conftest import TopicSetFactory
from tests.support.kafka import read_topic
from tests.support.processes import start_service
from tests.support.receiver import running_receiver, wait_drained
from tests.support.services import Services
from yunhu.sim.audio import wav_bytes
from yunhu.sim.poster import TrafficSettings
from yunhu.sim.run import post_traffic
from yunhu.sim.sentlog import read_sent_log

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def test_callbacks_become_records_and_recordings_end_to_end(
    services: Services,
    topic_set: TopicSetFactory,
    s3_client: S3Client,
    s3_prefix: str,
    tmp_path: Path,
) -> None:
    suffix, topics = await topic_set()
    sent_log = tmp_path / "sent.ndjson"
    async with running_simulator() as sim:
        tenants = tmp_path / "pipeline-tenants.toml"
        tenants.write_text(sim_tenants_toml(sim.settings.base_url))
        env = {
            **services.env(s3_prefix),
            "CALLSTREAM_TOPIC_SUFFIX": suffix,
            "CALLSTREAM_TENANTS": str(tenants),
            "CALLSTREAM_ENRICH_GROUP": f"enrich-{suffix}",
            "CALLSTREAM_RECORDINGS_GROUP": f"recordings-{suffix}",
        }
        enrich = start_service("enrich", env, tmp_path / "enrich.log")
        recordings = start_service("recordings", env, tmp_path / "recordings.log")
        try:
            async with running_receiver(tmp_path, services.kafka, suffix) as receiver:
                report = await post_traffic(
                    sim,
                    TrafficSettings(receiver.url, rate=50, calls=30, seed=31, sent_log=sent_log),
                )
                await wait_drained(receiver)  # whatever the spool held reaches Kafka
            sent_cdrs = {e.uuid for e in read_sent_log(sent_log) if e.kind == "cdr"}
            async with asyncio.timeout(90):
                while True:
                    cdrs = [
                        msgspec.json.decode(r.value, type=CdrRecord)
                        for r in await read_topic(services.kafka, topics.cdr)
                    ]
                    answered = {c.uuid for c in cdrs if c.has_recording}
                    announced = await read_topic(services.kafka, topics.recordings)
                    if len(cdrs) >= len(sent_cdrs) and len(announced) >= len(answered):
                        break
                    await asyncio.sleep(1)
        finally:
            for proc in (enrich, recordings):
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(30) for proc in (enrich, recordings)]
    assert codes == [0, 0], (tmp_path / "recordings.log").read_text()[-3000:]
    assert report.calls == 30
    assert sorted(c.uuid for c in cdrs) == sorted(sent_cdrs), "every CDR exactly once"
    assert all(c.hangup_cause is not None and c.hangup_cause.known for c in cdrs)
    records = [msgspec.json.decode(r.value, type=RecordingRecord) for r in announced]
    assert {r.uuid for r in records} == answered
    talk = {c.uuid: (c.recording_file, c.talk_seconds or 0) for c in cdrs}
    for item in records:
        expected = hashlib.sha256(wav_bytes(*talk[item.uuid])).hexdigest()
        assert item.sha256 == expected
        body = s3_client.get_object(Bucket=item.bucket, Key=item.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == expected
    await _every_record_fits_its_topics_schema(services, topics)


BOARD_TOPICS = {Topics().extensions, Topics().metrics_minute, Topics().anomalies}


async def _every_record_fits_its_topics_schema(services: Services, topics: Topics) -> None:
    """The topics this pipeline writes (the board's are checked by its own test)."""
    schemas = topic_schemas()
    suffixed = dict(zip(Topics().all(), topics.all(), strict=True))
    for role, schema in schemas.items():
        if role in BOARD_TOPICS:
            continue
        validator = jsonschema.Draft202012Validator(schema)
        records = await read_topic(services.kafka, suffixed[role])
        assert records, role
        for record in records:
            errors = [e.message for e in validator.iter_errors(json.loads(record.value))]
            assert errors == [], (role, record.value)
