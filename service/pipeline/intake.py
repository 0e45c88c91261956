"""Intake: a submission becomes a durably stored, queued mission, or a clear refusal.

``Admission`` holds the rules alone (503 while stopping, 429 with ``Retry-After`` when full,
submissions being stored counted against the bound): no queue, no database. ``Intake`` applies
them, stores the mission (with a door's own rows of it in the same transaction, when the door
hands them) and hands it to the work queue. Running missions is ``service.pipeline.running``'s job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.mission.result import MissionState
from orchestrator.run.runner import MissionIO
from service.pipeline.handoff import Handoff
from service.pipeline.tracked import TrackedTasks
from service.store import MISSION_KIND
from service.store.protocols import Transaction

DoorRows = Callable[[Transaction, int], Awaitable[None]]
"""A door's own rows of a mission being stored: ``rows(tx, mission_id)`` writes them in the
transaction that stores the mission (both or neither)."""

log = logging.getLogger(__name__)


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
        stored): ``reserve``, then ``release`` however the body ends."""
        self.reserve(queue_depth)
        try:
            yield
        finally:
            self.release()

    def reserve(self, queue_depth: int) -> None:
        """Take one place in the queue; ``release`` gives it back. Raises ``ShuttingDown`` when
        closed, ``QueueFull`` (with a retry delay of the queue's length over the running slots,
        at least 1 s) when ``queue_depth`` plus the places held reaches ``max_queued``."""
        self.check_open()
        depth = queue_depth + self.reserved
        if depth >= self._max_queued:
            raise QueueFull(retry_after_s=max(1, math.ceil(depth / self._max_running)))
        self.reserved += 1

    def release(self) -> None:
        self.reserved -= 1


class Intake:
    """Admits, stores and queues submissions; ``close`` refuses later ones."""

    def __init__(
        self,
        handoff: Handoff,
        *,
        max_queued: int,
        max_running: int,
    ) -> None:
        self._handoff = handoff
        self.admission = Admission(max_queued=max_queued, max_running=max_running)
        self._storing = TrackedTasks()

    @property
    def accepting(self) -> bool:
        return self.admission.accepting

    def open(self) -> None:
        self.admission.open()

    def close(self) -> None:
        self.admission.close()

    async def submit(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        *,
        kind: str = MISSION_KIND,
        io: MissionIO | None = None,
        rows: DoorRows | None = None,
    ) -> int:
        """Store the mission durably, then queue it; returns its id. With ``rows`` a door's
        rows of it are written in the same transaction (``DoorRows``). ``io``: front-door
        files held in this process until the mission runs.

        Raises ``ShuttingDown`` or ``QueueFull`` (nothing is stored then). Once storing has
        begun it completes and the mission is queued even if the caller is cancelled.
        """
        self.admission.check_open()
        depth = await self._handoff.queue.refresh_depth()
        # reserve/release rather than ``with admit()``: a generator's context manager was 1 %
        # of a submission's CPU.
        self.admission.reserve(depth)
        try:
            if rows is None and (io is None or not self._handoff.clustered):
                # The store's group commit writes it and queues it (``then``) even if this
                # caller is cancelled meanwhile: no task of its own (a task and a shield were
                # a twentieth of a submission's CPU).
                return await self._handoff.store.missions.insert_mission(
                    token_hash, mission, normalised, kind, then=functools.partial(self._queued, io)
                )
            store = self._store_and_queue(token_hash, mission, normalised, kind, io, rows)
            return await asyncio.shield(self._storing.start(store, "store"))
        finally:
            self.admission.release()

    def _queued(self, io: MissionIO | None, mission_id: int) -> None:
        """A stored mission is handed to running: its files kept, its id queued, and its
        ``queued`` state told to listeners."""
        if io is not None:
            self._handoff.files.put(mission_id, io)
        self._handoff.queue.push(mission_id)
        self._handoff.progress.emit(mission_id, "state", {"state": MissionState.QUEUED})

    async def _store_and_queue(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
        io: MissionIO | None,
        rows: DoorRows | None,
    ) -> int:
        """A mission ``submit`` does not hand to the group commit: with a door's ``rows`` (one
        transaction of its own), or with files on a clustered store (pinned to this node)."""
        if rows is not None:
            mission_id = await self._handoff.store.sql.run_in_transaction(
                _with_rows(rows, token_hash, mission, normalised, kind)
            )
            self._queued(io, mission_id)
            return mission_id
        assert io is not None
        # Its files are in this process's memory: no other node can run it, and a worker here
        # that claims it first waits for ``storing`` to end to take them.
        async with self._handoff.files.storing():
            mission_id = await self._handoff.store.missions.insert_pinned_mission(
                token_hash, mission, normalised, kind, self._handoff.owner, self._handoff.lease_s
            )
            self._handoff.files.put(mission_id, io)
        self._queued(None, mission_id)  # its files are already kept
        return mission_id

    async def drain(self, timeout_s: float) -> None:
        """Let submissions being stored in a transaction of their own finish within
        ``timeout_s``; cancel the rest (a mission cancelled mid-store was either committed, and
        is queued at the next start, or was never acknowledged). Those in the store's group
        commit need nothing here: the store's ``close`` waits for the group being written."""
        await self._storing.drain(timeout_s)


def _with_rows(
    rows: DoorRows,
    token_hash: str,
    mission: dict[str, Any],
    normalised: dict[str, Any],
    kind: str,
) -> Callable[[Transaction], Awaitable[int]]:
    """A transaction storing the mission, then the door's ``rows`` of it; returns its id."""

    async def store(tx: Transaction) -> int:
        mission_id = await tx.insert_mission(token_hash, mission, normalised, kind)
        await rows(tx, mission_id)
        return mission_id

    return store
