"""A front door's own tables on both engines: its migrations applied once, in order, its
statements (one text for both engines) run through ``store.sql``, and a transaction spanning
them and the store's missions (``run_in_transaction``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.store import PgStore, SqliteStore, Storage
from service.store.protocols import Transaction
from service.store.sql import Statement
from service.store.transactions import TransactionSuspended

V1 = "CREATE TABLE door_things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL);"
V2 = (
    "ALTER TABLE door_things ADD COLUMN size INTEGER NOT NULL DEFAULT 0;"
    " CREATE INDEX door_things_name ON door_things(name);"
)
PUT = Statement("INSERT INTO door_things (id, name, at, size) VALUES (:id, :name, :now, :size)")
GET = Statement("SELECT id, name, size FROM door_things WHERE id = :id")
ALL = Statement("SELECT id, name, size FROM door_things ORDER BY id")
NAMES = Statement("SELECT name FROM door_things ORDER BY id")
ADD_IF_MISSING = (
    "-- the column came with V2 on some databases\n"
    "ALTER TABLE door_things ADD COLUMN IF NOT EXISTS size INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE door_things ADD COLUMN IF NOT EXISTS note TEXT NOT NULL DEFAULT 'n;o';"
)
KEPT = Statement("SELECT id AS mission_id FROM door_things")
MISSION: dict[str, Any] = {"tasks": {"task": []}}
GROW = Statement("UPDATE door_things SET size = size + :by WHERE name = :name")


class DoorSqlTests:
    async def test_migrations_apply_once_and_in_order(self, store: Storage) -> None:
        assert await store.sql.migrate_door("things", [V1]) == 1
        assert await store.sql.migrate_door("things", [V1, V2]) == 2
        assert await store.sql.migrate_door("things", [V1, V2]) == 2  # nothing to do
        assert await store.sql.execute(PUT, id=1, name="a", now=1.5, size=3) == 1
        assert await store.sql.fetch_one(GET, id=1) == {"id": 1, "name": "a", "size": 3}
        # Another door keeps its own version.
        assert await store.sql.migrate_door("other", []) == 0

    async def test_statements_and_a_batch_in_one_transaction(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1, V2])
        counts = await store.sql.batch(
            [(PUT, {"id": i, "name": "x", "now": 0.0, "size": i}) for i in (1, 2)]
            + [(GROW, {"by": 10, "name": "x"})]
        )
        assert counts == [1, 1, 2]
        assert await store.sql.fetch_all(ALL) == [
            {"id": 1, "name": "x", "size": 11},
            {"id": 2, "name": "x", "size": 12},
        ]
        assert await store.sql.fetch_one(GET, id=9) is None
        # A failing step (a duplicate key) leaves nothing of the batch behind.
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await store.sql.batch(
                [
                    (GROW, {"by": 100, "name": "x"}),
                    (PUT, {"id": 1, "name": "y", "now": 0.0, "size": 0}),
                ]
            )
        assert [r["size"] for r in await store.sql.fetch_all(ALL)] == [11, 12]

    async def test_a_failing_migration_leaves_the_version_as_it_was(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1])
        with pytest.raises(Exception, match=r"(?i)syntax"):
            await store.sql.migrate_door(
                "things", [V1, "CREATE TABLE door_more (a INTEGER); NOPE;"]
            )
        assert await store.sql.migrate_door("things", [V1, V2]) == 2
        assert await store.sql.execute(PUT, id=1, name="a", now=0.0, size=1) == 1

    async def test_add_column_if_not_exists_adds_only_what_is_missing(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1, V2])
        assert await store.sql.migrate_door("things", [V1, V2, ADD_IF_MISSING]) == 3
        await store.sql.execute(PUT, id=1, name="a", now=0.0, size=2)
        note = Statement("SELECT size, note FROM door_things WHERE id = :id")
        assert await store.sql.fetch_one(note, id=1) == {"size": 2, "note": "n;o"}

    async def test_a_transaction_commits_a_door_row_with_its_mission(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1, V2])

        async def both(tx: Transaction) -> int:
            mission_id = await tx.insert_mission("tok", MISSION, {}, "things")
            await tx.execute(PUT, id=mission_id, name="m", now=0.0, size=0)
            row = await tx.fetch_one(GET, id=mission_id)  # its own write, seen inside
            assert row is not None
            return mission_id

        mission_id = await store.sql.run_in_transaction(both)
        row = await store.missions.get_mission(mission_id)
        assert row is not None
        assert (row.kind, row.state) == ("things", "queued")
        assert await store.sql.fetch_all(ALL) == [{"id": mission_id, "name": "m", "size": 0}]

    async def test_a_failing_transaction_leaves_neither_row_nor_mission(
        self, store: Storage
    ) -> None:
        await store.sql.migrate_door("things", [V1, V2])
        before = await store.missions.queued_count()

        async def fails(tx: Transaction) -> None:
            mission_id = await tx.insert_mission("tok", MISSION, {}, "things")
            await tx.execute(PUT, id=mission_id, name="m", now=0.0, size=0)
            raise LookupError("the door changed its mind")

        with pytest.raises(LookupError):
            await store.sql.run_in_transaction(fails)
        assert await store.missions.queued_count() == before
        assert await store.sql.fetch_all(ALL) == []

    async def test_a_mission_ends_with_its_door_rows_or_not_at_all(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1, V2])
        ids = [await store.missions.insert_mission("tok", MISSION, {}, "things") for _ in "abc"]
        for mission_id in ids:
            assert await store.missions.claim(mission_id, "me", 60.0) is not None

        def ends(mission_id: int, owner: str, fail: bool = False) -> Any:
            async def end(tx: Transaction) -> bool:
                if not await tx.finish_mission(mission_id, "done", {"n": 1}, owner, True):
                    return False
                await tx.execute(PUT, id=mission_id, name="ended", now=0.0, size=0)
                if fail:
                    raise LookupError("the door's write failed")
                return True

            return end

        assert await store.sql.run_in_transaction(ends(ids[0], "me"))
        row = await store.missions.get_mission(ids[0])
        assert row is not None
        assert (row.state, row.result, row.callback_state) == ("done", {"n": 1}, "pending")
        # Not this node's mission: nothing is written.
        assert not await store.sql.run_in_transaction(ends(ids[1], "another node"))
        # The door's write fails: the mission's end is rolled back with it.
        with pytest.raises(LookupError):
            await store.sql.run_in_transaction(ends(ids[2], "me", fail=True))
        for mission_id in ids[1:]:
            row = await store.missions.get_mission(mission_id)
            assert row is not None
            assert row.state == "running"
        assert await store.sql.fetch_all(NAMES) == [{"name": "ended"}]

    async def test_retention_keeps_the_missions_a_door_refers_to(self, store: Storage) -> None:
        await store.sql.migrate_door("things", [V1, V2])
        ids = [await store.missions.insert_mission("tok", MISSION, {}, "things") for _ in "ab"]
        for mission_id in ids:
            assert await store.missions.cancel_queued(mission_id, {})
        await store.sql.execute(PUT, id=ids[0], name="keeps", now=0.0, size=0)

        async def sweep(tx: Transaction) -> int:
            return await tx.delete_ended_missions(1e12, kept=KEPT)

        assert await store.sql.run_in_transaction(sweep) == 1
        assert await store.missions.get_mission(ids[0]) is not None
        assert await store.missions.get_mission(ids[1]) is None


class TestSqlite(DoorSqlTests):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Storage]:
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        yield store
        await store.close()

    async def test_a_transaction_may_await_only_its_transaction(self, store: Storage) -> None:
        """It runs on the store's thread in one step: waiting there for anything else would
        hold the one writer. Refused, and nothing of it stays."""
        await store.sql.migrate_door("things", [V1, V2])

        async def waits(tx: Transaction) -> None:
            await tx.execute(PUT, id=1, name="m", now=0.0, size=0)
            await asyncio.sleep(0)

        with pytest.raises(TransactionSuspended):
            await store.sql.run_in_transaction(waits)
        assert await store.sql.fetch_all(NAMES) == []


@pytest.mark.postgres
class TestPostgres(DoorSqlTests):
    @pytest.fixture
    async def store(self, pg_url: str) -> AsyncIterator[Storage]:
        store = await PgStore.open(pg_url)
        yield store
        await store.close()
