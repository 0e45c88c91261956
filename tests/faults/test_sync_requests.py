"""Synchronous requests during an engine outage: a ``?wait=`` submission waits its own time, an
exec request ``EXEC_OUTAGE_WAIT_S`` (30 s) of outage; then each answers 503 with
``Retry-After`` and its mission is cancelled, so that nothing runs later for a requester who is
gone. (Asynchronous submissions are kept: tests/faults/test_engine_outage.py.)"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.frontdoors.zerocloud.routes import EXEC_OUTAGE_WAIT_S
from tests.faults.conftest import fault_env, healthz_status
from tests.faults.harness import PrivateEngine
from tests.service.support import ALICE, Api, ServerProcess, hello_world, poll

pytestmark = pytest.mark.docker

SCRIPT = b"#!file://python2.7:python\nprint('hello')\n"


async def exec_request(session: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    headers = {
        "X-Zerovm-Execute": "1.0",
        "Content-Type": "application/python",
        "X-Auth-Token": ALICE,
    }
    async with session.post(f"{url}/v1/acct", data=SCRIPT, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def cancelled_id(body: dict[str, Any]) -> int:
    found = re.search(r"mission (\d+) was cancelled", body["error"]["message"])
    assert found, body
    return int(found.group(1))


async def test_synchronous_requests_give_up_with_503_and_cancel_their_mission(
    engine: PrivateEngine,
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    server = ServerProcess(fault_env(engine, tmp_path / "data", owner))
    servers.append(server)
    url = await server.start()
    api = Api(session, url)
    assert await healthz_status(session, url) == 200  # as a load balancer asks
    engine.kill()
    await poll(lambda: healthz_status(session, url), lambda s: s == 503, 30)

    exec_started = asyncio.get_running_loop().time()
    exec_call = asyncio.ensure_future(exec_request(session, url))
    status, body, headers = await api.submit(hello_world(api.url), params={"wait": "2"})
    assert status == 503, body
    assert body["error"]["code"] == "engine_unavailable"
    assert int(headers["Retry-After"]) > 0
    waited = cancelled_id(body)
    assert (await api.get(waited))[1]["state"] == "cancelled"

    status, body, headers = await asyncio.wait_for(exec_call, EXEC_OUTAGE_WAIT_S + 30)
    assert asyncio.get_running_loop().time() - exec_started >= EXEC_OUTAGE_WAIT_S
    assert status == 503, body
    assert body["error"]["code"] == "engine_unavailable"
    assert int(headers["Retry-After"]) > 0
    executed = cancelled_id(body)
    assert (await api.get(executed))[1]["state"] == "cancelled"

    # The engine comes back: neither runs for nobody (cancelled is final), new work runs.
    engine.start()
    await poll(lambda: healthz_status(session, url), lambda s: s == 200, 60)
    for mission_id in (waited, executed):
        assert (await api.get(mission_id))[1]["state"] == "cancelled"
