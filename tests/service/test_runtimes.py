"""``mission.runtime``: the JUDGE_RUNTIMES allowlist at submission, ``GET /api/runtimes``, and a
mission that really runs under gVisor when the engine offers it."""

from __future__ import annotations

import base64

import pytest

from orchestrator.sandbox.engine import open_runtime
from orchestrator.sandbox.sandbox import SandboxConfig
from tests.service.conftest import StartJudge
from tests.service.support import ALICE, Receiver, hello_world

pytestmark = pytest.mark.docker


async def engine_runtimes() -> list[str]:
    async with open_runtime(SandboxConfig(), threads=2) as rt:
        return await rt.adapter.runtimes()


async def test_an_unlisted_runtime_is_400_naming_mission_runtime(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    judge, api = await start_judge(runtimes=("runc",))
    for runtime in ("runsc", "kata", ""):
        status, body, _ = await api.submit({**hello_world(receiver.url), "runtime": runtime})
        assert status == 400, body
        assert body["error"]["path"] == "mission.runtime", body
    assert await judge.app_store_counts() == {}


async def test_a_listed_runtime_the_engine_lacks_is_503(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    _, api = await start_judge(runtimes=("runc", "no-such-runtime"))
    status, body, headers = await api.submit(
        {**hello_world(receiver.url), "runtime": "no-such-runtime"}
    )
    assert status == 503, body
    assert "Retry-After" in headers


async def test_runtimes_route_says_what_is_allowed_and_offered(start_judge: StartJudge) -> None:
    _, api = await start_judge(runtimes=("runc", "no-such-runtime"))
    async with api.session.get(f"{api.url}/api/runtimes") as resp:
        assert resp.status == 401
    async with api.session.get(
        f"{api.url}/api/runtimes", headers={"Authorization": f"Bearer {ALICE}"}
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["runtimes"] == [
        {"name": "runc", "available": True},
        {"name": "no-such-runtime", "available": False},
    ]
    assert "runc" in body["engine"]


async def test_a_mission_runs_under_runsc_when_asked(
    start_judge: StartJudge, receiver: Receiver
) -> None:
    if "runsc" not in await engine_runtimes():
        pytest.skip("the engine offers no runsc (JUDGE_RUNTIMES=runc,runsc make engine)")
    _, api = await start_judge(runtimes=("runc", "runsc"))
    mission = {
        "return": {"url": receiver.url, "format": "json"},
        "runtime": "runsc",
        "prepare": {"execute": [{"command": ["uname", "-r"], "stdout": "out.txt"}]},
    }
    status, body, _ = await api.submit(mission)
    assert status == 200, body
    got = (await receiver.next()).json()
    assert got["mission"]["runtime"] == "runsc"
    entry = got["mission_result"]["prepare"]["execute"][0]
    assert entry["meta"]["status"] == "", entry
    # gVisor's own kernel answers, not the host's.
    assert base64.b64decode(entry["record"]["stdout"]) == b"4.4.0\n"
