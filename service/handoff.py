"""Front-door files held in this process between a mission's submission and its run.

The exec API hands its inputs to ``submit`` in memory; they are not in the database, so only
this process can run such a mission (on PostgreSQL it is stored *pinned* to this node). Intake
puts the files here; the worker that runs the mission takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator.runner import MissionIO


class FilesInHand:
    """Mission id -> the files its front door handed in."""

    def __init__(self) -> None:
        self._files: dict[int, MissionIO] = {}
        # Held while a pinned mission and its files are stored: a worker may claim the mission
        # (on a NOTIFY) before its submitter has put the files here.
        self._storing = asyncio.Lock()

    @asynccontextmanager
    async def storing(self) -> AsyncIterator[None]:
        """Hold for the whole of storing a mission and putting its files; ``take`` waits."""
        async with self._storing:
            yield

    def put(self, mission_id: int, io: MissionIO) -> None:
        self._files[mission_id] = io

    async def take(self, mission_id: int) -> MissionIO | None:
        """The mission's files, now no longer held; None when this process has none for it
        (e.g. after a restart), once any storing in progress has ended."""
        io = self._files.pop(mission_id, None)
        if io is None and self._storing.locked():
            async with self._storing:
                io = self._files.pop(mission_id, None)
        return io

    def drop(self, mission_id: int) -> None:
        self._files.pop(mission_id, None)
