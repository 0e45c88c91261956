"""Interrupted missions on one node (SQLite) without Docker: a fake ``run`` raises
``MissionInterrupted`` as ``run_mission`` does when the engine or a supervisor fails, and a fake
probe plays the engine. What is tested is the pipeline's side: re-runs under the same id, the
limit on them, workers waiting while the engine is down, the outage limit. (The real engine
killed under the judge: tests/faults/test_engine_outage.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from orchestrator.errors import EngineUnavailable, MissionInterrupted
from orchestrator.run.runner import MissionDeps
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.wiring import MissionWorkers
from service.store import MissionRow, PgStore, SqliteStore, Storage
from tests.service.support import Receiver, poll

RESULT: dict[str, Any] = {"prepare": {}, "task": [], "final": {}, "fake": True}


class Engine:
    """The fake engine's state: ``up`` answers the probe; runs interrupt while it is down."""

    def __init__(self) -> None:
        self.up = True
        self.interrupt_next = 0  # runs to interrupt even while "up" (a supervisor dying)
        self.runs = 0

    async def probe(self) -> None:
        if not self.up:
            raise EngineUnavailable("Docker engine unavailable: connection refused")

    async def run(self, mission: Any, deps: Any, **_: Any) -> tuple[dict[str, Any], Any]:
        self.runs += 1
        if not self.up or self.interrupt_next > 0:
            self.interrupt_next = max(0, self.interrupt_next - 1)
            raise MissionInterrupted("the sandbox went away (EOFError)")
        return {}, RESULT


def mission(url: str) -> dict[str, Any]:
    return {
        "return": {"url": url},
        "prepare": {"execute": [{"name": "only", "command": ["true"]}]},
    }


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[MissionWorkers, SqliteStore, Engine]]:
    engine = Engine()
    store = await SqliteStore.open(tmp_path / "judge.db")
    async with aiohttp.ClientSession() as session:
        workers = MissionWorkers(
            store,
            cast(MissionDeps, None),  # only the fake run sees it
            session,
            max_running=2,
            max_queued=100,
            callback_policy=CallbackPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05),
            run=engine.run,
            engine_probe=engine.probe,
            max_reruns=3,
            engine_outage_s=2.0,
        )
        await workers.start()
        yield workers, store, engine
        await workers.stop(0)
    await store.close()


async def row_of(store: SqliteStore, mission_id: int) -> MissionRow:
    row = await store.missions.get_mission(mission_id)
    assert row is not None
    return row


async def test_an_interrupted_mission_runs_again_under_its_id_and_is_called_back_once(
    node: tuple[MissionWorkers, SqliteStore, Engine], receiver: Receiver
) -> None:
    workers, store, engine = node
    engine.interrupt_next = 2
    mission_id = await workers.submit(
        "tok", mission(receiver.url), {"return": {"url": receiver.url}}
    )
    row = await poll(lambda: row_of(store, mission_id), lambda r: r.state == "done", 30)
    assert (row.runs, row.result) == (3, RESULT)
    got = await receiver.next(timeout=10)
    assert dict(got.form())["id"] == str(mission_id)
    assert receiver.queue.empty()


async def test_a_mission_interrupted_every_time_ends_failed_after_the_limit(
    node: tuple[MissionWorkers, SqliteStore, Engine], receiver: Receiver
) -> None:
    workers, store, engine = node
    engine.interrupt_next = 100
    mission_id = await workers.submit(
        "tok", mission(receiver.url), {"return": {"url": receiver.url}}
    )
    row = await poll(lambda: row_of(store, mission_id), lambda r: r.state == "failed", 30)
    assert row.runs == 4  # the first run and JUDGE_MAX_RERUNS=3 more
    assert "interrupted on each of its 4 runs" in row.error
    assert "the sandbox went away" in row.error
    # Called back like any end, with every execute SE saying why.
    form = dict((await receiver.next(timeout=10)).form())
    result = json.loads(form["mission_result"])
    meta = result["prepare"]["execute"][0]["meta"]
    assert meta["status"] == "SE"
    assert "interrupted on each of its 4 runs" in meta["message"]


async def test_workers_claim_nothing_while_the_engine_is_down_and_go_on_when_it_is_back(
    node: tuple[MissionWorkers, SqliteStore, Engine], receiver: Receiver
) -> None:
    workers, store, engine = node
    engine.up = False
    assert workers.engine is not None
    workers.engine.suspect()
    await poll(lambda: asyncio.sleep(0, workers.engine), lambda g: not g.up, 10)  # type: ignore[union-attr]
    ids = [
        await workers.submit("tok", mission(receiver.url), {"return": {"url": receiver.url}})
        for _ in range(3)
    ]
    # Nothing is claimed (a claim would count a run) while the probe fails...
    await asyncio.sleep(0.5)  # a window in which a claim would have happened, not a sync
    assert [(await row_of(store, i)).runs for i in ids] == [0, 0, 0]
    assert engine.runs == 0
    engine.up = True
    for mission_id in ids:
        row = await poll(lambda i=mission_id: row_of(store, i), lambda r: r.state == "done", 30)
        assert row.runs == 1


async def test_an_interrupted_mission_fails_once_the_outage_outlasts_its_limit(
    node: tuple[MissionWorkers, SqliteStore, Engine], receiver: Receiver
) -> None:
    workers, store, engine = node
    engine.up = False  # the next run is interrupted, and the engine stays down
    interrupted = await workers.submit(
        "tok", mission(receiver.url), {"return": {"url": receiver.url}}
    )
    row = await poll(lambda: row_of(store, interrupted), lambda r: r.state == "failed", 30)
    assert "the Docker engine has not answered for" in row.error
    assert "JUDGE_ENGINE_OUTAGE_S" in row.error
    form = dict((await receiver.next(timeout=10)).form())
    assert form["id"] == str(interrupted)
    # A mission that never started waits on: the queue is durable.
    waiting = await workers.submit("tok", mission(receiver.url), {"return": {"url": receiver.url}})
    assert (await row_of(store, waiting)).state == "queued"
    engine.up = True
    row = await poll(lambda: row_of(store, waiting), lambda r: r.state == "done", 30)
    assert row.runs == 1


async def test_a_mission_claimed_as_the_engine_goes_down_counts_no_run_on_postgresql(
    pg_url: str, receiver: Receiver
) -> None:
    """On PostgreSQL a waiting worker claims a mission the moment it arrives (the shared queue's
    ``take``); when the engine went down while it waited, it hands the mission back unstarted.
    That claim counted a run that never happened: ``runs`` must count only runs that started."""
    engine = Engine()
    store = await PgStore.open(pg_url)
    try:
        async with aiohttp.ClientSession() as session:
            workers = MissionWorkers(
                store,
                cast(MissionDeps, None),
                session,
                max_running=1,
                max_queued=100,
                callback_policy=CallbackPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05),
                run=engine.run,
                engine_probe=engine.probe,
                owner="node-a",
                lease_s=30,
            )
            await workers.start()
            try:
                gate = workers.engine
                assert gate is not None
                # The worker waits in the queue's take, past its check of the engine; the
                # engine goes down before any mission arrives.
                engine.up = False
                gate.mark_down("connection refused")
                mission_id = await workers.submit(
                    "tok", mission(receiver.url), {"return": {"url": receiver.url}}
                )
                # Claimed and handed back (queued again, updated since it was stored), unstarted.
                await poll(
                    lambda: row_of_any(store, mission_id),
                    lambda r: r.state == "queued" and r.updated_at > r.created_at,
                    10,
                )
                assert (await row_of_any(store, mission_id)).runs == 0
                assert engine.runs == 0
                engine.up = True
                row = await poll(
                    lambda: row_of_any(store, mission_id), lambda r: r.state == "done", 30
                )
                assert row.runs == 1
            finally:
                await workers.stop(0)
    finally:
        await store.close()


async def row_of_any(store: Storage, mission_id: int) -> MissionRow:
    row = await store.missions.get_mission(mission_id)
    assert row is not None
    return row
