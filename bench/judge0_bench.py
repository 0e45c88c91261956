"""The Judge0 door against the mission API doing the same work, side by side in one judge.

    python -m bench.judge0_bench [--runs 7] [--tasks 20]

Rows (median of ``--runs``, the two sides alternating which goes first, one judge in this
process with warm sandboxes for judge/python3 and judge/cpp):
1. hello world: Judge0 ``POST /judge0/submissions?wait=true`` of ``print("hello world")``
   (language 71) against ``POST /api/missions/?wait=`` of a mission running the same script in
   the same image (the script inline as a ``data:`` file, stdout recorded);
2. a 20-case judgement of a C A+B: 20 Judge0 submissions in one ``POST /submissions/batch``
   (language 50, each with its stdin and expected output), polled with
   ``GET /submissions/batch?tokens=`` every 0.1 s as Judge0's SDK polls, against one mission
   compiling once and running each case in a fresh sandbox (scoped run, ``diff`` check), waited
   for with ``?wait=``. Both compile once (the door through its compile cache) and run every
   case apart from the others.
Ratios are door / mission API; the goal is at most 1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import MAIN_C, cases, engine_info, judgement, machine
from bench.piston_bench import Client
from service.settings import Settings
from tests.service.support import ALICE, InProcessJudge

AUTH = {"X-Auth-Token": ALICE}
BEARER = {"Authorization": f"Bearer {ALICE}"}
HELLO = 'print("hello world")\n'


def data_url(content: bytes) -> str:
    return "data:;base64," + base64.b64encode(content).decode()


async def door_hello(s: aiohttp.ClientSession, base: str) -> float:
    start = time.perf_counter()
    async with s.post(
        f"{base}/judge0/submissions",
        params={"wait": "true"},
        headers=AUTH,
        json={"source_code": HELLO, "language_id": 71},
    ) as resp:
        body = await resp.json()
    elapsed = (time.perf_counter() - start) * 1000
    assert resp.status == 201, body
    assert body["stdout"] == "hello world\n", body
    return elapsed


async def post_mission(
    s: aiohttp.ClientSession, base: str, mission: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """Milliseconds from posting a mission with ``?wait=`` to its answer, and the answer."""
    start = time.perf_counter()
    async with s.post(
        f"{base}/api/missions/", params={"wait": "60"}, headers=BEARER, json={"mission": mission}
    ) as resp:
        body = await resp.json()
    return (time.perf_counter() - start) * 1000, body


async def mission_hello(s: aiohttp.ClientSession, base: str) -> float:
    mission = {
        "image": "judge/python3",
        "prepare": {
            "file": {"script.py": data_url(HELLO.encode())},
            "execute": [{"command": ["python3", "script.py"], "stdout": "out"}],
        },
    }
    elapsed, body = await post_mission(s, base, mission)
    record = body["mission_result"]["prepare"]["execute"][0]["record"]["stdout"]
    assert base64.b64decode(record) == b"hello world\n", body
    return elapsed


async def door_judgement(s: aiohttp.ClientSession, base: str, tasks: int) -> float:
    # A fresh source each time (a comment): the compile cache must not carry over between runs.
    source = MAIN_C.decode() + f"// {uuid.uuid4()}\n"
    batch = [
        {
            "source_code": source,
            "language_id": 50,
            "stdin": i.decode(),
            "expected_output": a.decode(),
        }
        for i, a in cases(tasks)
    ]
    start = time.perf_counter()
    async with s.post(
        f"{base}/judge0/submissions/batch", headers=AUTH, json={"submissions": batch}
    ) as resp:
        created = await resp.json()
    assert resp.status == 201, created
    tokens = ",".join(c["token"] for c in created)
    while True:
        async with s.get(
            f"{base}/judge0/submissions/batch",
            headers=AUTH,
            params={"tokens": tokens, "fields": "status,stdout"},
        ) as resp:
            got = await resp.json()
        statuses = [x["status"]["id"] for x in got["submissions"]]
        if all(st not in (1, 2) for st in statuses):
            break
        await asyncio.sleep(0.1)
    elapsed = (time.perf_counter() - start) * 1000
    assert statuses == [3] * tasks, got
    return elapsed


async def mission_judgement(s: aiohttp.ClientSession, base: str, tasks: int) -> float:
    files = {"main.c": MAIN_C + f"// {uuid.uuid4()}\n".encode()}
    for i, (inp, ans) in enumerate(cases(tasks)):
        files[f"in{i}"], files[f"ans{i}"] = inp, ans
    mission = judgement(tasks, lambda name: data_url(files[name]))
    mission.pop("return")
    mission["image"] = "judge/cpp"
    elapsed, body = await post_mission(s, base, mission)
    assert "mission_result" in body, body
    checks = [t["execute"][1]["meta"]["status"] for t in body["mission_result"]["task"]]
    assert checks == [""] * tasks, json.dumps(body)[:2000]
    return elapsed


def row(name: str, door: list[float], api: list[float]) -> str:
    d, m = statistics.median(door), statistics.median(api)
    return (
        f"{name:<34} door {d:8.1f} ms   mission API {m:8.1f} ms   ratio {d / m:5.2f}"
        f"   (door min {min(door):.0f}, API min {min(api):.0f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    print(machine(engine_info()))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            host="127.0.0.1",
            port=0,
            tokens=(ALICE,),
            data_dir=Path(tmp),
            max_running=2,
            max_queued=200,
            sandbox_owner=f"judge-bench-{uuid.uuid4().hex[:8]}",
            pool="judge/python3=2,judge/cpp=4",
        )
        judge = InProcessJudge(settings)
        await judge.start()
        try:
            async with aiohttp.ClientSession() as s:
                base = judge.url
                for _ in range(2):  # warm up both paths (pools, page cache)
                    await door_hello(s, base)
                    await mission_hello(s, base)
                await door_judgement(s, base, args.tasks)
                await mission_judgement(s, base, args.tasks)
                hello_door, hello_api, judge_door, judge_api = [], [], [], []
                pool = Client(s, base)
                # Alternating which side goes first: the machine's noise falls on both. Each
                # request starts from a settled pool (every image at its target, no removal
                # pending): back to back, each would wait for the engine to make the sandbox
                # the one before used (~150 ms here), which measures the engine, not the door.
                for i in range(args.runs):
                    if i % 2:
                        await pool.settled()
                        hello_api.append(await mission_hello(s, base))
                    await pool.settled()
                    hello_door.append(await door_hello(s, base))
                    if not i % 2:
                        await pool.settled()
                        hello_api.append(await mission_hello(s, base))
                for i in range(args.runs):
                    if i % 2:
                        await pool.settled()
                        judge_api.append(await mission_judgement(s, base, args.tasks))
                    await pool.settled()
                    judge_door.append(await door_judgement(s, base, args.tasks))
                    if not i % 2:
                        await pool.settled()
                        judge_api.append(await mission_judgement(s, base, args.tasks))
        finally:
            await judge.stop()
    print(row("hello world (wait=true)", hello_door, hello_api))
    print(row(f"{args.tasks}-case C judgement (batch)", judge_door, judge_api))


if __name__ == "__main__":
    asyncio.run(main())
