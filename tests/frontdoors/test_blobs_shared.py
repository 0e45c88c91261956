"""With PostgreSQL, a blob stored through one node is read through another: files live in the
database, not in a node's data directory."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.frontdoors.conftest import AUTH
from tests.service.conftest import StartJudge

pytestmark = pytest.mark.postgres


async def test_a_file_stored_on_one_node_is_read_on_another(
    start_judge: StartJudge, session: aiohttp.ClientSession, pg_url: str, tmp_path: Path
) -> None:
    _, a = await start_judge(database_url=pg_url, data_dir=tmp_path / "a")
    _, b = await start_judge(database_url=pg_url, data_dir=tmp_path / "b")
    data = b"shared \x00 bytes\n"
    async with session.post(
        f"{a.url}/rest/blob/createFile/notes.txt", data=data, headers=AUTH
    ) as resp:
        assert resp.status == 200
        [(blob_hash, _)] = (await resp.json()).items()
    async with session.get(f"{b.url}/rest/blob/view/{blob_hash}", headers=AUTH) as resp:
        assert resp.status == 200
        assert await resp.read() == data
    # Nothing of it is in either node's data directory.
    assert not any(p.is_file() for p in (tmp_path / "a").rglob("*") if "blobs" in p.parts)
