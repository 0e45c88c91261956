"""A callback receiver that accepts the connection and never answers: each attempt times out,
the callback ends ``failed`` after its attempts, and no worker or delivery slot stays stuck (the
missions after it run, and other receivers get theirs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.service.conftest import StartJudge
from tests.service.support import Receiver, hello_world

pytestmark = pytest.mark.docker


class Silent:
    """A TCP server that accepts every connection, reads what comes and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)
        while await reader.read(65536):
            pass  # until the client gives up and closes

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def silent() -> AsyncIterator[Silent]:
    server = Silent()
    yield server
    await server.stop()


async def test_a_receiver_that_never_answers_holds_no_worker_or_delivery_slot(
    start_judge: StartJudge, receiver: Receiver, silent: Silent
) -> None:
    attempts = 3
    _, api = await start_judge(
        max_running=2,
        callback_concurrency=2,  # as many slots as silent missions below: all held by them
        callback_timeout_s=0.5,
        callback_attempts=attempts,
        callback_initial_wait_s=0.05,
        callback_max_wait_s=0.1,
    )
    hanging_url = await silent.start()
    hanging = [(await api.submit(hello_world(hanging_url)))[1]["msg"]["id"] for _ in range(2)]
    # While both delivery slots wait on the silent receiver, more missions run and end.
    fine = [(await api.submit(hello_world(receiver.url)))[1]["msg"]["id"] for _ in range(3)]
    got = [int(dict((await receiver.next(timeout=60)).form())["id"]) for _ in fine]
    assert sorted(got) == fine
    for mission_id in hanging:
        body = await api.wait_for(
            mission_id, lambda b: b["callback"]["state"] == "failed", timeout=60
        )
        assert body["state"] == "done"
        assert body["callback"]["attempts"] == attempts, body["callback"]
        assert body["callback"]["error"] == "no answer within 0.5 s", body["callback"]
    assert silent.connections == len(hanging) * attempts
    # And the slots are free again: one more mission to a good receiver is called back.
    again = (await api.submit(hello_world(receiver.url)))[1]["msg"]["id"]
    assert int(dict((await receiver.next(timeout=30)).form())["id"]) == again
