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

from bench.common import docker_run_ms, hello_latency_ms, judge_in_process
from service.settings import Settings
from tests.seed000 import hello_mission
from tests.service.support import ALICE


def raw_runs(image: str, n: int) -> list[float]:
    """Milliseconds of each of ``n`` sequential ``docker run --rm`` of ``echo hello world``."""
    return docker_run_ms(image, n, command=["echo", "hello world"])


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
        async with judge_in_process(settings) as (api, rx):
            latency = await hello_latency_ms(api, rx, args.runs)
            raw = await loop.run_in_executor(None, raw_runs, args.image, args.runs)
            lat, r = statistics.median(latency), statistics.median(raw)
            print(f"hello world, POST -> callback ({args.runs} sequential, median)")
            print(f"  judge service            {lat:8.1f} ms")
            print(f"  raw docker run --rm echo {r:8.1f} ms")
            print(f"  ratio judge/raw          {lat / r:8.3f}")

            mission = hello_mission(rx.url)
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


if __name__ == "__main__":
    asyncio.run(main())
