"""The mission engine as the routes see it: intake, running and callback delivery put together.

Each part is its own module and can be read and tested alone:

- ``service.pipeline.intake``: admission (429/503) and storing a submission, one transaction per
  use case, before it is acknowledged;
- ``service.pipeline.workqueue``: the hand-over from intake to running (in memory on SQLite, the
  shared table under leases on PostgreSQL);
- ``service.pipeline.running``: workers that claim, run (``run_mission``, or a fake in unit tests),
  finish and cancel missions, and front-door hooks;
- ``service.pipeline.delivery``: callbacks, apart from running (as arq delivers results apart
  from jobs);
- ``service.pipeline.progress``: listeners and those waiting for a mission to end;
- ``service.pipeline.handoff``: what intake and running share (queue, progress, front-door files).

This module only wires them and orders start and shutdown. ``stop`` stops intake, lets running
missions finish within a deadline and cancels the rest; a mission interrupted that way (or by a
crash) stays ``queued``/``running`` in the database and is re-run from the start at the next
start (on PostgreSQL, by any node once its lease expires), keeping its id. Pending callbacks are
resumed the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection

import aiohttp

from orchestrator.errors import EngineUnavailable
from orchestrator.run.runner import MissionDeps, run_mission
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.delivery import CallbackDelivery, HeavyWork
from service.pipeline.enginegate import EngineGate
from service.pipeline.handoff import Handoff
from service.pipeline.intake import Intake
from service.pipeline.progress import Listener, MissionProgress
from service.pipeline.running import (
    BlobReader,
    DoorHooks,
    Metrics,
    MissionRunning,
    RunMission,
    door_callback,
)
from service.pipeline.workqueue import LocalQueue, SharedQueue, WorkQueue
from service.store import MissionRow, Store

__all__ = ["DoorHooks", "Listener", "Metrics", "MissionWorkers"]

log = logging.getLogger(__name__)

_CALLBACK_LINGER_S = 5.0


class MissionWorkers:
    """Accepts missions, runs them on ``max_running`` workers and delivers their callbacks."""

    def __init__(
        self,
        store: Store,
        deps: MissionDeps,
        session: aiohttp.ClientSession,
        *,
        max_running: int,
        max_queued: int,
        callback_policy: CallbackPolicy,
        callback_concurrency: int = 32,
        blob_reader_for: Callable[[str], BlobReader] | None = None,
        owner: str = "judge",
        lease_s: float = 20.0,
        poll_s: float = 2.0,
        run: RunMission = run_mission,
        images: Callable[[], Collection[str] | None] = lambda: None,
        engine_probe: Callable[[], Awaitable[object]] | None = None,
        engine_back: Callable[[], Awaitable[object]] | None = None,
        max_reruns: int = 3,
        engine_outage_s: float = 600.0,
        heavy: HeavyWork | None = None,
    ) -> None:
        """``heavy``: the offload pool, where large callback bodies are encoded (None: threads)."""
        self.metrics = Metrics()
        self._queue: WorkQueue
        if store.clustered:
            # Nodes may have different images: each claims only missions it can run.
            self._queue = SharedQueue(
                store, owner=owner, lease_s=lease_s, poll_s=poll_s, images=images
            )
        else:
            self._queue = LocalQueue(store, owner=owner, lease_s=lease_s)
        self._progress = MissionProgress(store, poll_s=poll_s)
        handoff = Handoff(store, self._queue, self._progress, owner=owner, lease_s=lease_s)
        doors: dict[str, DoorHooks] = {}  # kind -> its front door, filled by ``register``
        self._intake = Intake(handoff, max_queued=max_queued, max_running=max_running)
        self._delivery = CallbackDelivery(
            store,
            session,
            callback_policy,
            self.metrics,
            concurrency=callback_concurrency,
            owner=owner,
            lease_s=lease_s,
            poll_s=poll_s,
            door_callback=lambda kind: door_callback(doors.get(kind)),
            heavy=heavy,
        )
        self._running = MissionRunning(
            handoff,
            deps,
            metrics=self.metrics,
            callback_due=self._delivery.due,
            max_running=max_running,
            run=run,
            blob_reader_for=blob_reader_for,
            doors=doors,
            gate=None if engine_probe is None else EngineGate(engine_probe, on_up=engine_back),
            max_reruns=max_reruns,
            engine_outage_s=engine_outage_s,
        )
        self.engine = self._running.gate  # whether the engine answers (None: not watched)
        # What the routes call is the parts' own: no wrapper to keep in step with them.
        self.submit = self._intake.submit  # stored and queued, or ShuttingDown/QueueFull
        self.cancel = self._running.cancel
        self.wait_finished = self._progress.wait_finished
        self.add_listener = self._progress.add_listener
        self.register = self._running.register  # before start

    async def give_up_if_engine_down(self, mission_id: int) -> None:
        """For a synchronous request whose own wait ran out: when the engine does not answer,
        cancel the mission (its requester is gone: nothing runs later for nobody) and raise
        ``EngineUnavailable`` (503 with ``Retry-After``). Returns when the engine answers."""
        gate = self.engine
        if gate is None or gate.up:
            return
        await self.cancel(mission_id)
        since = "" if gate.down_since is None else f" for {gate.outage_s():.0f} s"
        raise EngineUnavailable(
            f"the Docker engine has not answered{since}; mission {mission_id} was cancelled, "
            "send it again"
        )

    async def wait_synchronously(self, mission_id: int, outage_wait_s: float) -> MissionRow | None:
        """Wait for a mission to end, as a synchronous request does: as long as it takes while
        the engine answers; once the engine has been down ``outage_wait_s``, cancel it and raise
        ``EngineUnavailable`` (``give_up_if_engine_down``). None when the server stops first."""
        finished = asyncio.ensure_future(self.wait_finished(mission_id))
        try:
            while True:
                done, _ = await asyncio.wait({finished}, timeout=1.0)
                if done:
                    return finished.result()
                if self.engine is not None and self.engine.outage_s() > outage_wait_s:
                    await self.give_up_if_engine_down(mission_id)
        finally:
            finished.cancel()

    @property
    def running(self) -> int:
        """Missions running on this node now."""
        return self._running.running

    @property
    def queue_depth(self) -> int:
        """Missions waiting: this node's, or the shared queue's (as last seen) on PostgreSQL."""
        return self._queue.depth

    @property
    def accepting(self) -> bool:
        return self._intake.accepting

    async def start(self) -> None:
        """Queue again what this node left unfinished, resume (or start claiming) callbacks,
        start the workers, then take submissions."""
        requeued = await self._queue.start()
        await self._progress.start()
        await self._running.start()
        pending = await self._delivery.start()
        if requeued or pending:
            log.info("resuming %d missions and %d callbacks", len(requeued), pending)
        self._intake.open()

    async def stop(self, grace_s: float) -> None:
        """Stop intake, give running missions ``grace_s`` to finish, cancel what remains.

        What is cancelled stays in the database as it was (queued, running, callback pending)
        and is resumed at the next start.
        """
        self._intake.close()
        deadline = time.monotonic() + grace_s
        await self._running.stop(grace_s)
        # Callbacks of missions that just finished are usually one quick POST away: give them a
        # moment. Those waiting to retry resume at the next start.
        linger = min(max(0.0, deadline - time.monotonic()), _CALLBACK_LINGER_S)
        await self._intake.drain(linger)
        await self._delivery.stop(min(max(0.0, deadline - time.monotonic()), linger))
        self._progress.close()
