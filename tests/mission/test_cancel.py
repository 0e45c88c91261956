"""Cancellation and engine-side failures: the result is complete and nothing is left behind."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.run.runner import CANCELLED, MissionDeps, PhaseTimes
from orchestrator.sandbox.sandbox import SandboxRuntime
from tests.mission.helpers import assert_ok, mission, run, sh, statuses

pytestmark = pytest.mark.docker

Condition = Callable[[tuple[int, int]], bool]


async def wait_for_engine(
    runtime: SandboxRuntime,
    owner: str,
    condition: Condition,
    work: asyncio.Task[Any],
    extra: Callable[[], bool] = lambda: True,
) -> None:
    """Poll the owner's (containers, volumes) until ``condition`` holds (a readiness probe);
    fails if the mission ends first."""
    async with asyncio.timeout(60):
        while True:
            assert not work.done(), "the mission ended before the condition was met"
            if condition(await runtime.adapter.count_owned(owner)) and extra():
                return


def sleeper_mission() -> dict[str, Any]:
    return mission(
        prepare={"execute": [sh("echo ready", stdout="ready.txt")]},
        tasks={
            "task": [{}, {}],
            "execute": [
                {
                    "name": "sleep __TASK_ID__",
                    "command": ["sleep", "30"],
                    "time_limit": 60000,
                    "scope": {"enable": True},
                },
                {"name": "after __TASK_ID__", "command": ["true"]},
            ],
        },
        final={"execute": [{"name": "final", "command": ["true"]}]},
    )


async def test_cancel_during_an_execute(
    deps: MissionDeps, runtime: SandboxRuntime, owner: str
) -> None:
    cancel = asyncio.Event()
    times = PhaseTimes()
    start = time.monotonic()
    work = asyncio.create_task(run(deps, sleeper_mission(), cancel=cancel, times=times))
    # Inside the first task's sleep: its scoped sandbox is up (two containers) and was created
    # (nothing else is awaited between the scoped sandbox's creation and its execute).
    await wait_for_engine(
        runtime, owner, lambda n: n[0] == 2, work, lambda: times.counts["create"] == 2
    )
    cancel.set()
    normalised, result = await work
    elapsed = time.monotonic() - start

    assert elapsed < 20, "the sleep was waited for instead of killed"
    await runtime.drain()  # removals run in the background
    assert await runtime.adapter.count_owned(owner) == (0, 0)
    assert len(normalised["tasks"]["task"]) == 2
    assert_ok(result["prepare"]["execute"][0])
    sleeping = result["task"][0]["execute"][0]
    assert sleeping["name"] == "sleep 0"
    assert sleeping["meta"]["status"] == "SE"
    assert sleeping["meta"]["message"] == CANCELLED
    for stage in [result["task"][0], result["task"][1], result["final"]]:
        assert statuses(stage) == ["SE"] * len(stage["execute"])
        assert {e["meta"]["message"] for e in stage["execute"]} == {CANCELLED}
    assert [e["name"] for e in result["task"][1]["execute"]] == ["sleep 1", "after 1"]


async def test_cancel_while_the_sandbox_is_being_created(
    deps: MissionDeps, runtime: SandboxRuntime, owner: str
) -> None:
    """Cancelled while the engine is still starting the mission's sandbox (its container or
    volume exists, its creation has not returned): whatever the engine finishes creating is
    removed."""
    for _attempt in range(5):
        cancel = asyncio.Event()
        times = PhaseTimes()
        work = asyncio.create_task(run(deps, sleeper_mission(), cancel=cancel, times=times))
        async with asyncio.timeout(60):
            while times.counts["create"] == 0:
                if sum(await runtime.adapter.count_owned(owner)) >= 1:
                    break
        caught_in_creation = times.counts["create"] == 0
        cancel.set()
        _, result = await work

        await runtime.drain()  # removals run in the background
        assert await runtime.adapter.count_owned(owner) == (0, 0)
        for stage in [result["prepare"], *result["task"], result["final"]]:
            assert statuses(stage) == ["SE"] * len(stage["execute"])
            assert {e["meta"]["message"] for e in stage["execute"]} == {CANCELLED}
        if caught_in_creation:
            return
    pytest.fail("the probe never saw the sandbox while it was being created")


async def test_cancelling_the_caller_removes_the_sandboxes(
    deps: MissionDeps, runtime: SandboxRuntime, owner: str
) -> None:
    times = PhaseTimes()
    work = asyncio.create_task(run(deps, sleeper_mission(), times=times))
    await wait_for_engine(
        runtime, owner, lambda n: n[0] == 2, work, lambda: times.counts["create"] == 2
    )
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    await runtime.drain()  # removals run in the background
    assert await runtime.adapter.count_owned(owner) == (0, 0)


async def test_missing_image_is_se_everywhere(deps: MissionDeps) -> None:
    image = f"judge/no-such-image-{uuid.uuid4().hex[:8]}:latest"
    data = mission(
        image=image,
        prepare={"file": {"a.txt": "data:,a"}, "execute": [sh("cat a.txt"), sh("true")]},
        tasks={
            "task": [{}, {"file": {"b.txt": "data:,b"}}],
            "execute": [sh("true"), sh("true", scope={"enable": True})],
        },
        final={"execute": [sh("true")]},
    )
    normalised, result = await run(deps, data)

    assert normalised["image"] == image
    stages = [result["prepare"], *result["task"], result["final"]]
    assert sum(len(s["execute"]) for s in stages) == 7
    for stage in stages:
        for entry in stage["execute"]:
            assert entry["meta"]["status"] == "SE"
            assert image in entry["meta"]["message"]
            assert "not installed" in entry["meta"]["message"]
