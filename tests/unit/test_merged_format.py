"""The ``merged`` extension of the mission format and its wire form (absent: nothing changes)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.mission import (
    MissionInvalid,
    expand_execute,
    normalise,
    parse_mission,
    task_macros,
)
from orchestrator.mission import result as result_doc
from orchestrator.run.plan import _record
from orchestrator.run.runner import exec_request
from orchestrator.sandbox.execute import ExecOutcome, Meta, outcome_from_wire
from tests.unit import test_execute_limits as limits

HELLO = limits.with_execute(stdout="out", stderr="err")


def with_execute(**fields: Any) -> dict[str, Any]:
    return limits.with_execute(**{"stdout": "out", "stderr": "err", **fields})


def test_absent_it_changes_nothing() -> None:
    mission = parse_mission(HELLO)
    execute = mission.prepare.execute[0]
    echoed = normalise(mission)["prepare"]["execute"][0]
    assert "merged" not in echoed
    assert "merged" not in echoed["record"]
    wire = exec_request(execute).to_wire()
    assert not {"merged", "record_merged"} & set(wire)
    assert result_doc.execute_entry(execute, {})["record"] == {"stdout": "", "stderr": ""}


def test_given_it_reaches_the_supervisor_and_the_result() -> None:
    mission = parse_mission(with_execute(merged="both"))
    execute = mission.prepare.execute[0]
    assert normalise(mission)["prepare"]["execute"][0]["merged"] == "both"
    wire = exec_request(execute).to_wire()
    assert (wire["merged"], wire["record_merged"]) == ("both", 1024)
    sized = parse_mission(with_execute(merged="both", record={"merged": 8192}))
    assert exec_request(sized.prepare.execute[0]).to_wire()["record_merged"] == 8192
    off = parse_mission(with_execute(merged="both", record={"enable": False}))
    assert exec_request(off.prepare.execute[0]).to_wire()["record_merged"] == 0
    # Not run yet: an empty merged record; run: the supervisor's.
    assert result_doc.execute_entry(execute, {})["record"]["merged"] == ""
    answer = {"meta": Meta().to_dict(), "record": {"stdout": "", "stderr": "", "merged": "QQ=="}}
    outcome = outcome_from_wire(answer)
    assert outcome.merged == b"A"
    assert _record(outcome, execute) == {"stdout": "", "stderr": "", "merged": "QQ=="}
    assert _record(ExecOutcome(Meta()), parse_mission(HELLO).prepare.execute[0]) == {
        "stdout": "",
        "stderr": "",
    }


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"merged": "out"}, "not the stdout file"),
        ({"merged": "./err"}, "not the stderr file"),
        ({"merged": "meta"}, "not the meta file"),
        ({"merged": ""}, ""),
        ({"merged": "../x"}, ""),
        ({"merged": "m", "record": {"merged": 8193}}, ""),
        (
            {"merged": "m", "stdout": "", "interactor": {"command": ["./i"]}},
            "cannot be used with an interactor",
        ),
    ],
)
def test_bad_merged_files_are_refused(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(MissionInvalid) as caught:
        parse_mission(with_execute(**fields))
    assert words in str(caught.value)


def test_macros_apply_to_it() -> None:
    data = {
        "tasks": {
            "task": [{"macro": {"N": "7"}}],
            "execute": [{"command": ["./main"], "stdout": "o", "merged": "both.N"}],
        }
    }
    mission = parse_mission(data)
    task = mission.tasks.task[0]
    execute = expand_execute(mission.tasks.execute[0], task_macros(0, task))
    assert execute.merged == "both.7"
