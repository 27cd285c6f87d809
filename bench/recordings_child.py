"""One archiving run in a process of its own, so its peak RSS is its own.

python -m bench.recordings_child MODE API_URL APPID ACCESSKEY FILENAME KEY
MODE is "stream" (callstream's S3Archive) or "direct" (download whole, then one PUT).
S3 settings come from CALLSTREAM_S3_*. Prints one JSON line."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time

import aiohttp
import orjson

from common.config import S3Settings
from common.s3 import make_client
from processors.recordings.archive import S3Archive
from yunhu.api import DownloadPolicy, YunhuClient


async def run(mode: str, api_url: str, *args: str) -> dict[str, float]:
    appid, accesskey, filename, key = args
    s3 = S3Settings.from_env(os.environ)
    client = make_client(s3)
    async with aiohttp.ClientSession() as session:
        api = YunhuClient(session, api_url)
        token = (await api.login(appid, accesskey)).token
        link = await api.get_record_file(token, filename)
        started = time.perf_counter()
        policy = DownloadPolicy(frozenset({"127.0.0.1"}), frozenset({"127.0.0.1"}))
        async with api.download(link, policy, max_bytes=1 << 40, max_seconds=3600) as chunks:
            if mode == "stream":
                done = await S3Archive(client, s3.bucket).put_stream(key, chunks, {})
                size = done.size
            else:
                body = b"".join([chunk async for chunk in chunks])
                await asyncio.to_thread(client.put_object, Bucket=s3.bucket, Key=key, Body=body)
                size = len(body)
        seconds = time.perf_counter() - started
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "bytes": size, "max_rss_kb": rss_kb}


def main() -> int:
    print(orjson.dumps(asyncio.run(run(*sys.argv[1:7]))).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
