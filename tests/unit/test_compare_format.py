"""The ``compare`` extension of the mission format: an execute with ``compare`` instead of
``command``; what it may not be combined with, its macros, its echo and its schema."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.mission import MissionInvalid, normalise, parse_mission
from orchestrator.mission.model import Execute

URL = "https://callback.example/judge"
CHECK = {"name": "check", "compare": {"output": "out.txt", "answer": "ANSWER"}}


def with_executes(*executes: dict[str, Any]) -> dict[str, Any]:
    return {"return": {"url": URL}, "prepare": {"execute": list(executes)}}


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(MissionInvalid) as info:
        parse_mission(data)
    return [(e["path"], e["message"]) for e in info.value.errors]


def test_a_compare_execute_needs_no_command_and_echoes_none() -> None:
    mission = parse_mission(with_executes(CHECK))
    (check,) = mission.prepare.execute
    assert check.command is None
    assert check.argv == []
    echoed = normalise(mission)["prepare"]["execute"][0]
    assert "command" not in echoed
    assert echoed["compare"] == {"output": "out.txt", "answer": "ANSWER"}


def test_a_plain_execute_echoes_as_before() -> None:
    echoed = normalise(parse_mission(with_executes({"command": ["true"]})))
    assert "compare" not in echoed["prepare"]["execute"][0]


def test_neither_command_nor_compare_is_command_required() -> None:
    assert problems(with_executes({"name": "x"})) == [
        ("mission.prepare.execute[0].command", "is required")
    ]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"command": ["cmp", "a", "b"]}, "either 'command' or 'compare'"),
        ({"stdin": "in"}, "'stdin' cannot be set"),
        ({"stdout": "o"}, "'stdout' cannot be set"),
        ({"scope": {"enable": True}}, "'scope' cannot be set"),
        (
            {"interactor": {"command": ["i"]}},
            "'interactor' cannot be set",
        ),
    ],
)
def test_compare_runs_no_process(extra: dict[str, Any], named: str) -> None:
    ((path, message),) = problems(with_executes({**CHECK, **extra}))
    assert path == "mission.prepare.execute[0]"
    assert named in message


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", ""])
def test_its_paths_follow_the_path_rules(bad: str) -> None:
    ((path, _),) = problems(with_executes({"compare": {"output": bad, "answer": "a"}}))
    assert path == "mission.prepare.execute[0].compare.output"


def test_both_paths_are_required_and_nothing_else_is_allowed() -> None:
    assert problems(with_executes({"compare": {"output": "a"}})) == [
        ("mission.prepare.execute[0].compare.answer", "is required")
    ]
    ((path, message),) = problems(
        with_executes({"compare": {"output": "a", "answer": "b", "mode": "lines"}})
    )
    assert (path, message) == ("mission.prepare.execute[0].compare.mode", "unknown key 'mode'")


def test_macros_apply_to_its_paths_and_are_checked_after() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {
            "task": [{"macro": {"ANSWER": "ans.txt"}}, {"macro": {"ANSWER": "../x"}}],
            "execute": [{"compare": {"output": "out__TASK_ID__", "answer": "ANSWER"}}],
        },
    }
    ((path, message),) = problems(data)
    assert path == "mission.tasks.task[1].execute[0].compare.answer"
    assert message.startswith("after macro expansion")
    data["tasks"]["task"].pop()
    echoed = normalise(parse_mission(data))["tasks"]["task"][0]["execute"][0]
    assert echoed["compare"] == {"output": "out0", "answer": "ans.txt"}


def test_tasks_in_parallel_still_need_every_execute_scoped() -> None:
    data = {
        "return": {"url": URL},
        "tasks": {"task": [{}], "execute": [CHECK], "parallel": 2},
    }
    assert [p for p, _ in problems(data)] == ["mission.tasks.parallel"]


def test_the_schema_no_longer_requires_command() -> None:
    schema = Execute.model_json_schema(by_alias=True)
    assert "command" not in schema.get("required", [])
    assert "compare" in schema["properties"]
