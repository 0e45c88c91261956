"""Intake, running and callbacks on one node (SQLite), without Docker: ``MissionWorkers`` is
given a fake ``run`` in place of ``run_mission``. What is tested is the engine around sandboxes:
admission, the queue, cancel, the ``failed`` end, shutdown and resuming; never a claim about a
sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from orchestrator.run.runner import MissionDeps, MissionIO
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.intake import QueueFull, ShuttingDown
from service.pipeline.wiring import MissionWorkers
from service.store import MissionRow, SqliteStore
from tests.service.support import Receiver, poll

MISSION: dict[str, Any] = {"prepare": {"execute": [{"name": "only", "command": ["true"]}]}}
RESULT: dict[str, Any] = {"prepare": {}, "task": [], "final": {}, "fake": True}


class FakeRuns:
    """Stands in for ``run_mission``: each run waits until released or cancelled; ``fail``
    makes runs raise as a bug in the judge would."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[int] = []  # ``name`` of the mission's first execute, per run
        self.saw_cancel: list[bool] = []
        self.fail: Exception | None = None

    async def __call__(
        self, mission: Any, deps: Any, *, cancel: asyncio.Event, **_: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.started.append(int(mission.prepare.execute[0].name))
        if self.fail is not None:
            raise self.fail
        release = asyncio.create_task(self.release.wait())
        cancelled = asyncio.create_task(cancel.wait())
        await asyncio.wait([release, cancelled], return_when=asyncio.FIRST_COMPLETED)
        release.cancel()
        cancelled.cancel()
        self.saw_cancel.append(cancel.is_set())
        return {}, RESULT


def numbered(n: int) -> dict[str, Any]:
    """A mission whose execute is named ``n``, so the fake can tell missions apart."""
    return {"prepare": {"execute": [{"name": str(n), "command": ["true"]}]}}


class Node:
    """One judge node's engine over a SQLite file, restartable on the same file."""

    def __init__(self, path: Path, session: aiohttp.ClientSession, runs: FakeRuns) -> None:
        self.path = path
        self.session = session
        self.runs = runs
        self.store: SqliteStore | None = None
        self.workers: MissionWorkers | None = None

    async def start(
        self, max_running: int = 1, max_queued: int = 100, doors: dict[str, Any] | None = None
    ) -> MissionWorkers:
        self.store = await SqliteStore.open(self.path)
        self.workers = MissionWorkers(
            self.store,
            cast(MissionDeps, None),  # only the fake run sees it
            self.session,
            max_running=max_running,
            max_queued=max_queued,
            callback_policy=CallbackPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05),
            run=self.runs,
        )
        for kind, door in (doors or {}).items():
            self.workers.register(kind, door)
        await self.workers.start()
        return self.workers

    async def stop(self, grace_s: float = 0) -> None:
        if self.workers is not None:
            await self.workers.stop(grace_s)
            self.workers = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def row(self, mission_id: int) -> MissionRow:
        assert self.store is not None
        row = await self.store.missions.get_mission(mission_id)
        assert row is not None
        return row


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
async def node(tmp_path: Path, runs: FakeRuns) -> AsyncIterator[Node]:
    async with aiohttp.ClientSession() as session:
        made = Node(tmp_path / "judge.sqlite3", session, runs)
        yield made
        await made.stop()


def called_back(receiver: Receiver) -> Callable[[], Any]:
    async def next_body() -> dict[str, Any]:
        got = await receiver.next(30)
        body: dict[str, Any] = json.loads(got.body)
        return body

    return next_body


def returning(url: str) -> dict[str, Any]:
    return {"return": {"url": url, "format": "json"}}


async def started_count(runs: FakeRuns, n: int) -> None:
    await poll(lambda: asyncio.sleep(0, len(runs.started)), lambda k: k >= n, 30)


async def test_missions_run_in_the_order_they_were_accepted(node: Node, runs: FakeRuns) -> None:
    workers = await node.start(max_running=1)
    runs.release.set()
    ids = [await workers.submit("tok", numbered(i), {}) for i in range(4)]
    for mission_id in ids:
        row = await workers.wait_finished(mission_id)
        assert row is not None
        assert (row.state, row.result, row.runs) == ("done", RESULT, 1)
    assert runs.started == [0, 1, 2, 3]
    assert workers.metrics.missions_finished["done"] == 4


async def test_a_full_queue_refuses_and_stores_nothing(node: Node, runs: FakeRuns) -> None:
    workers = await node.start(max_running=1, max_queued=2)
    first = await workers.submit("tok", numbered(0), {})
    await started_count(runs, 1)  # running: the queue is empty again
    await workers.submit("tok", numbered(1), {})
    await workers.submit("tok", numbered(2), {})
    with pytest.raises(QueueFull) as refused:
        await workers.submit("tok", numbered(3), {})
    assert refused.value.retry_after_s == 2  # two queued over one running slot
    assert node.store is not None
    assert await node.store.missions.counts() == {"queued": 2, "running": 1}
    runs.release.set()
    row = await workers.wait_finished(first)
    assert row is not None
    assert row.state == "done"


async def test_cancel_while_queued_ends_it_with_every_execute_se_and_calls_back(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    workers = await node.start(max_running=1)
    busy = await workers.submit("tok", numbered(0), {})
    await started_count(runs, 1)
    queued = await workers.submit("tok", numbered(1), returning(receiver.url))
    assert workers.queue_depth == 1
    assert await workers.cancel(queued) == "cancelled"
    assert workers.queue_depth == 0
    body = await called_back(receiver)()
    assert body["id"] == queued
    meta = body["mission_result"]["prepare"]["execute"][0]["meta"]
    assert (meta["status"], meta["message"]) == ("SE", "cancelled")
    runs.release.set()
    await workers.wait_finished(busy)
    assert runs.started == [0]  # the cancelled mission never reached a worker's run
    assert await workers.cancel(queued) == "cancelled"  # asking again changes nothing
    assert await workers.cancel(10_000) == "missing"


async def test_cancel_while_running_stops_the_run_and_stores_its_result(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    workers = await node.start()
    mission_id = await workers.submit("tok", numbered(0), returning(receiver.url))
    await started_count(runs, 1)
    assert await workers.cancel(mission_id) == "cancelling"
    body = await called_back(receiver)()
    assert (body["id"], body["mission_result"]) == (mission_id, RESULT)
    row = await node.row(mission_id)
    assert (row.state, runs.saw_cancel) == ("cancelled", [True])


async def test_an_error_inside_the_judge_fails_the_mission_and_still_calls_back(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    runs.fail = RuntimeError("the judge broke")
    workers = await node.start()
    mission_id = await workers.submit("tok", numbered(0), returning(receiver.url))
    body = await called_back(receiver)()
    meta = body["mission_result"]["prepare"]["execute"][0]["meta"]
    assert (meta["status"], meta["message"]) == ("SE", "internal error: the judge broke")
    await poll(lambda: node.row(mission_id), lambda r: r.callback_state == "delivered", 30)
    row = await node.row(mission_id)
    assert (row.state, row.error) == ("failed", "internal error: the judge broke")
    assert workers.metrics.missions_finished["failed"] == 1


async def test_shutdown_past_its_grace_leaves_the_mission_to_the_next_start(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    workers = await node.start(max_running=1)
    running = await workers.submit("tok", numbered(0), returning(receiver.url))
    queued = await workers.submit("tok", numbered(1), {})
    await started_count(runs, 1)
    before = await node.row(running)
    waiting = asyncio.create_task(workers.wait_finished(running))
    await workers.stop(0)
    # Those waiting are answered with the mission as it is: unfinished.
    row = await waiting
    assert row is not None
    assert row.state == "running"
    await node.stop()
    with pytest.raises(ShuttingDown):
        await workers.submit("tok", MISSION, {})
    runs.release.set()
    workers = await node.start(max_running=1)
    body = await called_back(receiver)()
    assert body["id"] == running
    after = await node.row(running)
    # Re-run from the start under the same id and delivery id: the client sees one mission.
    assert (after.state, after.runs, after.delivery_id) == ("done", 2, before.delivery_id)
    row = await workers.wait_finished(queued)
    assert row is not None
    assert (row.state, row.runs) == ("done", 1)
    assert runs.started == [0, 0, 1]


class Door:
    """A front door whose files live in the submitting process, or are gone (``lost``)."""

    def __init__(self, lost: bool = False) -> None:
        self.lost = lost
        self.given: list[MissionIO | None] = []
        self.ended: list[tuple[int, str]] = []

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        self.given.append(given)
        return None if self.lost else given

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        self.ended.append((mission_id, state))


@pytest.mark.parametrize("lost", [False, True])
async def test_a_front_door_gets_its_files_back_and_hears_the_end(
    node: Node, runs: FakeRuns, lost: bool
) -> None:
    door = Door(lost)
    workers = await node.start(doors={"exec": door})
    runs.release.set()
    io = MissionIO(inputs={"a.txt": b"a"})
    mission_id = await workers.submit("tok", numbered(0), {}, kind="exec", io=io)
    row = await workers.wait_finished(mission_id)
    assert row is not None
    assert door.given == [io]  # the very files handed to submit
    assert door.ended == [(mission_id, "failed" if lost else "done")]
    assert row.state == ("failed" if lost else "done")
