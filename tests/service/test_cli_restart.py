"""``judge run --wait`` follows a mission across a crash and restart of the server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.service.support import ALICE, REPO, Api, ServerProcess, poll, server_env

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_wait_reconnects_and_sees_the_rerun_finish(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    port = free_port()
    env = server_env(tmp_path / "data", owner, JUDGE_PORT=str(port))
    first = ServerProcess(env)
    servers.append(first)
    url = await first.start()
    api = Api(session, url)
    mission = tmp_path / "m.json"
    steps = [{"command": ["true"]}, {"command": ["sh", "-c", "sleep 2"]}]
    mission.write_text(json.dumps({"prepare": {"execute": steps}}))
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "judge_client.cli",
        "run",
        str(mission),
        "--wait",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "JUDGE_SERVER": url, "JUDGE_TOKEN": ALICE},
        cwd=REPO,
    )
    # The CLI submits in its own time: 404 until then.
    await poll(lambda: api.get(1), lambda r: r[0] == 200 and r[1]["state"] == "running", 60)
    assert await first.kill() == -9  # a crash: the mission is re-run at the next start
    second = ServerProcess(env)
    servers.append(second)
    assert await second.start() == url
    out, err = await asyncio.wait_for(cli.communicate(), 120)
    assert cli.returncode == 0, err.decode()
    body = json.loads(out)
    assert (body["state"], body["runs"]) == ("done", 2)
    assert [e["meta"]["status"] for e in body["mission_result"]["prepare"]["execute"]] == ["", ""]
    await second.terminate()
