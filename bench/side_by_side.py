"""The judge against raw Docker, epicbox and DMOJ's judge, side by side in one run, as ratios.

    python -m bench.side_by_side [--image judge/default] [--tasks 20] [--peers /work/benchvenv]

Rows (each printed with the peer it is read against):
1. engine floor: fresh containers per second (create + start + wait + remove of /bin/true) at
   concurrency 1, 2, 4 and 8; the best is what any fresh-container-per-run judge is bounded by;
2. one execute of /bin/true in an existing sandbox against raw ``docker exec`` (median);
3. hello world POST -> callback, submissions half a second apart, against one raw
   ``docker run --rm`` of ``echo hello world`` (median, p90);
4. a 20-case C judgement, every test run in the mission's sandbox (compile + 20 x (run + check),
   one ``data:`` input and answer per task), against DMOJ's judge doing the same work;
5. the same with every run scoped (a fresh sandbox per test), against epicbox running each test
   in a fresh container;
6. the same with run and check both scoped and ``tasks.parallel`` 4.
Peers run from a separate virtualenv (``--peers``) through ``bench/peers.py``; a peer that is not
installed or cannot run here is reported as such. The docker SDK is used directly only for the
raw baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import docker

from bench.common import (
    docker_run_ms,
    engine_info,
    hello_latency_ms,
    judge_in_process,
    judgement,
    judgement_files,
    machine,
)
from orchestrator.mission import Mission, parse_mission
from orchestrator.netpolicy import make_connector
from orchestrator.run.fetch import FetchLimits
from orchestrator.run.runner import MissionDeps, PhaseTimes, run_mission
from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import ExecRequest, SandboxConfig
from service.settings import Settings

OWNER = "judge-bench-sbs"
PEERS = Path(__file__).with_name("peers.py")


def data_url(content: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(content).decode()


def data_judgement(
    n: int, *, scoped: bool, parallel: int = 1, compare: bool = False
) -> dict[str, Any]:
    """The judgement of ``n`` tasks with every file inline as a ``data:`` URL."""
    files = judgement_files(n)
    return judgement(
        n, lambda name: data_url(files[name]), scoped=scoped, parallel=parallel, compare=compare
    )


# -- raw Docker --------------------------------------------------------------------------------


def fresh_container(client: docker.DockerClient, image: str) -> None:
    c = client.containers.create(
        image, entrypoint=["/bin/true"], network_mode="none", labels={"io.judge.owner": OWNER}
    )
    try:
        c.start()
        c.wait()
    finally:
        c.remove(force=True)


def engine_floor(
    image: str, per_level: int, levels: tuple[int, ...] = (1, 2, 4, 8)
) -> dict[int, float]:
    """Fresh containers per second at each concurrency of ``levels``."""
    client = docker.from_env()
    rates = {}
    try:
        fresh_container(client, image)  # warm
        for level in levels:
            start = time.perf_counter()
            with ThreadPoolExecutor(level) as ex:
                list(ex.map(lambda _: fresh_container(client, image), range(per_level)))
            rates[level] = per_level / (time.perf_counter() - start)
    finally:
        client.close()
    return rates


def raw_exec_ms(image: str, runs: int) -> list[float]:
    client = docker.from_env()
    c = client.containers.run(
        image,
        entrypoint=["sleep", "infinity"],
        detach=True,
        network_mode="none",
        labels={"io.judge.owner": OWNER},
    )
    try:
        c.exec_run(["/bin/true"])
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            c.exec_run(["/bin/true"])
            out.append((time.perf_counter() - start) * 1000)
        return out
    finally:
        c.remove(force=True)
        client.close()


def raw_run_ms(image: str, runs: int) -> list[float]:
    return docker_run_ms(
        image, runs, entrypoint=["echo", "hello world"], labels={"io.judge.owner": OWNER}
    )


# -- the judge ----------------------------------------------------------------------------------


async def judge_exec_ms(image: str, runs: int) -> tuple[list[float], list[float], float]:
    """Milliseconds per execute; the command's own real time (fork to exit, as the supervisor
    measures it); and one fork+exec+exit of /bin/true from a shell loop inside the sandbox."""
    async with open_runtime(SandboxConfig(owner=OWNER)) as rt:
        async with rt.sandbox(image) as box:
            true = ExecRequest(argv=("/bin/true",), cpu_time_ms=1000)
            await box.run(true)
            out, own = [], []
            for _ in range(runs):
                start = time.perf_counter()
                done = await box.run(true)
                out.append((time.perf_counter() - start) * 1000)
                own.append(float(done.meta.real_time_ms))
            loop = await box.run(
                ExecRequest(
                    argv=("sh", "-c", "for i in $(seq 200); do /bin/true; done"),
                    cpu_time_ms=20000,
                )
            )
            return out, own, loop.meta.real_time_ms / 200


async def judge_hello_ms(image: str, runs: int, gap_s: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            tokens=("bench-token-0123456789",),
            data_dir=Path(tmp),
            default_image=image,
            sandbox_owner=OWNER,
        )
        async with judge_in_process(settings) as (api, rx):
            return await hello_latency_ms(
                api, rx, runs, token="bench-token-0123456789", gap_s=gap_s, timeout=60
            )


@asynccontextmanager
async def judging(
    image: str, parallel: int = 1
) -> AsyncIterator[Callable[[Mission], Awaitable[float]]]:
    """A runtime with a warm pool of 4 sandboxes of ``image``; yields ``once(mission)``, which
    runs the mission with a full pool and returns its seconds (every execute must pass)."""
    limits = FetchLimits(block_private=False)
    async with (
        open_runtime(SandboxConfig(owner=OWNER)) as rt,
        aiohttp.ClientSession(connector=make_connector(False)) as session,
    ):
        pool = SandboxPool(rt, {image: 4}, cap=8, concurrency=4)
        pool.start()
        deps = MissionDeps(
            rt, session, image, fetch_limits=limits, pool=pool, max_task_parallel=parallel
        )

        async def once(mission: Mission) -> float:
            await pool.refresh()
            while pool.snapshot()["images"][image]["ready"] < 4:  # type: ignore[index]
                await asyncio.sleep(0.05)  # start each run with a full pool
            start = time.perf_counter()
            _, result = await run_mission(mission, deps, times=PhaseTimes())
            seconds = time.perf_counter() - start
            bad = [
                e["meta"] for t in result["task"] for e in t["execute"] if e["meta"]["status"] != ""
            ]
            assert not bad, bad[:3]
            await rt.drain()
            return seconds

        try:
            yield once
        finally:
            await pool.stop()


async def judge_judgement_s(
    image: str, n: int, *, scoped: bool, repeat: int, parallel: int = 1, compare: bool = False
) -> list[float]:
    mission = parse_mission(data_judgement(n, scoped=scoped, parallel=parallel, compare=compare))
    async with judging(image, parallel) as once:
        out = [await once(mission) for _ in range(repeat + 1)]
    return out[1:]  # the first run warms caches


def peer(venv: str | None, what: str, image: str, n: int, repeat: int) -> dict[str, Any]:
    if not venv:
        return {"error": "no --peers virtualenv given"}
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        return {"error": f"{python} does not exist"}
    proc = subprocess.run(
        [
            str(python),
            str(PEERS),
            what,
            "--image",
            image,
            "--tasks",
            str(n),
            "--repeat",
            str(repeat),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    try:
        doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return doc
    except (ValueError, IndexError):
        return {"error": (proc.stderr or proc.stdout).strip()[-400:] or f"exit {proc.returncode}"}


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9) - 1)]


def against(name: str, ours: list[float], doc: dict[str, Any], goal: float | None) -> str:
    """The peer's part of a row: its median and our ratio to it (with the ``goal`` for that
    ratio), or why the peer was not measured (``doc`` as :func:`peer` returns it)."""
    if "seconds" not in doc:
        return f"   {name}: not measured ({doc.get('error')})"
    theirs = med(doc["seconds"])
    line = f"   {name} {theirs * 1000:7.0f} ms   ratio {med(ours) / theirs:.2f}"
    return line if goal is None else f"{line} (goal <= {goal})"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--plain-image", default="", help="image without the supervisor entry")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", default="")
    parser.add_argument("--skip", default="", help="comma-separated rows to skip: floor,exec,...")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    epic: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    print(f"{machine(engine_info())}, image {args.image}")
    if "floor" not in skip:
        rates = await loop.run_in_executor(None, engine_floor, args.image, 16)
        best = max(rates, key=lambda k: rates[k])
        print("\n1. engine floor: fresh containers per second (create+start+wait+remove)")
        for level, rate in rates.items():
            print(f"   concurrency {level}: {rate:6.2f}/s ({1000 / rate * level:5.0f} ms each)")
        print(f"   best: {rates[best]:.2f}/s at concurrency {best}")
    if "exec" not in skip:
        ours, own, spawn = await judge_exec_ms(args.image, args.runs)
        raw = await loop.run_in_executor(None, raw_exec_ms, args.image, args.runs)
        print("\n2. one execute of /bin/true in an existing sandbox (median)")
        print(
            f"   judge {med(ours):7.2f} ms   raw docker exec {med(raw):7.2f} ms   "
            f"ratio {med(ours) / med(raw):.3f} (goal <= 0.025)"
        )
        print(
            f"   of which the command itself (fork to exit) {med(own):.1f} ms; one fork+exec of "
            f"/bin/true from a shell in the sandbox {spawn:.2f} ms; judge beyond the command "
            f"{med(ours) - med(own):.2f} ms ({(med(ours) - med(own)) / med(raw):.3f} x raw)"
        )
    if "hello" not in skip:
        ours = await judge_hello_ms(args.image, max(10, args.runs // 2), 0.5)
        raw = await loop.run_in_executor(None, raw_run_ms, args.image, 10)
        print("\n3. hello world POST -> callback, submissions 0.5 s apart")
        print(
            f"   judge median {med(ours):7.1f} ms (p90 {p90(ours):.1f})   "
            f"raw docker run --rm {med(raw):7.1f} ms   ratio {med(ours) / med(raw):.3f} "
            "(goal <= 0.05)"
        )
    if "unscoped" not in skip:
        ours = await judge_judgement_s(args.image, args.tasks, scoped=False, repeat=args.repeat)
        dmoj = peer(args.peers, "dmoj", args.plain_image or args.image, args.tasks, args.repeat)
        print(
            f"\n4. {args.tasks}-case C judgement in the mission's sandbox (median of {args.repeat})"
        )
        print(f"   judge {med(ours) * 1000:7.0f} ms" + against("DMOJ", ours, dmoj, 0.5))
    if "scoped" not in skip:
        ours = await judge_judgement_s(args.image, args.tasks, scoped=True, repeat=args.repeat)
        epic = peer(args.peers, "epicbox", args.plain_image or args.image, args.tasks, args.repeat)
        print(f"\n5. {args.tasks}-case C judgement, every run scoped (median of {args.repeat})")
        line = f"   judge {med(ours) * 1000:7.0f} ms ({args.tasks / med(ours):.2f} runs/s)"
        print(line + against("epicbox", ours, epic, 0.9))
    if "parallel" not in skip:
        ours = await judge_judgement_s(
            args.image, args.tasks, scoped=True, repeat=args.repeat, parallel=4
        )
        print(
            f"\n6. the same, every run and check scoped, tasks.parallel 4 (median of {args.repeat})"
        )
        line = f"   judge {med(ours) * 1000:7.0f} ms ({2 * args.tasks / med(ours):.2f} sandboxes/s)"
        if "seconds" in epic:
            line += against("epicbox", ours, epic, None)
        print(line)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
