"""The 20-case C judgement against DMOJ's judge and the engine's fresh-container floor, side by
side in one run, interleaved one judgement at a time so that the machine's load hits all alike.

    bash bench/dmoj/setup.sh                       # once: the peers' virtualenv (make bench-dmoj)
    python -m bench.judgement [--peers build/bench-peers] [--runs 15] [--scoped-rounds 3]

Each of ``--runs`` steps runs three judgements one after the other (their order rotating):

- DMOJ's judge 4.1 natively (its ptrace sandbox, the host's gcc), kept running in the peers'
  virtualenv (``bench/peers.py dmoj --serve``): compile A+B once, then every case run and
  checked; every case must be AC;
- the judge's unscoped judgement: one mission, the compile in ``prepare``, then per task the
  binary on its input and ``diff`` against the answer (41 executes), in a warm sandbox;
- the same with ``compare`` (an extension of the format: the judge compares the output with
  the answer, read back over the supervisor channel, instead of running ``diff``).

Then ``--scoped-rounds`` times: the scoped judgement (every run in a fresh sandbox, importing the
binary and the input, exporting the output), read against the engine's floor measured right
after it: ``tasks`` fresh containers at the best rate the engine reaches (create + start + wait +
remove, 8 at concurrency 4 and 8).

Printed: each row's median and quartiles, and the median of the steps' own ratios (each step's
figures were taken within a second of each other) with their quartiles, against the goals of
issue 24 (unscoped <= 0.5 x DMOJ; scoped at or under the fresh-container floor). The docker SDK
is used directly only for the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from pathlib import Path

from bench.common import engine_info, machine
from bench.side_by_side import PEERS, data_judgement, engine_floor, judging
from orchestrator.mission import parse_mission

DEFAULT_PEERS = Path(__file__).resolve().parent.parent / "build" / "bench-peers"
GOAL_DMOJ = 0.5


def quartiles(values: list[float], unit: float = 1000.0, fmt: str = ".0f") -> str:
    """``median (q1-q3)`` of ``values`` times ``unit``."""
    if len(values) < 2:
        return f"{values[0] * unit:{fmt}}"
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"{q2 * unit:{fmt}} ({q1 * unit:{fmt}}-{q3 * unit:{fmt}})"


class Dmoj:
    """DMOJ's judge in the peers' virtualenv, grading once per ``grade()``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, venv: str, tasks: int) -> Dmoj:
        """Start it and wait for its warm-up; raises ``RuntimeError`` saying why it cannot."""
        python = Path(venv) / "bin" / "python"
        if not python.exists():
            raise RuntimeError(f"{python} does not exist (make bench-dmoj)")
        proc = await asyncio.create_subprocess_exec(
            str(python),
            str(PEERS),
            "dmoj",
            "--serve",
            "--tasks",
            str(tasks),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        dmoj = cls(proc)
        doc = await dmoj._answer()
        if not doc.get("ready"):
            await dmoj.stop()
            raise RuntimeError(str(doc.get("error", doc)))
        return dmoj

    async def grade(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"\n")
        await self.proc.stdin.drain()
        doc = await self._answer()
        if "seconds" not in doc:
            raise RuntimeError(str(doc.get("error", doc)))
        return float(doc["seconds"])

    async def _answer(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
            if not line:
                return {"error": f"DMOJ's judge exited ({await self.proc.wait()})"}
            if line.startswith(b"{"):  # DMOJ prints a line of its own at start
                doc: dict[str, object] = json.loads(line)
                return doc

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--runs", type=int, default=15, help="interleaved steps")
    parser.add_argument("--scoped-rounds", type=int, default=3)
    parser.add_argument("--peers", default=str(DEFAULT_PEERS), help="the peers' virtualenv")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    n = args.tasks
    print(f"{machine(engine_info())}, image {args.image}")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    rows: dict[str, list[float]] = {"DMOJ": [], "unscoped": [], "compare": []}
    missions = {
        "unscoped": parse_mission(data_judgement(n, scoped=False)),
        "compare": parse_mission(data_judgement(n, scoped=False, compare=True)),
    }
    dmoj: Dmoj | None = None
    dmoj_error = ""
    try:
        dmoj = await Dmoj.start(args.peers, n)
    except (RuntimeError, OSError, TimeoutError) as e:
        dmoj_error = str(e)
    try:
        async with judging(args.image) as once:
            for mission in missions.values():
                await once(mission)  # warm-up
            for step in range(args.runs):
                order = ["DMOJ", "unscoped", "compare"]
                order = order[step % 3 :] + order[: step % 3]
                for name in order:
                    if name == "DMOJ":
                        if dmoj is not None:
                            rows[name].append(await dmoj.grade())
                    else:
                        rows[name].append(await once(missions[name]))
    finally:
        if dmoj is not None:
            await dmoj.stop()

    scoped: list[float] = []
    floors: list[float] = []
    if args.scoped_rounds:
        mission = parse_mission(data_judgement(n, scoped=True))
        async with judging(args.image) as once:
            await once(mission)  # warm-up
            for _ in range(args.scoped_rounds):
                scoped.append(await once(mission))
                rates = await loop.run_in_executor(None, engine_floor, args.image, 8, (4, 8))
                floors.append(n / max(rates.values()))
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    print(f"\n{n}-case C judgement, {args.runs} interleaved steps: median (quartiles), ms")
    if rows["DMOJ"]:
        print(f"  DMOJ 4.1 native                   {quartiles(rows['DMOJ'])}")
    else:
        print(f"  DMOJ 4.1 native                   not measured: {dmoj_error}")
    labels = {
        "unscoped": f"judge, unscoped ({2 * n + 1} executes)",
        "compare": f"judge, unscoped, compare ({n + 1})",
    }
    for key, label in labels.items():
        line = f"  {label:33s} {quartiles(rows[key])}"
        if rows["DMOJ"]:
            line += "   " + paired(rows[key], rows["DMOJ"], "DMOJ", GOAL_DMOJ)
        print(line)
    if scoped:
        print(f"\nscoped, {args.scoped_rounds} rounds, each followed by the engine's floor")
        print(
            f"  judge, scoped ({n} fresh sandboxes) {quartiles(scoped)}   floor {quartiles(floors)}"
            f"   " + paired(scoped, floors, "floor", 1.0)
        )


def paired(ours: list[float], theirs: list[float], name: str, goal: float) -> str:
    """The median of the paired ratios ``ours / theirs`` with their quartiles, and the goal."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=False)]
    verdict = "met" if statistics.median(ratios) <= goal else "not met"
    return f"{quartiles(ratios, 1.0, '.2f')} x {name} (goal <= {goal:g}: {verdict})"


if __name__ == "__main__":
    asyncio.run(main())
