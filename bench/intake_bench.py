"""Durable intake under load: submissions accepted per second and their latency percentiles.

    python -m bench.intake_bench [--requests 4000] [--connections 64] [--image judge/default]

Starts the server as its own process (``python -m service``, a fresh data directory, two workers
kept busy by the very missions submitted), then POSTs hello-world missions over ``connections``
concurrent keep-alive connections from this process. Every 200 means the mission was committed
(fsync'd) before the answer. Prints accepted/s over the whole run and the p50/p99/max latency;
at the end the server is stopped (the queued missions are left in the throw-away database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.seed000 import hello_mission
from tests.service.support import ALICE, ServerProcess, server_env

OWNER = "judge-bench-intake"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--image", default="judge/default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(
            Path(tmp) / "data",
            OWNER,
            JUDGE_DEFAULT_IMAGE=args.image,
            JUDGE_MAX_QUEUED=str(args.requests + 100),
            JUDGE_SHUTDOWN_GRACE_S="0",
            JUDGE_POOL=f"{args.image}=2",
        )
        server = ServerProcess(env)
        url = await server.start()
        body = {"token": ALICE, "mission": json.dumps(hello_mission("http://127.0.0.1:9/cb"))}
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        todo = iter(range(args.requests))
        try:
            connector = aiohttp.TCPConnector(limit=args.connections)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(f"{url}/api/missions/", data=body) as resp:  # warm up
                    assert resp.status == 200, await resp.text()

                async def client() -> None:
                    for _ in todo:
                        start = time.perf_counter()
                        async with session.post(f"{url}/api/missions/", data=body) as resp:
                            await resp.read()
                        latencies.append((time.perf_counter() - start) * 1000)
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1

                start = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(args.connections)))
                elapsed = time.perf_counter() - start
        finally:
            await server.terminate(timeout=120)
    accepted = statuses.get(200, 0)
    lat = sorted(latencies)
    print(f"{args.requests} submissions over {args.connections} connections, workers busy")
    print(f"  statuses        {statuses}")
    print(f"  accepted        {accepted / elapsed:8.1f} /s (goal 2000/s)")
    print(
        f"  latency         p50 {statistics.median(lat):.1f} ms  "
        f"p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms  max {lat[-1]:.1f} ms (goal p99 <= 100 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
