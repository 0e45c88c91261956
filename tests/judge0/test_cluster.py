"""Two nodes on one PostgreSQL database: a batch sent to one is read on the other, runs on
both (a node reads a submission's files from the door's rows), and each node compiles once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.judge0.conftest import Judge0Http, cache
from tests.service.support import remove_owned

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

A_PLUS_B = '#include <stdio.h>\nint main(){long a,b;scanf("%ld %ld",&a,&b);printf("%ld\\n",a+b);}'


async def test_a_batch_on_one_node_is_read_and_run_on_both(
    start_judge: Any, session: Any, pg_url: str, tmp_path: Path, owner: str
) -> None:
    other = f"{owner}-b"
    try:
        a, _ = await start_judge(database_url=pg_url, data_dir=tmp_path / "a")
        b, _ = await start_judge(database_url=pg_url, data_dir=tmp_path / "b", sandbox_owner=other)
        api_a = Judge0Http(session, a.url + "/judge0")
        api_b = Judge0Http(session, b.url + "/judge0")
        batch = [
            {
                "source_code": A_PLUS_B,
                "language_id": 50,
                "stdin": f"{i} {i}",
                "expected_output": str(2 * i),
            }
            for i in range(8)
        ]
        status, created, _ = await api_a.call(
            "POST", "/submissions/batch", json={"submissions": batch}
        )
        assert status == 201
        tokens = ",".join(c["token"] for c in created)
        for _ in range(600):
            _, got, _ = await api_b.call(
                "GET", "/submissions/batch", params={"tokens": tokens, "fields": "status,stdout"}
            )
            if all(s["status"]["id"] not in (1, 2) for s in got["submissions"]):
                break
            await asyncio.sleep(0.1)
        assert [s["status"]["id"] for s in got["submissions"]] == [3] * 8
        assert [s["stdout"] for s in got["submissions"]] == [f"{2 * i}\n" for i in range(8)]
        # One compile per node at most (each node has its own cache).
        assert cache(a).misses + cache(b).misses <= 2
    finally:
        await remove_owned(other)
