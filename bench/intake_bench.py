"""Durable intake under load: submissions accepted per second and their latency percentiles.

    python -m bench.intake_bench [--requests 4000] [--connections 64] [--image judge/default]
                                 [--idle-workers]

Starts the server as its own process (``python -m service``, a fresh data directory, two workers
kept busy by the very missions submitted), then POSTs hello-world missions over ``connections``
concurrent keep-alive connections from this process. Every 200 means the mission was committed
(fsync'd) before the answer. Prints accepted/s over the whole run and the p50/p99/max latency;
at the end the server is stopped (the queued missions are left in the throw-away database).
With ``--idle-workers`` each mission sleeps a minute instead, so the two workers each hold one and
nothing else runs: the figures are intake's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.seed000 import hello_mission
from tests.service.support import ALICE, ServerProcess, server_env, sleeper

OWNER = "judge-bench-intake"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--idle-workers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(
            Path(tmp) / "data",
            OWNER,
            JUDGE_DEFAULT_IMAGE=args.image,
            JUDGE_MAX_QUEUED=str(args.requests + 100),
            JUDGE_SHUTDOWN_GRACE_S="0",
            JUDGE_POOL=f"{args.image}=2",
            # Nobody listens at the callback address: one attempt each, no retries that would
            # spend the server's CPU during the measurement.
            JUDGE_CALLBACK_ATTEMPTS="1",
        )
        server = ServerProcess(env)
        url = await server.start()
        callback = "http://127.0.0.1:9/cb"
        mission = sleeper(callback, 60) if args.idle_workers else hello_mission(callback)
        body = {"token": ALICE, "mission": json.dumps(mission)}
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

                assert server.proc is not None
                cpu0, own0 = cpu_seconds(server.proc.pid), time.process_time()
                start = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(args.connections)))
                elapsed = time.perf_counter() - start
                server_cpu = cpu_seconds(server.proc.pid) - cpu0
                client_cpu = time.process_time() - own0
        finally:
            await server.terminate(timeout=120)
    accepted = statuses.get(200, 0)
    lat = sorted(latencies)
    workers = "workers idle" if args.idle_workers else "workers busy"
    print(f"{args.requests} submissions over {args.connections} connections, {workers}")
    print(f"  statuses        {statuses}")
    print(f"  accepted        {accepted / elapsed:8.1f} /s (goal 2000/s)")
    per = server_cpu / max(accepted, 1) * 1000
    print(
        f"  server CPU      {per:8.2f} ms per submission (all threads: HTTP, validation, "
        f"store, and the workers running the accepted missions) -> at most "
        f"{1000 / per:.0f}/s per core"
    )
    print(f"  client CPU      {client_cpu / max(accepted, 1) * 1000:8.2f} ms per submission")
    print(
        f"  latency         p50 {statistics.median(lat):.1f} ms  "
        f"p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms  max {lat[-1]:.1f} ms (goal p99 <= 100 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
