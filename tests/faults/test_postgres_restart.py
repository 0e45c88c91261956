"""PostgreSQL restarts (as a crash: immediate stop) under two judge nodes: both reconnect,
nothing accepted is lost, and each callback is delivered at least once, a repeat only with the
same delivery id. On a cluster of the test's own and the suite's private engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import pgcluster
from tests.faults.conftest import fault_env
from tests.faults.harness import PrivateEngine
from tests.service.support import Api, Receiver, ServerProcess, poll, sleeper
from tests.service.test_cluster import called_back

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


@pytest.fixture
def cluster() -> Iterator[pgcluster.Cluster]:
    own = pgcluster.Cluster()
    try:
        own.start()
        yield own
    finally:
        own.remove()


async def healthy(session: aiohttp.ClientSession, api: Api) -> bool:
    async with session.get(f"{api.url}/healthz") as resp:
        return resp.status == 200


async def test_postgres_restarted_under_two_nodes_loses_nothing(
    engine: PrivateEngine,
    cluster: pgcluster.Cluster,
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
) -> None:
    apis = []
    for name in ("a", "b"):
        env = fault_env(
            engine,
            tmp_path / name,
            owner if name == "a" else f"{owner}-b",
            JUDGE_DATABASE_URL=cluster.url,
            JUDGE_LEASE_S="3",
            JUDGE_CALLBACK_SECRET="cluster-secret",  # callbacks carry their delivery id
        )
        server = ServerProcess(env)
        servers.append(server)
        apis.append(Api(session, await server.start()))

    ids: list[int] = []
    for i in range(8):
        status, body, _ = await apis[i % 2].submit(sleeper(receiver.url, 0.5))
        assert status == 200, body
        ids.append(body["msg"]["id"])

    first = called_back(await receiver.next(timeout=60))
    seen: dict[int, set[str]] = {first[0]: {first[1]}}
    results: dict[int, Any] = {first[0]: first[2]}
    cluster.stop()  # a crash: connections cut, nothing checkpointed
    await asyncio.sleep(2)  # the outage itself (not a synchronisation)
    cluster.start()

    # Both nodes reconnect by themselves.
    for api in apis:
        await poll(lambda a=api: healthy(session, a), bool, 60)
    while set(results) != set(ids):
        mission_id, delivery_id, execute = called_back(await receiver.next(timeout=90))
        seen.setdefault(mission_id, set()).add(delivery_id)
        results[mission_id] = execute
    for mission_id in ids:
        assert len(seen[mission_id]) == 1, f"mission {mission_id}: repeats with new delivery ids"
        assert results[mission_id]["meta"]["status"] == "", results[mission_id]
        # A delivery whose state could not be stored during the outage is sent again (same
        # delivery id) and stored then: poll for it.
        await apis[0].wait_for(
            mission_id,
            lambda b: b["state"] == "done" and b["callback"]["state"] == "delivered",
            60,
        )
    while not receiver.queue.empty():  # repeats that came meanwhile: the same delivery id
        mission_id, delivery_id, _ = called_back(receiver.queue.get_nowait())
        assert seen[mission_id] == {delivery_id}, (mission_id, seen[mission_id], delivery_id)
    # And both take new work.
    for api in apis:
        status, body, _ = await api.submit(sleeper(receiver.url, 0))
        assert status == 200, body
        mission_id = body["msg"]["id"]
        while called_back(await receiver.next(timeout=60))[0] != mission_id:
            pass
