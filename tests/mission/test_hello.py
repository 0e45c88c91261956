"""The reference hello world: the echoed mission and the result have the reference shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import CALLBACK, mission, run
from tests.seed000 import seed_echo

pytestmark = pytest.mark.docker

# What the reference hello world's callback carries: "mission" and "mission_result".
SEED_MISSION: dict[str, Any] = seed_echo(CALLBACK)
SEED_RESULT: dict[str, Any] = {
    "final": {"execute": [], "file": {}},
    "prepare": {
        "execute": [
            {
                "meta": {
                    "cpu-time-usage": 0,
                    "memory-usage": 1724,
                    "message": "",
                    "real-time-usage": 43,
                    "status": "",
                },
                "name": "",
                "record": {"stderr": "", "stdout": "aGVsbG8gd29ybGQK"},
            }
        ],
        "file": {},
    },
    "task": [],
}
# Meta fields we add to the classic ones (docs/missions.md, Meta).
EXTRA_META = {"exit-code", "signal"}

HELLO = mission(
    prepare={"execute": [{"command": ["echo", "hello world"], "stdout": "output.txt"}]},
    tick=False,
)


def shape(value: Any) -> Any:
    """The value with every leaf replaced by its type name: what "same shape" compares."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_hello_world_matches_the_seed(deps: MissionDeps) -> None:
    normalised, result = await run(deps, HELLO)

    assert normalised == SEED_MISSION
    entry = result["prepare"]["execute"][0]
    assert entry["record"] == {"stdout": "aGVsbG8gd29ybGQK", "stderr": ""}
    meta = entry["meta"]
    assert set(meta) == set(SEED_RESULT["prepare"]["execute"][0]["meta"]) | EXTRA_META
    assert (meta["status"], meta["message"], meta["exit-code"], meta["signal"]) == ("", "", 0, 0)
    assert 0 < meta["memory-usage"] < 64 * 1024
    assert 0 <= meta["cpu-time-usage"] < 1000
    assert 0 <= meta["real-time-usage"] < 5000

    stripped = copy.deepcopy(result)
    for key in EXTRA_META:
        del stripped["prepare"]["execute"][0]["meta"][key]
    assert shape(stripped) == shape(SEED_RESULT)


async def test_unredirected_output_is_not_recorded(deps: MissionDeps) -> None:
    """Record needs a redirect file; without one the record is empty."""
    _, result = await run(
        deps, mission(prepare={"execute": [{"command": ["echo", "hello world"]}]})
    )
    entry = result["prepare"]["execute"][0]
    assert entry["meta"]["status"] == ""
    assert entry["record"] == {"stdout": "", "stderr": ""}
