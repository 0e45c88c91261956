"""``docker-compose up -d`` of ``compose.yaml`` brings up a server that runs the hello world for a
client on the host and calls back a receiver on the host (through ``host.docker.internal``)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from service.settings import Settings
from tests.service.support import ALICE, REPO, hello_world, owned, poll, remove_owned, run

pytestmark = [pytest.mark.docker, pytest.mark.deploy, pytest.mark.timeout(600)]


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HostReceiver:
    """A callback receiver on 0.0.0.0, so containers reach it through the host gateway."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.queue.put_nowait(await request.read())
        return web.Response(text="thanks")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def host_receiver() -> AsyncIterator[HostReceiver]:
    rx = HostReceiver()
    await rx.start()
    yield rx
    await rx.stop()


async def test_compose_up_runs_hello_world(host_receiver: HostReceiver, owner: str) -> None:
    rc, _, err = await run("bash", "images/build.sh", "server")
    assert rc == 0, err
    port = free_port()
    project = f"judgetest{uuid.uuid4().hex[:10]}"
    compose = [*compose_command(), "-p", project, "-f", str(REPO / "compose.yaml")]
    env = {
        **os.environ,
        "JUDGE_PUBLISH_PORT": str(port),
        "JUDGE_TOKENS": ALICE,
        "JUDGE_SANDBOX_OWNER": owner,
        "JUDGE_DEFAULT_IMAGE": os.environ.get("JUDGE_TEST_IMAGE", "judge/default"),
        "JUDGE_CALLBACK_INITIAL_WAIT_S": "0.2",
        "JUDGE_CALLBACK_MAX_WAIT_S": "1",
        # Private addresses are blocked by default; the receiver on the host is opened by name.
        "JUDGE_ALLOW_PRIVATE": "host.docker.internal",
    }
    url = f"http://127.0.0.1:{port}"
    try:
        rc, out, err = await run(*compose, "up", "-d", env=env)
        assert rc == 0, out + err
        async with aiohttp.ClientSession() as session:

            async def health() -> int:
                try:
                    async with session.get(f"{url}/healthz") as resp:
                        return resp.status
                except aiohttp.ClientError:
                    return 0

            assert await poll(health, lambda s: s == 200, timeout=60) == 200

            mission = hello_world(f"http://host.docker.internal:{host_receiver.port}/callback")
            mission["return"]["format"] = "json"
            headers = {"Authorization": f"Bearer {ALICE}"}
            async with session.post(
                f"{url}/api/missions/", json={"mission": mission}, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                mission_id = (await resp.json())["msg"]["id"]
            async with asyncio.timeout(60):
                got = json.loads(await host_receiver.queue.get())
            assert got["id"] == mission_id
            execute = got["mission_result"]["prepare"]["execute"][0]
            assert execute["meta"]["status"] == "", execute
            assert execute["record"]["stdout"] == "aGVsbG8gd29ybGQK"

        # Docker's own healthcheck (the image's command) agrees.
        rc, cid, err = await run(*compose, "ps", "-q", "judge", env=env)
        assert rc == 0, err

        async def state() -> str:
            fmt = "{{.State.Health.Status}}"
            _, out, _ = await run("docker", "inspect", "-f", fmt, cid.strip())
            return out.strip()

        assert await poll(state, lambda s: s == "healthy", timeout=60) == "healthy"
    finally:
        _, logs, _ = await run(*compose, "logs", "--no-color", env=env)
        rc, out, err = await run(*compose, "down", "-v", env=env)
        print(logs[-4000:])
        leftovers = await owned(owner)
        await remove_owned(owner)
    assert rc == 0, out + err
    assert leftovers == ([], []), f"sandboxes left behind: {leftovers}"
    _, volumes, _ = await run("docker", "volume", "ls", "-q", "--filter", f"name={project}")
    assert volumes.split() == []


def test_the_compose_file_names_every_setting() -> None:
    text = (REPO / "compose.yaml").read_text()
    names = Settings.variables()
    missing = sorted(n for n in names if f"{n}:" not in text)
    assert missing == [], f"compose.yaml does not pass {missing}"
    assert Path(REPO / "images/server/Dockerfile").is_file()
