"""tasks.parallel: scoped tasks run at once, results and exports land in task order."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestrator.run.runner import MissionDeps
from orchestrator.sandbox.sandbox import Sandbox, SandboxRuntime
from tests.mission.helpers import assert_ok, mission, run, sh, stdout_of

pytestmark = pytest.mark.docker

TASKS = 5


def data_url(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


def judged(parallel: int) -> dict[str, Any]:
    """Per task: a scoped run reading its input and exporting its output, then a scoped check
    importing that output (the task's own export, not yet in the mission's sandbox)."""
    return mission(
        prepare={
            "execute": [sh("printf '#!/bin/sh\\nread a b; echo $((a+b))\\n' > add; chmod +x add")]
        },
        tasks={
            "task": [
                {
                    "file": {"IN": data_url(f"{i} {i}\n"), "ANS": data_url(f"{2 * i}\n")},
                    "macro": {"IN": f"in{i}", "ANS": f"ans{i}"},
                }
                for i in range(TASKS)
            ],
            "execute": [
                sh(
                    "sleep 1; ./add < IN > out__TASK_ID__",
                    name="run __TASK_ID__",
                    meta="run.meta",
                    scope={"enable": True, "import": ["add", "IN"], "export": ["out__TASK_ID__"]},
                ),
                sh(
                    "diff out__TASK_ID__ ANS && cat out__TASK_ID__",
                    name="check __TASK_ID__",
                    stdout="seen",
                    scope={"enable": True, "import": ["out__TASK_ID__", "ANS"]},
                ),
            ],
            "parallel": parallel,
        },
        final={"execute": [sh("cat out* | tr '\\n' ' '; cat run.meta | head -c 13", stdout="all")]},
    )


class Counting:
    """Wraps a runtime's ``create`` to record how many sandboxes were alive at once."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.alive = 0
        self.most = 0
        real_create = runtime.create

        async def create(*args: Any, **kwargs: Any) -> Sandbox:
            box = await real_create(*args, **kwargs)
            self.alive += 1
            self.most = max(self.most, self.alive)
            real_close = box.close_later

            def close_later() -> None:
                if not box.closed:
                    self.alive -= 1
                real_close()

            box.close_later = close_later  # type: ignore[method-assign]
            return box

        runtime.create = create  # type: ignore[method-assign]


async def test_parallel_tasks_match_the_sequential_result(
    deps: MissionDeps, runtime: SandboxRuntime
) -> None:
    counting = Counting(deps.runtime)
    _, sequential = await run(deps, judged(1))
    assert counting.most == 2  # the mission's sandbox and one scoped one at a time
    counting.most = 0
    normalised, parallel = await run(deps, judged(4))
    assert normalised["tasks"]["parallel"] == 4
    # More than one scoped sandbox was alive at once: the tasks overlapped.
    assert counting.most > 2
    for result in (sequential, parallel):
        for i, task in enumerate(result["task"]):
            run_entry, check = task["execute"]
            assert run_entry["name"] == f"run {i}"
            assert_ok(run_entry)
            assert_ok(check)
            assert stdout_of(check) == f"{2 * i}\n"
        final = result["final"]["execute"][0]
        assert_ok(final)
        # Every export reached the mission's sandbox; the meta file is the last task's.
        assert stdout_of(final) == " ".join(str(2 * i) for i in range(TASKS)) + ' {"status": ""'
    strip = lambda r: [[e["meta"]["status"] for e in t["execute"]] for t in r["task"]]  # noqa: E731
    assert strip(sequential) == strip(parallel)
