"""Live progress of missions as Server-Sent Events: ``GET /api/missions/{id}/events``.

The workers tell an :class:`EventHub` how each mission progresses; the hub keeps an in-memory
log per mission (live missions, and the last :data:`KEEP_FINISHED` finished ones) and wakes the
streams that follow it. Event types:

- ``state``: ``{"id", "state"}`` (``running`` also carries ``executes``, how many there are);
- ``execute``: one per finished execute, ``{"id", "stage", "task", "index", "name", "meta",
  "n", "executes"}`` (``n``: executes finished so far in this run);
- ``done``: the last event, ``{"id", "state", "mission_result"}`` (plus ``error`` when failed).

Ids are ``<epoch>-<n>``: ``epoch`` names one log, ``n`` counts from 1. A reconnect with a
``Last-Event-ID`` of the same log resumes after that event. A finished mission without a log in
memory (finished long ago, or before a restart) gets one built from the database, the same at
every read: its final ``state``, one ``execute`` per entry of its result, ``done``. A queued or
running mission without one starts a live log at its current state: a queued mission has none
until a stream asks for it or it starts running (nobody can follow it before its id is
answered, and a full queue would hold a log per mission), and one resumed after a restart has
none either.
A ``Last-Event-ID`` of another log (another process, say) replays the current log from its
start, so a client never misses the final result; live logs are per process: a restart re-runs
unfinished missions from the start, and their events start again too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from orchestrator.mission import result as result_doc
from orchestrator.mission.result import ENDED, MissionState
from service.keys import STORE
from service.store import MissionRow

KEEP_FINISHED = 256
PING_INTERVAL_S = 15.0


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]


@dataclass
class MissionLog:
    """The events of one mission so far; ``changed`` is replaced (and set) at each append."""

    epoch: str
    events: list[Event] = field(default_factory=list)
    executes: int = 0
    finished_executes: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].type == "done"

    def append(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append(Event(f"{self.epoch}-{len(self.events) + 1}", kind, data))
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def after(self, last_event_id: str | None) -> int:
        """The index of the first event to send to a client that saw ``last_event_id``."""
        if not last_event_id:
            return 0
        epoch, _, n = last_event_id.rpartition("-")
        if epoch != self.epoch or not n.isdigit():
            return 0
        return min(int(n), len(self.events))


def _execute_data(mission_id: int, log: MissionLog, data: dict[str, Any]) -> dict[str, Any]:
    entry = data["entry"]
    return {
        "id": mission_id,
        "stage": data["stage"],
        "task": data["task"],
        "index": data["index"],
        "name": entry.get("name", ""),
        "meta": entry.get("meta", {}),
        "n": log.finished_executes,
        "executes": log.executes,
    }


def _done_data(mission_id: int, state: str, result: Any, error: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": mission_id, "state": state, "mission_result": result}
    if error:
        body["error"] = error
    return body


class EventHub:
    """Per-mission event logs fed by the workers (:meth:`publish`), read by the streams."""

    def __init__(self, keep_finished: int = KEEP_FINISHED) -> None:
        self._epoch = secrets.token_hex(4)
        self._logs: dict[int, MissionLog] = {}
        # The finished ones among them, oldest end first: forgetting the oldest costs no scan
        # of the logs (thousands of queued missions each have one).
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._keep = keep_finished
        self.closed = False

    def _log(self, mission_id: int) -> MissionLog:
        log = self._logs.get(mission_id)
        if log is None or log.finished:
            # A mission re-run after a restart, or new: a fresh log.
            log = self._logs[mission_id] = MissionLog(self._epoch + f"m{mission_id}")
            self._finished.pop(mission_id, None)
        return log

    def publish(self, mission_id: int, kind: str, data: dict[str, Any]) -> None:
        """A workers' listener (``service.pipeline.progress.Listener``); never blocks."""
        if kind == "state" and data["state"] == MissionState.QUEUED:
            self._queued(mission_id, data)
        elif kind == "state":
            log = self._log(mission_id)
            if data["state"] == MissionState.RUNNING:
                log.executes = int(data.get("executes", 0))
                log.finished_executes = 0
            log.append("state", {"id": mission_id, **data})
        elif kind == "execute":
            log = self._log(mission_id)
            log.finished_executes += 1
            log.append("execute", _execute_data(mission_id, log, data))
        elif kind == "end":
            log = self._log(mission_id)
            log.append("state", {"id": mission_id, "state": data["state"]})
            # The result itself is read from the database when a stream sends this event:
            # kept logs stay small however large the results are.
            log.append("done", _done_data(mission_id, data["state"], None, data["error"]))
            self._finished[mission_id] = None
            self._forget_old()

    def _queued(self, mission_id: int, data: dict[str, Any]) -> None:
        """A mission was stored as queued. Nobody follows it yet (its id is answered only now),
        so no log is started: a stream that asks while it waits starts one at this same
        ``queued`` state (``log_for``), and its first run starts one otherwise. A log per queued
        mission cost 1.5 KB each (a full queue of a million: 1.5 GB) and 1-2 % of a
        submission's CPU. A finished log of the mission (it is run again) goes."""
        log = self._logs.get(mission_id)
        if log is None:
            return
        if log.finished:
            del self._logs[mission_id]
            self._finished.pop(mission_id, None)
            return
        log.append("state", {"id": mission_id, **data})

    def _forget_old(self) -> None:
        while len(self._finished) > self._keep:
            mission_id, _ = self._finished.popitem(last=False)
            del self._logs[mission_id]

    def log_for(self, row: MissionRow) -> MissionLog:
        """The mission's log: the live one, or one built from its stored row."""
        log = self._logs.get(row.id)
        if log is not None:
            return log
        if row.state not in ENDED:
            # Followed from now on: the workers' next events land in this log.
            log = self._logs[row.id] = MissionLog(self._epoch + f"m{row.id}")
            data: dict[str, Any] = {"id": row.id, "state": row.state}
            if row.state == MissionState.RUNNING:  # joined mid-run: the count its start gave
                log.executes = data["executes"] = result_doc.count_in_echo(row.normalised)
            log.append("state", data)
            return log
        # A finished mission's stored result never changes: its log, and so its ids, are the
        # same at every read, in every process.
        log = MissionLog(f"db{row.id}")
        entries = list(result_doc.entries(row.result or {}))
        log.executes = len(entries)
        log.append("state", {"id": row.id, "state": row.state})
        for stage, task, index, entry in entries:
            log.finished_executes += 1
            data = {"stage": stage, "task": task, "index": index, "entry": entry}
            log.append("execute", _execute_data(row.id, log, data))
        log.append("done", _done_data(row.id, row.state, row.result, row.error))
        return log

    def current(self, mission_id: int) -> MissionLog | None:
        """The mission's log in memory, if any."""
        return self._logs.get(mission_id)

    def close(self) -> None:
        """Wake every stream so that it ends (the server is stopping)."""
        self.closed = True
        for log in self._logs.values():
            log.changed.set()


EVENTS = web.AppKey("events", EventHub)


class OpenStreams:
    """The event streams open now, held weakly: a finished stream drops out by itself."""

    def __init__(self) -> None:
        self._streams: weakref.WeakSet[EventSourceResponse] = weakref.WeakSet()

    def add(self, resp: EventSourceResponse) -> None:
        self._streams.add(resp)

    def __len__(self) -> int:
        return len(self._streams)

    def stop_all(self) -> None:
        for resp in list(self._streams):
            resp.stop_streaming()


STREAMS = web.AppKey("event_streams", OpenStreams)


async def _with_result(
    request: web.Request, mission_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    """``done``'s data with the stored result (stored before the workers announce the end)."""
    stored = await request.app[STORE].missions.get_mission(mission_id)
    result = None if stored is None else stored.result
    return {**data, "mission_result": result}


async def stream_events(request: web.Request, row: MissionRow) -> web.StreamResponse:
    """Stream the mission's events until ``done``, the client leaves or the server stops."""
    hub = request.app[EVENTS]
    log = hub.log_for(row)
    position = log.after(request.headers.get("Last-Event-ID"))
    async with sse_response(request, ping_interval=PING_INTERVAL_S) as resp:
        request.app[STREAMS].add(resp)
        closed = asyncio.ensure_future(resp.wait())
        try:
            while not hub.closed:
                while position < len(log.events):
                    event = log.events[position]
                    position += 1
                    data = event.data
                    if event.type == "done" and data.get("mission_result") is None:
                        data = await _with_result(request, row.id, data)
                    await resp.send(json.dumps(data), id=event.id, event=event.type)
                    if event.type == "done":
                        return resp
                if hub.current(row.id) not in (log, None):
                    return resp  # another log replaced this one: the client reconnects
                changed = asyncio.ensure_future(log.changed.wait())
                await asyncio.wait({changed, closed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if closed.done():
                    break
        finally:
            closed.cancel()
    return resp


def setup_events(app: web.Application) -> None:
    """The hub and the set of open streams; at shutdown every stream is stopped first."""
    app[EVENTS] = EventHub()
    app[STREAMS] = OpenStreams()
    app.on_shutdown.append(stop_streams)


async def stop_streams(app: web.Application) -> None:
    """``on_shutdown``: open streams end before the server waits for its handlers."""
    app[EVENTS].close()
    app[STREAMS].stop_all()


__all__ = ["EVENTS", "STREAMS", "EventHub", "setup_events", "stop_streams", "stream_events"]
