"""Group commit: concurrent submissions share a transaction, and each is durable when its
id comes back (no engine, a real SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from service.pipeline.handoff import Handoff
from service.pipeline.intake import Intake
from service.pipeline.progress import MissionProgress
from service.pipeline.workqueue import LocalQueue
from service.store import Database, SqliteStore
from service.store.sqlitedb import INSERT_ROWS_MAX


def mission(i: int) -> dict[str, Any]:
    return {"return": {"url": f"https://cb.example/{i}"}}


async def test_concurrent_submissions_share_commits(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "db.sqlite3")
    groups: list[int] = []
    real = store._db.insert_missions

    def counted(batch: list[Any]) -> list[int]:
        groups.append(len(batch))
        return real(batch)

    store._db.insert_missions = counted  # type: ignore[method-assign]
    try:
        ids = await asyncio.gather(
            *(store.insert_mission("t", mission(i), mission(i)) for i in range(50))
        )
        alone = await store.insert_mission("t", mission(50), mission(50))
    finally:
        await store.close()
    assert sorted(ids) == ids == list(range(1, 51))
    assert alone == 51
    assert sum(groups) == 51
    assert len(groups) < 51  # shared: far fewer transactions than submissions
    # Durable: another connection sees every row, each with its own mission.
    db = Database(tmp_path / "db.sqlite3")
    try:
        for i in (1, 25, 51):
            row = db.get_mission(i)
            assert row is not None
            assert row.mission == mission(i - 1)
            assert row.state == "queued"
    finally:
        db.close()


async def test_a_failed_group_fails_every_submission_of_it(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "db.sqlite3")

    def broken(batch: list[Any]) -> list[int]:
        raise sqlite3.OperationalError("disk I/O error")

    real = store._db.insert_missions
    store._db.insert_missions = broken  # type: ignore[method-assign]
    try:
        got = await asyncio.gather(
            *(store.insert_mission("t", mission(i), mission(i)) for i in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(g, sqlite3.OperationalError) for g in got)
        store._db.insert_missions = real  # type: ignore[method-assign]
        assert await store.insert_mission("t", mission(9), mission(9)) == 1  # nothing half-stored
    finally:
        await store.close()


def test_a_group_is_all_or_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite3")
    try:
        with pytest.raises(TypeError):
            db.insert_missions([("t", mission(0), mission(0), "mission"), ("t", {1, 2}, {}, "x")])  # type: ignore[list-item]
        assert db.counts() == {}
    finally:
        db.close()


def test_a_group_larger_than_one_insert_keeps_ids_in_order(tmp_path: Path) -> None:
    """A group is stored as few multi-row INSERTs; every id handed back is its own row's,
    across statements, and after ids that were used and deleted."""
    db = Database(tmp_path / "db.sqlite3")
    try:
        first = db.insert_missions([("t", mission(-1), mission(-1), "mission")])
        db._conn.execute("DELETE FROM missions")  # AUTOINCREMENT never hands out id 1 again
        n = 2 * INSERT_ROWS_MAX + 7
        ids = db.insert_missions([("t", mission(i), mission(i), "mission") for i in range(n)])
        assert ids == list(range(first[0] + 1, first[0] + 1 + n))
        for i in (0, INSERT_ROWS_MAX - 1, INSERT_ROWS_MAX, n - 1):
            row = db.get_mission(ids[i])
            assert row is not None
            assert row.mission == mission(i)
    finally:
        db.close()


def test_a_group_of_several_inserts_is_all_or_nothing(tmp_path: Path) -> None:
    """A refusal in the last INSERT of a group takes back the ones before it."""
    db = Database(tmp_path / "db.sqlite3")
    try:
        db._conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON missions WHEN NEW.token_hash = 'bad'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        batch = [("t", mission(i), mission(i), "mission") for i in range(2 * INSERT_ROWS_MAX)]
        batch.append(("bad", mission(0), mission(0), "mission"))
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            db.insert_missions(batch)
        assert db.counts() == {}
    finally:
        db.close()


async def test_a_submission_whose_caller_is_cancelled_is_stored_and_queued(
    tmp_path: Path,
) -> None:
    """Intake hands a plain submission to the group commit without a task of its own: the
    mission is still stored, queued and told as queued when its caller goes away mid-commit."""
    store = await SqliteStore.open(tmp_path / "db.sqlite3")
    queue = LocalQueue(store, owner="judge", lease_s=20.0)
    progress = MissionProgress(store)
    heard: list[tuple[int, str, dict[str, Any]]] = []
    progress.add_listener(lambda *told: heard.append(told))
    intake = Intake(Handoff(store, queue, progress), max_queued=10, max_running=1)
    intake.open()
    entered, leave = threading.Event(), threading.Event()
    real = store._db.insert_missions

    def held(batch: list[Any]) -> list[int]:
        entered.set()
        leave.wait(10)
        return real(batch)

    store._db.insert_missions = held  # type: ignore[method-assign]
    try:
        caller = asyncio.ensure_future(intake.submit("t", mission(1), mission(1)))
        await asyncio.to_thread(entered.wait, 10)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert queue.depth == 0  # not queued before it is committed
        assert intake.admission.reserved == 0  # its place is given back with the caller
        leave.set()
    finally:
        leave.set()
        await store.close()  # waits for the group being written
    assert queue.depth == 1
    assert await queue.take() == 1
    assert heard == [(1, "state", {"state": "queued"})]
    db = Database(tmp_path / "db.sqlite3")
    try:
        row = db.get_mission(1)
        assert row is not None
        assert row.mission == mission(1)
    finally:
        db.close()
