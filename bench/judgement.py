"""The 20-case C judgement against DMOJ's judge and the engine's fresh-container floor, side by
side in one run, rounds interleaved so that the machine's load hits all alike.

    bash bench/dmoj/setup.sh                       # once: the peers' virtualenv (make bench-dmoj)
    python -m bench.judgement [--peers build/bench-peers] [--rounds 3] [--repeat 3] [--tasks 20]

Each round runs, one after the other:

- DMOJ's judge 4.1 natively (its ptrace sandbox, the host's gcc; ``bench/peers.py`` in the
  peers' virtualenv): compile A+B once, then every case run and checked; every case must be AC;
- the judge's unscoped judgement: one mission, the compile in ``prepare``, then per task the
  binary on its input and ``diff`` against the answer (41 executes), in a warm sandbox;
- the same with ``compare`` (an extension of the format: the check reads both files back over
  the supervisor channel and compares them in the judge, instead of running ``diff``);
- the scoped judgement: every run in a fresh sandbox (importing the binary and the input,
  exporting the output), read against the engine's floor: ``tasks`` fresh containers at the
  best rate the engine reaches (create + start + wait + remove, 8 at concurrency 4 and 8), measured
  right after it in the same round.

Printed: each row's median (and range over the rounds' medians), the ratios and their goals
(issue 24: unscoped <= 0.5 x DMOJ; scoped at or under the fresh-container floor). The docker SDK
is used directly only for the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path
from typing import Any

from bench.common import engine_info, machine
from bench.side_by_side import engine_floor, judge_judgement_s, peer

DEFAULT_PEERS = Path(__file__).resolve().parent.parent / "build" / "bench-peers"
GOAL_DMOJ = 0.5


def spread(values: list[float]) -> str:
    """``median (low-high)`` in ms of ``values`` in seconds."""
    return (
        f"{statistics.median(values) * 1000:6.0f} ms "
        f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="judgements per row and round")
    parser.add_argument("--peers", default=str(DEFAULT_PEERS), help="the peers' virtualenv")
    parser.add_argument("--skip", default="", help="comma-separated: dmoj,compare,scoped")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    loop = asyncio.get_running_loop()
    print(f"{machine(engine_info())}, image {args.image}")

    # Each row's median per round (seconds).
    medians: dict[str, list[float]] = {"DMOJ": [], "unscoped": [], "compare": [], "scoped": []}
    dmoj_error = ""

    def add(name: str, seconds: list[float]) -> None:
        medians[name].append(statistics.median(seconds))

    floors: list[float] = []  # seconds for ``tasks`` fresh containers, per round
    for r in range(args.rounds):
        if "dmoj" not in skip:
            doc: dict[str, Any] = await loop.run_in_executor(
                None, peer, args.peers, "dmoj", args.image, args.tasks, args.repeat
            )
            if "seconds" in doc:
                add("DMOJ", doc["seconds"])
            else:
                dmoj_error = str(doc.get("error"))
        add(
            "unscoped",
            await judge_judgement_s(args.image, args.tasks, scoped=False, repeat=args.repeat),
        )
        if "compare" not in skip:
            add(
                "compare",
                await judge_judgement_s(
                    args.image, args.tasks, scoped=False, repeat=args.repeat, compare=True
                ),
            )
        if "scoped" not in skip:
            add("scoped", await judge_judgement_s(args.image, args.tasks, scoped=True, repeat=1))
            rates = await loop.run_in_executor(None, engine_floor, args.image, 8, (4, 8))
            floors.append(args.tasks / max(rates.values()))
        done = ", ".join(f"{k} {spread(v[-1:])}" for k, v in medians.items() if v)
        if floors:
            done += f", floor {floors[-1] * 1000:.0f} ms"
        print(f"round {r + 1}: {done}", flush=True)

    n = args.tasks
    print(f"\n{n}-case C judgement, medians over {args.rounds} rounds of {args.repeat}")
    print("  (range: the rounds' medians; ratios: the median of the rounds' ratios, each")
    print("   round's figures measured one after the other)")
    if not medians["DMOJ"]:
        print(f"  DMOJ 4.1 native                 not measured: {dmoj_error or 'skipped'}")
    else:
        print(f"  DMOJ 4.1 native                 {spread(medians['DMOJ'])}")
    labels = {
        "unscoped": f"judge, unscoped ({2 * n + 1} executes)",
        "compare": f"judge, unscoped, compare ({n + 1})",
    }
    for key, label in labels.items():
        if not medians[key]:
            continue
        line = f"  {label:31s} {spread(medians[key])}"
        if medians["DMOJ"]:
            line += "  " + paired(medians[key], medians["DMOJ"], "DMOJ", GOAL_DMOJ)
        print(line)
    if medians["scoped"]:
        print(
            f"  judge, scoped ({n} fresh sandboxes) {spread(medians['scoped'])}  "
            f"floor {spread(floors)}  " + paired(medians["scoped"], floors, "floor", 1.0)
        )


def paired(ours: list[float], theirs: list[float], name: str, goal: float) -> str:
    """The median of the rounds' ratios ``ours / theirs``, their range, and the goal."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=False)]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= goal else "not met"
    return (
        f"{ratio:.2f} x {name} (rounds {min(ratios):.2f}-{max(ratios):.2f}; "
        f"goal <= {goal:g}: {verdict})"
    )


if __name__ == "__main__":
    asyncio.run(main())
