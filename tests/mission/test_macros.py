"""Macros as they reach the sandbox: longest key first, one pass, per task, in every string."""

from __future__ import annotations

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import assert_ok, mission, run, stdout_of

pytestmark = pytest.mark.docker

ARGS = ["AB", "A", "B", "ABBA", "__TASK_ID__", "X", "Y", "xA_B"]
MACROS = [
    # Overlapping keys (A, AB, and A inside __TASK_ID__); values that contain other keys.
    {"A": "1", "AB": "2", "B": "A", "X": "__TASK_ID__B", "Y": "AB"},
    # Another task, other values (one empty); X and Y are not macros here.
    {"A": "alpha", "AB": "", "B": "beta"},
]
# What each argument becomes, per task.
EXPECTED_ARGS = [
    ["2", "1", "A", "2A1", "0", "__TASK_ID__B", "AB", "x1_A"],
    ["", "alpha", "beta", "betaalpha", "1", "X", "Y", "xalpha_beta"],
]
# Names in the sandbox per task: input file, output file, meta files, exported copy.
INPUTS = ["in_1.txt", "in_alpha.txt"]
OUTPUTS = ["out_1_A.txt", "out_alpha_beta.txt"]
EXPECTED_NAMES = [
    {INPUTS[0], OUTPUTS[0], "meta_A", "meta2_A", "copy_A.txt"},
    {INPUTS[1], OUTPUTS[1], "meta_beta", "meta2_beta", "copy_beta.txt"},
]

PRINT_ARGS_THEN_STDIN = 'printf "%s|" "$@"; cat'


async def test_macros_reach_the_sandbox_expanded(deps: MissionDeps) -> None:
    data = mission(
        tasks={
            "task": [
                # The URL is not expanded: the content keeps its "A".
                {"file": {"in_A.txt": "data:,input%20A"}, "macro": macros}
                for macros in MACROS
            ],
            "execute": [
                {
                    "name": "args AB X",
                    "command": ["sh", "-c", PRINT_ARGS_THEN_STDIN, "sh", *ARGS],
                    "stdin": "in_A.txt",
                    "stdout": "out_A_B.txt",
                    "meta": "meta_B",
                },
                {
                    "name": "copy __TASK_ID__",
                    "command": ["cp", "out_A_B.txt", "copy_B.txt"],
                    "meta": "meta2_B",
                    "scope": {"enable": True, "import": ["out_A_B.txt"], "export": ["copy_B.txt"]},
                },
            ],
        },
        final={"execute": [{"command": ["ls", "-1"], "stdout": "ls.txt"}]},
    )

    normalised, result = await run(deps, data)

    for i, expected in enumerate(EXPECTED_ARGS):
        task = result["task"][i]
        for entry in task["execute"]:
            assert_ok(entry)
        assert stdout_of(task["execute"][0]) == "|".join(expected) + "|input A"
        assert [e["name"] for e in task["execute"]] == [
            f"args {expected[0]} {expected[5]}",
            f"copy {i}",
        ]
        assert set(task["file"]) == {INPUTS[i]}
        echoed = normalised["tasks"]["task"][i]
        assert echoed["macro"] == MACROS[i]
        assert echoed["file"] == {"in_A.txt": "data:,input%20A"}
        assert echoed["execute"][0]["command"][4:] == expected
        assert echoed["execute"][0]["stdout"] == OUTPUTS[i]
        assert echoed["execute"][1]["scope"]["import"] == [OUTPUTS[i]]
    # The submitted executes are echoed as written.
    assert normalised["tasks"]["execute"][0]["command"][4:] == ARGS
    assert normalised["tasks"]["execute"][0]["stdout"] == "out_A_B.txt"

    listing = set(stdout_of(result["final"]["execute"][0]).split())
    assert listing == EXPECTED_NAMES[0] | EXPECTED_NAMES[1] | {"ls.txt"}
