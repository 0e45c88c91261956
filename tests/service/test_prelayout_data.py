"""Data written before the layout redesign (commit 1341b78) opens and serves unchanged: a SQLite
data directory and a PostgreSQL database (tests/fixtures/prelayout, made by its make.py with
that commit's code). The server finds its token, its finished missions as they were, runs the
mission left queued, and the WebGME door serves its blobs and its job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests import pgcluster
from tests.service.conftest import StartJudge
from tests.service.support import REPO, poll

pytestmark = pytest.mark.docker

FIXTURES = REPO / "tests" / "fixtures" / "prelayout"
FACTS: dict[str, Any] = json.loads((FIXTURES / "facts.json").read_text())
# The fixtures' records (December 2026) grow older: the longest retention keeps them (until
# 2036, when the fixtures must be made again).
KEEP = {"retention_s": 10 * 365 * 86400.0, "tokens": ()}


async def check_serves(url: str, facts: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {facts['token']}"}
    missions = facts["missions"]
    async with aiohttp.ClientSession(headers=headers) as session:

        async def mission(name: str) -> dict[str, Any]:
            async with session.get(f"{url}/api/missions/{missions[name]}") as resp:
                assert resp.status == 200, await resp.text()
                body: dict[str, Any] = await resp.json()
                return body

        done = await mission("done")
        assert (done["state"], done["runs"]) == ("done", 1)
        assert done["callback"] == {"state": "delivered", "attempts": 1, "error": ""}
        assert done["mission_result"]["prepare"]["execute"][0]["record"]["stdout"] == "aGkK"
        assert (await mission("cancelled"))["state"] == "cancelled"
        # Left queued by the old server: this one runs it.
        ran = await poll(lambda: mission("queued"), lambda m: m["state"] == "done", 60)
        meta = ran["mission_result"]["prepare"]["execute"][0]["meta"]
        assert (meta["status"], meta["exit-code"]) == ("", 0)

        blobs = facts["blobs"]
        async with session.get(f"{url}/rest/blob/download/{blobs['text']}") as resp:
            assert resp.status == 200
            assert await resp.read() == b"hello from before\n"
        async with session.get(f"{url}/rest/blob/metadata/{blobs['text']}") as resp:
            assert (await resp.json())["name"] == "hello.txt"
        async with session.get(f"{url}/rest/executor/info/{blobs['job_zip']}") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "SUCCESS"
        async with session.get(f"{url}/rest/executor/output/{blobs['job_zip']}") as resp:
            assert [o["output"] for o in await resp.json()] == ["hi\n"]


async def test_a_sqlite_data_directory_of_before_serves_unchanged(
    start_judge: StartJudge, tmp_path: Path
) -> None:
    data_dir = shutil.copytree(FIXTURES / "sqlite", tmp_path / "data")
    judge, _ = await start_judge(data_dir=data_dir, **KEEP)
    await check_serves(judge.url, FACTS["sqlite"])


@pytest.mark.postgres
async def test_a_postgresql_database_of_before_serves_unchanged(
    start_judge: StartJudge, tmp_path: Path, pg_server: str
) -> None:
    database_url = await pgcluster.fresh_database(pg_server)
    conn = await asyncpg.connect(database_url)
    try:
        # psql's meta-commands (pg_dump's \\restrict lines) are not SQL: left out.
        dump = (FIXTURES / "postgres.sql").read_text().splitlines()
        await conn.execute("\n".join(line for line in dump if not line.startswith("\\")))
    finally:
        await conn.close()
    judge, _ = await start_judge(database_url=database_url, data_dir=tmp_path, **KEEP)
    await check_serves(judge.url, FACTS["postgres"])
