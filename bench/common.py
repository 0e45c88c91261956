"""What the benchmarks share: the machine line they start with, the C judgement mission and
its files (served on loopback or inline), mission dependencies that may fetch from loopback, the
raw ``docker run`` baseline, and a judge in this process with its hello-world latency loop.

The docker SDK is used here only for the raw baseline, as in every benchmark.
"""

from __future__ import annotations

import asyncio
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import docker
from aiohttp import web

from orchestrator.netpolicy import make_connector
from orchestrator.run.fetch import FetchLimits
from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.sandbox import SandboxConfig
from service.settings import Settings
from tests.seed000 import hello_mission
from tests.service.support import ALICE, Api, InProcessJudge, Receiver

MAIN_C = b"""#include <stdio.h>
int main(void) {
    long a = 0, b = 0;
    if (scanf("%ld %ld", &a, &b) != 2) return 2;
    printf("%ld\\n", a + b);
    return 0;
}
"""
COUNT_PASSES = (
    "import glob, json; "
    "print(sum(json.load(open(f))['status'] == '' for f in glob.glob('check*.meta')))"
)


def engine_info() -> dict[str, Any]:
    """The Docker engine's ``docker info``."""
    client = docker.from_env()
    try:
        info: dict[str, Any] = client.info()
        return info
    finally:
        client.close()


def machine(info: dict[str, Any]) -> str:
    """``machine: HOST N cpus, kernel K, Docker V`` from :func:`engine_info`: how every benchmark
    starts its output (each adds what else it depends on)."""
    return (
        f"machine: {platform.node()} {info['NCPU']} cpus, kernel {info['KernelVersion']}, "
        f"Docker {info['ServerVersion']}"
    )


def cases(n: int) -> list[tuple[bytes, bytes]]:
    """``n`` test cases of ``MAIN_C`` (A+B): (input, answer)."""
    return [(f"{i} {i * 7}\n".encode(), f"{i * 8}\n".encode()) for i in range(n)]


def judgement_files(tasks: int) -> dict[str, bytes]:
    """The files :func:`judgement` fetches, by name: ``main.c``, then ``in{i}`` and ``ans{i}``."""
    files = {"main.c": MAIN_C}
    for i, (inp, ans) in enumerate(cases(tasks)):
        files[f"in{i}"] = inp
        files[f"ans{i}"] = ans
    return files


def judgement(
    tasks: int,
    url: Callable[[str], str],
    *,
    scoped: bool = True,
    parallel: int = 1,
    count_passes: bool = False,
    compare: bool = False,
) -> dict[str, Any]:
    """A C judgement: compile ``main.c`` once, then per task run the binary on its input and
    ``diff`` its output against the answer.

    ``url`` gives the URL of a file of :func:`judgement_files` by its name. ``scoped``: each run
    in a fresh sandbox (importing the binary and the input, exporting the output); ``parallel``
    above 1 also scopes each check and sets ``tasks.parallel``; ``count_passes`` adds a final
    stage whose ``passed`` file holds the number of checks that passed; ``compare`` checks with
    the format's ``compare`` (the judge compares the files, no process) instead of ``diff``.
    """
    run: dict[str, Any] = {
        "name": "run",
        "command": ["./main"],
        "time_limit": 1000,
        "memory_limit": 65536,
        "stdin": "INPUT",
        "stdout": "out__TASK_ID__.txt",
        "meta": "run__TASK_ID__.meta",
    }
    if scoped:
        run["scope"] = {
            "enable": True,
            "import": ["main", "INPUT"],
            "export": ["out__TASK_ID__.txt"],
        }
    mission: dict[str, Any] = {
        "return": {"url": "https://callback.example/bench"},
        "prepare": {
            "file": {"main.c": url("main.c")},
            "execute": [
                {
                    "name": "compile",
                    "command": ["gcc", "-O2", "-o", "main", "main.c"],
                    "memory_limit": 262144,
                    "time_limit": 30000,
                }
            ],
        },
        "tasks": {
            "task": [
                {
                    "file": {"INPUT": url(f"in{i}"), "ANSWER": url(f"ans{i}")},
                    "macro": {"INPUT": f"in{i}.txt", "ANSWER": f"ans{i}.txt"},
                }
                for i in range(tasks)
            ],
            "execute": [
                run,
                {
                    "name": "check",
                    **(
                        {"compare": {"output": "out__TASK_ID__.txt", "answer": "ANSWER"}}
                        if compare
                        else {"command": ["diff", "out__TASK_ID__.txt", "ANSWER"]}
                    ),
                    "meta": "check__TASK_ID__.meta",
                    **(
                        {"scope": {"enable": True, "import": ["out__TASK_ID__.txt", "ANSWER"]}}
                        if parallel > 1
                        else {}
                    ),
                },
            ],
            **({"parallel": parallel} if parallel > 1 else {}),
        },
    }
    if count_passes:
        mission["final"] = {
            "execute": [
                {"name": "count", "command": ["python3", "-c", COUNT_PASSES], "stdout": "passed"}
            ]
        }
    return mission


async def serve_files(files: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    """An HTTP server on loopback serving ``files`` at ``/{name}``; returns it (to clean up)
    and its base URL."""

    async def handler(request: web.Request) -> web.Response:
        body = files.get(request.match_info["name"])
        return web.Response(status=404) if body is None else web.Response(body=body)

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def serve_judgement(tasks: int) -> tuple[web.AppRunner, dict[str, Any]]:
    """The scoped judgement of ``tasks`` tasks counting its passes, its files served on
    loopback: the server (clean it up) and the mission."""
    server, base = await serve_files(judgement_files(tasks))
    return server, judgement(tasks, lambda name: f"{base}/{name}", count_passes=True)


@asynccontextmanager
async def loopback_deps(image: str) -> AsyncIterator[MissionDeps]:
    """What a mission needs to run in ``image``, with sandboxes labelled by a fresh owner and
    fetches allowed to reach loopback (where :func:`serve_files` serves); on exit, every sandbox
    of that owner is swept."""
    owner = f"judge-bench-{uuid.uuid4().hex[:8]}"
    limits = FetchLimits(block_private=False)
    async with (
        open_runtime(SandboxConfig(owner=owner)) as runtime,
        aiohttp.ClientSession(connector=make_connector(limits.block_private)) as session,
    ):
        try:
            yield MissionDeps(runtime, session, image, fetch_limits=limits)
        finally:
            await runtime.sweep()


def docker_run_ms(image: str, runs: int, **options: Any) -> list[float]:
    """Milliseconds of each of ``runs`` sequential ``docker run --rm`` of ``image`` without a
    network; ``options`` (``entrypoint``, ``command``, ``runtime``, ``labels``...) go to the
    SDK's ``containers.run``. Blocking: run it in a thread from an event loop."""
    client = docker.from_env()
    try:
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            client.containers.run(image, remove=True, network_mode="none", **options)
            out.append((time.perf_counter() - start) * 1000)
        return out
    finally:
        client.close()


@asynccontextmanager
async def judge_in_process(settings: Settings) -> AsyncIterator[tuple[Api, Receiver]]:
    """The judge app in this event loop and a callback receiver: yields a client of the judge
    and the receiver, and stops both on exit."""
    rx = Receiver()
    await rx.start()
    judge = InProcessJudge(settings)
    await judge.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session, judge.url), rx
    finally:
        await judge.stop()
        await rx.stop()


async def hello_latency_ms(
    api: Api,
    rx: Receiver,
    runs: int,
    *,
    token: str = ALICE,
    gap_s: float = 0.0,
    timeout: float = 30.0,
) -> list[float]:
    """Milliseconds from POSTing the hello-world mission to its callback at ``rx``, ``runs``
    times one after another (``gap_s`` seconds apart) after one warm-up. Asserts every POST
    is accepted; a callback later than ``timeout`` seconds raises ``TimeoutError``."""
    mission = hello_mission(rx.url)
    await api.submit(mission, token=token)
    await rx.next(timeout=timeout)  # warm up
    out = []
    for _ in range(runs):
        if gap_s:
            await asyncio.sleep(gap_s)
        start = time.perf_counter()
        status, _, _ = await api.submit(mission, token=token)
        assert status == 200
        await rx.next(timeout=timeout)
        out.append((time.perf_counter() - start) * 1000)
    return out
