"""Removing used sandboxes in the background, in batches, in the engine's quiet spells.

A used sandbox is closed at once (it refuses every request) and queued here; the container goes
when no sandbox has been in use for ``idle_s`` (``Activity``), a few at a time, so that a burst
of missions does not share the engine and the cores with the removals of its first members. The
wait is bounded twice: a removal waits at most ``max_defer_s``, and with ``max_pending`` queued
the oldest go at once, so containers never pile up under load that never pauses. ``drain``
removes everything without waiting (shutdown, tests). Every removal is a tracked task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from orchestrator.sandbox.quiet import Activity

log = logging.getLogger(__name__)

T = TypeVar("T")


class Removals(Generic[T]):
    """A queue of things to remove with ``remove`` (which must not raise), worked off in
    quiet spells."""

    def __init__(
        self,
        remove: Callable[[T], Awaitable[None]],
        activity: Activity,
        *,
        idle_s: float = 0.1,
        max_defer_s: float = 2.0,
        concurrency: int = 2,
        max_pending: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._remove = remove
        self._activity = activity
        self.idle_s = idle_s
        self.max_defer_s = max_defer_s
        self.concurrency = max(1, concurrency)
        self.max_pending = max(1, max_pending)
        self._clock = clock
        self._queue: deque[tuple[float, T]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._removing = 0
        self._draining = False

    @property
    def pending(self) -> int:
        """Removals queued or under way."""
        return len(self._queue) + self._removing

    def add(self, item: T, *, now: bool = False) -> None:
        """Queue ``item``'s removal; ``now``: without waiting for quiet (a sandbox that may
        still be running something: a cancelled or failed execute)."""
        if now:
            self._queue.appendleft((self._clock() - self.max_defer_s, item))
        else:
            self._queue.append((self._clock(), item))
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="sandbox removals")
        elif self._must_go():
            self._activity.wake()  # the worker waits for quiet: it must not

    def _must_go(self) -> bool:
        """Whether the oldest removal goes now, quiet or not."""
        return (
            self._draining
            or len(self._queue) >= self.max_pending
            or (bool(self._queue) and self._queue[0][0] + self.max_defer_s <= self._clock())
        )

    async def _work(self) -> None:
        try:
            while self._queue:
                if not self._must_go():
                    due = self._queue[0][0] + self.max_defer_s - self._clock()
                    await self._activity.quiet(self.idle_s, due, self._must_go)
                n = min(self.concurrency, len(self._queue))
                batch = [self._queue.popleft()[1] for _ in range(n)]
                self._removing += len(batch)
                try:
                    await asyncio.gather(*(self._remove(item) for item in batch))
                finally:
                    self._removing -= len(batch)
        finally:
            self._worker = None

    async def drain(self) -> None:
        """Remove everything queued now, without waiting for quiet, and return once done.
        Shielded: cancelling the caller does not stop a removal half-way."""
        self._draining = True
        self._activity.wake()
        try:
            while self._worker is not None:
                await asyncio.shield(self._worker)
        finally:
            self._draining = False


__all__ = ["Removals"]
