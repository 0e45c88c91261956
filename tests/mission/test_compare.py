"""``compare`` executes (an extension of the format): two files of the mission's sandbox compared
byte for byte by the judge, with the verdict a ``cmp`` check would give, on the real engine; and
whatever the program left at those paths (links, FIFOs, directories) is refused, never followed
nor waited on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.transfer import COMPARE_PIECE_BYTES
from tests.mission.helpers import assert_ok, mission, run, sh

pytestmark = pytest.mark.docker


def compare(output: str, answer: str, **fields: Any) -> dict[str, Any]:
    return {"name": "check", "compare": {"output": output, "answer": answer}, **fields}


async def compared(deps: MissionDeps, setup: str, *checks: dict[str, Any]) -> list[Any]:
    """Run ``setup`` (sh) then ``checks``; their result entries."""
    _, result = await run(deps, mission(prepare={"execute": [sh(setup), *checks]}))
    entries = result["prepare"]["execute"]
    assert_ok(entries[0])
    return list(entries[1:])


async def test_equal_different_and_missing(deps: MissionDeps) -> None:
    same, differs, shorter, missing = await compared(
        deps,
        "printf '3\\n' > out; printf '3\\n' > ans; printf '4\\n' > bad; printf '3' > short",
        compare("out", "ans", meta="same.meta"),
        compare("bad", "ans"),
        compare("short", "ans"),
        compare("nothing", "ans"),
    )
    assert same["meta"] == {
        "status": "",
        "message": "",
        "memory-usage": 0,
        "cpu-time-usage": 0,
        "real-time-usage": 0,
        "exit-code": 0,
        "signal": 0,
    }
    assert same["record"] == {"stdout": "", "stderr": ""}
    assert (differs["meta"]["status"], differs["meta"]["exit-code"]) == ("RE", 1)
    assert differs["meta"]["message"] == "'bad' and 'ans' differ at byte 0"
    assert shorter["meta"]["message"] == "'short' and 'ans' differ at byte 1"
    assert (missing["meta"]["status"], missing["meta"]["exit-code"]) == ("RE", 2)
    assert missing["meta"]["message"].startswith("cannot compare: 'nothing': ")


async def test_the_meta_file_is_written_like_any_executes(deps: MissionDeps) -> None:
    _, result = await run(
        deps,
        mission(
            prepare={
                "execute": [
                    sh("echo x > out; echo y > ans"),
                    compare("out", "ans", meta="check.meta"),
                    sh("cat check.meta", stdout="seen"),
                ]
            }
        ),
    )
    check, seen = result["prepare"]["execute"][1:]
    assert_ok(seen)
    assert json.loads(base64.b64decode(seen["record"]["stdout"])) == check["meta"]


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("ln -s /etc/passwd out; cp /etc/passwd ans", "link"),
        ("mkfifo out; echo x > ans", "fifo"),
        ("mkdir out; echo x > ans", "directory"),
        ("mkdir d; ln -s /etc d2; echo x > ans; cp /etc/passwd out", "link on the way"),
    ],
)
async def test_what_the_program_left_is_refused_not_followed(
    deps: MissionDeps, setup: str, why: str
) -> None:
    path = "d2/passwd" if why == "link on the way" else "out"
    (entry,) = await compared(deps, setup, compare(path, "ans"))
    meta = entry["meta"]
    assert (meta["status"], meta["exit-code"]) == ("RE", 2), (why, meta)
    assert meta["message"].startswith(f"cannot compare: '{path}'"), meta


async def test_files_larger_than_one_piece(deps: MissionDeps) -> None:
    size = 2 * COMPARE_PIECE_BYTES + 1000
    flip = COMPARE_PIECE_BYTES + 123  # in the second piece
    same, differs, longer = await compared(
        deps,
        f"head -c {size} /dev/zero > a; cp a b; cp a c; "
        f"printf 'x' | dd of=c bs=1 seek={flip} conv=notrunc 2>/dev/null; "
        "cp a d; printf 'y' >> d",
        compare("a", "b"),
        compare("a", "c"),
        compare("a", "d"),
    )
    assert_ok(same)
    assert differs["meta"]["message"] == f"'a' and 'c' differ at byte {flip}"
    assert longer["meta"]["message"] == f"'a' and 'd' differ at byte {size}"


async def test_a_task_compares_with_its_macros(deps: MissionDeps) -> None:
    data = mission(
        tasks={
            "task": [{"macro": {"ANSWER": "ans0"}}, {"macro": {"ANSWER": "ans1"}}],
            "execute": [
                sh("echo 1 > out__TASK_ID__; echo 1 > ans0; echo 2 > ans1"),
                compare("out__TASK_ID__", "ANSWER", meta="check__TASK_ID__.meta"),
            ],
        }
    )
    normalised, result = await run(deps, data)
    first, second = (task["execute"][1]["meta"] for task in result["task"])
    assert first["status"] == ""
    assert (second["status"], second["message"]) == ("RE", "'out1' and 'ans1' differ at byte 0")
    echoed = normalised["tasks"]["task"][1]["execute"][1]
    assert echoed["compare"] == {"output": "out1", "answer": "ans1"}
    assert "command" not in echoed
