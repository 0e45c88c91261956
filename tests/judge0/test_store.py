"""The door's rows on both engines: inputs kept as bytes, an outcome stored once, per-token
listing, and a batch called back once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.frontdoors.judge0.repo import Judge0Repo, SubmissionRow, ended_row
from service.store.postgres import PgStore
from service.store.sqlite import SqliteStore
from tests.judge0.conftest import judge0_sql


def row(token: str, owner: str = "alice", created_at: float = 1.0) -> SubmissionRow:
    return SubmissionRow(
        token=token,
        token_hash=owner,
        mission_id=None,
        batch="b1",
        created_at=created_at,
        finished_at=None,
        language_id=71,
        params={"number_of_runs": 1},
        source_code=b"print(1)\xff",
        stdin=b"",
        expected_output=None,
        additional_files=None,
        status_id=1,
        outcome=None,
        stdout=None,
        stderr=None,
        compile_output=None,
    )


async def exercise(repo: Judge0Repo) -> None:
    first = row("t1", created_at=1.0)
    first.mission_id = 41
    await repo.insert(first)
    await repo.insert(row("t2", created_at=2.0))
    await repo.insert(row("t3", owner="bob"))
    got = await repo.by_mission(41)
    assert got is not None
    assert got.token == "t1"
    assert got.source_code == b"print(1)\xff"
    assert got.stdin == b""
    assert got.params == {"number_of_runs": 1}
    outcome = {
        "status_id": 3,
        "time": 0.01,
        "memory": 100,
        "stdout": b"\x00\xff",
        "stderr": None,
        "compile_output": None,
        "message": None,
    }
    assert await repo.finish("t1", outcome, 5.0)
    assert not await repo.finish("t1", {**outcome, "status_id": 4}, 6.0)  # once
    done = await repo.get("t1")
    assert done is not None
    assert (done.status_id, done.stdout, done.finished_at) == (3, b"\x00\xff", 5.0)
    assert done.outcome is not None
    assert done.outcome["memory"] == 100
    # What a synchronous request is handed without reading the row back is what a read gives.
    assert ended_row(first, outcome, 5.0) == done
    many = await repo.get_many(["t2", "nope", "t1", "t2"])
    assert sorted(many) == ["t1", "t2"]
    assert await repo.count("alice") == 2
    assert [r.token for r in await repo.page("alice", 0, 1)] == ["t2"]
    assert [r.token for r in await repo.page("alice", 1, 5)] == ["t1"]
    assert {r.token for r in await repo.batch_rows("b1")} == {"t1", "t2", "t3"}
    await repo.insert_batch("b1", "alice", "http://x/", 2, 1.0)
    batch = await repo.batch("b1")
    assert batch is not None
    assert batch["size"] == 2
    assert await repo.claim_batch_call("b1")
    assert not await repo.claim_batch_call("b1")
    assert await repo.sweep(4.0) == 0  # t1 ended at 5.0
    assert not await repo.delete("t1", "bob")
    assert await repo.delete("t1", "alice")
    assert await repo.get("t1") is None
    assert await repo.finish("t2", outcome, 5.0)
    assert await repo.sweep(6.0) == 1  # t2; t3 never ended
    assert await repo.get("t3") is not None


async def test_sqlite(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "db.sqlite")
    try:
        await exercise(Judge0Repo(await judge0_sql(store)))
    finally:
        await store.close()


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Any]:
    store = await PgStore.open(pg_url)
    yield store
    await store.close()


@pytest.mark.postgres
async def test_postgresql(pg_store: Any) -> None:
    await exercise(Judge0Repo(await judge0_sql(pg_store)))
