"""The peers of ``bench/side_by_side.py``, run with a separate virtualenv's Python.

    build/bench-peers/bin/python bench/peers.py dmoj|epicbox --image IMAGE --tasks 20 --repeat 3

The virtualenv is made by ``bash bench/dmoj/setup.sh`` (``make bench-dmoj``).

Does the same 20-case C judgement as the judge's row (compile A+B once, then per test run the
binary on its input and compare with the answer) and prints one JSON line:
``{"seconds": [...]}`` (one per repeat, after a warm-up run) or ``{"error": "..."}``. With
``dmoj --serve`` it grades once per line read from stdin instead, answering each with a JSON
line, so that a caller can interleave DMOJ's judgements with its own one by one.

- ``dmoj``: DMOJ's judge 4.x in-process (``LocalJudge``, as its CLI does), native ptrace sandbox,
  a problem directory with the test cases as files; the time is one ``begin_grading`` (compile +
  every case + checker), blocking; every case must come back AC.
- ``epicbox``: epicbox 1.x; compile in one container with a working-directory volume, then every
  test in a fresh container of IMAGE (which must run commands directly: an image without the
  judge's supervisor as entry point), output compared in Python.
This file imports nothing of the judge: it runs where the peers are installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

MAIN_C = """#include <stdio.h>
int main(void) {
    long a = 0, b = 0;
    if (scanf("%ld %ld", &a, &b) != 2) return 2;
    printf("%ld\\n", a + b);
    return 0;
}
"""


def cases(n: int) -> list[tuple[str, str]]:
    return [(f"{i} {i * 7}\n", f"{i * 8}\n") for i in range(n)]


def run_dmoj(n: int, repeat: int) -> list[float]:
    grade = dmoj_grader(n)
    grade()  # warm-up
    return [grade() for _ in range(repeat)]


def serve_dmoj(n: int) -> None:
    """One judgement per line read from stdin, each answered with one JSON line on stdout
    (``{"seconds": s}`` or ``{"error": "..."}``): the caller interleaves them with its own."""
    grade = dmoj_grader(n)
    grade()  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for _ in sys.stdin:
        try:
            print(json.dumps({"seconds": grade()}), flush=True)
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def dmoj_grader(n: int) -> Callable[[], float]:
    """DMOJ's judge set up for the A+B problem of ``n`` cases; returns a function that grades
    ``MAIN_C`` once, blocking, and returns the seconds it took (raises unless every case
    is AC)."""
    root = Path(tempfile.mkdtemp(prefix="dmoj-bench-"))
    problem = root / "problems" / "aplusb"
    problem.mkdir(parents=True)
    lines = ["test_cases:"]
    for i, (inp, ans) in enumerate(cases(n)):
        (problem / f"in{i}.txt").write_text(inp)
        (problem / f"ans{i}.txt").write_text(ans)
        lines.append(f"- {{in: in{i}.txt, out: ans{i}.txt, points: 1}}")
    (problem / "init.yml").write_text("\n".join(lines) + "\n")
    config = root / "judge.yml"
    config.write_text(
        f"problem_storage_globs:\n  - {root}/problems/*\nruntime:\n  gcc: /usr/bin/gcc\n"
    )
    sys.argv = ["dmoj-cli", "-c", str(config), "-e", "C", "--skip-self-test"]
    from dmoj import executors, judgeenv
    from dmoj.cli import LocalJudge
    from dmoj.judge import Submission

    judgeenv.load_env(cli=True)
    executors.load_executors()
    judge = LocalJudge()
    failures: list[str] = []
    verdicts: list[str] = []
    # The local packet manager drops every verdict; keep them, to check that all cases passed.
    judge.packet_manager.test_case_status_packet = (  # type: ignore[method-assign]
        lambda _position, result: verdicts.append(result.readable_codes()[0])
    )

    def report(*args: object) -> None:
        text = " ".join(map(str, args))
        if "Failed" in text or "error" in text.lower():
            failures.append(text)

    ids = iter(range(1, 1 << 30))

    def grade() -> float:
        verdicts.clear()
        failures.clear()
        start = time.perf_counter()
        judge.begin_grading(
            Submission(next(ids), "aplusb", "C", MAIN_C, 1.0, 65536, False, {}),
            blocking=True,
            report=report,
        )
        seconds = time.perf_counter() - start
        if verdicts != ["AC"] * n:
            failures.append(f"verdicts {verdicts}, expected {n} x AC")
        if failures:
            raise RuntimeError("; ".join(failures)[:300])
        return seconds

    return grade


def run_epicbox(image: str, n: int, repeat: int) -> list[float]:
    import epicbox

    epicbox.configure(profiles=[epicbox.Profile("c", image, user="sandbox")])
    results = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        with epicbox.working_directory() as workdir:
            compiled = epicbox.run(
                "c",
                "gcc -O2 -o main main.c",
                files=[{"name": "main.c", "content": MAIN_C.encode()}],
                limits={"cputime": 30, "memory": 256},
                workdir=workdir,
            )
            if compiled["exit_code"] != 0:
                raise RuntimeError(f"compile failed: {compiled}")
            for inp, ans in cases(n):
                ran = epicbox.run(
                    "c",
                    "./main",
                    stdin=inp.encode(),
                    limits={"cputime": 1, "memory": 64},
                    workdir=workdir,
                )
                if ran["stdout"].decode() != ans:
                    raise RuntimeError(f"wrong answer: {ran}")
        results.append(time.perf_counter() - start)
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=["dmoj", "epicbox"])
    parser.add_argument("--image", default="judge/default")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="dmoj: one judgement per stdin line")
    args = parser.parse_args()
    try:
        if args.peer == "dmoj" and args.serve:
            serve_dmoj(args.tasks)
            return
        if args.peer == "dmoj":
            seconds = run_dmoj(args.tasks, args.repeat)
        else:
            seconds = run_epicbox(args.image, args.tasks, args.repeat)
        print(json.dumps({"seconds": seconds}))
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))


if __name__ == "__main__":
    main()
