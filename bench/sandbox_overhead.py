"""Sandbox API costs against raw Docker operations, measured side by side in one process.

    python bench/sandbox_overhead.py [--runs 40] [--image judge/default]

Prints medians for: an execute of /bin/true through the sandbox API vs ``docker exec`` of the same
command in a plain container of the same image; a sandbox start+close vs ``docker run --rm``; and
the accuracy of cpu-time-usage for busy loops that burn a known amount of their own CPU time.
The docker SDK is used directly here only to measure the raw baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import docker

from bench.common import machine
from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.sandbox import ExecRequest, SandboxConfig

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def timed_sync(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--image", default="judge/default")
    args = parser.parse_args()
    client = docker.from_env()
    info = client.info()
    print(f"{machine(info)}, cgroup v{info.get('CgroupVersion', '?')}")

    config = SandboxConfig(owner="judge-bench")
    async with open_runtime(config) as rt:
        await rt.sweep()
        box = await rt.create(args.image)
        raw = client.containers.run(
            args.image,
            entrypoint=["sleep", "infinity"],
            detach=True,
            remove=True,
            network_mode="none",
            labels={"io.judge.owner": "judge-bench"},
        )
        try:
            true = ExecRequest(argv=("/bin/true",), cpu_time_ms=1000)
            await box.run(true)
            raw.exec_run(["/bin/true"])
            api = await timed(lambda: box.run(true), args.runs)
            loop = asyncio.get_running_loop()
            exe = [
                await loop.run_in_executor(
                    None, lambda: timed_sync(lambda: raw.exec_run(["/bin/true"]), 1)[0]
                )
                for _ in range(args.runs)
            ]
            a, e = statistics.median(api), statistics.median(exe)
            print(f"\nexecute /bin/true ({args.runs} runs, median)")
            print(f"  sandbox API run()        {a:8.2f} ms")
            print(f"  raw docker exec          {e:8.2f} ms")
            print(f"  ratio sandbox/raw        {a / e:8.3f}")

            print("\ncpu-time-usage accuracy (python busy loop on its own process clock)")
            base = await box.run(ExecRequest(argv=("python3", "-c", BUSY.format(s=0))))
            startup = base.meta.cpu_time_ms
            print(f"  interpreter start-up     {startup:5d} ms")
            for target in (100, 250, 500, 1000, 2000):
                got = []
                for _ in range(3):
                    out = await box.run(
                        ExecRequest(argv=("python3", "-c", BUSY.format(s=target / 1000)))
                    )
                    got.append(out.meta.cpu_time_ms - startup)
                med = statistics.median(got)
                print(
                    f"  burn {target:5d} ms -> reported {med:7.1f} ms "
                    f"(error {med - target:+6.1f} ms, {100 * (med - target) / target:+5.1f} %)"
                )
            print("\nTLE kill latency (busy loop, limit 500 ms)")
            over = []
            for _ in range(5):
                out = await box.run(
                    ExecRequest(argv=("sh", "-c", "while :; do :; done"), cpu_time_ms=500)
                )
                over.append(out.meta.cpu_time_ms - 500)
            print(
                f"  cpu past the limit       median {statistics.median(over):.0f} ms, "
                f"max {max(over)} ms"
            )
        finally:
            await box.close()
            raw.kill()

        runs = max(5, args.runs // 4)

        async def start_close() -> None:
            b = await rt.create(args.image)
            await b.close()

        sb = await timed(start_close, runs)
        rr = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: timed_sync(
                lambda: client.containers.run(
                    args.image, entrypoint=["/bin/true"], remove=True, network_mode="none"
                ),
                runs,
            ),
        )
        s, r = statistics.median(sb), statistics.median(rr)
        print(f"\nsandbox lifecycle ({runs} runs, median)")
        print(f"  create + close sandbox   {s:8.1f} ms  (volume, container, attach, start, rm)")
        print(f"  raw docker run --rm true {r:8.1f} ms")
        print(f"  ratio sandbox/raw        {s / r:8.3f}")
        await rt.sweep()
    client.close()


if __name__ == "__main__":
    asyncio.run(main())
