"""The floor: the bare low-level handler plus what no receiver that answers after Kafka's
acknowledgement can skip. Each body is decoded for its call uuid and produced keyed by it
(so records spread over the partitions as callstream's do) through the receiver's own
librdkafka producer and settings (idempotent, acks=all); the answer waits for the ack.
No authentication, headers, dead letters, spool or metrics."""

from __future__ import annotations

import sys

import msgspec
import uvloop
from aiohttp import web

from bench.servers import serve_forever
from common.config import KafkaSettings
from common.topics import Topics
from ingest.rdkafka import RdkafkaProducer, rdkafka_config
from ingest.settings import IngestSettings


class Keyed(msgspec.Struct, frozen=True, gc=False):
    uuid: str


async def serve(port: int, bootstrap: str, suffix: str) -> None:
    settings = IngestSettings()
    config = rdkafka_config(
        KafkaSettings(bootstrap=bootstrap),
        ack_timeout=settings.ack_timeout,
        linger_ms=settings.linger_ms,
    )
    producer = RdkafkaProducer(config)
    await producer.start(wait=settings.ack_timeout)
    topic = Topics.with_suffix(suffix).raw("callstate")
    decoder = msgspec.json.Decoder(Keyed)

    async def handle(request: web.BaseRequest) -> web.Response:
        if request.method != "POST":  # the bench's readiness probe: no /readyz here
            return web.Response(status=404)
        body = await request.read()
        await producer.send(topic, body, decoder.decode(body).uuid.encode())
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    await serve_forever(handle, port)


def main() -> None:
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2], sys.argv[3]))


if __name__ == "__main__":
    main()
