"""Judge0's callbacks through the judge's durable delivery: a ``PUT`` of Judge0's body (always
base64), signed when the judge has a callback secret, retried; and one ``PUT`` per batch."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from service.frontdoors.judge0 import wire
from service.pipeline.callbacks import sign
from tests.judge0.conftest import Judge0Http

pytestmark = pytest.mark.docker

HELLO = {"source_code": "print('hello')", "language_id": 71}


@dataclass
class Got:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json"
        return json.loads(self.body)


class Receiver:
    """Records every request (its method too); answers ``statuses`` in order, then 200."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Got] = asyncio.Queue()
        self.statuses: list[int] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.queue.put_nowait(Got(request.method, request.path, dict(request.headers), body))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def next(self, timeout: float = 30.0) -> Got:
        async with asyncio.timeout(timeout):
            return await self.queue.get()


@pytest.fixture
async def rx() -> Any:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_a_submission_is_put_to_its_callback_url(j0: Any, rx: Receiver) -> None:
    _, api = j0
    status, body, _ = await api.call(
        "POST", "/submissions", json={**HELLO, "callback_url": rx.base + "/one"}
    )
    assert status == 201
    got = await rx.next()
    assert (got.method, got.path) == ("PUT", "/one")
    doc = got.json()
    assert list(doc) == list(wire.DEFAULT_FIELDS)
    assert doc["token"] == body["token"]
    assert doc["status"] == {"id": 3, "description": "Accepted"}
    assert doc["stdout"] == wire.encode64(b"hello\n")  # always base64, as Judge0 sends it


async def test_signed_and_retried(start_judge: Any, session: Any, rx: Receiver) -> None:
    judge, _ = await start_judge(callback_secret="s3cret")
    api = Judge0Http(session, judge.url + "/judge0")
    rx.statuses = [503]
    await api.call("POST", "/submissions", json={**HELLO, "callback_url": rx.base + "/s"})
    first, second = await rx.next(), await rx.next()
    assert (first.method, second.method) == ("PUT", "PUT")
    assert first.body == second.body
    h = second.headers
    expected = sign("s3cret", h["webhook-id"], int(h["webhook-timestamp"]), second.body)
    assert h["webhook-signature"] == expected


async def test_a_batch_callback_once_all_ended(j0: Any, rx: Receiver) -> None:
    _, api = j0
    subs = [{**HELLO, "stdin": str(i), "callback_url": rx.base + f"/each{i}"} for i in range(3)]
    status, created, _ = await api.call(
        "POST",
        "/submissions/batch",
        json={"submissions": subs, "callback_url": rx.base + "/batch"},
    )
    assert status == 201
    got = [await rx.next() for _ in range(4)]
    paths = [g.path for g in got]
    assert sorted(paths) == ["/batch", "/each0", "/each1", "/each2"]
    batch = next(g for g in got if g.path == "/batch")
    assert batch.method == "PUT"
    docs = batch.json()["submissions"]
    assert [d["token"] for d in docs] == [c["token"] for c in created]
    assert all(d["status"]["id"] == 3 for d in docs)
    with pytest.raises(TimeoutError):
        await rx.next(timeout=1.0)  # one PUT per batch, no more
