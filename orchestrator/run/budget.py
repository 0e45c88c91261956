"""A mission's memory budget for files in flight through the server.

Downloads, ``blob:`` reads, imports and exports pass through the server's memory on their way
into a sandbox. Each reserves what it may hold before it starts and gives back what it did not
use, so one mission never holds more than the budget at once, however many files it lists.
"""

from __future__ import annotations

import asyncio

__all__ = ["ByteBudget"]


class ByteBudget:
    """``total`` bytes shared by the transfers of one mission (one event loop).

    ``reserve(n)`` waits until ``n`` bytes are free (``n`` is clamped to ``total - headroom`` so
    that a single large item can always go once the others are done; ``headroom`` is left for
    the bytes that wait to be placed in a sandbox, see ``flush_at``).
    """

    def __init__(self, total: int) -> None:
        if total < 2:
            raise ValueError("a budget needs at least 2 bytes")
        self.total = total
        self.used = 0
        self.peak = 0
        self._changed = asyncio.Condition()

    @property
    def flush_at(self) -> int:
        """Bytes waiting to be placed that make it worth a transfer of their own."""
        return self.total // 4

    def clamp(self, n: int) -> int:
        """What a reservation of ``n`` bytes actually reserves."""
        return max(0, min(n, self.total - self.flush_at))

    async def reserve(self, n: int) -> int:
        """Wait until ``clamp(n)`` bytes are free and take them; returns the bytes taken."""
        n = self.clamp(n)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + n <= self.total)
            self.used += n
            self.peak = max(self.peak, self.used)
        return n

    async def release(self, n: int) -> None:
        """Give ``n`` bytes back (never more than are held)."""
        async with self._changed:
            self.used = max(0, self.used - n)
            self._changed.notify_all()
