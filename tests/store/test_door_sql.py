"""A front door's own tables on both engines: its migrations applied once, in order, and its
statements (one text for both engines) run through ``store.sql``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.store import PgStore, SqliteStore, Storage
from service.store.sql import Statement

V1 = "CREATE TABLE door_things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, at REAL NOT NULL);"
V2 = (
    "ALTER TABLE door_things ADD COLUMN size INTEGER NOT NULL DEFAULT 0;"
    " CREATE INDEX door_things_name ON door_things(name);"
)
PUT = Statement("INSERT INTO door_things (id, name, at, size) VALUES (:id, :name, :now, :size)")
GET = Statement("SELECT id, name, size FROM door_things WHERE id = :id")
ALL = Statement("SELECT id, name, size FROM door_things ORDER BY id")
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


class TestSqlite(DoorSqlTests):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Storage]:
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        yield store
        await store.close()


@pytest.mark.postgres
class TestPostgres(DoorSqlTests):
    @pytest.fixture
    async def store(self, pg_url: str) -> AsyncIterator[Storage]:
        store = await PgStore.open(pg_url)
        yield store
        await store.close()
