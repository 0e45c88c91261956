"""Two judge nodes (server processes) sharing one PostgreSQL database.

Each node has its own data directory and sandbox owner label (as if on its own Docker host;
here both share the local engine). Missions go to either node and run on either; a node
SIGKILLed with missions running loses none: another node re-runs them once their leases
expire, and each is called back with its own result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service.pipeline.callbacks import DELIVERY_HEADER
from tests.pgcluster import free_port
from tests.service.support import (
    Api,
    Receiver,
    ServerProcess,
    hello_world,
    owned,
    poll,
    remove_owned,
    server_env,
    sleeper,
)

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

LEASE_S = "3"


async def node(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    data_dir: Path,
    owner: str,
    pg_url: str,
    **extra: str,
) -> tuple[ServerProcess, Api]:
    env = server_env(
        data_dir,
        owner,
        JUDGE_DATABASE_URL=pg_url,
        JUDGE_LEASE_S=LEASE_S,
        JUDGE_CALLBACK_SECRET="cluster-secret",  # so callbacks carry their delivery id
        **extra,
    )
    server = ServerProcess(env)
    servers.append(server)
    return server, Api(session, await server.start())


def called_back(got: Any) -> tuple[int, str, dict[str, Any]]:
    fields = dict(got.form())
    result = json.loads(fields["mission_result"])
    return int(fields["id"]), got.headers[DELIVERY_HEADER], result["prepare"]["execute"][0]


async def submit(api: Api, mission: dict[str, Any]) -> int:
    status, body, _ = await api.submit(mission)
    assert status == 200, body
    return int(body["msg"]["id"])


async def test_missions_go_to_either_node_and_are_read_and_cancelled_on_the_other(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
    pg_url: str,
) -> None:
    other = f"{owner}-b"
    try:
        _, a = await node(servers, session, tmp_path / "a", owner, pg_url)
        _, b = await node(servers, session, tmp_path / "b", other, pg_url)
        ids = [await submit(api, hello_world(receiver.url)) for api in (a, b, a, b)]
        assert len(set(ids)) == 4  # ids are global
        got = {}
        for _ in ids:
            mission_id, _, execute = called_back(await receiver.next(60))
            got[mission_id] = execute
        assert sorted(got) == sorted(ids)
        for mission_id in ids:
            for api in (a, b):  # readable on both nodes
                status, body = await api.get(mission_id)
                assert status == 200, body
                assert body["state"] == "done"

        # A long mission submitted on A is cancelled through B, wherever it runs.
        long_id = await submit(a, sleeper(receiver.url, 120))
        await b.wait_for(long_id, lambda body: body["state"] == "running")
        status, body = await b.delete(long_id)
        assert status in (200, 202), body
        await a.wait_for(long_id, lambda body: body["state"] == "cancelled", timeout=60)
        mission_id, _, execute = called_back(await receiver.next(60))
        assert mission_id == long_id
        assert execute["meta"]["status"] == "SE"
    finally:
        for server in servers:
            await server.terminate()
        await remove_owned(other)


async def test_a_killed_node_loses_no_mission(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    receiver: Receiver,
    tmp_path: Path,
    owner: str,
    pg_url: str,
) -> None:
    survivor = f"{owner}-b"
    try:
        victim, a = await node(
            servers, session, tmp_path / "a", owner, pg_url, JUDGE_MAX_RUNNING="2"
        )
        ids = [await submit(a, sleeper(receiver.url, 12)) for _ in range(3)]
        for mission_id in ids[:2]:
            await a.wait_for(mission_id, lambda body: body["state"] == "running")
        await poll(lambda: owned(owner), lambda o: len(o[0]) == 2, 60)

        _, b = await node(servers, session, tmp_path / "b", survivor, pg_url)
        assert await victim.kill() == -9
        # The killed node's sandboxes stay: B sweeps only its own.
        assert len((await owned(owner))[0]) == 2

        got: dict[int, tuple[str, dict[str, Any]]] = {}
        while len(got) < 3:
            mission_id, delivery_id, execute = called_back(await receiver.next(90))
            got[mission_id] = (delivery_id, execute)
        assert sorted(got) == ids
        bodies = {}
        for mission_id in ids:
            status, body = await b.get(mission_id)
            assert status == 200, body
            bodies[mission_id] = body
            delivery_id, execute = got[mission_id]
            assert (body["state"], execute["meta"]["status"]) == ("done", ""), execute
            assert delivery_id  # the same one whichever node calls back (store tests)
        # The two A was running when it died ran again on B; the queued one ran once.
        assert [bodies[i]["runs"] for i in ids] == [2, 2, 1]

        # A restarting sweeps its own leftovers, and only those: B keeps running a mission
        # (its sandbox on the same engine) while A starts, and finishes it.
        left_containers, left_volumes = await owned(owner)
        await poll(lambda: owned(survivor), lambda o: o == ([], []), 60)  # removals done
        held = await submit(b, sleeper(receiver.url, 6))
        await b.wait_for(held, lambda body: body["state"] == "running")
        await poll(lambda: owned(survivor), lambda o: len(o[0]) == 1, 60)
        restarted, _ = await node(servers, session, tmp_path / "a", owner, pg_url)
        swept = f"removed {len(left_containers)} containers and {len(left_volumes)} volumes"
        assert swept in restarted.log
        assert await owned(owner) == ([], [])
        mission_id, _, execute = called_back(await receiver.next(60))
        assert mission_id == held
        assert execute["meta"]["status"] == "", execute
    finally:
        for server in servers:
            await server.terminate()
        await remove_owned(survivor)


async def test_nodes_sharing_a_port_each_serve_and_see_every_mission(
    servers: list[ServerProcess],
    tmp_path: Path,
    owner: str,
    pg_url: str,
) -> None:
    # JUDGE_REUSE_PORT: the kernel spreads connections over both nodes; whichever answers a
    # later request sees the mission the other stored.
    port = str(free_port())
    other = f"{owner}-b"
    try:
        nodes = []
        for data_dir, label in ((tmp_path / "a", owner), (tmp_path / "b", other)):
            env = server_env(
                data_dir, label, JUDGE_DATABASE_URL=pg_url, JUDGE_PORT=port, JUDGE_REUSE_PORT="1"
            )
            server = ServerProcess(env)
            servers.append(server)
            nodes.append(server)
            url = await server.start()
        # A connection per request, so that each may reach either node.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as fresh:
            api = Api(fresh, url)
            ids = [await submit(api, hello_world("http://127.0.0.1:9/")) for _ in range(24)]
            for mission_id in ids:
                status, _ = await api.get(mission_id)
                assert status == 200
        for server in nodes:
            assert await server.terminate() == 0
        # Counted once they stopped: every line a node logged is read by then.
        served = [sum("POST /api/missions/" in line for line in n.lines) for n in nodes]
        assert sum(served) == 24
        assert all(served), served  # both answered (all 24 on one: 1 in 2**23)
    finally:
        # A node still running (the test failed early) would refill its pool after the removal.
        for server in servers:
            if server.proc is not None and server.proc.returncode is None:
                await server.terminate()
        await remove_owned(other)
