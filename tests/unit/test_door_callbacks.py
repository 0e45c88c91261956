"""A front door's own callbacks go through the durable delivery: its method, body and headers,
retried, and resumed after a restart; a door that gives none leaves its missions uncalled.
Without Docker: the pipeline runs a fake ``run`` (see test_running_one_node)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.run.runner import MissionIO
from service.pipeline.callbacks import Callback
from service.store import MissionRow, SqliteStore
from tests.service.support import poll
from tests.unit.test_running_one_node import FakeRuns, Node, numbered


class Received:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class Receiver:
    """Records every request; the first ``hold`` of them are held until ``release`` is set."""

    def __init__(self, hold: int = 0) -> None:
        self.got: asyncio.Queue[Received] = asyncio.Queue()
        self.arrived: list[Received] = []  # as they arrive, held or not
        self.hold = hold
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(
            request.method, request.path, dict(request.headers), await request.read()
        )
        self.arrived.append(received)
        if self.hold > 0:
            self.hold -= 1
            await self.release.wait()
        self.got.put_nowait(received)
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
async def node(tmp_path: Path, runs: FakeRuns) -> AsyncIterator[Node]:
    async with aiohttp.ClientSession() as session:
        made = Node(tmp_path / "judge.sqlite3", session, runs)
        yield made
        await made.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    await made.start()
    yield made
    made.release.set()
    assert made.runner is not None
    await made.runner.cleanup()


class Door:
    """A door whose missions are called back with a PUT of their own JSON, when ``url``."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.asked: list[tuple[int, str]] = []  # (mission id, its state when asked)

    async def started(self, row: MissionRow, given: MissionIO | None) -> MissionIO | None:
        return given or MissionIO()

    async def finished(
        self, mission_id: int, state: str, result: dict[str, Any] | None, io: MissionIO
    ) -> None:
        return None

    def callback(self, row: MissionRow, result: dict[str, Any] | None) -> Callback | None:
        self.asked.append((row.id, row.state))
        if self.url is None:
            return None
        body = json.dumps({"token": row.id, "fake": (result or {}).get("fake")}).encode()
        return Callback(
            f"{self.url}/door/{row.id}",
            body,
            "application/json",
            method="PUT",
            headers={"X-Door": "yes"},
        )


async def test_a_door_callback_is_delivered_with_its_method_body_and_headers(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    door = Door(receiver.url)
    workers = await node.start(doors={"door": door})
    runs.release.set()
    mission_id = await workers.submit("tok", numbered(0), {}, kind="door")
    got = await asyncio.wait_for(receiver.got.get(), 30)
    assert (got.method, got.path) == ("PUT", f"/door/{mission_id}")
    assert got.headers["X-Door"] == "yes"
    assert got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body) == {"token": mission_id, "fake": True}
    row = await poll(lambda: node.row(mission_id), lambda r: r.callback_state == "delivered", 30)
    assert row.state == "done"
    assert row.callback_attempts == 1


async def test_a_door_without_a_callback_leaves_its_mission_uncalled(
    node: Node, runs: FakeRuns
) -> None:
    door = Door(None)
    workers = await node.start(doors={"door": door})
    runs.release.set()
    mission_id = await workers.submit("tok", numbered(0), {}, kind="door")
    row = await workers.wait_finished(mission_id)
    assert row is not None
    assert (row.state, row.callback_state) == ("done", "waiting")
    assert [m for m, _ in door.asked] == [mission_id]


async def test_a_door_callback_cut_by_a_restart_is_sent_after_it(
    node: Node, runs: FakeRuns, receiver: Receiver
) -> None:
    receiver.hold = 1  # the first attempt hangs until the node is gone
    workers = await node.start(doors={"door": Door(receiver.url)})
    runs.release.set()
    mission_id = await workers.submit("tok", numbered(0), {}, kind="door")
    await poll(lambda: asyncio.sleep(0, len(receiver.arrived)), lambda n: n == 1, 30)
    await node.stop(grace_s=0)  # the delivery in flight is cancelled: still pending
    assert (await node_row(node, mission_id)).callback_state == "pending"
    door = Door(receiver.url)
    await node.start(doors={"door": door})
    got = await asyncio.wait_for(receiver.got.get(), 30)
    assert (got.method, got.path) == ("PUT", f"/door/{mission_id}")
    assert len(receiver.arrived) == 2
    await poll(lambda: node.row(mission_id), lambda r: r.callback_state == "delivered", 30)
    # After the restart the door built the same body from the stored row.
    assert door.asked == [(mission_id, "done")]


async def node_row(node: Node, mission_id: int) -> MissionRow:
    """The mission's row read from the node's file while the node is stopped."""
    store = await SqliteStore.open(node.path)
    try:
        row = await store.missions.get_mission(mission_id)
    finally:
        await store.close()
    assert row is not None
    return row
