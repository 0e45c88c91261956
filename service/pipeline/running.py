"""Running: workers take queued missions, run them, store how they ended and say so.

A worker takes a mission from the work queue, makes it cancellable, claims it (on PostgreSQL
under a lease it renews while running), runs it with ``run``
(``orchestrator.run.runner.run_mission`` by default; unit tests give a fake and need no Docker)
and stores the result. A result is stored only while this node holds the mission: one whose
lease went to another node is dropped, since that node runs it again. Every end, ``failed``
included, is passed to ``ended``: callback delivery for missions of the API, the front door's
``finished`` for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.errors import MissionInterrupted
from orchestrator.mission import Mission, MissionCaps, parse_mission
from orchestrator.mission import result as result_doc
from orchestrator.mission.result import MissionState
from orchestrator.run.runner import (
    CANCELLED,
    ExecuteDone,
    MissionDeps,
    MissionIO,
    PhaseTimes,
    run_mission,
)
from service.pipeline.delivery import DeliveryCounters, DoorCallback
from service.pipeline.enginegate import EngineGate
from service.pipeline.handoff import Handoff
from service.pipeline.inline import callback_small, stored_small
from service.store import CANCEL_CHANNEL, MISSION_KIND, MissionRow
from service.store.protocols import Transaction

log = logging.getLogger(__name__)


async def _parse_stored(row: MissionRow, small: bool) -> Mission:
    """The stored document, validated again (accepted under the caps of its day): on the loop
    when it is ``small`` (``inline.stored_small``), else on a thread (it may be large)."""
    if small:
        return parse_mission(row.mission, MissionCaps.unlimited())
    return await asyncio.to_thread(parse_mission, row.mission, MissionCaps.unlimited())


BlobReader = Callable[[str], Awaitable[bytes | None]]
RunMission = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
"""``run_mission``'s shape: ``(mission, deps, *, cancel, times, io, on_execute, inline)`` to
``(echo, result)``."""
CallbackDue = Callable[[int, MissionRow | None], None]
"""A mission's callback is due: its id, and its row as its end stored it (None: read it)."""


def _pending_row(
    row: MissionRow, state: str, result: dict[str, Any] | None, error: str, door_due: bool
) -> MissionRow | None:
    """``row`` (as claimed) as its end was just stored, when that left a callback pending and
    nothing attempted (the delivery then needs no read); None when it did not, or may not."""
    if result is None or row.callback_attempts or row.callback_state == "none":
        return None
    if not (door_due if row.kind != MISSION_KIND else "return" in row.normalised):
        return None
    return dataclasses.replace(
        row, state=state, result=result, error=error, callback_state="pending"
    )


class DoorHooks(Protocol):
    """What the pipeline asks a front door about its missions (the door's side of
    ``service.frontdoors.door.FrontDoor``).

    Running calls ``started`` when one is claimed and ``finished`` when it ends. A door may
    also have ``callback(row, result) -> Callback | None`` (see :data:`DoorCallback`): a mission
    of the door has a callback when it gives one (asked when it ends, and again by the delivery,
    maybe on another node: a pure function of the row and the result). Without it, none has.
    """

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        """The mission's files (``given`` is what ``submit`` was handed in this process, None
        after a restart); None when the mission cannot be run any more (it then fails)."""
        ...

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        """The mission ended in ``state`` (``done``, ``cancelled``, ``failed``)."""
        ...


EndRows = Callable[[Transaction], Awaitable[None]]
"""A door's rows of a mission's end, written in the transaction that stores the end."""
DoorEnding = Callable[[MissionRow, str, dict[str, Any], MissionIO], Awaitable[EndRows | None]]
"""A door's optional ``ending(row, state, result, io)``: asked when one of its missions ran to
its end (``done`` or ``cancelled``), before that end is stored; the rows it returns are written
in the same transaction (the end and the door's record of it commit together, in one commit).
``finished`` still follows once the end is stored; a mission that ends another way (failed,
cancelled while queued) is told to ``finished`` alone."""


def door_callback(door: DoorHooks | None) -> DoorCallback | None:
    """The door's ``callback``, when it has one."""
    return getattr(door, "callback", None)


def door_ending(door: DoorHooks | None) -> DoorEnding | None:
    """The door's ``ending``, when it has one."""
    return getattr(door, "ending", None)


@dataclass
class Metrics(DeliveryCounters):
    """Counters exposed on /metrics (since this process started)."""

    missions_finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mission_seconds_sum: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    phase_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def not_run_result(mission: Mission, message: str) -> dict[str, Any]:
    """A complete result in which no file was fetched and every execute reports ``SE`` with
    ``message`` (the runner's own layout, ``interactor`` entries included)."""
    return result_doc.not_run(result_doc.plan(mission), message)


def _failed_result(raw: dict[str, Any], why: str) -> dict[str, Any]:
    return not_run_result(parse_mission(raw, MissionCaps.unlimited()), why)


class MissionRunning:
    """``max_running`` workers over one work queue; ``cancel`` reaches queued and running
    missions (on PostgreSQL, those running on other nodes too)."""

    def __init__(
        self,
        handoff: Handoff,
        deps: MissionDeps,
        *,
        metrics: Metrics,
        callback_due: CallbackDue,
        max_running: int,
        run: RunMission = run_mission,
        blob_reader_for: Callable[[str], BlobReader] | None = None,
        doors: dict[str, DoorHooks] | None = None,
        gate: EngineGate | None = None,
        max_reruns: int = 3,
        engine_outage_s: float = 600.0,
    ) -> None:
        self._handoff = handoff
        self._store = handoff.store
        self._clustered = handoff.clustered
        self._owner = handoff.owner
        self._lease_s = handoff.lease_s
        self._deps = deps
        self.metrics = metrics
        self._callback_due = callback_due
        self._max_running = max_running
        self._run_mission = run
        # ``blob:`` files of a mission are read as its token: blobs are per token.
        self._reader_for = blob_reader_for
        self._doors: dict[str, DoorHooks] = {} if doors is None else doors
        self._cancels: dict[int, asyncio.Event] = {}  # missions a worker here holds
        self._workers: set[asyncio.Task[None]] = set()
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Interrupted missions: while the engine is down workers claim nothing; those this node
        # queued again wait for it at most ``engine_outage_s`` (``_watch_outage``).
        self.gate = gate
        self._max_reruns = max_reruns
        self._outage_s = engine_outage_s
        self._interrupted: dict[int, str] = {}  # queued again by this node -> why
        self._outage_watch: asyncio.Task[None] | None = None

    def register(self, kind: str, door: DoorHooks) -> None:
        """Serve missions of ``kind`` through ``door``; call before ``start``."""
        assert kind != MISSION_KIND
        self._doors[kind] = door

    async def start(self) -> None:
        """Start the workers; on PostgreSQL, hear cancels asked on other nodes."""
        if self._clustered:
            await self._store.subscribe(CANCEL_CHANNEL, self._cancel_heard)
        for n in range(self._max_running):
            task = asyncio.create_task(self._work(), name=f"mission-worker-{n}")
            self._workers.add(task)
        if self.gate is not None:
            self.gate.start()
            self._outage_watch = asyncio.create_task(self._watch_outage(), name="outage-watch")

    async def stop(self, grace_s: float) -> None:
        """Take no more missions, give running ones ``grace_s`` to end, cancel the rest: what
        is cancelled stays ``running`` in the database and is re-run from the start later."""
        self._handoff.queue.close()
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d missions still running after %.1f s; cancelling", self.running, grace_s)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        if self._outage_watch is not None:
            self._outage_watch.cancel()
            await asyncio.gather(self._outage_watch, return_exceptions=True)
        if self.gate is not None:
            await self.gate.stop()

    def _cancel_heard(self, payload: str) -> None:
        event = self._cancels.get(int(payload))
        if event is not None:
            event.set()

    async def cancel(self, mission_id: int) -> str:
        """Cancel a queued or running mission; returns its state afterwards (``missing`` when
        there is no such mission).

        A queued mission is finished at once as ``cancelled`` (every execute ``SE``
        "cancelled") and its end is reported; a running one is stopped by its worker, which
        kills its sandboxes (state ``cancelling`` until then).
        """
        row = await self._store.missions.get_mission(mission_id)
        if row is None:
            return "missing"
        if row.state == MissionState.QUEUED:
            mission = await asyncio.to_thread(parse_mission, row.mission, MissionCaps.unlimited())
            result = await asyncio.to_thread(not_run_result, mission, CANCELLED)
            due = await self._door_due(row, result)
            if await self._store.missions.cancel_queued(mission_id, result, door_due=due):
                self._handoff.queue.discard(mission_id)
                self.metrics.missions_finished[MissionState.CANCELLED] += 1
                log.info("mission %d cancelled while queued", mission_id)
                await self._ended(row, MissionState.CANCELLED, result, MissionIO(), door_due=due)
                return MissionState.CANCELLED
            row = await self._store.missions.get_mission(mission_id)
            assert row is not None
        if row.state == MissionState.RUNNING:
            event = self._cancels.get(mission_id)
            if event is not None:
                event.set()
            elif self._clustered:
                # Another node runs it: it hears the NOTIFY (or sees it at its next renewal).
                await self._store.missions.request_cancel(mission_id)
            return result_doc.CANCELLING
        return row.state

    async def _next(self) -> int | None:
        """The next mission to run, once the engine answers (none is claimed while it does
        not: on PostgreSQL the other nodes take the work meanwhile)."""
        while True:
            if self.gate is not None:
                await self.gate.wait_up()
            mission_id = await self._handoff.queue.take()
            if mission_id is None or self.gate is None or self.gate.up:
                return mission_id
            # The engine went down while this worker waited for work.
            if not self._clustered:
                await self.gate.wait_up()  # taken from memory, not claimed yet
                return mission_id
            # Claimed from the shared table: hand it back for a node whose engine answers. Its
            # claim counted a run that never started: uncounted.
            await self._handoff.queue.claim(mission_id)
            await self._store.missions.requeue(mission_id, self._owner, started=False)

    async def _work(self) -> None:
        while (mission_id := await self._next()) is not None:
            self.running += 1
            self._idle.clear()
            try:
                await self._hold(mission_id)
            except Exception:
                log.exception("mission %d: the worker failed", mission_id)
            finally:
                self.running -= 1
                if self.running == 0:
                    self._idle.set()

    async def _hold(self, mission_id: int) -> None:
        """Claim and run a taken mission, cancellable from before its claim to its end, under
        a lease renewed in the background on PostgreSQL."""
        cancel = asyncio.Event()
        self._cancels[mission_id] = cancel
        lease: asyncio.Task[None] | None = None
        try:
            row = await self._handoff.queue.claim(mission_id)
            if row is None:
                return  # cancelled or finished meanwhile
            if self._clustered:
                lease = asyncio.create_task(self._renew_lease(mission_id, cancel), name="lease")
            await self._run(row, cancel)
        finally:
            if lease is not None:
                lease.cancel()
                await asyncio.gather(lease, return_exceptions=True)
            del self._cancels[mission_id]

    async def _renew_lease(self, mission_id: int, cancel: asyncio.Event) -> None:
        """Renew this node's lease on a running mission until cancelled; a cancel asked on
        another node, or a lease lost (this node was presumed dead), stops the run."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                asked = await self._store.missions.renew_lease(
                    mission_id, self._owner, self._lease_s
                )
                # Missions pinned here wait behind this one: keep them this node's.
                await self._store.missions.renew_pins(self._owner, self._lease_s)
            except Exception:
                log.exception("mission %d: cannot renew the lease", mission_id)
                continue
            if asked is None:
                log.warning("mission %d: lease lost to another node; stopping it", mission_id)
                cancel.set()
                return
            if asked:
                cancel.set()

    async def _run(self, row: MissionRow, cancel: asyncio.Event) -> None:
        """Run a claimed mission and store how it ended; an error inside the judge ends it
        ``failed`` with a complete all-``SE`` result, called back like any other."""
        mission_id = row.id
        self._interrupted.pop(mission_id, None)
        if row.runs > 1:
            log.info("mission %d: run %d (re-run from the start)", mission_id, row.runs)
        started = time.perf_counter()
        times = PhaseTimes()
        io = MissionIO()
        given: MissionIO | None = None
        try:
            if row.kind != MISSION_KIND:
                given = await self._handoff.files.take(row.id)
                got = await self._door_files(row, given)
                if got is None:
                    await self._fail(row, "its front door can no longer run it", None, io)
                    return
                io = got
            small = stored_small(row)  # read again, echoed and planned on the loop
            mission = await _parse_stored(row, small)
            executes = result_doc.count_executes(mission)
            running = {"state": MissionState.RUNNING, "executes": executes}
            self._handoff.progress.emit(mission_id, "state", running)

            def executed(done: ExecuteDone) -> None:
                data = {"stage": done.stage, "task": done.task, "index": done.index}
                self._handoff.progress.emit(mission_id, "execute", {**data, "entry": done.entry})

            deps = self._deps
            if self._reader_for is not None:
                deps = dataclasses.replace(deps, blob_reader=self._reader_for(row.token_hash))
            try:
                _, result = await self._run_mission(
                    mission,
                    deps,
                    cancel=cancel,
                    times=times,
                    io=io,
                    on_execute=executed,
                    inline=small,
                )
            except MissionInterrupted as e:
                if not cancel.is_set():
                    await self._interrupted_run(row, str(e), io, given)
                    return
                # Cancelled meanwhile: nothing to run again; it ends cancelled.
                result = await asyncio.to_thread(not_run_result, mission, CANCELLED)
        except Exception as e:
            # run_mission reports every failure in the result; this is a bug in the judge.
            log.exception("mission %d: cannot be run", mission_id)
            why = f"internal error: {e}"
            failed: dict[str, Any] | None = None
            with contextlib.suppress(Exception):
                failed = await asyncio.to_thread(_failed_result, row.mission, why)
            await self._fail(row, why, failed, io)
            return
        state = MissionState.CANCELLED if cancel.is_set() else MissionState.DONE
        due = await self._door_due(row, result)
        stored = await self._finish(row, state, result, io, door_due=due)
        if not stored:
            # Its lease went to another node (this one was presumed dead), which runs it
            # again: that run's result is the one stored and called back.
            log.warning("mission %d: lease lost; its result here is dropped", mission_id)
            return
        elapsed = time.perf_counter() - started
        m = self.metrics
        m.missions_finished[state] += 1
        m.mission_seconds_sum += elapsed
        for phase, seconds in times.seconds.items():
            m.phase_seconds[phase] += seconds
            m.phase_counts[phase] += times.counts[phase]
        log.info("mission %d %s in %.3f s", mission_id, state, elapsed)
        await self._ended(row, state, result, io, door_due=due)

    async def _finish(
        self, row: MissionRow, state: str, result: dict[str, Any], io: MissionIO, *, door_due: bool
    ) -> bool:
        """Store the end of a mission this node ran, with its door's rows of it when the door
        has an ``ending``; False (nothing written) when this node no longer holds it."""
        ending = None if row.kind == MISSION_KIND else door_ending(self._doors.get(row.kind))
        rows = None if ending is None else await ending(row, state, result, io)
        if rows is None:
            return await self._store.missions.finish(
                row.id, state, result, self._owner, door_due=door_due
            )
        owner = self._owner

        async def end(tx: Transaction) -> bool:
            if not await tx.finish_mission(row.id, state, result, owner, door_due):
                return False
            await rows(tx)
            return True

        return await self._store.sql.run_in_transaction(end)

    async def _door_due(self, row: MissionRow, result: dict[str, Any] | None) -> bool:
        """Whether a front door's mission ending with ``result`` has a callback (its door
        builds it: on the loop for a small mission and result, ``inline.callback_small``,
        else on a thread, since it may be proportional to the result)."""
        build = door_callback(self._doors.get(row.kind))
        if row.kind == MISSION_KIND or build is None:
            return False
        if result is None or callback_small(row, result):
            return build(row, result) is not None
        return await asyncio.to_thread(build, row, result) is not None

    async def _door_files(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        door = self._doors.get(row.kind)
        return None if door is None else await door.started(row, given)

    async def _interrupted_run(
        self, row: MissionRow, why: str, io: MissionIO, given: MissionIO | None
    ) -> None:
        """A run the engine or a sandbox's supervisor interrupted is no verdict: queue the
        mission again (same id and delivery id; its next claim counts a run), unless it was
        interrupted ``max_reruns`` times already: then it ends ``failed``, saying why."""
        if self.gate is not None:
            self.gate.suspect()
        if row.runs > self._max_reruns:
            why = f"interrupted on each of its {row.runs} runs (JUDGE_MAX_RERUNS), last: {why}"
            log.warning("mission %d: %s; giving up", row.id, why)
            await self._give_up(row, why, io)
            return
        if not await self._store.missions.requeue(row.id, self._owner):
            return  # no longer this node's: its lease went elsewhere
        if given is not None:
            self._handoff.files.put(row.id, given)  # a door's inputs, for the next run
        self._interrupted[row.id] = why
        self._handoff.queue.push(row.id)
        self._handoff.progress.emit(
            row.id, "state", {"state": MissionState.QUEUED, "interrupted": why}
        )
        log.warning("mission %d interrupted (%s); queued to run again", row.id, why)

    async def _give_up(self, row: MissionRow, why: str, io: MissionIO) -> None:
        failed: dict[str, Any] | None = None
        with contextlib.suppress(Exception):
            failed = await asyncio.to_thread(_failed_result, row.mission, why)
        await self._fail(row, why, failed, io)

    async def _watch_outage(self) -> None:
        """Missions this node queued again after an interruption wait for the engine at most
        ``engine_outage_s`` of continuous outage; then they end ``failed`` (with their
        callback). Missions never started wait on: the queue is durable."""
        assert self.gate is not None
        while True:
            await asyncio.sleep(1.0)  # a periodic check, not a synchronisation
            outage = self.gate.outage_s()
            if outage <= self._outage_s or not self._interrupted:
                continue
            for mission_id, why in list(self._interrupted.items()):
                self._interrupted.pop(mission_id, None)
                row = await self._store.missions.claim(mission_id, self._owner, self._lease_s)
                if row is None:
                    continue  # another node runs it, or it was cancelled
                self._handoff.queue.discard(mission_id)
                self._handoff.files.drop(mission_id)
                reason = (
                    f"the Docker engine has not answered for {outage:.0f} s "
                    f"(JUDGE_ENGINE_OUTAGE_S); interrupted by: {why}"
                )
                log.warning("mission %d: %s; giving up", mission_id, reason)
                await self._give_up(row, reason, MissionIO())

    async def _fail(
        self, row: MissionRow, why: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        """Store the mission ``failed`` (while this node holds it) and report the end; with
        ``result`` its callback is due like any other."""
        due = await self._door_due(row, result)
        if await self._store.missions.fail(row.id, why, result, self._owner, door_due=due):
            self.metrics.missions_finished[MissionState.FAILED] += 1
            await self._ended(row, MissionState.FAILED, result, io, why, door_due=due)

    async def _ended(
        self,
        row: MissionRow,
        state: str,
        result: dict[str, Any] | None,
        io: MissionIO,
        error: str = "",
        *,
        door_due: bool = False,
    ) -> None:
        """After a mission is stored as ended: listeners, then its callback or its front
        door's hook (and the door's callback when it has one), then those waiting for it."""
        end = {"state": state, "result": result, "error": error}
        self._handoff.progress.emit(row.id, "end", end)
        try:
            door = self._doors.get(row.kind)
            pending = _pending_row(row, state, result, error, door_due)
            if row.kind == MISSION_KIND:
                self._callback_due(row.id, pending)
            elif door is not None:
                await door.finished(row.id, state, result, io)
                if door_due:
                    self._callback_due(row.id, pending)
        finally:
            self._handoff.files.drop(row.id)
            self._handoff.progress.wake(row.id)
