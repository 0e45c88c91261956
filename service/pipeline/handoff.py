"""What intake hands running besides the database: the work queue, the front-door files held in
this process, and who hears of a mission's progress.

The exec API hands its inputs to ``submit`` in memory; they are not in the database, so only
this process can run such a mission (on PostgreSQL it is stored *pinned* to this node). Intake
puts the files in ``FilesInHand``; the worker that runs the mission takes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from orchestrator.run.runner import MissionIO
from service.pipeline.progress import MissionProgress
from service.pipeline.workqueue import WorkQueue
from service.store import Store


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


@dataclass(frozen=True)
class Handoff:
    """The parts intake and running share, one of each per node: the store and the queue a
    mission goes through, this node's name (``owner``) and lease for claims and pins, who hears
    of progress, and the front-door files held here."""

    store: Store
    queue: WorkQueue
    progress: MissionProgress
    owner: str = "judge"
    lease_s: float = 20.0
    files: FilesInHand = field(default_factory=FilesInHand)

    @property
    def clustered(self) -> bool:
        """Many nodes share the store (PostgreSQL): claims and pins are by ``owner``."""
        return self.store.clustered
