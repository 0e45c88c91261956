"""Group commit's promises, whatever the engine: a caller is answered only once its group's
write returned, a cancelled caller's item is still written, a failure reaches every item of its
group, and ``close`` waits for what was submitted (the engines' transactions are tested in
tests/store)."""

from __future__ import annotations

import asyncio

import pytest

from service.store.groupcommit import GroupCommit


class Writer:
    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def write(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        await self.release.wait()
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 10 for i in items]


async def test_answered_only_after_the_write_returned() -> None:
    writer = Writer()
    writer.release.clear()
    commit = GroupCommit(writer.write, "test")
    first = asyncio.ensure_future(commit.submit(1))
    while not writer.groups:  # the write began...
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(commit.submit(i)) for i in (2, 3)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert not first.done()
    assert not any(f.done() for f in later)
    writer.release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30]
    assert writer.groups == [[1], [2, 3]]  # the next group gathered while one was written


async def test_a_cancelled_caller_is_still_written() -> None:
    writer = Writer()
    writer.release.clear()
    commit = GroupCommit(writer.write, "test")
    caller = asyncio.ensure_future(commit.submit(7))
    while not writer.groups:
        await asyncio.sleep(0)
    caller.cancel()
    writer.release.set()
    await commit.close()
    assert writer.groups == [[7]]
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_failure_reaches_the_whole_group_only() -> None:
    writer = Writer()
    commit = GroupCommit(writer.write, "test")
    got = await asyncio.gather(
        commit.submit(1), commit.submit(-1), commit.submit(2), return_exceptions=True
    )
    assert all(isinstance(g, ValueError) for g in got)
    assert await commit.submit(3) == 30


async def test_then_is_called_once_committed_even_for_a_cancelled_caller() -> None:
    writer = Writer()
    writer.release.clear()
    commit = GroupCommit(writer.write, "test")
    told: list[int] = []
    caller = asyncio.ensure_future(commit.submit(7, told.append))
    while not writer.groups:
        await asyncio.sleep(0)
    caller.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert told == []  # not before the write returned
    writer.release.set()
    await commit.close()
    assert told == [70]
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_then_comes_before_the_answer() -> None:
    commit = GroupCommit(Writer().write, "test")
    told: list[int] = []
    assert await commit.submit(2, told.append) == 20
    assert told == [20]


async def test_then_is_not_called_for_a_failed_group_and_a_failing_then_spares_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    commit = GroupCommit(Writer().write, "test")
    told: list[int] = []

    def broken(result: int) -> None:
        raise RuntimeError("listener broke")

    got = await asyncio.gather(
        commit.submit(1, told.append), commit.submit(-1, told.append), return_exceptions=True
    )
    assert all(isinstance(g, ValueError) for g in got)
    assert told == []
    assert await asyncio.gather(commit.submit(3, broken), commit.submit(4, told.append)) == [
        30,
        40,
    ]
    assert told == [40]
    assert "follow-up failed" in caplog.text
