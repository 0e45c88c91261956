"""Admission on a shared queue: the depth is counted in the database at most once per
``COUNT_MAX_AGE_S`` (one count for every submission asking meanwhile), kept current with this
node's own submissions and claims in between, and asked again after a failed count."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from types import SimpleNamespace
from typing import Any

import pytest

from service.pipeline.workqueue import COUNT_MAX_AGE_S, SharedQueue


class FakeMissions:
    def __init__(self, queued: int) -> None:
        self.queued = queued
        self.counts = 0
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def queued_count(self) -> int:
        self.counts += 1
        await self.gate.wait()
        if self.fail:
            raise OSError("database gone")
        return self.queued

    async def claim_next(
        self, owner: str, lease_s: float, images: Collection[str] | None = None
    ) -> Any:
        self.queued -= 1
        return SimpleNamespace(id=1)


def shared(missions: FakeMissions) -> SharedQueue:
    store: Any = SimpleNamespace(missions=missions)
    return SharedQueue(store, owner="a", lease_s=5, poll_s=1)


async def test_one_count_for_many_submissions() -> None:
    missions = FakeMissions(queued=7)
    missions.gate.clear()
    queue = shared(missions)
    asking = [asyncio.ensure_future(queue.refresh_depth()) for _ in range(50)]
    while missions.counts == 0:
        await asyncio.sleep(0)
    queue.push(8)  # stored while the count ran: added to it (counted twice at worst)
    missions.gate.set()
    assert await asyncio.gather(*asking) == [8] * 50
    assert missions.counts == 1
    assert await queue.refresh_depth() == 8  # fresh: no new count
    assert missions.counts == 1


async def test_own_submissions_and_claims_move_the_depth_between_counts() -> None:
    missions = FakeMissions(queued=3)
    queue = shared(missions)
    assert await queue.refresh_depth() == 3
    queue.push(4)
    queue.push(5)
    assert await queue.refresh_depth() == 5
    assert await queue.take() == 1
    assert queue.depth == 4
    missions.queued = 9  # other nodes stored some: seen at the next count
    queue._counted_at -= COUNT_MAX_AGE_S
    assert await queue.refresh_depth() == 9
    assert missions.counts == 2


async def test_a_failed_count_is_asked_again() -> None:
    missions = FakeMissions(queued=2)
    missions.fail = True
    queue = shared(missions)
    with pytest.raises(OSError, match="database gone"):
        await queue.refresh_depth()
    missions.fail = False
    assert await queue.refresh_depth() == 2
    assert missions.counts == 2
