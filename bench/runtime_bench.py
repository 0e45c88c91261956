"""runc against gVisor's runsc, side by side: what the stronger isolation costs.

    python -m bench.runtime_bench [--runs 10] [--tasks 20] [--image judge/default]

Needs an engine offering runsc (``JUDGE_RUNTIMES=runc,runsc make engine``). Prints, per runtime,
the medians of: raw ``docker run --rm <image> echo`` (the docker SDK directly, the baseline); a
hello-world mission (one sandbox, ``echo hello world``); the 20-case judgement of
``bench/mission_bench.py`` (compile once, each task a scoped run plus ``diff``); and the CPU
time the supervisor reports for a fixed amount of work. Then the runsc/runc ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
import uuid
from typing import Any

import aiohttp
import docker

from bench.mission_bench import judge_mission, serve_files
from orchestrator.engine import open_runtime
from orchestrator.fetch import FetchLimits, make_connector
from orchestrator.mission import parse_mission
from orchestrator.runner import MissionDeps, run_mission
from orchestrator.sandbox import ExecRequest, SandboxConfig

RUNTIMES = ("runc", "runsc")
HELLO = {
    "return": {"url": "https://callback.example/bench"},
    "prepare": {"execute": [{"command": ["echo", "hello world"], "stdout": "out.txt"}]},
}
BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"


def raw_runs(image: str, runtime: str, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` sequential ``docker run --rm`` of ``echo``."""
    client = docker.from_env()
    try:
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            client.containers.run(
                image,
                entrypoint=["echo", "hello world"],
                remove=True,
                network_mode="none",
                runtime=runtime,
            )
            out.append((time.perf_counter() - start) * 1000)
        return out
    finally:
        client.close()


async def timed_missions(
    deps: MissionDeps, data: dict[str, Any], runtime: str, runs: int
) -> tuple[list[float], dict[str, Any]]:
    mission = parse_mission({**data, "runtime": runtime})
    walls, result = [], {}
    for _ in range(runs):
        start = time.perf_counter()
        _, result = await run_mission(mission, deps)
        walls.append((time.perf_counter() - start) * 1000)
    return walls, result


def verdicts_ok(result: dict[str, Any]) -> bool:
    stages = [result["prepare"], *result["task"], result["final"]]
    return all(e["meta"]["status"] == "" for s in stages for e in s["execute"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--image", default="judge/default")
    args = parser.parse_args()
    client = docker.from_env()
    info = client.info()
    client.close()
    offered = set(info.get("Runtimes") or {})
    print(
        f"machine: {platform.node()} {info['NCPU']} cpus, kernel {info['KernelVersion']}, "
        f"Docker {info['ServerVersion']}, runtimes {', '.join(sorted(offered))}"
    )
    if "runsc" not in offered:
        print("the engine offers no runsc: JUDGE_RUNTIMES=runc,runsc make engine")
        return
    server, base = await serve_files(args.tasks)
    judgement = judge_mission(base, args.tasks)
    owner = f"judge-bench-{uuid.uuid4().hex[:8]}"
    limits = FetchLimits(block_private=False)
    rows: dict[str, dict[str, float]] = {}
    loop = asyncio.get_running_loop()
    try:
        async with (
            open_runtime(SandboxConfig(owner=owner)) as rt,
            aiohttp.ClientSession(connector=make_connector(limits.block_private)) as session,
        ):
            deps = MissionDeps(rt, session, args.image, fetch_limits=limits)
            try:
                for name in RUNTIMES:
                    row = rows.setdefault(name, {})
                    raw = await loop.run_in_executor(None, raw_runs, args.image, name, args.runs)
                    row["raw docker run echo"] = statistics.median(raw)
                    hello, result = await timed_missions(deps, HELLO, name, args.runs)
                    assert verdicts_ok(result), result
                    row["hello world mission"] = statistics.median(hello)
                    runs = max(1, args.runs // 5)
                    judged, result = await timed_missions(deps, judgement, name, runs)
                    assert verdicts_ok(result), result
                    row[f"{args.tasks}-case judgement"] = statistics.median(judged)
                    async with rt.sandbox(args.image, runtime=name) as box:
                        cpu = [
                            (await box.run(ExecRequest(argv=("python3", "-c", BUSY)))).meta
                            for _ in range(3)
                        ]
                    row["cpu-time of a 500 ms burn"] = statistics.median(m.cpu_time_ms for m in cpu)
                    row["memory-usage of it (KiB)"] = statistics.median(m.memory_kib for m in cpu)
            finally:
                await rt.sweep()
    finally:
        await server.cleanup()

    print(f"\nmedians over {args.runs} runs ({max(1, args.runs // 5)} for the judgement), ms")
    print(f"  {'':28} {'runc':>10} {'runsc':>10} {'runsc/runc':>11}")
    for key in rows["runc"]:
        a, b = rows["runc"][key], rows["runsc"][key]
        print(f"  {key:28} {a:10.1f} {b:10.1f} {b / a:11.2f}")
    print(
        "  (the CPU figure includes python's start-up; under runsc the process's own clock "
        "runs in gVisor's kernel)"
    )


if __name__ == "__main__":
    asyncio.run(main())
