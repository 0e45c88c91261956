"""Whether the Docker engine answers, as the workers must know before they claim a mission.

An engine that does not answer is waited out, never judged: while it is down, workers claim
nothing (on PostgreSQL other nodes take the work), and missions it interrupted wait in the queue
for it. The gate probes the engine every ``check_s`` while it is down and every ``idle_check_s``
while it is up, and at once when a mission met an infrastructure failure (``suspect``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class EngineGate:
    """The engine's state as last probed; ``wait_up`` blocks while it is down."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        check_s: float = 1.0,
        idle_check_s: float = 5.0,
        on_up: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._probe = probe
        self._on_up = on_up  # after an outage (e.g. remove the sandboxes it left)
        self._recovered = False
        self._check_s = check_s
        self._idle_check_s = idle_check_s
        self._up = asyncio.Event()
        self._up.set()  # until a probe says otherwise
        self._suspect = asyncio.Event()
        self._down_at = 0.0  # monotonic, while down
        self.down_since: float | None = None
        """Wall-clock time (epoch seconds) the engine was first seen down, None while up."""
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def outage_s(self) -> float:
        """Seconds of the current continuous outage (0 while up)."""
        return 0.0 if self.up else time.monotonic() - self._down_at

    async def wait_up(self) -> None:
        """Return once the engine answers (at once while it does)."""
        await self._up.wait()

    def suspect(self) -> None:
        """A mission met an infrastructure failure: probe now rather than at the next tick."""
        self._suspect.set()

    def mark_down(self, error: str) -> None:
        """Record an outage seen by someone else (a probe of /healthz)."""
        if self.up:
            self._down_at = time.monotonic()
            self.down_since = time.time()
            self._up.clear()
            log.warning("the Docker engine does not answer (%s); waiting for it", error)
        self.last_error = error

    def mark_up(self) -> None:
        if not self.up:
            log.warning("the Docker engine answers again after %.1f s", self.outage_s())
            self.down_since = None
            self.last_error = ""
            self._recovered = True  # the watch runs ``on_up`` at its next tick
            self._up.set()

    async def check(self) -> bool:
        """Probe the engine once and record the answer; whether it is up."""
        try:
            await self._probe()
        except Exception as e:
            self.mark_down(str(e) or type(e).__name__)
            return False
        self.mark_up()
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="engine-gate")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            self._suspect.clear()
            await self.check()
            if self._recovered and self.up:
                self._recovered = False
                if self._on_up is not None:
                    try:
                        await self._on_up()
                    except Exception:
                        log.exception("after the engine came back")
            wait_s = self._check_s if not self.up else self._idle_check_s
            try:
                async with asyncio.timeout(wait_s):
                    await self._suspect.wait()
            except TimeoutError:
                pass
