"""Group commit: concurrent writes of one kind share one transaction (one commit, one fsync).

Both engines store submitted missions through it. While one group is being written, the next one
gathers; an idle store writes each item at once, a busy one many per commit. Each caller is
answered only after its group's transaction committed, so an acknowledged item survives a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

A = TypeVar("A")
R = TypeVar("R")

log = logging.getLogger(__name__)


class GroupCommit(Generic[A, R]):
    """Feeds items to ``write`` in groups, one group at a time.

    ``write(items)`` stores every item in one transaction and returns one result per item, in
    order; it raises when nothing was stored.
    """

    def __init__(self, write: Callable[[list[A]], Awaitable[list[R]]], name: str) -> None:
        self._write = write
        self._name = name
        self._waiting: list[tuple[A, asyncio.Future[R], Callable[[R], None] | None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: A, then: Callable[[R], None] | None = None) -> R:
        """``item``'s result once its group is committed. An item whose caller is cancelled
        is still written, and ``then(result)`` is called on the loop once it is, before this
        returns and whether or not its caller still waits: a caller that must act on a
        committed item needs no task of its own to survive its cancellation. Raises what
        ``write`` raised for the whole group (``then`` is not called then)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future, then))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_groups(), name=self._name)
        # No shield needed: a cancelled caller cancels only its own future, and its item,
        # already in the group, is written all the same.
        return await future

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    results = await self._write([item for item, _, _ in group])
                except Exception as e:  # every item of the group learns it failed
                    for _, future, _ in group:
                        if not future.done():
                            future.set_exception(e)
                except BaseException:  # cancelled (the loop is ending): nobody waits forever
                    for _, future, _ in group:
                        future.cancel()
                    raise
                else:
                    for (_, future, then), result in zip(group, results, strict=True):
                        if then is not None:
                            try:
                                then(result)
                            except Exception:  # the others' are still called
                                log.exception("%s: a committed item's follow-up failed", self._name)
                        if not future.done():
                            future.set_result(result)
        finally:
            self._writer = None

    async def close(self) -> None:
        """Wait until every item submitted so far is written (or failed)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
