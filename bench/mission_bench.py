"""A judge's mission end to end, with the time spent in each phase, against raw Docker.

    python -m bench.mission_bench [--tasks 20] [--image judge/default] [--repeat 1]

The mission compiles one C program (fetched from a local HTTP server), then, for each task,
fetches its input and answer, runs the binary in a scoped sandbox (a fresh container importing
the binary and the input, exporting the output) and compares the output with ``diff``; final
counts the passes. Printed: the wall time of the whole mission and the seconds per phase
(PhaseTimes: create, transfer, execute, meta, remove, fetch), then the cost of the same number of
``docker run --rm`` of the same image (the docker SDK is used directly here only, for that
baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import io
import statistics
import tarfile
import time
from typing import Any

import docker

from bench.common import docker_run_ms, engine_info, loopback_deps, machine, serve_judgement
from orchestrator.mission import parse_mission
from orchestrator.run.runner import PhaseTimes, run_mission

PHASES = ("create", "transfer", "execute", "meta", "remove", "fetch")


def raw_docker_archives(image: str, runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``runs`` put_archive and get_archive calls of a 16 KiB file into and out
    of a plain running container of ``image``: the engine's own cost of one transfer."""
    client = docker.from_env()
    container = client.containers.run(
        image, entrypoint=["sleep", "infinity"], detach=True, network_mode="none"
    )
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("f")
            info.size = 16384
            tar.addfile(info, io.BytesIO(b"x" * info.size))
        data = buf.getvalue()
        puts, gets = [], []
        for _ in range(runs):
            start = time.perf_counter()
            client.api.put_archive(container.id, "/tmp", data)
            puts.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            chunks, _ = client.api.get_archive(container.id, "/tmp/f")
            b"".join(chunks)
            gets.append((time.perf_counter() - start) * 1000)
        return puts, gets
    finally:
        container.remove(force=True)
        client.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--repeat", type=int, default=1, help="missions to run (the last printed)")
    args = parser.parse_args()

    info = engine_info()
    print(f"{machine(info)}, cgroup v{info.get('CgroupVersion', '?')}")
    server, data = await serve_judgement(args.tasks)
    mission = parse_mission(data)
    walls: list[float] = []
    times = PhaseTimes()
    result: dict[str, Any] = {}
    try:
        async with loopback_deps(args.image) as deps:
            for _ in range(args.repeat):
                times = PhaseTimes()
                start = time.perf_counter()
                _, result = await run_mission(mission, deps, times=times)
                walls.append(time.perf_counter() - start)
    finally:
        await server.cleanup()

    executes = [e for t in result["task"] for e in t["execute"]]
    bad = [e["meta"] for e in executes if e["meta"]["status"] != ""]
    passed = result["final"]["execute"][0]["record"]["stdout"]
    print(f"\nmission: compile once + {args.tasks} tasks (scoped run + diff), image {args.image}")
    print(
        f"  verdicts: {len(executes) - len(bad)}/{len(executes)} task executes OK; "
        + (f"first problem {bad[0]}" if bad else "no problems")
    )
    print(f"  final counted passes: {base64.b64decode(passed).decode().strip()}")
    wall = walls[-1]
    if len(walls) > 1:
        print(f"  wall per mission: median {statistics.median(walls):.3f} s over {len(walls)}")
    print(f"  wall end to end          {wall * 1000:9.1f} ms")
    print(f"  {'phase':10} {'count':>6} {'total ms':>10} {'mean ms':>9} {'share':>7}")
    accounted = 0.0
    for name in PHASES:
        seconds, count = times.seconds.get(name, 0.0), times.counts.get(name, 0)
        accounted += seconds
        mean = seconds / count * 1000 if count else 0.0
        print(f"  {name:10} {count:6d} {seconds * 1000:10.1f} {mean:9.1f} {seconds / wall:7.1%}")
    other = wall - accounted
    print(f"  {'other':10} {'':6} {other * 1000:10.1f} {'':9} {other / wall:7.1%}")
    print("  (other: removing the main sandbox, result assembly, scheduling; phases overlap:")
    print("   imports are read while a scoped sandbox starts and removals run in the background,")
    print("   so 'other' can be negative)")

    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(
        None, functools.partial(docker_run_ms, args.image, args.tasks, entrypoint=["/bin/true"])
    )
    print(f"\nraw Docker: {args.tasks} x docker run --rm {args.image} /bin/true (sequential)")
    print(f"  total                    {sum(raw):9.1f} ms")
    print(f"  median per run           {statistics.median(raw):9.1f} ms")
    puts, gets = await loop.run_in_executor(None, raw_docker_archives, args.image, args.tasks)
    print(f"  put_archive 16 KiB       {statistics.median(puts):9.1f} ms median")
    print(f"  get_archive 16 KiB       {statistics.median(gets):9.1f} ms median")
    scoped = times.seconds.get("create", 0.0) + times.seconds.get("remove", 0.0)
    per_task = (wall * 1000) / args.tasks
    print(f"  mission wall per task    {per_task:9.1f} ms")
    print(f"  sandbox create+remove    {scoped * 1000 / args.tasks:9.1f} ms per scoped sandbox")


if __name__ == "__main__":
    asyncio.run(main())
