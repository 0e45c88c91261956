"""The Piston door against the mission API doing the same work, side by side in one process.

    python -m bench.piston_bench [--runs 20] [--cases 20] [--repeat 3] [--workers 2]
                                 [--pool judge/python3=2,judge/cpp=2] [--pool-max 24]

- hello world: ``POST /api/v2/execute`` of a Python ``print`` (sequential, each from a settled
  pool, median latency) against ``POST /api/missions/?wait=`` of a mission running the same
  program;
- a 20-case judgement: one C source (A+B) sent as 20 executes with different stdin (all at once,
  as a grader or a bot does, and one after another) against one mission that compiles once and
  runs the 20 inputs: in its own sandbox, and with each run in a fresh sandbox (scoped, the
  isolation an execute has; in turn, and as many at once as there are workers). Every series
  sends a source of its own, so each compiles once, as the mission does.

Warm-up, stated: before the measured series the bench sends one unmeasured round of each kind
(the hello-world series; 20 executes at once, 20 in turn, the mission). The warm pool sizes
itself by demand (the most sandboxes taken between two moments it was full): that round is
where it learns that this workload takes 20 sandboxes of ``judge/cpp`` at once; a server that
sees such bursts keeps that many ready. Before every series the bench waits until each pooled
image holds its target and no removal is pending, so each series starts from the same state.
The pool settings and the targets the pool learned are printed; ratios are medians over
``--repeat`` rounds, each with its goal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import MAIN_C, cases, engine_info, machine
from service.settings import Settings
from tests.service.support import ALICE, InProcessJudge

AUTH = {"Authorization": f"Bearer {ALICE}"}
HELLO = "print('hello world')"


def data_url(content: bytes) -> str:
    return "data:;base64," + base64.b64encode(content).decode()


def hello_mission() -> dict[str, Any]:
    """The mission API's hello world of the same program, in the same image."""
    return {
        "image": "judge/python3",
        "prepare": {
            "file": {"main.py": data_url(HELLO.encode())},
            "execute": [
                {"command": ["python3", "main.py"], "stdout": "out", "stderr": "err"},
            ],
        },
    }


def judgement_mission(n: int, *, scoped: bool = False, parallel: int = 1) -> dict[str, Any]:
    """Compile once, then run each case's input, its output recorded (the Piston executes'
    work, without the checks a judge adds). ``scoped``: each run in a fresh sandbox of its own
    (importing the binary and the input, exporting the output), the isolation a Piston execute
    has; ``parallel`` above 1 runs that many cases at once (``tasks.parallel``)."""
    mission: dict[str, Any] = {
        "image": "judge/cpp",
        "prepare": {
            "file": {"main.c": data_url(MAIN_C)},
            "execute": [
                {
                    "name": "compile",
                    "command": ["gcc", "-x", "c", "-O2", "-o", "a.out", "main.c", "-lm"],
                    "memory_limit": 524288,
                    "time_limit": 10000,
                }
            ],
        },
        "tasks": {
            "task": [
                {"file": {"INPUT": data_url(inp)}, "macro": {"INPUT": f"in{i}.txt"}}
                for i, (inp, _) in enumerate(cases(n))
            ],
            "execute": [
                {
                    "name": "run",
                    "command": ["./a.out"],
                    "time_limit": 3000,
                    "stdin": "INPUT",
                    "stdout": "out__TASK_ID__.txt",
                    "stderr": "err__TASK_ID__.txt",
                    "meta": "run__TASK_ID__.meta",
                }
            ],
        },
    }
    if scoped:
        mission["tasks"]["execute"][0]["scope"] = {
            "enable": True,
            "import": ["a.out", "INPUT"],
            "export": ["out__TASK_ID__.txt", "err__TASK_ID__.txt"],
        }
    if parallel > 1:
        mission["tasks"]["parallel"] = parallel
    return mission


def piston_body(language: str, source: bytes, stdin: str = "") -> dict[str, Any]:
    return {
        "language": language,
        "version": "*",
        "files": [{"content": source.decode()}],
        "stdin": stdin,
    }


async def timed(coro: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    got = await coro
    return (time.perf_counter() - start) * 1000, got


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(f"{self.url}/api/v2/execute", json=body, headers=AUTH) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, Any] = await r.json()
            return answer

    async def pool(self) -> dict[str, Any]:
        async with self.session.get(f"{self.url}/healthz") as r:
            pool: dict[str, Any] = (await r.json())["pool"]
            return pool

    async def settled(self) -> None:
        """Wait until every pooled image holds its target and the engine is done removing what
        the last series used: each series starts from the same state."""
        async with asyncio.timeout(180):
            while True:
                pool = await self.pool()
                images = pool["images"].values()
                if pool["removals_pending"] == 0 and all(
                    p["ready"] >= p["target"] and not p["creating"] for p in images
                ):
                    return
                await asyncio.sleep(0.2)

    async def mission(self, mission: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(
            f"{self.url}/api/missions/?wait=60", json={"mission": mission}, headers=AUTH
        ) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, Any] = await r.json()
            assert answer["state"] == "done", answer
            return answer


GOAL = 1.1  # issue 22: the 20-case judgement through the door within 1.1x the mission API


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (median)")
    parser.add_argument("--workers", type=int, default=2, help="JUDGE_MAX_RUNNING")
    parser.add_argument(
        "--pool", default="judge/python3=2,judge/cpp=2", help="warm sandboxes (JUDGE_POOL)"
    )
    parser.add_argument("--pool-max", type=int, default=24, help="JUDGE_POOL_MAX")
    args = parser.parse_args()
    print(machine(engine_info()))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            tokens=(ALICE,),
            data_dir=Path(tmp),
            max_running=args.workers,
            max_queued=args.cases + 10,
            sandbox_owner="judge-bench-piston",
            pool=args.pool,
            pool_max=args.pool_max,
        )
        print(
            f"settings: JUDGE_MAX_RUNNING={settings.max_running} JUDGE_POOL={settings.pool} "
            f"JUDGE_POOL_MAX={settings.pool_max} JUDGE_POOL_WINDOW_S={settings.pool_window_s:g} "
            f"JUDGE_POOL_CONCURRENCY={settings.pool_concurrency} "
            f"JUDGE_POOL_QUIET_S={settings.pool_quiet_s:g} "
            f"JUDGE_POOL_DEFER_MAX_S={settings.pool_defer_max_s:g}"
        )
        await with_judge(settings, lambda client: measure(client, args))


async def with_judge(settings: Settings, work: Callable[[Client], Awaitable[None]]) -> None:
    """Run ``work`` against a judge in this process with ``settings``, stopped afterwards."""
    judge = InProcessJudge(settings)
    await judge.start()
    try:
        async with aiohttp.ClientSession() as session:
            await work(Client(session, judge.url))
    finally:
        await judge.stop()


async def hello_row(client: Client, runs: int) -> None:
    hello = piston_body("python", HELLO.encode())
    door: list[float] = []
    api: list[float] = []
    # The first round is the warm-up (unmeasured). Each request starts from a settled pool (as
    # judge0_bench's do): back to back, a request would share the cores with the engine making
    # the sandbox the one before used, which measures the engine more than the door.
    for _ in range(2):
        door.clear()
        api.clear()
        for _ in range(runs):
            await client.settled()
            door.append((await timed(client.execute(hello)))[0])
            await client.settled()
            api.append((await timed(client.mission(hello_mission())))[0])
    d, m = statistics.median(door), statistics.median(api)
    print(f"\nhello world ({runs} sequential, median, the two interleaved)")
    print(f"  Piston execute            {d:8.1f} ms")
    print(f"  mission API ?wait         {m:8.1f} ms")
    print(f"  ratio door/mission        {d / m:8.3f}   (goal <= {GOAL})")


async def judgement_round(
    client: Client, n: int, tag: str, workers: int
) -> tuple[float, float, float, float, float]:
    """One round: (at once, in turn, mission, scoped mission in turn, scoped mission
    ``workers`` at once) in ms, each from a settled pool, each series with a source of its own
    (it compiles once)."""
    inputs = [inp.decode() for inp, _ in cases(n)]
    answers = [ans.decode() for _, ans in cases(n)]
    together = MAIN_C + f"/* at once {tag} */\n".encode()
    await client.settled()
    together_ms, got = await timed(
        asyncio.gather(*(client.execute(piston_body("c", together, i)) for i in inputs))
    )
    assert [a["run"]["stdout"] for a in got] == answers
    in_turn = MAIN_C + f"/* in turn {tag} */\n".encode()
    await client.settled()
    one_by_one_ms = 0.0
    for i, want in zip(inputs, answers, strict=True):
        ms, answer = await timed(client.execute(piston_body("c", in_turn, i)))
        assert answer["run"]["stdout"] == want
        one_by_one_ms += ms
    await client.settled()
    mission_ms, _ = await timed(client.mission(judgement_mission(n)))
    await client.settled()
    scoped_ms, _ = await timed(client.mission(judgement_mission(n, scoped=True)))
    await client.settled()
    scoped_parallel_ms, _ = await timed(
        client.mission(judgement_mission(n, scoped=True, parallel=workers))
    )
    return together_ms, one_by_one_ms, mission_ms, scoped_ms, scoped_parallel_ms


def ratio_rows(rounds: Sequence[tuple[float, ...]], rows: tuple[tuple[str, int, int], ...]) -> None:
    """Per row (name, door series, mission series): the median of the rounds' own ratios."""
    for name, k, base in rows:
        each = [r[k] / r[base] for r in rounds]
        listed = " / ".join(f"{x:.2f}" for x in each)
        print(
            f"    ratio {name:24s} median {statistics.median(each):6.2f}  ({listed})"
            f"   goal <= {GOAL}"
        )


async def measure(client: Client, args: argparse.Namespace) -> None:
    await hello_row(client, args.runs)
    n = args.cases
    w = args.workers
    await judgement_round(client, n, "warm-up", w)  # unmeasured: the pool learns the burst
    pool = await client.pool()
    targets = ", ".join(f"{image} {p['target']}" for image, p in pool["images"].items())
    rounds = [await judgement_round(client, n, f"round {r}", w) for r in range(args.repeat)]
    print(f"\n{n}-case judgement of one C source ({args.workers} workers)")
    print(f"  pool targets after the warm-up round: {targets}")
    for name, k in ((f"{n} Piston executes at once", 0), (f"{n} Piston executes in turn", 1)):
        figures = " / ".join(f"{r[k]:.0f}" for r in rounds)
        print(f"  {name:28s} {figures} ms")
    missions = (
        ("one mission, compile once", 2),
        ("the same, runs scoped", 3),
        (f"the same, scoped, {w} at once", 4),
    )
    for name, k in missions:
        print(f"  {name:28s} {' / '.join(f'{r[k]:.0f}' for r in rounds)} ms")
    print("  against the mission whose runs share its sandbox (a Piston execute cannot):")
    ratio_rows(rounds, (("at once/mission", 0, 2), ("in turn/mission", 1, 2)))
    print("  against the same isolation (each run in a fresh sandbox, as each execute is):")
    ratio_rows(rounds, (("at once/scoped at once", 0, 4), ("in turn/scoped", 1, 3)))
    after = await client.pool()
    print(f"  pool: hits {after['hits']}, misses {after['misses']} (warm-up round included)")


if __name__ == "__main__":
    asyncio.run(main())
