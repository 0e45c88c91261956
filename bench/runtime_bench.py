"""runc against gVisor's runsc, side by side: what the stronger isolation costs.

    python -m bench.runtime_bench [--runs 10] [--tasks 20] [--image judge/default]

Needs an engine offering runsc (``JUDGE_RUNTIMES=runc,runsc make engine``). Prints, per runtime,
the medians of: raw ``docker run --rm <image> echo`` (the docker SDK directly, the baseline); a
hello-world mission (one sandbox, ``echo hello world``); the 20-case judgement that
``bench/mission_bench.py`` runs (compile once, each task a scoped run plus ``diff``); the CPU time
and memory the supervisor reports for a fixed amount of work; and one interactive execute (the
guess-the-number game of ``examples/interactive.json``). Then the runsc/runc ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import docker_run_ms, engine_info, loopback_deps, machine, serve_judgement
from orchestrator.mission import parse_mission
from orchestrator.run.runner import MissionDeps, run_mission
from orchestrator.sandbox.sandbox import ExecRequest, InteractorRequest


def _example_programs() -> tuple[str, str]:
    """The C solution and the Python interactor of ``examples/interactive.json``."""
    path = Path(__file__).resolve().parents[1] / "examples" / "build.py"
    spec = importlib.util.spec_from_file_location("judge_examples", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GUESS_C, module.GUESS_INTERACTOR


GUESS_C, GUESS_INTERACTOR = _example_programs()

RUNTIMES = ("runc", "runsc")
HELLO = {
    "return": {"url": "https://callback.example/bench"},
    "prepare": {"execute": [{"command": ["echo", "hello world"], "stdout": "out.txt"}]},
}
GUESS_FILES = {
    "guess.c": GUESS_C.encode(),
    "interactor.py": GUESS_INTERACTOR.encode(),
    "secret.txt": b"271828\n",
}
# The example's game: a C binary search against a Python interactor (20 queries), run after
# compiling once; the time of one execute as the API caller sees it.
GUESS = ExecRequest(
    argv=("sh", "-c", "test -x guess || gcc -O2 -o guess guess.c 2>&1 && exec ./guess"),
    cpu_time_ms=10000,
    memory_kib=262144,
    interactor=InteractorRequest(
        argv=("python3", "interactor.py", "secret.txt"), cpu_time_ms=5000, private=("secret.txt",)
    ),
)
BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"


def raw_echo(image: str, runtime: str) -> list[float]:
    """Milliseconds of one ``docker run --rm`` of ``echo`` with ``runtime``."""
    return docker_run_ms(image, 1, entrypoint=["echo", "hello world"], runtime=runtime)


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
    info = engine_info()
    offered = set(info.get("Runtimes") or {})
    print(f"{machine(info)}, runtimes {', '.join(sorted(offered))}")
    if "runsc" not in offered:
        print("the engine offers no runsc: JUDGE_RUNTIMES=runc,runsc make engine")
        return
    server, judgement = await serve_judgement(args.tasks)
    rows: dict[str, dict[str, float]] = {}
    loop = asyncio.get_running_loop()
    try:
        async with loopback_deps(args.image) as deps:
            rt = deps.runtime
            # The runtimes take turns, run by run, so a machine whose load changes meanwhile
            # (it is shared) weighs on both alike.
            samples: dict[str, dict[str, list[float]]] = {n: {} for n in RUNTIMES}
            judge_key = f"{args.tasks}-case judgement"
            for i in range(args.runs):
                for name in RUNTIMES:
                    got = samples[name]
                    raw = await loop.run_in_executor(None, raw_echo, args.image, name)
                    got.setdefault("raw docker run echo", []).extend(raw)
                    hello, result = await timed_missions(deps, HELLO, name, 1)
                    assert verdicts_ok(result), result
                    got.setdefault("hello world mission", []).extend(hello)
                    if i < max(1, args.runs // 5):
                        judged, result = await timed_missions(deps, judgement, name, 1)
                        assert verdicts_ok(result), result
                        got.setdefault(judge_key, []).extend(judged)
            for name in RUNTIMES:
                row = rows.setdefault(name, {})
                for key, values in samples[name].items():
                    row[key] = statistics.median(values)
                async with rt.sandbox(args.image, runtime=name) as box:
                    cpu = [
                        (await box.run(ExecRequest(argv=("python3", "-c", BUSY)))).meta
                        for _ in range(3)
                    ]
                    await box.put_files(GUESS_FILES)
                    walls = []
                    for _ in range(5):
                        start = time.perf_counter()
                        out = await box.run(GUESS)
                        walls.append((time.perf_counter() - start) * 1000)
                        assert out.meta.status == "", out
                        assert out.interactor is not None
                        assert out.interactor.meta.status == "", out.interactor
                row["cpu-time of a 500 ms burn"] = statistics.median(m.cpu_time_ms for m in cpu)
                row["memory-usage of it (KiB)"] = statistics.median(m.memory_kib for m in cpu)
                row["interactive execute (C+py)"] = statistics.median(walls)
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
