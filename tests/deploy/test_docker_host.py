"""The server reaches the engine at ``DOCKER_HOST=tcp://...``: hello world through a loopback TCP
proxy to the local socket, attach (an HTTP upgrade) included."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.service.support import (
    Api,
    Receiver,
    ServerProcess,
    hello_world,
    owned,
    remove_owned,
    server_env,
)

pytestmark = pytest.mark.docker

SOCKET = "/var/run/docker.sock"
REQUEST_LINE = re.compile(rb"(?:GET|POST|PUT|DELETE|HEAD) /\S+ HTTP/1\.1")


class TcpToUnixProxy:
    """Listens on 127.0.0.1:<free port> and pipes every connection to the engine's socket."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # the request lines the clients sent
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            engine_r, engine_w = await asyncio.open_unix_connection(SOCKET)

            async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
                try:
                    while chunk := await r.read(65536):
                        if up:
                            found = REQUEST_LINE.findall(chunk)
                            self.requests += [m.decode(errors="replace") for m in found]
                        w.write(chunk)
                        await w.drain()
                    if w.can_write_eof():
                        w.write_eof()
                except (ConnectionError, OSError):
                    pass

            try:
                await asyncio.gather(
                    pipe(client_r, engine_w, True), pipe(engine_r, client_w, False)
                )
            finally:
                engine_w.close()
        finally:
            client_w.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpToUnixProxy]:
    p = TcpToUnixProxy()
    await p.start()
    yield p
    await p.stop()


async def test_hello_world_through_docker_host_tcp(
    proxy: TcpToUnixProxy,
    receiver: Receiver,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner, DOCKER_HOST=f"tcp://127.0.0.1:{proxy.port}")
    server = ServerProcess(env)
    try:
        url = await server.start()
        api = Api(session, url)
        status, body, _ = await api.submit(hello_world(receiver.url))
        assert status == 200, body
        got = await receiver.next(timeout=60)
        result = json.loads(dict(got.form())["mission_result"])
        execute = result["prepare"]["execute"][0]
        assert execute["meta"]["status"] == "", execute
        assert execute["record"]["stdout"] == "aGVsbG8gd29ybGQK"
        assert await server.terminate() == 0
    finally:
        if server.proc is not None and server.proc.returncode is None:
            await server.kill()
        leftovers = await owned(owner)
        await remove_owned(owner)
    assert leftovers == ([], []), f"sandboxes left behind: {leftovers}"
    # Everything went through the proxy: the container's create, its attach (upgraded), removal.
    lines = proxy.requests
    assert any("/containers/create" in line for line in lines), lines
    assert any("/attach" in line for line in lines), lines
    assert any(line.startswith("DELETE /") and "/containers/" in line for line in lines), lines
