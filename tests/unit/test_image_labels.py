"""The runtime's image label cache: one engine lookup per image at a time, shared by callers."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from orchestrator.errors import EngineUnavailable
from orchestrator.sandbox.docker import DockerAdapter
from orchestrator.sandbox.sandbox import SandboxConfig, SandboxRuntime


class SlowLabels:
    """Answers ``image_labels`` when released; counts the calls (no engine involved: this is
    the cache's logic, not a claim about sandboxes)."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def image_labels(self, image: str) -> dict[str, str] | None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise EngineUnavailable("down")
        return {"judge.supervisor": "1", "image": image}


def runtime(fake: SlowLabels) -> SandboxRuntime:
    return SandboxRuntime(cast(DockerAdapter, fake), SandboxConfig(owner="unit"))


async def test_concurrent_lookups_of_one_image_make_one_engine_call() -> None:
    fake = SlowLabels()
    rt = runtime(fake)
    waiting = [asyncio.ensure_future(rt.image_labels("judge/default")) for _ in range(50)]
    other = asyncio.ensure_future(rt.image_labels("judge/cpp"))
    while fake.calls < 2:
        await asyncio.sleep(0)
    fake.release.set()
    answers = await asyncio.gather(*waiting)
    assert fake.calls == 2  # one per image
    assert all(a == {"judge.supervisor": "1", "image": "judge/default"} for a in answers)
    assert (await other or {})["image"] == "judge/cpp"
    # Answered from the cache now, then looked up again once it expired.
    await rt.image_labels("judge/default")
    assert fake.calls == 2
    await rt.image_labels("judge/default", max_age_s=0.0)
    assert fake.calls == 3


async def test_a_cancelled_caller_does_not_cancel_the_others_lookup() -> None:
    fake = SlowLabels()
    rt = runtime(fake)
    first = asyncio.ensure_future(rt.image_labels("judge/default"))
    second = asyncio.ensure_future(rt.image_labels("judge/default"))
    while fake.calls < 1:
        await asyncio.sleep(0)
    first.cancel()
    fake.release.set()
    assert await second is not None
    with pytest.raises(asyncio.CancelledError):
        await first
    assert fake.calls == 1


async def test_an_engine_outage_reaches_every_caller_without_a_cached_answer() -> None:
    fake = SlowLabels()
    fake.fail = True
    rt = runtime(fake)
    callers: list[Any] = [asyncio.ensure_future(rt.image_labels("judge/x")) for _ in range(3)]
    while fake.calls < 1:
        await asyncio.sleep(0)
    fake.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, EngineUnavailable) for r in results)
    assert fake.calls == 1
