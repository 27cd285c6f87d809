"""The Kafka and S3 images built here (deploy/kafka, deploy/s3), as the containers backend
runs them (`CALLSTREAM_TEST_BACKEND=containers`): testcontainers on the host's network,
no registry, serving what the services need. Ports apart from both backends' own."""

from __future__ import annotations

import asyncio
import uuid

from callstream.dev.image.engine import docker
from callstream.dev.stack import StackSettings
from common.config import KafkaSettings
from common.kafka import durable_producer, manual_consumer
from common.s3 import make_client
from devkit.topics import new_topics
from tests.support.containers import kafka_and_s3

PORTS = StackSettings(
    kafka_port=19292, controller_port=19293, s3_port=18533, seaweed_port_base=20000
)


def test_kafka_and_s3_images_built_here_serve_the_clients() -> None:
    before = _running()  # the session's own containers, when it runs on this backend
    with kafka_and_s3(PORTS) as settings:
        ours = {
            image.split(":")[0]: (network, ident)
            for ident, (image, network) in _running().items()
            if ident not in before
        }
        assert {image: network for image, (network, _) in ours.items()} == {
            "callstream-kafka": "host",
            "callstream-s3": "host",
        }
        assert asyncio.run(_round_trip(settings.kafka_settings())) == [
            (b"call-1", b"event", [("kind", b"smoke")])
        ]
        s3 = make_client(settings.s3_settings())
        bucket, key = settings.s3_bucket, f"containers-{uuid.uuid4().hex}/a.wav"
        s3.put_object(Bucket=bucket, Key=key, Body=b"RIFF" * 1000, ContentType="audio/wav")
        got = s3.get_object(Bucket=bucket, Key=key)
        assert (got["Body"].read(), got["ContentType"]) == (b"RIFF" * 1000, "audio/wav")
    for _, ident in ours.values():  # removed when the context ends
        assert docker({}, "inspect", ident).returncode != 0


def _running() -> dict[str, tuple[str, str]]:
    """Each running container's image and network, by id."""
    listed = docker({}, "ps", "--format", "{{.ID}} {{.Image}} {{.Networks}}").stdout
    return {
        ident: (image, network) for ident, image, network in map(str.split, listed.splitlines())
    }


async def _round_trip(kafka: KafkaSettings) -> list[tuple[bytes | None, bytes | None, object]]:
    _, topics = await new_topics(kafka)
    topic = topics.callstate_raw
    producer = durable_producer(kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"event", key=b"call-1", headers=[("kind", b"smoke")])
    finally:
        await producer.stop()
    consumer = manual_consumer(kafka, topic, group_id=f"g-{uuid.uuid4().hex}")
    await consumer.start()
    try:
        batch = await asyncio.wait_for(consumer.getmany(timeout_ms=10_000), 30)
    finally:
        await consumer.stop()
    return [(r.key, r.value, list(r.headers)) for records in batch.values() for r in records]
