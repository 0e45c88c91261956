"""Durability of the executor API: ``python -m service`` killed and restarted on the same data
directory keeps its blobs and jobs, and re-runs the job that was running."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.frontdoors.conftest import AUTH, SEED_CONFIG, job_zip
from tests.service.support import Api, ServerProcess, poll, server_env

pytestmark = pytest.mark.docker


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def start(servers: list[ServerProcess], env: dict[str, str]) -> tuple[ServerProcess, str]:
    """A server started on ``env`` (``servers`` kills it at the end if it still runs) and its
    URL."""
    server = ServerProcess(env)
    servers.append(server)
    return server, await server.start()


async def test_jobs_and_blobs_survive_a_crash(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner)
    server, url = await start(servers, env)

    async def create(name: str, data: bytes) -> str:
        async with session.post(
            f"{url}/rest/blob/createFile/{name}", data=data, headers=AUTH
        ) as resp:
            [job] = await resp.json()
        async with session.post(f"{url}/rest/executor/create/{job}", headers=AUTH) as resp:
            assert resp.status == 200
        return str(job)

    done = await create("seed.zip", job_zip(SEED_CONFIG))
    slow_config = {
        "cmd": "sh",
        "args": ["-c", "sleep 2; echo slept"],
        "resultArtifacts": [{"name": "out", "resultPatterns": ["job_stdout.txt"]}],
    }
    slow = await create("slow.zip", job_zip(slow_config))
    info = f"{url}/rest/executor/info/"
    first = await poll(
        lambda: get_json(session, info + done), lambda b: b["status"] == "SUCCESS", 60
    )
    await poll(lambda: get_json(session, info + slow), lambda b: b["status"] == "RUNNING", 60)
    assert await server.kill() == -9

    server, url = await start(servers, env)
    info = f"{url}/rest/executor/info/"
    assert "resuming 1 missions" in server.log
    # The finished job and its result blob are as they were.
    assert await get_json(session, info + done) == first
    result = first["resultHashes"]["all"]
    async with session.get(
        f"{url}/rest/blob/download/{result}/job_stdout.txt", headers=AUTH
    ) as resp:
        assert resp.status == 200
        assert (await resp.read()).startswith(b"some sample text")
    meta = await get_json(session, f"{url}/rest/blob/metadata/{slow}")
    assert meta["name"] == "slow.zip"
    # The interrupted job was re-run from its blob.
    again = await poll(
        lambda: get_json(session, info + slow),
        lambda b: b["status"] not in ("CREATED", "RUNNING"),
        60,
    )
    assert again["status"] == "SUCCESS", again
    async with session.get(
        f"{url}/rest/blob/download/{again['resultHashes']['out']}", headers=AUTH
    ) as resp:
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert archive.namelist() == ["job_stdout.txt"]
    assert archive.read("job_stdout.txt") == b"slept\n"
    assert await server.terminate() == 0


async def test_an_interrupted_exec_request_is_failed_not_rerun(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner)
    server, url = await start(servers, env)
    api = Api(session, url)
    script = b"#!file://python:python\nimport time\ntime.sleep(30)\n"
    headers = {
        **AUTH,
        "X-Zerovm-Execute": "1.0",
        "Content-Type": "application/python",
    }

    async def execute() -> int:
        async with session.post(f"{url}/v1/AUTH_x", data=script, headers=headers) as resp:
            return resp.status

    request = asyncio.create_task(execute())
    # The mission is stored once the request is read: poll until it is there and running.
    await poll(lambda: api.get(1), lambda r: r[0] == 200 and r[1]["state"] == "running", 60)
    assert await server.kill() == -9
    with pytest.raises(aiohttp.ClientError):
        await request

    server, url = await start(servers, env)
    api = Api(session, url)
    body = await api.wait_for(1, lambda b: b["state"] == "failed")
    assert body["error"] == "its front door can no longer run it"
    assert body["runs"] == 2
    assert body["callback"]["state"] == "waiting"  # front-door missions have no callback
    assert await server.terminate() == 0


async def test_an_artifact_job_with_streamed_output_is_rerun_after_a_crash(
    servers: list[ServerProcess],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    owner: str,
) -> None:
    env = server_env(tmp_path / "data", owner)
    server, url = await start(servers, env)
    config = {
        "cmd": "sh",
        "args": ["-c", "echo first; sleep 2; echo second"],
        "resultArtifacts": [{"name": "all", "resultPatterns": []}],
        "outputInterval": 250,
        "outputSegmentSize": 1,
    }
    content = {}
    for name, data in (("executor_config.json", json.dumps(config).encode()), ("in.txt", b"x")):
        async with session.post(
            f"{url}/rest/blob/createFile/{name}", data=data, headers=AUTH
        ) as resp:
            [(_, meta)] = (await resp.json()).items()
        content[name] = {"content": meta["content"], "contentType": "object"}
    doc = {"name": "jobInfo.zip", "mime": "application/zip", "contentType": "complex"}
    async with session.post(
        f"{url}/rest/blob/createMetadata",
        data=json.dumps({**doc, "content": content}),
        headers=AUTH,
    ) as resp:
        [job] = await resp.json()
    async with session.post(f"{url}/rest/executor/create/{job}", headers=AUTH) as resp:
        assert resp.status == 200
    info = f"{url}/rest/executor/info/{job}"
    # Killed once the first line was streamed.
    await poll(lambda: get_json(session, info), lambda b: b.get("outputNumber") == 0, 60)
    assert await server.kill() == -9

    server, url = await start(servers, env)
    info = f"{url}/rest/executor/info/{job}"
    done = await poll(
        lambda: get_json(session, info), lambda b: b["status"] not in ("CREATED", "RUNNING"), 60
    )
    assert done["status"] == "SUCCESS", done
    segments = await get_json(session, f"{url}/rest/executor/output/{job}")
    # The re-run streamed anew: numbered from 0, nothing of the first run left over.
    assert [s["outputNumber"] for s in segments] == list(range(len(segments)))
    assert "".join(s["output"] for s in segments) == "first\nsecond\n"
    assert done["outputNumber"] == len(segments) - 1
    result = done["resultHashes"]["all"]
    async with session.get(f"{url}/rest/blob/view/{result}/in.txt", headers=AUTH) as resp:
        assert await resp.read() == b"x"
    assert await server.terminate() == 0
