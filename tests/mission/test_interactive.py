"""Interactive executes in missions: one interactor per task's data, metas written for both,
the result's ``interactor`` entry, and scoped interactive executes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps
from tests.mission.helpers import assert_ok, b64, mission, run, stdout_of
from tests.sandbox.test_interactive import INTERACTOR, SOLUTION

pytestmark = pytest.mark.docker


def data_url(content: bytes) -> str:
    return f"data:application/octet-stream;base64,{b64(content)}"


def guess(**fields: Any) -> dict[str, Any]:
    return {
        "command": ["python3", "solution.py"],
        "time_limit": 5000,
        "interactor": {
            "command": ["python3", "interactor.py"],
            "time_limit": 5000,
            "stderr": "interactor.err",
            "private": ["secret.txt"],
        },
        **fields,
    }


async def test_each_task_plays_against_its_own_secret(deps: MissionDeps) -> None:
    data = mission(
        prepare={
            "file": {
                "interactor.py": data_url(INTERACTOR),
                "solution.py": data_url(SOLUTION),
            }
        },
        tasks={
            "task": [
                {"file": {"secret.txt": data_url(b"1\n")}},
                {"file": {"secret.txt": data_url(b"999999\n")}},
            ],
            "execute": [guess()],
        },
        final={
            "execute": [
                {"command": ["cat", "meta"], "stdout": "m1.txt", "meta": "m1"},
                {"command": ["cat", "interactor.meta"], "stdout": "m2.txt", "meta": "m2"},
            ]
        },
    )
    normalised, result = await run(deps, data)
    echoed = normalised["tasks"]["execute"][0]
    assert echoed["interactor"]["meta"] == "interactor.meta"  # defaults filled in
    assert echoed["interactor"]["memory_limit"] == 65536
    for task in result["task"]:
        entry = task["execute"][0]
        assert_ok(entry)
        assert entry["interactor"]["meta"]["status"] == "", entry
        assert entry["interactor"]["meta"]["exit-code"] == 0
        assert entry["interactor"]["record"]["stdout"] == ""
    # Both metas are files in the sandbox, as the result reports them (the last task's).
    metas = [json.loads(stdout_of(entry)) for entry in result["final"]["execute"]]
    last = result["task"][1]["execute"][0]
    assert metas == [last["meta"], last["interactor"]["meta"]]


async def test_a_scoped_interactive_execute(deps: MissionDeps) -> None:
    files = {
        "interactor.py": data_url(INTERACTOR),
        "solution.py": data_url(SOLUTION),
        "secret.txt": data_url(b"4242\n"),
    }
    scope = {"enable": True, "import": list(files), "export": ["interactor.err"]}
    data = mission(
        prepare={
            "file": files,
            "execute": [
                guess(scope=scope),
                {"command": ["cat", "interactor.err", "secret.txt"], "stdout": "out.txt"},
            ],
        }
    )
    _, result = await run(deps, data)
    scoped, after = result["prepare"]["execute"]
    assert_ok(scoped)
    assert scoped["interactor"]["meta"]["status"] == ""
    # The secret was made private in the scoped sandbox only; the main one's copy is as it was.
    assert_ok(after)
    assert stdout_of(after).startswith("found in ")
    assert stdout_of(after).endswith("4242\n")


async def test_an_interactive_execute_that_never_runs_reports_both_metas(
    deps: MissionDeps,
) -> None:
    data = mission(
        prepare={
            "file": {"x": "http://127.0.0.1:9/nothing-listens-here"},
            "execute": [guess()],
        }
    )
    _, result = await run(deps, data)
    entry = result["prepare"]["execute"][0]
    assert entry["meta"]["status"] == "SE"
    assert entry["interactor"]["meta"]["status"] == "SE"
