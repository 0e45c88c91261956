"""The warm pool's scheduling without an engine: demand, quiet spells, deferred removals.

A fake runtime stands in for Docker here: these tests are about queues and timing logic (what
is created or removed when), never about sandboxes themselves (tests/sandbox/test_pool.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from orchestrator.sandbox.pool import Demand, SandboxPool
from orchestrator.sandbox.quiet import Activity
from orchestrator.sandbox.removals import Removals
from orchestrator.sandbox.sandbox import SandboxRuntime

IMAGE = "judge/fake"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` (yielding to the loop) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


async def settles(n: int = 20) -> None:
    """Let the loop run ``n`` rounds (no time passes for the tasks' own timers to matter)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_demand_is_the_most_taken_between_two_full_moments_within_the_window() -> None:
    clock = Clock()
    demand = Demand(60.0, clock)
    assert demand.need() == 0
    for _ in range(5):
        demand.taken()
    assert demand.need() == 5  # the cycle under way counts
    demand.full()
    demand.taken()
    demand.taken()
    demand.full()
    assert demand.need() == 5
    clock.now += 61
    assert demand.need() == 0  # both cycles left the window
    demand.taken()
    assert demand.need() == 1


async def test_quiet_waits_for_the_last_sandbox_in_use_and_a_spell_after_it() -> None:
    activity = Activity()
    assert await activity.quiet(0.0, 10.0)
    activity.lend()
    waiting = asyncio.ensure_future(activity.quiet(0.01, 10.0))
    await settles()
    assert not waiting.done()
    activity.give_back()
    assert await asyncio.wait_for(waiting, 5.0) is True
    assert activity.quiet_for() >= 0.01


async def test_quiet_gives_up_after_its_longest_wait() -> None:
    activity = Activity()
    activity.lend()
    assert await activity.quiet(0.0, 0.02) is False
    stopping = False
    waiting = asyncio.ensure_future(activity.quiet(0.0, 10.0, lambda: stopping))
    await settles()
    stopping = True
    activity.wake()
    assert await asyncio.wait_for(waiting, 5.0) is True


class Removed:
    def __init__(self) -> None:
        self.items: list[int] = []

    async def __call__(self, item: int) -> None:
        await asyncio.sleep(0)
        self.items.append(item)


async def test_removals_wait_for_a_quiet_spell_and_go_in_batches() -> None:
    activity, removed = Activity(), Removed()
    removals = Removals(removed, activity, idle_s=0.005, max_defer_s=30.0, concurrency=2)
    activity.lend()
    for i in range(5):
        removals.add(i)
    await settles()
    assert removed.items == []
    assert removals.pending == 5
    activity.give_back()
    await until(lambda: removals.pending == 0)
    assert removed.items == [0, 1, 2, 3, 4]


async def test_a_removal_waits_at_most_its_longest_deferral() -> None:
    activity, removed = Activity(), Removed()
    removals = Removals(removed, activity, idle_s=0.005, max_defer_s=0.02)
    activity.lend()  # never given back: load that never pauses
    removals.add(1)
    await until(lambda: removed.items == [1])


async def test_removals_go_at_once_when_too_many_are_queued_or_one_is_urgent() -> None:
    activity, removed = Activity(), Removed()
    removals = Removals(removed, activity, idle_s=0.005, max_defer_s=30.0, max_pending=3)
    activity.lend()
    removals.add(1, now=True)  # e.g. a sandbox whose execute was cancelled: it may still run
    await until(lambda: removed.items == [1])
    for i in (2, 3, 4):
        removals.add(i)
    # Three queued: the oldest go (a batch of two) until fewer than three wait.
    await until(lambda: removed.items == [1, 2, 3])
    await settles()
    assert removals.pending == 1
    await removals.drain()
    assert removed.items == [1, 2, 3, 4]


async def test_drain_removes_everything_without_waiting() -> None:
    activity, removed = Activity(), Removed()
    removals = Removals(removed, activity, idle_s=0.005, max_defer_s=30.0)
    activity.lend()
    for i in range(4):
        removals.add(i)
    await asyncio.wait_for(removals.drain(), 5.0)
    assert removed.items == [0, 1, 2, 3]
    assert removals.pending == 0
    removals.add(9)  # after a drain, deferral works again
    await settles()
    assert removed.items == [0, 1, 2, 3]
    await removals.drain()


class FakeBox:
    ids = itertools.count(1)

    def __init__(self, runtime: FakeRuntime) -> None:
        self.runtime = runtime
        self.container_id = f"box{next(self.ids)}"
        self.closed = False
        self.alive = True
        self._lent = False

    def close_later(self) -> None:
        if not self.closed:
            self.closed = True
            if self._lent:
                self._lent = False
                self.runtime.activity.give_back()


class FakeAdapter:
    async def image_id(self, image: str) -> str:
        return "sha256:one"


class FakeRuntime:
    """What the pool uses of ``SandboxRuntime``: creations are counted, never run."""

    def __init__(self) -> None:
        self.activity = Activity()
        self.adapter = FakeAdapter()
        self.created: list[FakeBox] = []
        self.removals_pending = 0
        self.gate: asyncio.Event | None = None  # set: creations wait for it

    async def create(self, image: str, memory_kib: int = 65536, *, lend: bool = True) -> Any:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        box = FakeBox(self)
        self.created.append(box)
        if lend:
            self.lend(box)
        return box

    def lend(self, box: Any) -> None:
        box._lent = True
        self.activity.lend()


def fake_pool(runtime: FakeRuntime, base: int, cap: int, **options: Any) -> SandboxPool:
    """A started pool of ``IMAGE`` on ``runtime``: quiet spells of 5 ms, waited for long."""
    options = {"refill_delay_s": 0.005, "refill_defer_max_s": 30.0, **options}
    pool = SandboxPool(cast(SandboxRuntime, runtime), {IMAGE: base}, cap=cap, **options)
    pool.start()
    return pool


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeRuntime, SandboxPool]]:
    runtime = FakeRuntime()
    pool = fake_pool(runtime, 2, 8)
    yield runtime, pool
    await pool.stop()


def figures(pool: SandboxPool) -> dict[str, int]:
    images = cast(dict[str, dict[str, int]], pool.snapshot()["images"])
    return images[IMAGE]


async def test_a_burst_raises_the_target_to_its_size_up_to_the_cap(
    fake: tuple[FakeRuntime, SandboxPool],
) -> None:
    _runtime, pool = fake
    await until(lambda: figures(pool)["ready"] == 2)
    boxes = [await pool.take(IMAGE) for _ in range(5)]
    assert pool.stats.hits == 2
    assert pool.stats.misses == 3
    # One more than the burst: the next burst of 5 leaves one ready.
    assert figures(pool)["target"] == 6
    for box in boxes:
        box.close_later()
    await until(lambda: figures(pool)["ready"] == 6)
    again = [await pool.take(IMAGE) for _ in range(5)]
    assert pool.stats.hits == 7
    assert pool.stats.misses == 3
    assert figures(pool)["ready"] == 1
    more = [await pool.take(IMAGE) for _ in range(4)]
    assert figures(pool)["target"] == 8  # the cap
    for box in again + more:
        box.close_later()


async def test_refills_wait_until_no_sandbox_is_in_use(
    fake: tuple[FakeRuntime, SandboxPool],
) -> None:
    runtime, pool = fake
    await until(lambda: figures(pool)["ready"] == 2)
    made = len(runtime.created)
    box = await pool.take(IMAGE)  # one left ready: the refill waits for a quiet spell
    await settles(50)
    assert len(runtime.created) == made
    assert figures(pool)["creating"] == 1
    box.close_later()
    await until(lambda: figures(pool)["ready"] == 2)
    assert len(runtime.created) == made + 1


async def test_a_pool_emptied_by_a_burst_refills_at_once(
    fake: tuple[FakeRuntime, SandboxPool],
) -> None:
    _runtime, pool = fake
    await until(lambda: figures(pool)["ready"] == 2)
    boxes = [await pool.take(IMAGE) for _ in range(3)]  # the third misses
    # Still in use, yet the pool refills: the burst is larger than the pool.
    await until(lambda: figures(pool)["ready"] >= 1)
    assert all(not b.closed for b in boxes)
    for box in boxes:
        box.close_later()


async def test_a_quiet_window_brings_the_target_back_to_the_base() -> None:
    runtime = FakeRuntime()
    pool = fake_pool(runtime, 1, 6, refill_delay_s=0.0)
    clock = Clock()
    pool._pools[IMAGE].demand = Demand(60.0, clock)  # before any take: the window on a clock
    try:
        await until(lambda: figures(pool)["ready"] == 1)
        for box in [await pool.take(IMAGE) for _ in range(4)]:
            box.close_later()
        await until(lambda: figures(pool)["ready"] == 5)
        clock.now += 61
        pool._pools[IMAGE].wake.set()
        await until(lambda: figures(pool)["target"] == 1 and figures(pool)["ready"] == 1)
        assert sum(b.closed for b in runtime.created) == 8  # 4 used, 4 extra ready removed
    finally:
        await pool.stop()


async def test_refills_waiting_for_quiet_go_once_the_pool_is_empty() -> None:
    runtime = FakeRuntime()
    pool = fake_pool(runtime, 3, 3)
    try:
        await until(lambda: figures(pool)["ready"] == 3)
        boxes = [await pool.take(IMAGE), await pool.take(IMAGE)]
        await settles(50)
        assert figures(pool)["creating"] == 2  # both wait for a quiet spell
        assert figures(pool)["ready"] == 1
        boxes.append(await pool.take(IMAGE))  # the last one: the pool is empty
        await until(lambda: figures(pool)["ready"] >= 2)  # the waiting refills went
        assert all(not b.closed for b in boxes)
        for box in boxes:
            box.close_later()
    finally:
        await pool.stop()
