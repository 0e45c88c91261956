"""The per-execute limit extensions in the mission format and on the supervisor's wire."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.mission import MissionInvalid, normalise, parse_mission
from orchestrator.run.runner import exec_request
from orchestrator.sandbox.sandbox import ExecRequest

HELLO: dict[str, Any] = {
    "return": {"url": "https://callback.example/judge"},
    "prepare": {"execute": [{"command": ["./main"], "time_limit": 1000}]},
}

LIMITS = {"wall_time_limit": 2500, "process_limit": 8, "file_size_limit": 100, "stack_limit": 64}


def with_execute(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(HELLO)
    data["prepare"]["execute"][0].update(fields)
    return data


def test_absent_limits_change_nothing() -> None:
    mission = parse_mission(HELLO)
    execute = mission.prepare.execute[0]
    assert (execute.wall_time_limit, execute.process_limit) == (None, None)
    assert (execute.file_size_limit, execute.stack_limit) == (None, None)
    echoed = normalise(mission)["prepare"]["execute"][0]
    assert not set(LIMITS) & set(echoed)  # the echo of today's missions is unchanged
    wire = exec_request(execute).to_wire()
    assert wire["wall_time_ms"] == 1500
    assert not {"process_limit", "file_size_kib", "stack_kib"} & set(wire)


def test_given_limits_reach_the_supervisor() -> None:
    mission = parse_mission(with_execute(**LIMITS))
    assert {k: normalise(mission)["prepare"]["execute"][0][k] for k in LIMITS} == LIMITS
    wire = exec_request(mission.prepare.execute[0]).to_wire()
    assert {
        k: wire[k] for k in ("wall_time_ms", "process_limit", "file_size_kib", "stack_kib")
    } == {
        "wall_time_ms": 2500,
        "process_limit": 8,
        "file_size_kib": 100,
        "stack_kib": 64,
    }


def test_null_is_absent() -> None:
    mission = parse_mission(with_execute(**dict.fromkeys(LIMITS)))
    assert exec_request(mission.prepare.execute[0]).wall_time_ms == 1500


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wall_time_limit", 0),
        ("wall_time_limit", 180_001),
        ("wall_time_limit", "2000"),
        ("process_limit", 0),
        ("process_limit", 4097),
        ("process_limit", 1.5),
        ("file_size_limit", -1),
        ("file_size_limit", 1_048_577),
        ("stack_limit", 63),
        ("stack_limit", 2_097_153),
        ("stack_limit", True),
    ],
)
def test_out_of_range_limits_are_named_by_path(field: str, value: object) -> None:
    with pytest.raises(MissionInvalid) as info:
        parse_mission(with_execute(**{field: value}))
    assert [e["path"] for e in info.value.errors] == [f"mission.prepare.execute[0].{field}"]


def test_the_interactor_takes_none_of_them() -> None:
    data = with_execute(interactor={"command": ["./judge"], "process_limit": 4})
    with pytest.raises(MissionInvalid) as info:
        parse_mission(data)
    assert [e["path"] for e in info.value.errors] == [
        "mission.prepare.execute[0].interactor.process_limit"
    ]


def test_an_exec_request_sends_only_what_is_set() -> None:
    plain = ExecRequest(argv=("true",), cpu_time_ms=999)
    assert plain.wall_time_ms == 1499  # ceil(1.5 x 999)
    assert not plain.needs_limits
    explicit = ExecRequest(argv=("true",), cpu_time_ms=999, wall_time_limit_ms=100)
    assert explicit.wall_time_ms == explicit.to_wire()["wall_time_ms"] == 100
    assert not explicit.needs_limits  # real time needs no new supervisor
    assert ExecRequest(argv=("true",), file_size_kib=0).needs_limits
    assert ExecRequest(argv=("true",), file_size_kib=0).to_wire()["file_size_kib"] == 0
