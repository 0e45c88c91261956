"""Mission workers: a bounded queue, a bounded number of running missions, callbacks.

Every task is tracked. ``stop`` stops intake, lets running missions finish within a deadline and
cancels the rest; a cancelled mission stays ``queued``/``running`` in the database and is re-run
from the start at the next start, keeping its id. Pending callbacks are resumed the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from orchestrator.mission import parse_mission
from orchestrator.runner import MissionDeps, PhaseTimes, run_mission
from service.callbacks import CallbackPolicy, callback_body, deliver
from service.store import Database, Store

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue holds as many missions as it may; the client should retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the mission queue is full; retry later")
        self.retry_after_s = retry_after_s


class ShuttingDown(Exception):
    """The server is stopping and takes no new missions."""


@dataclass
class Metrics:
    """Counters exposed on /metrics."""

    missions_finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mission_seconds_sum: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    phase_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    callback_failures: int = 0
    callback_attempts: int = 0


class MissionWorkers:
    """Runs stored missions on a fixed number of workers and delivers their callbacks."""

    def __init__(
        self,
        store: Store,
        deps: MissionDeps,
        session: aiohttp.ClientSession,
        *,
        max_running: int,
        max_queued: int,
        callback_policy: CallbackPolicy,
    ) -> None:
        self._store = store
        self._deps = deps
        self._session = session
        self._max_running = max_running
        self._max_queued = max_queued
        self._policy = callback_policy
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._cancels: dict[int, asyncio.Event] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._accepting = False
        self.metrics = Metrics()
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        """Resume unfinished missions and pending callbacks, then start the workers."""
        for mission_id in await self._store.call(Database.unfinished):
            await self._store.call(Database.set_state, mission_id, "queued")
            self._queue.put_nowait(mission_id)
        for mission_id in await self._store.call(Database.pending_callbacks):
            self._spawn_delivery(mission_id)
        for n in range(self._max_running):
            task = asyncio.create_task(self._work(), name=f"mission-worker-{n}")
            self._workers.add(task)
        self._accepting = True

    async def submit(
        self, token_hash: str, mission: dict[str, Any], normalised: dict[str, Any]
    ) -> int:
        """Store the mission durably, then queue it; returns its id.

        Raises ``ShuttingDown`` or ``QueueFull`` (nothing is stored then).
        """
        if not self._accepting:
            raise ShuttingDown()
        if self._queue.qsize() >= self._max_queued:
            raise QueueFull(retry_after_s=max(1, self._queue.qsize() // max(1, self._max_running)))
        mission_id = await self._store.call(
            Database.insert_mission, token_hash, mission, normalised
        )
        self._queue.put_nowait(mission_id)
        return mission_id

    async def cancel(self, mission_id: int) -> str:
        """Cancel a queued or running mission; returns its state afterwards."""
        row = await self._store.call(Database.get_mission, mission_id)
        if row is None:
            return "missing"
        if row.state == "running":
            event = self._cancels.get(mission_id)
            if event is not None:
                event.set()
            return "cancelling"
        if row.state == "queued":
            # Still queued: the worker that takes it runs it with the cancel already set, so the
            # result is complete (every execute "cancelled") and the callback goes out.
            self._cancels.setdefault(mission_id, asyncio.Event()).set()
            return "cancelling"
        return row.state

    async def _work(self) -> None:
        while True:
            mission_id = await self._queue.get()
            if not self._accepting:
                # Draining: leave it queued in the database; the next start runs it.
                self._queue.task_done()
                return
            try:
                await self._run(mission_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mission %d: the worker failed", mission_id)
            finally:
                self._queue.task_done()

    async def _run(self, mission_id: int) -> None:
        row = await self._store.call(Database.get_mission, mission_id)
        if row is None or row.state not in ("queued", "running"):
            return
        cancel = self._cancels.setdefault(mission_id, asyncio.Event())
        await self._store.call(Database.set_state, mission_id, "running")
        self.running += 1
        self._idle.clear()
        started = time.perf_counter()
        times = PhaseTimes()
        try:
            mission = parse_mission(row.mission)
            _, result = await run_mission(mission, self._deps, cancel=cancel, times=times)
        finally:
            self.running -= 1
            if self.running == 0:
                self._idle.set()
        state = "cancelled" if cancel.is_set() else "done"
        self._cancels.pop(mission_id, None)
        await self._store.call(Database.finish, mission_id, state, result)
        m = self.metrics
        m.missions_finished[state] += 1
        m.mission_seconds_sum += time.perf_counter() - started
        for phase, seconds in times.seconds.items():
            m.phase_seconds[phase] += seconds
            m.phase_counts[phase] += times.counts[phase]
        log.info("mission %d %s in %.2f s", mission_id, state, time.perf_counter() - started)
        self._spawn_delivery(mission_id)

    def _spawn_delivery(self, mission_id: int) -> None:
        task = asyncio.create_task(self._deliver(mission_id), name=f"callback-{mission_id}")
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, mission_id: int) -> None:
        row = await self._store.call(Database.get_mission, mission_id)
        if row is None or row.result is None:
            return
        ret = row.normalised["return"]
        body, ctype = callback_body(
            mission_id, row.normalised, row.result, ret.get("format", "form")
        )

        async def on_attempt(n: int) -> None:
            self.metrics.callback_attempts += 1
            await self._store.call(Database.set_callback, mission_id, "pending", n, "")

        ok, attempts, error = await deliver(
            self._session, ret["url"], body, ctype, self._policy, on_attempt
        )
        if not ok:
            self.metrics.callback_failures += 1
        await self._store.call(
            Database.set_callback, mission_id, "delivered" if ok else "failed", attempts, error
        )

    async def stop(self, grace_s: float) -> None:
        """Stop intake, give running missions ``grace_s`` to finish, cancel what remains."""
        self._accepting = False
        # Idle workers wait on the queue; a worker inside a mission is allowed to finish it.
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d missions still running after %.0f s; cancelling", self.running, grace_s)
        for task in (*self._workers, *self._deliveries):
            task.cancel()
        await asyncio.gather(*self._workers, *self._deliveries, return_exceptions=True)
        self._workers.clear()
        self._deliveries.clear()
