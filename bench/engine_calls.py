"""Engine calls a mission pays, side by side in one run: what the adapter does now against what
it did before.

    python -m bench.engine_calls [--image judge/default] [--runs 20]

Rows:
1. a sandbox's life (create + attach + start + hello, then remove): wall time and the server
   CPU it costs, with one shared kept-alive connection pool against the SDK's pool per URL
   (a new pool and socket for each container's URLs); runs interleaved;
2. the first compiled execute (``true`` under a 512 MiB limit, what the doors' and the
   playground's compile steps ask) in a warm sandbox fenced for 256 MiB (the old pool: one
   engine call to raise the fence) against one fenced for 512 MiB (the pool's default now);
3. hello world POST -> callback on a warm pool (submissions 0.5 s apart), the pool's refill and
   the background removals started at once (as before) against deferred to quiet spells (now:
   no sandbox in use for a moment), two interleaved rounds each: the engine work they cause
   shares the cores with the mission.
Benchmarks stay out of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker

from bench.common import engine_info, machine
from bench.side_by_side import judge_hello_ms
from orchestrator.sandbox.docker import DockerAdapter
from orchestrator.sandbox.execute import ExecRequest
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import SandboxConfig, SandboxRuntime

OWNER = "bench-engine-calls"


def runtime(one_pool: bool, executor: ThreadPoolExecutor) -> SandboxRuntime:
    client = docker.from_env(version="1.41")
    adapter = DockerAdapter(client, executor, one_pool=one_pool)
    return SandboxRuntime(adapter, SandboxConfig(owner=OWNER))


async def life(rt: SandboxRuntime, image: str) -> tuple[float, float]:
    """Wall ms and process CPU ms of one sandbox's create .. remove."""
    w, c = time.perf_counter(), time.process_time()
    box = await rt.create(image)
    await box.close()
    return (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000


async def first_compile(rt: SandboxRuntime, image: str, fence_kib: int) -> float:
    """Wall ms of the first 512 MiB execute in a sandbox fenced for ``fence_kib``."""
    box = await rt.create(image, fence_kib)
    try:
        w = time.perf_counter()
        out = await box.run(ExecRequest(argv=("true",), memory_kib=524_288))
        assert out.meta.status == "", out.meta
        return (time.perf_counter() - w) * 1000
    finally:
        await box.close()


async def hello_ms(image: str, runs: int, *, delays: bool) -> list[float]:
    """Hello-world latencies of a judge in this process, with refills and removals deferred to
    quiet spells as they are (``delays``) or never deferred (how the judge worked before)."""
    pool_init: Any = SandboxPool.__init__
    runtime_init: Any = SandboxRuntime.__init__

    def no_refill_delay(self: SandboxPool, *a: Any, **k: Any) -> None:
        pool_init(self, *a, **k)
        self.refill_defer_max_s = 0.0

    def no_removal_delay(
        self: SandboxRuntime, adapter: DockerAdapter, config: SandboxConfig
    ) -> None:
        runtime_init(self, adapter, dataclasses.replace(config, removal_defer_max_s=0.0))

    if not delays:
        SandboxPool.__init__ = no_refill_delay  # type: ignore[method-assign]
        SandboxRuntime.__init__ = no_removal_delay  # type: ignore[method-assign]
    try:
        return await judge_hello_ms(image, runs, 0.5)
    finally:
        SandboxPool.__init__ = pool_init  # type: ignore[method-assign]
        SandboxRuntime.__init__ = runtime_init  # type: ignore[method-assign]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(machine(engine_info()))
    executor = ThreadPoolExecutor(16)
    new, old = runtime(True, executor), runtime(False, executor)
    await life(new, args.image), await life(old, args.image)  # warm both
    lives: dict[str, list[tuple[float, float]]] = {"one pool": [], "pool per URL": []}
    for _ in range(args.runs):
        lives["one pool"].append(await life(new, args.image))
        lives["pool per URL"].append(await life(old, args.image))
    base_w = statistics.median(w for w, _ in lives["pool per URL"])
    base_c = statistics.median(c for _, c in lives["pool per URL"])
    print("\n1. a sandbox's life, create .. remove (median wall ms, server CPU ms)")
    for name, xs in lives.items():
        w = statistics.median(x for x, _ in xs)
        c = statistics.median(x for _, x in xs)
        print(f"   {name:13s} {w:7.1f} ms wall ({w / base_w:.2f}x)", end="")
        print(f"  {c:5.2f} ms CPU ({c / base_c:.2f}x)")
    compiles: dict[str, list[float]] = {"fence 512 MiB": [], "fence 256 MiB": []}
    for _ in range(args.runs):
        compiles["fence 512 MiB"].append(await first_compile(new, args.image, 524_288))
        compiles["fence 256 MiB"].append(await first_compile(new, args.image, 262_144))
    base = statistics.median(compiles["fence 256 MiB"])
    print("\n2. first 512 MiB execute in a warm sandbox (median ms; the old pool raises its fence)")
    for name, ms in compiles.items():
        m = statistics.median(ms)
        print(f"   {name:13s} {m:7.1f} ms ({m / base:.2f}x)   {base - m:5.1f} ms saved")
    hellos: dict[str, list[float]] = {"deferred (now)": [], "at once": []}
    for _ in range(2):
        hellos["deferred (now)"] += await hello_ms(args.image, args.runs, delays=True)
        hellos["at once"] += await hello_ms(args.image, args.runs, delays=False)
    base = statistics.median(hellos["at once"])
    print("\n3. hello world POST -> callback, warm pool; refill and removals ... (median, p90 ms)")
    for name, ms in hellos.items():
        m, p90 = statistics.median(ms), sorted(ms)[int(len(ms) * 0.9)]
        print(f"   {name:13s} {m:7.1f} ms (p90 {p90:5.1f})  ({m / base:.2f}x)")
    await new.drain()
    await old.drain()
    executor.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
