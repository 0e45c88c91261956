"""Mission workers: a bounded queue, a bounded number of running missions; callbacks are handed
to ``service.delivery``.

Every task is tracked. ``stop`` stops intake, lets running missions finish within a deadline and
cancels the rest; a mission interrupted that way (or by a crash) stays ``queued``/``running`` in
the database and is re-run from the start at the next start, keeping its id. Pending callbacks
are resumed the same way.

On SQLite (one node) the queue is in memory and the database holds its durable copy. On
PostgreSQL (many nodes) there is no queue in memory: workers claim from the shared table under a
lease they renew while running (see ``service.store.postgres``); a node that dies has its
missions re-run by another once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp

from orchestrator.mission import (
    Execute,
    Mission,
    MissionCaps,
    expand_execute,
    expand_task_files,
    parse_mission,
    task_macros,
)
from orchestrator.runner import (
    CANCELLED,
    ExecuteDone,
    MissionDeps,
    MissionIO,
    PhaseTimes,
    run_mission,
)
from orchestrator.sandbox import Meta
from service.callbacks import CallbackPolicy
from service.delivery import CallbackDelivery, DeliveryCounters
from service.intake import Admission
from service.store import (
    CANCEL_CHANNEL,
    ENDED_CHANNEL,
    MISSION_KIND,
    MISSIONS_CHANNEL,
    Database,
    MissionRow,
    Store,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

_CALLBACK_LINGER_S = 5.0

BlobReader = Callable[[str], Awaitable[bytes | None]]


Listener = Callable[[int, str, dict[str, Any]], None]
"""Told ``(mission_id, kind, data)`` as a mission progresses, on the event loop (must not block):
``state`` ``{"state"}`` (``running`` also has ``executes``, the number of executes), ``execute``
``{"stage", "task", "index", "entry"}`` each time an execute's entry is final, and ``end``
``{"state", "result", "error"}`` once the mission is stored in a final state."""


def count_executes(mission: Mission) -> int:
    """How many executes a mission runs: prepare's, each task's, final's."""
    tasks = len(mission.tasks.task) * len(mission.tasks.execute)
    return len(mission.prepare.execute) + tasks + len(mission.final.execute)


class FrontDoor(Protocol):
    """What a front door (executor API, exec API) tells the workers about its missions.

    Its missions have no callback: the workers call ``started`` when one is claimed and
    ``finished`` when it ends instead.
    """

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        """The mission's files (``given`` is what ``submit`` was handed in this process, None
        after a restart); None when the mission cannot be run any more (it then fails)."""
        ...

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        """The mission ended in ``state`` (``done``, ``cancelled``, ``failed``: no result)."""
        ...


@dataclass
class Metrics(DeliveryCounters):
    """Counters exposed on /metrics (since this process started)."""

    missions_finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mission_seconds_sum: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    phase_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    turnaround_count: int = 0


def not_run_result(mission: Mission, message: str) -> dict[str, Any]:
    """A complete result in which no file was fetched and every execute reports ``SE`` with
    ``message``: the result of a mission cancelled before it started (the runner's layout)."""
    meta = Meta.system_error(message).to_dict()

    def stage(files: dict[str, str], executes: list[Execute]) -> dict[str, Any]:
        return {
            "file": {name: {"status": 0, "content": ""} for name in files},
            "execute": [
                {"name": ex.name, "meta": dict(meta), "record": {"stdout": "", "stderr": ""}}
                for ex in executes
            ],
        }

    tasks = []
    for i, task in enumerate(mission.tasks.task):
        macros = task_macros(i, task)
        executes = [expand_execute(ex, macros) for ex in mission.tasks.execute]
        tasks.append(stage(expand_task_files(task, macros), executes))
    return {
        "prepare": stage(mission.prepare.file, list(mission.prepare.execute)),
        "task": tasks,
        "final": stage(mission.final.file, list(mission.final.execute)),
    }


class MissionWorkers:
    """Runs stored missions on ``max_running`` workers and delivers their callbacks."""

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
    ) -> None:
        self._store = store
        # Many nodes share a PostgreSQL queue: missions and callbacks are claimed from the
        # database under this node's lease (``owner``), not handed over in memory.
        self._clustered = store.engine == "postgresql"
        self._owner = owner
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._work_arrived = asyncio.Event()  # a hint: the database stays the truth
        self._queued_seen = 0  # the shared queue's depth when this node last looked
        self._pinning = asyncio.Lock()  # held while a pinned mission and its files are stored
        self._deps = deps
        # ``blob:`` files of a mission are read as its token: blobs are per token.
        self._reader_for = blob_reader_for
        self._session = session
        self._max_running = max_running
        self._admission = Admission(max_queued=max_queued, max_running=max_running)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: set[int] = set()  # in the queue and not cancelled
        self._cancels: dict[int, asyncio.Event] = {}  # missions a worker holds
        self._workers: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()  # deliveries and stores in flight
        self._delivering: set[int] = set()
        self._stopping = False
        self.metrics = Metrics()
        # Callbacks are delivered apart from running missions (``service.delivery``).
        self._delivery = CallbackDelivery(
            store,
            session,
            callback_policy,
            self.metrics,
            concurrency=callback_concurrency,
            owner=owner,
            lease_s=lease_s,
            poll_s=poll_s,
        )
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._doors: dict[str, FrontDoor] = {}
        self._ios: dict[int, MissionIO] = {}  # front-door files handed to submit, by mission
        self._finish_waiters: dict[int, set[asyncio.Future[None]]] = defaultdict(set)
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Tell ``listener`` about every mission's progress (see :data:`Listener`)."""
        self._listeners.append(listener)

    def _emit(self, mission_id: int, kind: str, data: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(mission_id, kind, data)
            except Exception:
                log.exception("mission %d: a progress listener failed", mission_id)

    def register(self, kind: str, door: FrontDoor) -> None:
        """Serve missions of ``kind`` through ``door``; call before ``start``."""
        assert kind != MISSION_KIND
        self._doors[kind] = door

    async def wait_finished(self, mission_id: int) -> MissionRow | None:
        """Wait until the mission is in a final state (and its front door was told); returns
        its row, None when there is no such mission."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._finish_waiters[mission_id]
        waiters.add(waiter)
        try:
            row = await self._store.call(Database.get_mission, mission_id)
            while row is not None and row.state in ("queued", "running"):
                if not self._clustered:
                    await waiter
                    return await self._store.call(Database.get_mission, mission_id)
                # Another node may run it: its NOTIFY wakes us, polling covers a lost one.
                await asyncio.wait([waiter], timeout=self._poll_s)
                if waiter.done() and not self._admission.accepting:
                    return await self._store.call(Database.get_mission, mission_id)
                waiters.discard(waiter)
                waiter = asyncio.get_running_loop().create_future()
                waiters.add(waiter)
                row = await self._store.call(Database.get_mission, mission_id)
            return row
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._finish_waiters.pop(mission_id, None)

    def _wake(self, mission_id: int) -> None:
        for waiter in self._finish_waiters.get(mission_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def _ended(
        self,
        row: MissionRow,
        state: str,
        result: dict[str, Any] | None,
        io: MissionIO,
        error: str = "",
    ) -> None:
        """After a mission is stored as ended: its callback, or its front door's hook."""
        self._emit(row.id, "end", {"state": state, "result": result, "error": error})
        try:
            door = self._doors.get(row.kind)
            if row.kind == MISSION_KIND:
                self._delivery.due(row.id)
            elif door is not None:
                await door.finished(row.id, state, result, io)
        finally:
            self._ios.pop(row.id, None)
            self._wake(row.id)

    @property
    def queue_depth(self) -> int:
        """Missions waiting: this node's, or the shared queue's (as last seen) on PostgreSQL."""
        return self._queued_seen if self._clustered else len(self._waiting)

    @property
    def accepting(self) -> bool:
        return self._admission.accepting

    async def start(self) -> None:
        """Re-queue interrupted missions, resume pending callbacks, then start the workers.

        On PostgreSQL only this node's own interrupted missions go back to the queue (other
        nodes' come back when their leases expire) and every worker claims from the database.
        """
        if self._clustered:
            await self._start_clustered()
            return
        requeued = await self._store.call(Database.requeue_unfinished)
        for mission_id in requeued:
            self._enqueue(mission_id)
        pending = await self._delivery.start()
        if requeued or pending:
            log.info("resuming %d missions and %d callbacks", len(requeued), pending)
        for n in range(self._max_running):
            task = asyncio.create_task(self._work(), name=f"mission-worker-{n}")
            self._workers.add(task)
        self._admission.open()

    async def _start_clustered(self) -> None:
        requeued = await self._store.call(Database.requeue_unfinished, self._owner)
        self._queued_seen = len(requeued)
        await self._store.subscribe(MISSIONS_CHANNEL, lambda _: self._work_arrived.set())
        await self._store.subscribe(CANCEL_CHANNEL, self._cancel_heard)
        await self._store.subscribe(ENDED_CHANNEL, self._ended_heard)
        for n in range(self._max_running):
            task = asyncio.create_task(self._work(), name=f"mission-worker-{n}")
            self._workers.add(task)
        await self._delivery.start()
        self._admission.open()

    def _cancel_heard(self, payload: str) -> None:
        event = self._cancels.get(int(payload))
        if event is not None:
            event.set()

    def _ended_heard(self, payload: str) -> None:
        self._wake(int(payload))

    async def _claim_next(self) -> MissionRow | None:
        """Claim a mission from the shared queue (or one a dead node held), waiting for a
        NOTIFY or the poll interval when there is none; None once stopping."""
        while not self._stopping:
            self._work_arrived.clear()
            try:
                row = await self._store.call(Database.claim_next, self._owner, self._lease_s)
            except Exception:
                log.exception("cannot claim a mission; retrying")
                row = None
            if row is not None:
                return row
            try:
                await self._store.call(Database.renew_pins, self._owner, self._lease_s)
                self._queued_seen = await self._store.call(Database.queued_count)
            except Exception:
                log.exception("cannot count the queue")
            try:
                async with asyncio.timeout(self._poll_s):
                    await self._work_arrived.wait()
            except TimeoutError:
                pass
        return None

    async def _hold_lease(self, mission_id: int, cancel: asyncio.Event) -> None:
        """Renew this node's lease on a running mission until cancelled; a cancel asked on
        another node, or a lease lost (this node was presumed dead), stops the run."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                asked = await self._store.call(
                    Database.renew_lease, mission_id, self._owner, self._lease_s
                )
                # Missions pinned here wait behind this one: keep them this node's.
                await self._store.call(Database.renew_pins, self._owner, self._lease_s)
            except Exception:
                log.exception("mission %d: cannot renew the lease", mission_id)
                continue
            if asked is None:
                log.warning("mission %d: lease lost to another node; stopping it", mission_id)
                cancel.set()
                return
            if asked:
                cancel.set()

    async def submit(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        *,
        kind: str = MISSION_KIND,
        io: MissionIO | None = None,
        job: tuple[str, str] | None = None,
    ) -> int:
        """Store the mission durably, then queue it; returns its id. With ``job`` (an
        executor job's hash and document id) the job is (re)created with it, in the same
        transaction.

        Raises ``ShuttingDown`` or ``QueueFull`` (nothing is stored then). Once storing has
        begun it completes and the mission is queued even if the caller is cancelled.
        """
        self._admission.check_open()
        if self._clustered:
            self._queued_seen = await self._store.call(Database.queued_count)
        with self._admission.admit(self.queue_depth):
            return await asyncio.shield(
                self._track(
                    self._store_and_queue(token_hash, mission, normalised, kind, io, job), "store"
                )
            )

    async def _store_and_queue(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
        io: MissionIO | None,
        job: tuple[str, str] | None = None,
    ) -> int:
        if job is None and io is not None and self._clustered:
            # Its files are in this process's memory: no other node can run it. A worker here
            # may claim it before this returns; it waits on the lock for the files.
            async with self._pinning:
                mission_id = await self._store.call(
                    Database.insert_pinned_mission,
                    token_hash,
                    mission,
                    normalised,
                    kind,
                    self._owner,
                    self._lease_s,
                )
                self._ios[mission_id] = io
        elif job is None:
            # SQLite: concurrent submissions share one commit (group commit).
            mission_id = await self._store.missions.insert_mission(
                token_hash, mission, normalised, kind
            )
        else:
            mission_id = await self._store.call(
                Database.insert_job_mission, token_hash, mission, normalised, kind, *job
            )
        if io is not None:
            self._ios[mission_id] = io
        self._enqueue(mission_id)
        self._emit(mission_id, "state", {"state": "queued"})
        return mission_id

    def _enqueue(self, mission_id: int) -> None:
        if self._clustered:
            self._work_arrived.set()  # a worker here claims it, unless another node is first
            return
        self._waiting.add(mission_id)
        self._queue.put_nowait(mission_id)

    async def cancel(self, mission_id: int) -> str:
        """Cancel a queued or running mission; returns its state afterwards.

        A queued mission is finished at once as ``cancelled`` (every execute ``SE``
        "cancelled") and its callback goes out; a running one is stopped by its worker, which
        kills its sandboxes (state ``cancelling`` until then).
        """
        row = await self._store.call(Database.get_mission, mission_id)
        if row is None:
            return "missing"
        if row.state == "queued":
            mission = await asyncio.to_thread(parse_mission, row.mission, MissionCaps.unlimited())
            result = await asyncio.to_thread(not_run_result, mission, CANCELLED)
            if await self._store.call(Database.cancel_queued, mission_id, result):
                self._waiting.discard(mission_id)
                self.metrics.missions_finished["cancelled"] += 1
                log.info("mission %d cancelled while queued", mission_id)
                await self._ended(row, "cancelled", result, MissionIO())
                return "cancelled"
            row = await self._store.call(Database.get_mission, mission_id)
            assert row is not None
        if row.state == "running":
            event = self._cancels.get(mission_id)
            if event is not None:
                event.set()
            elif self._clustered:
                # Another node runs it: it hears the NOTIFY (or sees it at its next renewal).
                await self._store.call(Database.request_cancel, mission_id)
            return "cancelling"
        return row.state

    async def _work(self) -> None:
        while True:
            claimed = None
            if self._clustered:
                claimed = await self._claim_next()
                if claimed is None:
                    return  # stopping
                mission_id = claimed.id
                self.running += 1
                self._idle.clear()
                try:
                    await self._run(mission_id, claimed)
                except Exception:
                    log.exception("mission %d: the worker failed", mission_id)
                finally:
                    self.running -= 1
                    if self.running == 0:
                        self._idle.set()
                continue
            mission_id = await self._queue.get()
            if mission_id not in self._waiting:
                continue  # cancelled while queued
            if self._stopping:
                return  # draining: it stays queued in the database; the next start runs it
            self._waiting.discard(mission_id)
            self.running += 1
            self._idle.clear()
            try:
                await self._run(mission_id)
            except Exception:
                log.exception("mission %d: the worker failed", mission_id)
            finally:
                self.running -= 1
                if self.running == 0:
                    self._idle.set()

    async def _run(self, mission_id: int, claimed: MissionRow | None = None) -> None:
        """Run a mission this node claims (or ``claimed``), holding its lease on PostgreSQL,
        and store how it ended; a result is stored only while this node holds the lease."""
        cancel = asyncio.Event()
        self._cancels[mission_id] = cancel
        lease: asyncio.Task[None] | None = None
        try:
            row = claimed
            if row is None:
                row = await self._store.call(Database.claim, mission_id, self._owner, self._lease_s)
            if row is None:
                return  # cancelled or finished meanwhile
            if self._clustered:
                lease = asyncio.create_task(self._hold_lease(mission_id, cancel), name="lease")
            if row.runs > 1:
                log.info("mission %d: run %d (re-run from the start)", mission_id, row.runs)
            started = time.perf_counter()
            times = PhaseTimes()
            io = MissionIO()
            try:
                if row.kind != MISSION_KIND:
                    door = self._doors.get(row.kind)
                    given = self._ios.pop(mission_id, None)
                    if given is None and self._clustered:
                        # Claimed (on a NOTIFY) before its submitter registered its files?
                        async with self._pinning:
                            given = self._ios.pop(mission_id, None)
                    got = None if door is None else await door.started(row, given)
                    if got is None:
                        why = "its front door can no longer run it"
                        await self._store.call(Database.fail, mission_id, why, None, self._owner)
                        self.metrics.missions_finished["failed"] += 1
                        await self._ended(row, "failed", None, io, why)
                        return
                    io = got
                # Accepted under the caps of its day; parsed off the loop (it may be large).
                mission = await asyncio.to_thread(
                    parse_mission, row.mission, MissionCaps.unlimited()
                )
                self._emit(
                    mission_id, "state", {"state": "running", "executes": count_executes(mission)}
                )

                def executed(done: ExecuteDone) -> None:
                    data = {"stage": done.stage, "task": done.task, "index": done.index}
                    self._emit(mission_id, "execute", {**data, "entry": done.entry})

                deps = self._deps
                if self._reader_for is not None:
                    deps = dataclasses.replace(deps, blob_reader=self._reader_for(row.token_hash))
                _, result = await run_mission(
                    mission, deps, cancel=cancel, times=times, io=io, on_execute=executed
                )
            except Exception as e:
                # run_mission reports every failure in the result; this is a bug in the judge.
                log.exception("mission %d: cannot be run", mission_id)
                why = f"internal error: {e}"
                # Nothing may be lost: its client is called back with every execute ``SE``.
                failed: dict[str, Any] | None = None
                with contextlib.suppress(Exception):
                    failed = not_run_result(parse_mission(row.mission), why)
                stored = await self._store.call(Database.fail, mission_id, why, failed, self._owner)
                if stored:
                    self.metrics.missions_finished["failed"] += 1
                    await self._ended(row, "failed", failed, io, why)
                return
            state = "cancelled" if cancel.is_set() else "done"
            stored = await self._store.call(Database.finish, mission_id, state, result, self._owner)
            if not stored:
                # Its lease went to another node (this one was presumed dead), which runs it
                # again: that run's result is the one stored and called back.
                log.warning("mission %d: lease lost; its result here is dropped", mission_id)
                return
        finally:
            if lease is not None:
                lease.cancel()
            del self._cancels[mission_id]
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.missions_finished[state] += 1
        m.mission_seconds_sum += elapsed
        for phase, seconds in times.seconds.items():
            m.phase_seconds[phase] += seconds
            m.phase_counts[phase] += times.counts[phase]
        log.info("mission %d %s in %.3f s", mission_id, state, elapsed)
        await self._ended(row, state, result, io)

    def _track(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=error)

    async def stop(self, grace_s: float) -> None:
        """Stop intake, give running missions ``grace_s`` to finish, cancel what remains.

        What is cancelled stays in the database as it was (queued, running, callback pending)
        and is resumed at the next start.
        """
        self._admission.close()
        self._stopping = True
        deadline = time.monotonic() + grace_s
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d missions still running after %.1f s; cancelling", self.running, grace_s)
        # Callbacks of missions that just finished are usually one quick POST away: give them a
        # moment. Those waiting to retry resume at the next start.
        linger = min(max(0.0, deadline - time.monotonic()), _CALLBACK_LINGER_S)
        if self._tasks and linger > 0:
            await asyncio.wait(list(self._tasks), timeout=linger)
        await self._delivery.stop(min(max(0.0, deadline - time.monotonic()), linger))
        tasks = [*self._workers, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for mission_id in list(self._finish_waiters):
            self._wake(mission_id)  # those waiting see the mission unfinished
        self._workers.clear()
        self._tasks.clear()
