"""Admission of submissions: whether a mission may enter the queue now, and what to answer if not.

The first piece of ``MissionWorkers`` taken apart (issue 13, item 3): it holds no queue and
touches no database, so its rules (503 while stopping, 429 with ``Retry-After`` when full,
submissions being stored counted against the bound) are testable alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager


class QueueFull(Exception):
    """The queue holds as many missions as it may; the client should retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the mission queue is full; retry later")
        self.retry_after_s = retry_after_s


class ShuttingDown(Exception):
    """The server is stopping and takes no new missions."""


class Admission:
    """Bounds the queue at ``max_queued`` missions, counting those still being stored.

    Closed until ``open()``; ``close()`` refuses every later submission (shutdown).
    """

    def __init__(self, *, max_queued: int, max_running: int) -> None:
        self._max_queued = max_queued
        self._max_running = max_running
        self.accepting = False
        self.reserved = 0  # admitted submissions being stored right now

    def open(self) -> None:
        self.accepting = True

    def close(self) -> None:
        self.accepting = False

    def check_open(self) -> None:
        """Raises ``ShuttingDown`` unless submissions are accepted."""
        if not self.accepting:
            raise ShuttingDown()

    @contextmanager
    def admit(self, queue_depth: int) -> Iterator[None]:
        """Holds one place in the queue for the body of the ``with`` (while the mission is
        stored). Raises ``ShuttingDown`` when closed, ``QueueFull`` (with a retry delay of the
        queue's length over the running slots, at least 1 s) when ``queue_depth`` plus the
        places held reaches ``max_queued``."""
        self.check_open()
        depth = queue_depth + self.reserved
        if depth >= self._max_queued:
            raise QueueFull(retry_after_s=max(1, math.ceil(depth / self._max_running)))
        self.reserved += 1
        try:
            yield
        finally:
            self.reserved -= 1
