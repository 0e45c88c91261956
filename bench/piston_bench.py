"""The Piston door against the mission API doing the same work, side by side in one process.

    python -m bench.piston_bench [--runs 20] [--cases 20]

- hello world: ``POST /api/v2/execute`` of a Python ``print`` (sequential, median latency)
  against ``POST /api/missions/?wait=`` of a mission running the same program;
- a 20-case judgement: one C source (A+B) sent as 20 executes with different stdin (all at once,
  as a grader or a bot does, and one after another) against one mission that compiles once and
  runs the 20 inputs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
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


def judgement_mission(n: int) -> dict[str, Any]:
    """Compile once, then run each case's input, its output recorded (the Piston executes'
    work, without the checks a judge adds)."""
    return {
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

    async def settled(self) -> None:
        """Wait until every pooled image holds its base size again (and the engine is done
        removing what the last series used): each series starts from the same state."""
        async with asyncio.timeout(120):
            while True:
                async with self.session.get(f"{self.url}/healthz") as r:
                    pool = (await r.json())["pool"]["images"]
                if all(p["ready"] >= p["target"] and not p["creating"] for p in pool.values()):
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pool", default="judge/python3=2,judge/cpp=2", help="warm sandboxes (JUDGE_POOL)"
    )
    parser.add_argument("--pool-max", type=int, default=8, help="JUDGE_POOL_MAX")
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
        judge = InProcessJudge(settings)
        await judge.start()
        try:
            async with aiohttp.ClientSession() as session:
                await measure(Client(session, judge.url), args)
        finally:
            await judge.stop()


async def measure(client: Client, args: argparse.Namespace) -> None:
    hello = piston_body("python", HELLO.encode())
    await client.execute(hello)  # warm up both paths
    await client.mission(hello_mission())
    door, api = [], []
    for _ in range(args.runs):
        door.append((await timed(client.execute(hello)))[0])
        api.append((await timed(client.mission(hello_mission())))[0])
    d, m = statistics.median(door), statistics.median(api)
    print(f"\nhello world ({args.runs} sequential, median, the two interleaved)")
    print(f"  Piston execute            {d:8.1f} ms")
    print(f"  mission API ?wait         {m:8.1f} ms")
    print(f"  ratio door/mission        {d / m:8.3f}")

    inputs = [inp.decode() for inp, _ in cases(args.cases)]
    answers = [ans.decode() for _, ans in cases(args.cases)]
    # Each series sends a source of its own: each compiles once, as the mission does.
    together = MAIN_C + b"/* at once */\n"
    await client.settled()
    together_ms, got = await timed(
        asyncio.gather(*(client.execute(piston_body("c", together, i)) for i in inputs))
    )
    assert [a["run"]["stdout"] for a in got] == answers
    in_turn = MAIN_C + b"/* in turn */\n"
    await client.settled()
    one_by_one_ms = 0.0
    for i in inputs:
        one_by_one_ms += (await timed(client.execute(piston_body("c", in_turn, i))))[0]
    await client.settled()
    mission_ms, _ = await timed(client.mission(judgement_mission(args.cases)))
    print(
        f"\n{args.cases}-case judgement of one C source ({args.workers} workers, pool {args.pool})"
    )
    print(f"  {args.cases} Piston executes at once   {together_ms:8.1f} ms")
    print(f"  {args.cases} Piston executes in turn   {one_by_one_ms:8.1f} ms")
    print(f"  one mission, compile once {mission_ms:8.1f} ms")
    print(f"  ratio at once/mission     {together_ms / mission_ms:8.3f}")
    print(f"  ratio in turn/mission     {one_by_one_ms / mission_ms:8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
