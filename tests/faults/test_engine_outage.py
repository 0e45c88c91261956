"""The Docker engine dies under the judge: what it was running and what waits is judged once the
engine is back, with its own output, and called back once. Nothing is judged on the outage.

On the suite's private engine (tests/faults/harness.py): killing it touches nothing else.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.conftest import fault_env, until
from tests.faults.harness import PrivateEngine
from tests.service.support import Api, Receiver, ServerProcess

pytestmark = pytest.mark.docker


def burner(url: str, n: int) -> dict[str, Any]:
    """A mission of about a second whose output names it (``n``)."""
    return {
        "return": {"url": url},
        "prepare": {
            "execute": [
                {
                    "command": ["sh", "-c", f"sleep 1; echo mission {n}"],
                    "stdout": "out.txt",
                    "time_limit": 5000,
                }
            ]
        },
    }


async def healthz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_an_engine_killed_mid_burst_loses_and_misjudges_nothing(
    engine: PrivateEngine,
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    server = ServerProcess(
        fault_env(engine, tmp_path / "data", owner, JUDGE_MAX_RUNNING="2", JUDGE_MAX_QUEUED="50")
    )
    servers.append(server)
    url = await server.start()
    api = Api(session, url)
    n = 20
    ids = []
    for i in range(n):
        status, body, _ = await api.submit(burner(receiver.url, i))
        assert status == 200, body
        ids.append(body["msg"]["id"])

    # Two are running (their sandboxes exist) when the engine dies.
    await until(lambda: len(engine.docker("ps", "-q").split()) >= 2, 60, "nothing started")
    engine.kill()
    status, health = await healthz(session, url)
    assert status == 503, health
    # Submissions during the outage are accepted and kept.
    for i in range(n, n + 2):
        status, body, _ = await api.submit(burner(receiver.url, i))
        assert status == 200, body
        ids.append(body["msg"]["id"])
    engine.start()

    got = {}
    while len(got) < len(ids):
        delivery = await receiver.next(timeout=120)
        form = dict(delivery.form())
        mission_id = int(form["id"])
        assert mission_id not in got, f"mission {mission_id} called back twice"
        got[mission_id] = json.loads(form["mission_result"])
    for mission_id in ids:
        execute = got[mission_id]["prepare"]["execute"][0]
        assert execute["meta"]["status"] == "", (mission_id, execute["meta"])
        status, body = await api.get(mission_id)
        assert body["state"] == "done", body
    # Each judged with its own output.
    for i, mission_id in enumerate(ids):
        record = got[mission_id]["prepare"]["execute"][0]["record"]["stdout"]
        assert base64.b64decode(record) == f"mission {i}\n".encode(), (mission_id, record)
    assert (await healthz(session, url))[0] == 200
    # Those the outage interrupted ran again (same id), none more often than the limit allows.
    runs = [(await api.get(m))[1]["runs"] for m in ids]
    assert sum(1 for r in runs if r > 1) >= 2, runs
    assert max(runs) <= 4, runs
    # The outage was waited out, not judged: nothing ended failed, the log says it waited.
    assert any("waiting for it" in line for line in server.lines), server.log
