"""Who hears how missions progress: listeners (the event stream) and those waiting for an end.

Running reports here; routes wait here (``?wait=``, the exec API). On PostgreSQL a mission may
end on another node: its NOTIFY on the ended channel wakes the waiters of this one, and polling
covers a NOTIFY lost with a dropped connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from orchestrator.mission.result import ENDED
from service.store import ENDED_CHANNEL, MissionRow, Store

log = logging.getLogger(__name__)

Listener = Callable[[int, str, dict[str, Any]], None]
"""Told ``(mission_id, kind, data)`` as a mission progresses, on the event loop (must not block):
``state`` ``{"state"}`` (``running`` also has ``executes``, the number of executes), ``execute``
``{"stage", "task", "index", "entry"}`` each time an execute's entry is final, and ``end``
``{"state", "result", "error"}`` once the mission is stored in a final state."""


class MissionProgress:
    """Fans progress out to listeners and wakes those waiting for a mission to end."""

    def __init__(self, store: Store, *, poll_s: float = 2.0) -> None:
        self._store = store
        self._clustered = store.clustered
        self._poll_s = poll_s
        self._listeners: list[Listener] = []
        self._waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)
        self._closed = False

    def add_listener(self, listener: Listener) -> None:
        """Tell ``listener`` about every mission's progress (see :data:`Listener`)."""
        self._listeners.append(listener)

    def emit(self, mission_id: int, kind: str, data: dict[str, Any]) -> None:
        """Tell every listener; a listener that raises is logged and the others still hear."""
        for listener in self._listeners:
            try:
                listener(mission_id, kind, data)
            except Exception:
                log.exception("mission %d: a progress listener failed", mission_id)

    async def start(self) -> None:
        """On PostgreSQL, hear of missions that end on other nodes."""
        if self._clustered:
            await self._store.subscribe(ENDED_CHANNEL, lambda payload: self.wake(int(payload)))

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        """Wait until the mission is in a final state (and its front door was told); returns
        its row, None when there is no such mission. After ``close`` it returns the row as it
        is, unfinished or not."""
        loop = asyncio.get_running_loop()
        waiters = self._waiters[mission_id]
        waiter = loop.create_future()
        waiters.add(waiter)
        try:
            row = await self._store.missions.get_mission(mission_id)
            while row is not None and row.state not in ENDED and not self._closed:
                if self._clustered:
                    await asyncio.wait([waiter], timeout=self._poll_s)
                else:
                    await waiter  # only this process runs it, and it wakes us
                waiters.discard(waiter)
                waiter = loop.create_future()
                waiters.add(waiter)
                row = await self._store.missions.get_mission(mission_id)
            return row
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(mission_id, None)

    def wake(self, mission_id: int) -> None:
        """The mission ended (here or, on PostgreSQL, elsewhere): its waiters look again."""
        for waiter in self._waiters.get(mission_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Shutdown: every waiter returns the mission as it is now."""
        self._closed = True
        for mission_id in list(self._waiters):
            self.wake(mission_id)
