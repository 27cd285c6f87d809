"""The naive receiver: json.loads, then send_and_wait per request (acks=all, like ingest)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator

import uvloop
from aiohttp import web
from aiokafka import AIOKafkaProducer

PRODUCER = web.AppKey("producer", AIOKafkaProducer)


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    event = json.loads(body)
    topic = f"callstream.{request.match_info['kind']}.raw.{sys.argv[3]}"
    await request.app[PRODUCER].send_and_wait(topic, body, key=event["uuid"].encode())
    return web.json_response({"status": "ok"})


async def producer_ctx(app: web.Application) -> AsyncIterator[None]:
    producer = AIOKafkaProducer(bootstrap_servers=sys.argv[2], acks="all", enable_idempotence=True)
    await producer.start()
    app[PRODUCER] = producer
    yield
    await producer.stop()


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(producer_ctx)
    app.router.add_post("/callbacks/{companycode}/{kind}", handle)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
