"""Running missions across nodes without Docker: two ``MissionWorkers`` on one PostgreSQL
database, with ``run_mission`` replaced by a fake that runs until the test releases it or the
mission is cancelled. What is tested is the queue: claims, leases, cancel, re-runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp
import pytest

from orchestrator.run.runner import MissionDeps, MissionIO
from service.pipeline.callbacks import CallbackPolicy
from service.pipeline.wiring import MissionWorkers
from service.store import MissionRow, PgStore
from tests.service.support import poll

pytestmark = pytest.mark.postgres

MISSION: dict[str, Any] = {"prepare": {"execute": [{"command": ["true"]}]}}
RESULT: dict[str, Any] = {"prepare": {}, "task": [], "final": {}, "fake": True}
LEASE_S = 1.0


class FakeRuns:
    """Stands in for ``run_mission``: each run waits until released or cancelled."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[int] = []

    async def __call__(
        self, mission: Any, deps: Any, *, cancel: asyncio.Event, **_: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.started.append(len(self.started))
        release = asyncio.create_task(self.release.wait())
        cancelled = asyncio.create_task(cancel.wait())
        await asyncio.wait([release, cancelled], return_when=asyncio.FIRST_COMPLETED)
        release.cancel()
        cancelled.cancel()
        return {}, RESULT


@pytest.fixture
def fake_runs() -> FakeRuns:
    return FakeRuns()


Node = tuple[MissionWorkers, PgStore]


@pytest.fixture
async def make_node(pg_url: str, fake_runs: FakeRuns) -> AsyncIterator[Callable[..., Any]]:
    made: list[Node] = []
    async with aiohttp.ClientSession() as session:

        async def make(
            owner: str, max_running: int = 2, doors: dict[str, Any] | None = None
        ) -> Node:
            store = await PgStore.open(pg_url)
            workers = MissionWorkers(
                store,
                cast(MissionDeps, None),  # only the fake run_mission sees it
                session,
                max_running=max_running,
                max_queued=100,
                callback_policy=CallbackPolicy(),
                owner=owner,
                lease_s=LEASE_S,
                poll_s=0.2,
                run=fake_runs,
            )
            for kind, door in (doors or {}).items():
                workers.register(kind, door)
            await workers.start()
            made.append((workers, store))
            return workers, store

        yield make
        for workers, store in made:
            await workers.stop(0)
            await store.close()


async def state(store: PgStore, mission_id: int) -> MissionRow:
    row = await store.missions.get_mission(mission_id)
    assert row is not None
    return row


async def test_missions_submitted_to_one_node_run_on_both(
    make_node: Callable[..., Any], fake_runs: FakeRuns
) -> None:
    a, store = await make_node("node-a")
    b, _ = await make_node("node-b")
    ids = [await a.submit("tok", MISSION, {}) for _ in range(4)]
    running = await poll(
        store.missions.running_by_owner, lambda r: sum(r.values()) == 4, timeout=30
    )
    assert running == {"node-a": 2, "node-b": 2}
    fake_runs.release.set()
    for mission_id in ids:
        row = await poll(lambda i=mission_id: state(store, i), lambda r: r.state == "done", 30)
        assert (row.result, row.runs) == (RESULT, 1)
    assert a.metrics.missions_finished["done"] + b.metrics.missions_finished["done"] == 4


async def test_cancel_on_one_node_stops_the_mission_on_the_other(
    make_node: Callable[..., Any], fake_runs: FakeRuns
) -> None:
    a, store = await make_node("node-a")
    mission_id = await a.submit("tok", MISSION, {})
    await poll(lambda: state(store, mission_id), lambda r: r.state == "running", 30)
    b, _ = await make_node("node-b")
    assert await b.cancel(mission_id) == "cancelling"
    row = await poll(lambda: state(store, mission_id), lambda r: r.state != "running", 30)
    assert row.state == "cancelled"
    # A waiter on B hears the end although A ran it.
    finished = await b.wait_finished(mission_id)
    assert finished is not None
    assert finished.state == "cancelled"


async def test_a_dead_node_mission_is_rerun_after_its_lease(
    make_node: Callable[..., Any], fake_runs: FakeRuns, pg_url: str
) -> None:
    store = await PgStore.open(pg_url)
    try:
        mission_id = await store.missions.insert_mission("tok", MISSION, {}, "mission")
        dead = await store.missions.claim(mission_id, "dead-node", LEASE_S)
        assert dead is not None
    finally:
        await store.close()
    fake_runs.release.set()
    _, live = await make_node("node-b")
    row = await poll(lambda: state(live, mission_id), lambda r: r.state == "done", 30)
    assert (row.runs, row.delivery_id, row.result) == (2, dead.delivery_id, RESULT)


async def test_a_node_that_lost_its_lease_stores_no_result(
    make_node: Callable[..., Any], fake_runs: FakeRuns, pg_url: str
) -> None:
    a, store = await make_node("node-a", max_running=1)
    mission_id = await a.submit("tok", MISSION, {})
    await poll(lambda: asyncio.sleep(0, len(fake_runs.started)), lambda n: n == 1, 30)
    assert a.running == 1
    # Another node took it over (as if A had been cut off past its lease).
    await store._pool.execute("UPDATE missions SET lease_owner = 'thief' WHERE id = $1", mission_id)
    # A's next renewal finds the lease gone and stops its run; nothing is stored.
    await poll(lambda: asyncio.sleep(0, a.running), lambda n: n == 0, 30)
    row = await state(store, mission_id)
    assert (row.state, row.result) == ("running", None)
    owner = await store._pool.fetchval("SELECT lease_owner FROM missions WHERE id = $1", mission_id)
    assert owner == "thief"


class InMemoryDoor:
    """A front door whose missions' files live in the submitting process (as the exec API's)."""

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return given

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        return None


async def test_a_mission_with_files_in_memory_waits_for_its_own_node(
    make_node: Callable[..., Any], fake_runs: FakeRuns
) -> None:
    a, store = await make_node("node-a", max_running=1, doors={"exec": InMemoryDoor()})
    await make_node("node-b", doors={"exec": InMemoryDoor()})
    busy = await a.submit("tok", MISSION, {}, kind="exec", io=MissionIO())  # A runs it
    await poll(lambda: state(store, busy), lambda r: r.state == "running", 30)
    await poll(lambda: asyncio.sleep(0, len(fake_runs.started)), lambda n: n == 1, 30)
    pinned = await a.submit("tok", MISSION, {}, kind="exec", io=MissionIO())
    # B is idle and polls, yet leaves it: only A holds its files. Two leases later (A renews
    # the pin while busy) it still waits for A.
    pinned_at = time.monotonic()
    await poll(
        lambda: asyncio.sleep(0, time.monotonic()), lambda t: t > pinned_at + 2 * LEASE_S, 30
    )
    row = await state(store, pinned)
    assert (row.state, await store.missions.running_by_owner()) == ("queued", {"node-a": 1})
    fake_runs.release.set()
    row = await poll(lambda: state(store, pinned), lambda r: r.state == "done", 30)
    assert row.runs == 1
