"""An execute that cannot run in time (every worker busy, as in an engine outage the queue
waits out) answers 503 with Retry-After after its own limits, and its mission is cancelled:
nothing runs later for nobody."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.piston.conftest import AUTH
from tests.service.conftest import StartJudge

pytestmark = pytest.mark.docker


async def test_no_worker_in_time_is_503_and_the_mission_is_cancelled(
    start_judge: StartJudge, piston_env: Callable[..., None], session: aiohttp.ClientSession
) -> None:
    piston_env(queue_wait_s=0.5)
    judge, api = await start_judge(max_running=1)
    blocker = {"prepare": {"execute": [{"command": ["sleep", "20"], "time_limit": 30000}]}}
    status, blocked, _ = await api.submit(blocker, how="bearer")
    assert status == 200
    body: dict[str, Any] = {
        "language": "python",
        "version": "*",
        "files": [{"content": "print(1)"}],
        "run_timeout": 500,
        "run_cpu_time": 500,
    }
    async with session.post(f"{judge.url}/api/v2/execute", json=body, headers=AUTH) as r:
        assert r.status == 503
        assert r.headers["Retry-After"] == "10"
        assert "retry later" in (await r.json())["message"]
    async with session.get(f"{judge.url}/api/missions?limit=5", headers=AUTH) as r:
        missions = (await r.json())["missions"]
    door = [m for m in missions if m["kind"] == "piston"]
    assert [m["state"] for m in door] == ["cancelled"]
    async with session.delete(
        f"{judge.url}/api/missions/{blocked['msg']['id']}", headers=AUTH
    ) as r:
        assert r.status in (200, 202)
