"""The result document has one owner: its plan, its entries, the all-"not run" result, the
count of executes and the names of the states agree wherever they are used."""

from __future__ import annotations

from typing import Any

from judge_client import cli

from orchestrator.mission import normalise, parse_mission
from orchestrator.mission import result as result_doc
from orchestrator.mission.result import ENDED, MissionState
from orchestrator.run.runner import _plan
from orchestrator.sandbox.sandbox import Meta
from service.pipeline.running import not_run_result
from service.store import MISSION_STATES

MISSION: dict[str, Any] = {
    "prepare": {
        "file": {"a.txt": "data:,a"},
        "execute": [{"name": "compile", "command": ["true"]}],
    },
    "tasks": {
        "task": [
            {"macro": {"__N__": "1"}},
            {"macro": {"__N__": "2"}, "file": {"in__N__": "data:,"}},
        ],
        "execute": [
            {"name": "run __N__", "command": ["./prog", "__N__"]},
            {
                "name": "play __TASK_ID__",
                "command": ["./guess"],
                "interactor": {"command": ["python3", "interactor.py"], "stderr": "i__N__.txt"},
            },
        ],
    },
    "final": {"execute": [{"name": "sum", "command": ["true"]}]},
}


def test_the_client_names_the_states_as_the_server_does() -> None:
    assert cli.STATES == tuple(MissionState)
    assert cli.FINAL_STATES == ENDED
    assert MISSION_STATES == tuple(MissionState)


def test_a_system_error_meta_is_the_sandbox_meta_shape() -> None:
    assert result_doc.system_error("not run") == Meta.system_error("not run").to_dict()


def test_nothing_ran_means_every_planned_execute_says_why() -> None:
    mission = parse_mission(MISSION)
    result = result_doc.not_run(result_doc.plan(mission), "cancelled")
    assert list(result["prepare"]["file"]) == ["a.txt"]
    assert [list(t["file"]) for t in result["task"]] == [[], ["in2"]]
    names = [(stage, task, entry["name"]) for stage, task, _, entry in result_doc.entries(result)]
    assert names == [
        ("prepare", None, "compile"),
        ("task", 0, "run 1"),
        ("task", 0, "play 0"),
        ("task", 1, "run 2"),
        ("task", 1, "play 1"),
        ("final", None, "sum"),
    ]
    play = result["task"][1]["execute"][1]
    se = result_doc.system_error("cancelled")
    assert play == {
        "name": "play 1",
        "meta": se,
        "record": {"stdout": "", "stderr": ""},
        "interactor": {"meta": se, "record": {"stdout": "", "stderr": ""}},
    }
    assert "interactor" not in result["task"][1]["execute"][0]


def test_the_runner_starts_from_the_same_result_running_stores_for_a_cancelled_mission() -> None:
    mission = parse_mission(MISSION)
    _, planned = _plan(mission)
    assert planned == not_run_result(mission, "not run")


def test_executes_are_counted_alike_from_the_mission_its_echo_and_its_result() -> None:
    mission = parse_mission(MISSION)
    result = not_run_result(mission, "x")
    assert result_doc.count_executes(mission) == 6
    assert result_doc.count_in_echo(normalise(mission)) == 6
    assert len(list(result_doc.entries(result))) == 6
    assert result_doc.planned_executes(1, 2, 2, 1) == 6


def test_entries_tolerate_a_partial_result() -> None:
    assert list(result_doc.entries({})) == []
    entry = {"name": "x"}
    assert list(result_doc.entries({"task": [{"execute": [entry]}]})) == [("task", 0, 0, entry)]
