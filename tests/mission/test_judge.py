"""A judge's mission end to end on the real engine: compile once, run five tests, count passes.

``main.c`` and every test's input and answer come from a local HTTP server. Each test runs the
binary in a scoped sandbox (importing the binary and its input, exporting its output) and
compares the output with the answer using ``diff``; the final stage reads every meta file.
The program's behaviour depends on its input, so one test crashes, one spins, one hogs memory.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps, PhaseTimes
from tests.mission.helpers import FileServer, assert_ok, b64, mission, run, statuses, stdout_of

pytestmark = pytest.mark.docker

MAIN_C = rb"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char word[64] = "";
    long b = 0;
    if (scanf("%63s", word) != 1) return 2;
    if (strcmp(word, "segv") == 0) {
        int *volatile p = NULL;
        *p = 42;
    } else if (strcmp(word, "spin") == 0) {
        volatile unsigned long n = 0;
        for (;;) n++;
    } else if (strcmp(word, "hog") == 0) {
        size_t size = (size_t)200 << 20;
        volatile char *block = malloc(size);
        if (block == NULL) return 3;
        for (size_t i = 0; i < size; i += 4096) block[i] = 1;
        printf("%d\n", block[size - 4096]);
        return 0;
    }
    if (scanf("%ld", &b) != 1) return 2;
    printf("%ld\n", atol(word) + b);
    return 0;
}
"""

# (input, expected answer, verdict of the run, verdict of the comparison)
CASES = [
    ("1 2\n", "3\n", "", ""),
    ("segv\n", "0\n", "RE", "RE"),
    ("spin\n", "0\n", "TLE", "RE"),
    ("hog\n", "1\n", "MLE", "RE"),
    ("20 22\n", "42\n", "", ""),
]
TIME_LIMIT_MS = 1000
MEMORY_LIMIT_KIB = 65536

SUMMARY = """
import json
runs = [json.load(open(f"run{i}.meta"))["status"] or "AC" for i in range(N_TASKS)]
passed = sum(json.load(open(f"check{i}.meta"))["status"] == "" for i in range(N_TASKS))
print(passed, *runs)
"""


def judge_mission(files: FileServer, n_tasks: int) -> dict[str, Any]:
    return mission(
        prepare={
            "file": {"main.c": files.url("main.c")},
            "execute": [
                {
                    "name": "compile",
                    "command": ["gcc", "-O2", "-o", "main", "main.c"],
                    "memory_limit": 262144,
                    "time_limit": 30000,
                    "stderr": "gcc.txt",
                }
            ],
        },
        tasks={
            "task": [
                {
                    "file": {"INPUT": files.url(f"in{i}"), "ANSWER": files.url(f"ans{i}")},
                    "macro": {"INPUT": f"in{i}.txt", "ANSWER": f"ans{i}.txt"},
                }
                for i in range(n_tasks)
            ],
            "execute": [
                {
                    "name": "run __TASK_ID__",
                    "command": ["./main"],
                    "time_limit": TIME_LIMIT_MS,
                    # The spinning test is about CPU time: on a machine busy with other jobs a
                    # starved loop would reach the default real-time limit (1.5 x) first.
                    "wall_time_limit": 20 * TIME_LIMIT_MS,
                    "memory_limit": MEMORY_LIMIT_KIB,
                    "stdin": "INPUT",
                    "stdout": "out__TASK_ID__.txt",
                    "meta": "run__TASK_ID__.meta",
                    "scope": {
                        "enable": True,
                        "import": ["main", "INPUT"],
                        "export": ["out__TASK_ID__.txt"],
                    },
                },
                {
                    "name": "check __TASK_ID__",
                    "command": ["diff", "out__TASK_ID__.txt", "ANSWER"],
                    "stdout": "diff__TASK_ID__.txt",
                    "meta": "check__TASK_ID__.meta",
                },
            ],
        },
        final={
            "execute": [
                {
                    "name": "summary",
                    "command": ["python3", "-c", SUMMARY.replace("N_TASKS", str(n_tasks))],
                    "stdout": "summary.txt",
                    "stderr": "summary.err",
                }
            ]
        },
    )


async def test_judge_mission_end_to_end(deps: MissionDeps, file_server: FileServer) -> None:
    file_server.files["main.c"] = MAIN_C
    for i, (given, answer, _, _) in enumerate(CASES):
        file_server.files[f"in{i}"] = given.encode()
        file_server.files[f"ans{i}"] = answer.encode()
    times = PhaseTimes()

    normalised, result = await run(deps, judge_mission(file_server, len(CASES)), times=times)

    # Prepare: main.c came from the server, gcc compiled it.
    assert result["prepare"]["file"] == {"main.c": {"status": 200, "content": b64(MAIN_C[:128])}}
    assert_ok(result["prepare"]["execute"][0])
    assert sorted(file_server.hits) == sorted(
        ["main.c"] + [f"{kind}{i}" for i in range(len(CASES)) for kind in ("in", "ans")]
    )

    # Tasks: files under their macro-expanded names, a verdict per run, a diff per output.
    assert len(result["task"]) == len(CASES)
    for i, (given, answer, run_verdict, check_verdict) in enumerate(CASES):
        task = result["task"][i]
        assert task["file"] == {
            f"in{i}.txt": {"status": 200, "content": b64(given)},
            f"ans{i}.txt": {"status": 200, "content": b64(answer)},
        }
        assert [e["name"] for e in task["execute"]] == [f"run {i}", f"check {i}"]
        assert statuses(task) == [run_verdict, check_verdict], (i, task)
        if check_verdict == "RE":
            assert task["execute"][1]["meta"]["message"] == "exited with code 1"
            assert task["execute"][1]["meta"]["exit-code"] == 1
        echoed = normalised["tasks"]["task"][i]["execute"]
        assert echoed[0]["stdin"] == f"in{i}.txt"
        assert echoed[0]["scope"] == {
            "enable": True,
            "import": ["main", f"in{i}.txt"],
            "export": [f"out{i}.txt"],
        }
        assert echoed[1]["command"] == ["diff", f"out{i}.txt", f"ans{i}.txt"]

    runs = [task["execute"][0] for task in result["task"]]
    assert stdout_of(runs[0]) == "3\n"
    assert stdout_of(runs[4]) == "42\n"
    assert_ok(result["task"][4]["execute"][1])

    crashed = runs[1]["meta"]
    assert crashed["message"] == "killed by signal 11 (SIGSEGV)"
    assert crashed["signal"] == 11
    spun = runs[2]["meta"]
    assert spun["message"] == f"CPU time limit exceeded ({TIME_LIMIT_MS} ms)"
    assert TIME_LIMIT_MS <= spun["cpu-time-usage"] < TIME_LIMIT_MS * 1.5
    hog = runs[3]["meta"]
    assert hog["message"] == f"memory limit exceeded ({MEMORY_LIMIT_KIB} KiB)"
    assert hog["memory-usage"] > MEMORY_LIMIT_KIB * 0.9
    # The comparison saw what each run exported: nothing for the failed runs.
    failed_diff = base64.b64decode(result["task"][1]["execute"][1]["record"]["stdout"])
    assert b"> 0" in failed_diff

    # Final: the meta files of every execute were written in the sandbox and readable.
    summary = result["final"]["execute"][0]
    assert_ok(summary)
    assert stdout_of(summary) == "2 AC RE TLE MLE AC\n"

    # One main sandbox and one per scoped run were created (and removed in the background: the
    # runtime fixture drains the removals and fails the test on any leftover).
    assert times.counts["create"] == 1 + len(CASES)
