"""The HTTP service against raw Docker doing the same sandbox work, in one process.

    python -m bench.service_bench [--runs 20] [--burst 100]

- hello-world latency, POST -> callback (sequential), against a raw `docker run --rm` of
  `echo hello world` (the least Docker work that runs the same command in a fresh container);
- submissions accepted per second (a burst of POSTs, queue large enough), and the time until all
  of the burst's callbacks arrived, against the same number of raw `docker run --rm` in sequence.
The docker SDK is used directly only for the raw baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import docker

from service.settings import Settings
from tests.seed000 import hello_mission
from tests.service.support import ALICE, Api, InProcessJudge, Receiver


def raw_runs(image: str, n: int) -> list[float]:
    client = docker.from_env()
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            client.containers.run(image, ["echo", "hello world"], remove=True, network_mode="none")
            out.append((time.perf_counter() - start) * 1000)
    finally:
        client.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image", default="judge/default")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            tokens=(ALICE,),
            data_dir=Path(tmp),
            default_image=args.image,
            max_running=args.workers,
            max_queued=args.burst + 10,
            sandbox_owner="judge-bench-service",
        )
        rx = Receiver()
        await rx.start()
        judge = InProcessJudge(settings)
        await judge.start()
        try:
            async with aiohttp.ClientSession() as session:
                api = Api(session, judge.url)
                mission = hello_mission(rx.url)
                await api.submit(mission)
                await rx.next()  # warm up
                latency = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    status, _, _ = await api.submit(mission)
                    assert status == 200
                    await rx.next()
                    latency.append((time.perf_counter() - start) * 1000)
                raw = await loop.run_in_executor(None, raw_runs, args.image, args.runs)
                lat, r = statistics.median(latency), statistics.median(raw)
                print(f"hello world, POST -> callback ({args.runs} sequential, median)")
                print(f"  judge service            {lat:8.1f} ms")
                print(f"  raw docker run --rm echo {r:8.1f} ms")
                print(f"  ratio judge/raw          {lat / r:8.3f}")

                start = time.perf_counter()
                results = await asyncio.gather(*(api.submit(mission) for _ in range(args.burst)))
                accepted_s = time.perf_counter() - start
                assert all(status == 200 for status, _, _ in results)
                for _ in range(args.burst):
                    await rx.next(timeout=300)
                all_done_s = time.perf_counter() - start
                raw_burst = await loop.run_in_executor(None, raw_runs, args.image, args.burst)
                raw_total = sum(raw_burst) / 1000
                print(f"\nburst of {args.burst} submissions, {args.workers} workers")
                print(f"  accepted                 {args.burst / accepted_s:8.1f} /s")
                print(
                    f"  all called back after    {all_done_s:8.2f} s "
                    f"({args.burst / all_done_s:.1f} missions/s)"
                )
                print(f"  raw docker run --rm x{args.burst} {raw_total:6.2f} s (sequential)")
                print(f"  ratio judge/raw          {all_done_s / raw_total:8.3f}")
        finally:
            await judge.stop()
            await rx.stop()


if __name__ == "__main__":
    asyncio.run(main())
