"""When the engine's background work may run: sandboxes in use, and the quiet spells between.

Creating a container (a pool refill) or removing one keeps the engine and a small machine's cores
busy for 0.1-0.3 s. Run beside a mission's executes, that work slows them: on two cores a burst
of twenty one-execute missions took several times longer while the used sandboxes were removed
and the pool refilled under it. ``Activity`` counts the sandboxes lent out (to a mission or a
scoped execute) and lets background work wait for a quiet spell: none in use for a while. The
wait is bounded, so under load that never pauses the work still happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class Activity:
    """Sandboxes in use now, and how long none has been."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.in_use = 0
        self._quiet_since = clock()
        self._changed = asyncio.Event()

    def lend(self) -> None:
        """A sandbox was handed to a mission or an execute."""
        self.in_use += 1
        if self.in_use == 1:  # a quiet spell ended; other lends change nothing for waiters
            self._changed.set()

    def give_back(self) -> None:
        """A sandbox lent out was closed."""
        self.in_use = max(0, self.in_use - 1)
        if self.in_use == 0:  # a quiet spell begins
            self._quiet_since = self._clock()
            self._changed.set()

    def quiet_for(self) -> float:
        """Seconds since the last sandbox in use was closed (0 while one is in use)."""
        return 0.0 if self.in_use else max(0.0, self._clock() - self._quiet_since)

    def wake(self) -> None:
        """Make every waiter look again (its ``stop`` may have become true)."""
        self._changed.set()

    async def quiet(
        self, idle_s: float, max_wait_s: float, stop: Callable[[], bool] = lambda: False
    ) -> bool:
        """Wait until no sandbox has been in use for ``idle_s`` (True), ``stop()`` is true
        after a ``wake`` (True), or ``max_wait_s`` has passed (False: go ahead anyway, the work
        cannot wait for ever)."""
        deadline = self._clock() + max_wait_s
        while True:
            if stop():
                return True
            quiet = self.quiet_for()
            if not self.in_use and quiet >= idle_s:
                return True
            left = deadline - self._clock()
            if left <= 0:
                return False
            # While sandboxes are in use only a change can end the wait; once none is, the
            # quiet spell ends it unless a new lend comes first.
            wait = left if self.in_use else min(left, idle_s - quiet)
            # No await between the check above and the clear: a change cannot be missed.
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()


__all__ = ["Activity"]
