"""One transaction for a door's statements and the store's own writes (``protocols.Transaction``).

A door hands ``store.sql.run_in_transaction`` one ``async def fn(tx)``; it runs inside one
transaction of the store's engine, committed when ``fn`` returns and rolled back when it raises:

* PostgreSQL: ``fn`` is awaited on one pooled connection inside ``conn.transaction()``;
* SQLite: ``fn`` runs on the store's thread inside ``BEGIN IMMEDIATE``. Its awaits on ``tx``
  finish at once there (``sqlite3`` is synchronous), so the coroutine is driven to its end in
  one step, off the event loop, holding the one writer as every other write does. A ``fn`` that
  awaits anything else (the network, a sleep, another store call) would suspend the store's
  thread: it is refused with ``TransactionSuspended`` and its transaction rolled back.

So ``fn`` awaits only ``tx``, and is engine-blind: the same statements
(``service.store.sql.Statement``) and the same mission insert run on both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from service.store import sql
from service.store.records import MISSION_KIND
from service.store.sql import Statement

if TYPE_CHECKING:
    from service.store.sqlitedb import Database

T = TypeVar("T")


class TransactionSuspended(RuntimeError):
    """A transaction's function awaited something other than its transaction (SQLite runs it
    on the store's thread in one step: it may only await ``tx``)."""


def pg_count(status: str) -> int:
    """Rows a statement touched, from asyncpg's status string (``DELETE 3``)."""
    return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def drive(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end in one step, without an event loop (SQLite: every await
    on ``tx`` is already done). Raises what it raises, or ``TransactionSuspended`` (after
    closing it) when it would wait for something."""
    coroutine = _awaited(awaitable)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise TransactionSuspended(
        "a transaction's function may await only its transaction (tx.execute, tx.fetch_one,"
        " tx.fetch_all, tx.insert_mission, tx.delete_ended_missions, tx.finish_mission)"
    )


class SqliteTransaction:
    """``protocols.Transaction`` on SQLite's ``Database``, inside the caller's ``BEGIN``: each
    method is the ``Database`` method of the same name (none of them opens a transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        return self._db.execute(statement, **values)

    async def fetch_one(self, statement: Statement, /, **values: Any) -> dict[str, Any] | None:
        return self._db.fetch_one(statement, **values)

    async def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]:
        return self._db.fetch_all(statement, **values)

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
    ) -> int:
        return self._db.insert_mission(token_hash, mission, normalised, kind)

    async def delete_ended_missions(self, cutoff: float, kept: Statement) -> int:
        return self._db.execute(sql.delete_ended_missions(kept), cutoff=cutoff)

    async def finish_mission(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        return self._db.finish(mission_id, state, result, owner, door_due)


FinishMission = Callable[
    [asyncpg.Connection, int, str, dict[str, Any], str | None, bool], Awaitable[bool]
]
"""The PostgreSQL store's ``finish`` on a connection in a transaction:
``(conn, mission_id, state, result, owner, door_due) -> ended``."""


class PgTransaction:
    """``protocols.Transaction`` on one PostgreSQL connection inside ``conn.transaction()``."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        insert_mission: Callable[
            [asyncpg.Connection, str, dict[str, Any], dict[str, Any], str], Awaitable[int]
        ],
        finish_mission: FinishMission,
    ) -> None:
        self._conn = conn
        self._insert_mission = insert_mission
        self._finish_mission = finish_mission

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        return pg_count(await self._conn.execute(*statement.bind_pg(**values)))

    async def fetch_one(self, statement: Statement, /, **values: Any) -> dict[str, Any] | None:
        row = await self._conn.fetchrow(*statement.bind_pg(**values))
        return None if row is None else dict(row)

    async def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._conn.fetch(*statement.bind_pg(**values))]

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
    ) -> int:
        """The nodes hear of it when the transaction commits (NOTIFY is transactional)."""
        return await self._insert_mission(self._conn, token_hash, mission, normalised, kind)

    async def delete_ended_missions(self, cutoff: float, kept: Statement) -> int:
        statement = sql.delete_ended_missions(kept)
        return pg_count(await self._conn.execute(*statement.bind_pg(cutoff=cutoff)))

    async def finish_mission(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        """The nodes hear of its end when the transaction commits (NOTIFY is transactional)."""
        return await self._finish_mission(self._conn, mission_id, state, result, owner, door_due)
