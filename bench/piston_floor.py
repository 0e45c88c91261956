"""Where one Piston execute's time goes, step by step, with its compile already cached.

    python -m bench.piston_floor [--executes 20] [--workers 2]

A C source is compiled once (one execute), then sent again ``--executes`` times in turn with
other stdin, as a grader does. The judge runs in this process with a warm pool as large as the
series (so no sandbox is created or removed on the way: that is the pool's job, measured by
``bench.piston_bench``); each step on an execute's way is timed by wrapping the function that
does it (measurement only: the wrappers add a few microseconds each). Printed: the median of
each step per execute, nested as the steps are, and what is left between them (the HTTP round
trip, the event loop's and threads' hand-overs).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orchestrator.run.runner as runner
import service.frontdoors.piston.routes as routes
from bench.common import MAIN_C, cases, engine_info, machine
from bench.piston_bench import Client, piston_body, with_judge
from orchestrator.sandbox.pool import SandboxPool
from orchestrator.sandbox.sandbox import Sandbox
from service.frontdoors.door import Core
from service.pipeline.intake import Intake
from service.pipeline.running import MissionRunning
from service.pipeline.workqueue import LocalQueue
from service.settings import Settings
from service.store.sqlite import SqliteStore
from tests.service.support import ALICE

# (owner, attribute, label, depth): depth only indents the printout (what runs inside what).
STEPS: list[tuple[Any, str, str, int]] = [
    (routes, "read_job", "read and check the body", 0),
    (Core, "submit", "submit (validate, then store)", 0),
    (Intake, "submit", "intake: admit, store, queue", 1),
    (SqliteStore, "insert_mission", "commit the mission", 2),
    (LocalQueue, "claim", "claim (a commit)", 0),
    (MissionRunning, "_run", "run and finish", 0),
    (runner._MissionRun, "run", "the mission's run", 1),
    (SandboxPool, "take", "take a warm sandbox", 2),
    (Sandbox, "put_files", "files in (compiled box, stdin)", 2),
    (Sandbox, "run", "executes (supervisor round trips)", 2),
    (Sandbox, "get_archive", "files out", 2),
    (SqliteStore, "finish", "commit the result", 1),
    (SqliteStore, "get_mission", "read the row (wait_finished)", 0),
    (routes, "_answer", "Piston's answer", 0),
]
_LOG: list[tuple[float, str, bool]] = []


def _wrap(owner: Any, attr: str, label: str) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        _LOG.append((time.perf_counter(), label, True))
        try:
            return await original(*args, **kwargs)
        finally:
            _LOG.append((time.perf_counter(), label, False))

    setattr(owner, attr, timed)


def _durations(log: list[tuple[float, str, bool]]) -> dict[str, list[float]]:
    """Each label's finished calls, in ms (a call under way when the series began is left out)."""
    open_: dict[str, list[float]] = defaultdict(list)
    done: dict[str, list[float]] = defaultdict(list)
    for at, label, start in log:
        if start:
            open_[label].append(at)
        elif open_[label]:
            done[label].append((at - open_[label].pop(0)) * 1000)
    return done


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n = args.executes
    print(machine(engine_info()))
    for owner, attr, label, _ in STEPS:
        _wrap(owner, attr, label)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            tokens=(ALICE,),
            data_dir=Path(tmp),
            max_running=args.workers,
            max_queued=n + 10,
            sandbox_owner="judge-bench-piston-floor",
            pool=f"judge/cpp={n + 2}",
            pool_max=n + 2,
        )
        await with_judge(settings, lambda client: measure(client, n))


async def measure(client: Client, n: int) -> None:
    source = MAIN_C + b"/* floor */\n"
    inputs = [inp.decode() for inp, _ in cases(n)]
    await client.settled()
    await client.execute(piston_body("c", source, inputs[0]))  # compiles: cached from now on
    await client.settled()
    per: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    cpu = time.process_time()
    for stdin in inputs:
        _LOG.clear()
        start = time.perf_counter()
        await client.execute(piston_body("c", source, stdin))
        totals.append((time.perf_counter() - start) * 1000)
        for label, ms in _durations(_LOG).items():
            per[label].append(sum(ms))  # a step called twice per execute counts both
        calls = _durations(_LOG)
        per["calls: executes"].append(len(calls.get("executes (supervisor round trips)", [])))
    print(f"\none C execute with its compile cached, {n} in turn (median per execute, ms)")
    print(f"  {'client: POST to answer':44s} {statistics.median(totals):7.2f}")
    top = 0.0
    for _, _, label, depth in STEPS:
        if label not in per:
            continue
        step_ms = statistics.median(per[label])
        if depth == 0:
            top += step_ms
        print(f"  {'  ' * (depth + 1)}{label:{42 - 2 * depth}s} {step_ms:7.2f}")
    rest = statistics.median(totals) - top
    print(f"  {'  the rest (HTTP, loop and thread hand-overs)':44s} {rest:7.2f}")
    cpu_ms = (time.process_time() - cpu) * 1000 / n
    print(f"  supervisor round trips per execute: {statistics.median(per['calls: executes']):.0f}")
    print(f"  this process's CPU per execute (server and client): {cpu_ms:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
