"""The Piston door's synchronous ``execute`` during a real engine outage: it waits its own time
(the run's limits plus ``JUDGE_PISTON_QUEUE_WAIT_S``), answers 503 with ``Retry-After`` in
Piston's error shape, and its mission is cancelled, so nothing runs later for nobody."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from tests.faults.conftest import FAULT_IMAGE, fault_env, healthz_status
from tests.faults.harness import PrivateEngine
from tests.service.support import ALICE, ServerProcess, poll

pytestmark = pytest.mark.docker

BASH_IMAGE = "judge/fault-bash"
BASH = {
    "id": "bash",
    "name": "Bash",
    "aliases": ["sh", "bash"],
    "version": "5.2.15",
    "piston": {"language": "bash", "runtime": None},
    "judge0": {"ids": [46], "name": "Bash"},
    "source_file": "script.sh",
    "compile": None,
    "run": ["bash", "{file}"],
}


def bash_image(engine: PrivateEngine) -> None:
    """``judge/fault-bash`` on the private engine: judge/base declaring Bash (its labels, plus
    the language registry's), made by a commit rather than copied from the host."""
    client = docker.DockerClient(base_url=engine.host)
    try:
        labels = dict(client.images.get(FAULT_IMAGE).labels)
        labels["judge.languages"] = json.dumps([BASH], separators=(",", ":"))
        labels["judge.languages.image"] = BASH_IMAGE
        container = client.containers.create(FAULT_IMAGE)
        try:
            container.commit(repository=BASH_IMAGE, tag="latest", conf={"Labels": labels})
        finally:
            container.remove(force=True)
    finally:
        client.close()


async def missions(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    """The caller's missions, newest first (every kind: the door's are ``piston``)."""
    headers = {"Authorization": f"Bearer {ALICE}"}
    async with session.get(f"{url}/api/missions", headers=headers) as resp:
        assert resp.status == 200
        listed: list[dict[str, Any]] = (await resp.json())["missions"]
        return listed


async def test_a_piston_execute_gives_up_with_503_and_cancels_its_mission(
    engine: PrivateEngine,
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    bash_image(engine)
    server = ServerProcess(
        fault_env(engine, tmp_path / "data", owner, JUDGE_PISTON_QUEUE_WAIT_S="1")
    )
    servers.append(server)
    url = await server.start()
    async with session.get(f"{url}/api/v2/runtimes") as resp:
        assert resp.status == 200
        assert "bash" in [r["language"] for r in await resp.json()]
    engine.kill()
    await poll(lambda: healthz_status(session, url), lambda s: s == 503, 30)

    body = {
        "language": "bash",
        "version": "*",
        "files": [{"content": "echo ran"}],
        "run_timeout": 1000,
    }
    headers = {"Authorization": f"Bearer {ALICE}"}
    started = asyncio.get_running_loop().time()
    async with session.post(f"{url}/api/v2/execute", json=body, headers=headers) as resp:
        status, answer, retry_after = resp.status, await resp.json(), resp.headers["Retry-After"]
    waited = asyncio.get_running_loop().time() - started
    assert status == 503, answer
    assert "could not be run" in answer["message"], answer
    assert int(retry_after) > 0
    assert waited >= 1.0  # it waited (the run's limits and the queue allowance) before answering
    [mission] = await missions(session, url)
    assert mission["state"] == "cancelled", mission

    # The engine comes back: it is not run for nobody (cancelled is final), and the next runs.
    engine.start()
    await poll(lambda: healthz_status(session, url), lambda s: s == 200, 60)
    async with session.post(f"{url}/api/v2/execute", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["run"]["stdout"] == "ran\n"
    listed = await missions(session, url)
    assert [m["state"] for m in listed] == ["done", "cancelled"], listed
