"""``docker-compose up -d`` of ``compose.cluster.yaml`` (PostgreSQL and two judge nodes) runs
missions submitted to either node, each readable from the other, and calls back each once."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import aiohttp
import pytest

from tests.deploy.test_compose import HostReceiver, compose_command, free_port, host_receiver
from tests.service.support import ALICE, REPO, hello_world, owned, poll, remove_owned, run

__all__ = ["host_receiver"]

pytestmark = [pytest.mark.docker, pytest.mark.deploy, pytest.mark.timeout(600)]

MISSIONS = 6


async def test_cluster_compose_runs_missions_on_both_nodes(
    host_receiver: HostReceiver, owner: str
) -> None:
    rc, _, err = await run("bash", "images/build.sh", "server")
    assert rc == 0, err
    tag = f"judgetest/postgres-{uuid.uuid4().hex[:10]}"
    project = f"judgetest{uuid.uuid4().hex[:10]}"
    ports = [free_port(), free_port()]
    compose = [*compose_command(), "-p", project, "-f", str(REPO / "compose.cluster.yaml")]
    env = {
        **os.environ,
        "JUDGE_POSTGRES_IMAGE": tag,
        "JUDGE_DB_PASSWORD": uuid.uuid4().hex,
        "JUDGE_PUBLISH_PORT_1": str(ports[0]),
        "JUDGE_PUBLISH_PORT_2": str(ports[1]),
        "JUDGE_TOKENS": ALICE,
        "JUDGE_SANDBOX_OWNER": owner,
        "JUDGE_DEFAULT_IMAGE": os.environ.get("JUDGE_TEST_IMAGE", "judge/default"),
        "JUDGE_CALLBACK_INITIAL_WAIT_S": "0.2",
        "JUDGE_CALLBACK_MAX_WAIT_S": "1",
        "JUDGE_ALLOW_PRIVATE": "host.docker.internal",
    }
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    headers = {"Authorization": f"Bearer {ALICE}"}
    try:
        rc, _, err = await run("docker", "build", "-q", "-t", tag, "images/server/postgres")
        assert rc == 0, err
        rc, out, err = await run(*compose, "up", "-d", env=env)
        assert rc == 0, out + err
        async with aiohttp.ClientSession() as session:
            for url in urls:

                async def health(url: str = url) -> int:
                    try:
                        async with session.get(f"{url}/healthz") as resp:
                            return resp.status
                    except aiohttp.ClientError:
                        return 0

                assert await poll(health, lambda s: s == 200, timeout=90) == 200

            callback = f"http://host.docker.internal:{host_receiver.port}/callback"
            submitted: dict[int, int] = {}  # mission id -> index of the node it was sent to
            for i in range(MISSIONS):
                mission = hello_world(callback, format="json")
                async with session.post(
                    f"{urls[i % 2]}/api/missions/", json={"mission": mission}, headers=headers
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    submitted[(await resp.json())["msg"]["id"]] = i % 2

            got: dict[int, dict[str, object]] = {}
            async with asyncio.timeout(120):
                while len(got) < MISSIONS:
                    body = json.loads(await host_receiver.queue.get())
                    assert body["id"] not in got, "a callback was sent twice"
                    got[body["id"]] = body
            assert sorted(got) == sorted(submitted)
            for body in got.values():
                execute = body["mission_result"]["prepare"]["execute"][0]  # type: ignore[index]
                assert execute["record"]["stdout"] == "aGVsbG8gd29ybGQK", execute

            # Each mission reads the same from the node it was not submitted to.
            for mission_id, node in submitted.items():
                async with session.get(
                    f"{urls[1 - node]}/api/missions/{mission_id}", headers=headers
                ) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["state"] == "done"
    finally:
        _, logs, _ = await run(*compose, "logs", "--no-color", env=env)
        rc, out, err = await run(*compose, "down", "-v", env=env)
        await run("docker", "image", "rm", "-f", tag)
        print(logs[-4000:])
        leftovers = [await owned(f"{owner}-{n}") for n in (1, 2)]
        for n in (1, 2):
            await remove_owned(f"{owner}-{n}")
    assert rc == 0, out + err
    assert leftovers == [([], []), ([], [])], f"sandboxes left behind: {leftovers}"
    _, volumes, _ = await run("docker", "volume", "ls", "-q", "--filter", f"name={project}")
    assert volumes.split() == []


def test_the_cluster_compose_file_passes_what_the_test_sets() -> None:
    text = (REPO / "compose.cluster.yaml").read_text()
    for name in ("JUDGE_SANDBOX_OWNER", "JUDGE_ALLOW_PRIVATE", "JUDGE_BLOCK_PRIVATE_URLS"):
        assert f"{name}:" in text, name
    assert "JUDGE_BLOCK_PRIVATE_URLS:-true" in text
