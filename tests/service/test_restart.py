"""Durability: ``python -m service`` killed, stopped and restarted on the same data directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.service.support import (
    Api,
    Receiver,
    ServerProcess,
    all_removed,
    hello_world,
    owned,
    poll,
    server_env,
    sleeper,
)

pytestmark = pytest.mark.docker


async def start(
    servers: list[ServerProcess], session: aiohttp.ClientSession, env: dict[str, str]
) -> tuple[ServerProcess, Api]:
    server = ServerProcess(env)
    servers.append(server)
    url = await server.start()
    return server, Api(session, url)


async def running_sleeper(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    env: dict[str, str],
    seconds: float,
) -> tuple[ServerProcess, Api]:
    """A server started on ``env`` whose mission 1, a sleeper of ``seconds`` calling back to
    ``receiver``, is running."""
    server, api = await start(servers, session, env)
    assert (await api.submit(sleeper(receiver.url, seconds)))[0] == 200
    await api.wait_for(1, lambda b: b["state"] == "running")
    return server, api


def outcome(got: Any) -> tuple[int, dict[str, Any]]:
    fields = dict(got.form())
    execute = json.loads(fields["mission_result"])["prepare"]["execute"][0]
    return int(fields["id"]), execute["meta"]


async def test_sigkill_with_missions_running_and_queued(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner, JUDGE_MAX_RUNNING="2")
    server, api = await start(servers, session, env)
    ids = [(await api.submit(sleeper(receiver.url, 3)))[1]["msg"]["id"] for _ in range(4)]
    assert ids == [1, 2, 3, 4]
    # Two run (their sandboxes exist), two wait.
    for mission_id in (1, 2):
        await api.wait_for(mission_id, lambda b: b["state"] == "running")
    await poll_owned(owner, lambda c: len(c) == 2)
    assert [(await api.get(i))[1]["state"] for i in (3, 4)] == ["queued", "queued"]

    assert await server.kill() == -9
    containers, volumes = await owned(owner)
    assert len(containers) == 2  # orphans of the crash
    assert len(volumes) in (0, 2)  # none when /box is the container's own tmpfs
    assert receiver.queue.empty()

    t0 = time.perf_counter()
    server, api = await start(servers, session, env)
    assert f"removed 2 containers and {len(volumes)} volumes left over" in server.log
    assert "resuming 4 missions and 0 callbacks" in server.log
    got = [outcome(await receiver.next(timeout=60)) for _ in range(4)]
    took = time.perf_counter() - t0
    print(f"\nafter SIGKILL: 4 missions of 3 s re-run on 2 workers in {took:.2f} s")
    assert sorted(mission_id for mission_id, _ in got) == ids  # each once, ids kept
    for _, meta in got:
        assert meta["status"] == "", meta
        assert meta["real-time-usage"] >= 3000
    # The sandboxes are removed in the background, off the callbacks' path.
    await all_removed(owner)
    for mission_id in ids:
        body = await api.wait_for(mission_id, lambda b: b["callback"]["state"] == "delivered")
        assert body["state"] == "done"
        assert body["runs"] == (2 if mission_id <= 2 else 1)
    assert await server.terminate() == 0
    assert receiver.queue.empty()


async def poll_owned(owner: str, check: Any, timeout: float = 30.0) -> None:
    await poll(lambda: owned(owner), lambda cv: check(cv[0]), timeout)


async def test_callback_resumes_after_restart_with_the_receiver_down(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    # A port that refuses connections: a receiver started and stopped.
    receiver = Receiver()
    await receiver.start()
    await receiver.stop()
    env = server_env(tmp_path / "data", owner, JUDGE_CALLBACK_SECRET="k")
    server, api = await start(servers, session, env)
    assert (await api.submit(hello_world(receiver.url)))[0] == 200
    before = await api.wait_for(1, lambda b: b["callback"]["attempts"] >= 2)
    assert before["state"] == "done"
    assert before["callback"]["state"] == "pending"
    assert "cannot connect" in before["callback"]["error"]
    assert await server.terminate() == 0

    await receiver.start(port=receiver.port)
    try:
        server, api = await start(servers, session, env)
        assert "resuming 0 missions and 1 callbacks" in server.log
        got = await receiver.next(timeout=30)
        fields = dict(got.form())
        assert fields["id"] == "1"
        result = json.loads(fields["mission_result"])
        assert result["prepare"]["execute"][0]["record"]["stdout"] == "aGVsbG8gd29ybGQK"
        after = await api.wait_for(1, lambda b: b["callback"]["state"] == "delivered")
        assert after["callback"]["attempts"] > before["callback"]["attempts"]
        assert after["runs"] == 1  # the mission was not run again
        assert await server.terminate() == 0
        assert receiver.queue.empty()
    finally:
        await receiver.stop()


async def test_sigterm_lets_a_running_mission_finish(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner, JUDGE_SHUTDOWN_GRACE_S="30")
    server, _ = await running_sleeper(servers, session, receiver, env, 2)
    t0 = time.perf_counter()
    assert await server.terminate() == 0
    took = time.perf_counter() - t0
    # It waited for the mission (not the whole grace) and delivered its callback before exiting.
    assert took < 15
    mission_id, meta = outcome(receiver.queue.get_nowait())
    assert mission_id == 1
    assert meta["status"] == ""
    assert "stopped" in server.lines[-1]


async def test_sigterm_past_the_grace_resumes_the_mission_at_restart(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner, JUDGE_SHUTDOWN_GRACE_S="0.5")
    server, _ = await running_sleeper(servers, session, receiver, env, 4)
    t0 = time.perf_counter()
    assert await server.terminate(timeout=20) == 0
    assert time.perf_counter() - t0 < 5  # the grace, then the mission is cut short
    assert "1 missions still running" in server.log
    assert receiver.queue.empty()
    assert await owned(owner) == ([], [])  # cut short, but its sandbox was removed

    server, api = await start(servers, session, env)
    mission_id, meta = outcome(await receiver.next(timeout=30))
    assert mission_id == 1
    assert meta["status"] == ""
    assert (await api.wait_for(1, lambda b: b["state"] == "done"))["runs"] == 2
    assert await server.terminate() == 0


async def test_the_server_refuses_bad_settings(tmp_path: Path, owner: str) -> None:
    server = ServerProcess(server_env(tmp_path, owner, JUDGE_MAX_RUNNING="0"))
    with pytest.raises(AssertionError, match="JUDGE_MAX_RUNNING"):
        await server.start()
    assert server.proc is not None
    assert await server.proc.wait() == 1


async def test_warm_sandboxes_of_a_crashed_server_are_swept(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    image = os.environ.get("JUDGE_TEST_IMAGE", "judge/default")
    env = server_env(tmp_path / "data", owner, JUDGE_POOL=f"{image}=2", JUDGE_POOL_MAX="2")
    server, api = await start(servers, session, env)

    async def ready() -> int:
        async with session.get(f"{api.url}/healthz") as resp:
            return int((await resp.json())["pool"]["images"][image]["ready"])

    await poll(ready, lambda n: n == 2, 60)
    assert await server.kill() == -9
    containers, _ = await owned(owner)
    assert len(containers) == 2  # the warm ones, labelled with the owner

    server, api = await start(servers, session, env)
    assert "removed 2 containers" in server.log
    await poll(ready, lambda n: n == 2, 60)  # a fresh pool, none of the old sandboxes
    after, _ = await owned(owner)
    assert not set(after) & set(containers)
    status, _, _ = await api.submit(hello_world(receiver.url))
    assert status == 200
    assert outcome(await receiver.next(timeout=60))[1]["status"] == ""
    assert await server.terminate() == 0
    await all_removed(owner)  # the pool removed its own at shutdown
