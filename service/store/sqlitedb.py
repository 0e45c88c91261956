"""The judge's SQLite database, synchronous: one connection, every statement SQLite runs.

``Database`` is what ``service.store.sqlite.SqliteStore`` runs on its one thread (and what the
tokens CLI uses directly). Every method is one statement or one transaction, and they run one at
a time, so a state change guarded by the current state (a worker claiming a queued mission, a
client cancelling it) is atomic. The statements PostgreSQL runs as well are in
``service.store.sql``; the ones written here are SQLite's own.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from service.store import schema, sql
from service.store.protocols import Transaction
from service.store.records import (
    MISSION_KIND,
    MissionRow,
    hash_token,
    mission_row,
    new_token,
)
from service.store.sql import Statement
from service.store.transactions import SqliteTransaction, drive

T = TypeVar("T")

SCHEMA = schema.read("sqlite", "schema.sql")

# Columns added after the first release: (table, column, definition) for databases made before.
MIGRATIONS = schema.added_columns()


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many missions are in each state, on ``conn`` (the writer's or a reader's)."""
    return {r["state"]: r["n"] for r in conn.execute(sql.COUNTS)}


INSERT_ROWS_MAX = 200
"""The most missions one ``INSERT`` stores (9 parameters a row; SQLite takes 32,766 a statement)."""


@functools.lru_cache(maxsize=32)
def _insert_rows_text(rows: int) -> str:
    """``sql.INSERT_MISSION`` for SQLite with ``rows`` rows of values."""
    head, values = sql.INSERT_MISSION.sqlite_text.split(" VALUES ")
    return f"{head} VALUES {', '.join([values] * rows)}"


class Database:
    """Synchronous access to the judge database; one connection, one thread at a time.

    Each repository method does what its protocol (``service.store.protocols``) promises.
    """

    _conn: sqlite3.Connection

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged mission survives power loss, not just a process crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)
        for table, column, definition in MIGRATIONS:
            columns = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back when the body raises.

        ``durable=False``: the commit is not synced to disk by itself (``synchronous=NORMAL``
        for it): a power cut may take it back, a process crash cannot, and the next durable
        commit syncs it with its own (the WAL is written in order). For what losing costs
        nothing but a re-run: a claim that vanishes leaves the mission queued, which is where a
        crash leaves it anyway."""
        if not durable:
            self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        finally:
            if not durable:
                self._conn.execute("PRAGMA synchronous=FULL")

    def _run(self, statement: Statement, **values: Any) -> sqlite3.Cursor:
        """Execute a shared statement (``service.store.sql``) with its named ``values``."""
        return self._conn.execute(*statement.bind_sqlite(**values))

    # -- front doors' own tables (each does what ``protocols.DoorSqlRepo`` promises) -------------

    def execute(self, statement: Statement, /, **values: Any) -> int:
        return self._run(statement, **values).rowcount

    def fetch_one(self, statement: Statement, /, **values: Any) -> dict[str, Any] | None:
        row = self._run(statement, **values).fetchone()
        return None if row is None else dict(row)

    def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in self._run(statement, **values).fetchall()]

    def batch(self, steps: list[tuple[Statement, dict[str, Any]]]) -> list[int]:
        with self._transaction():
            return [self._run(statement, **values).rowcount for statement, values in steps]

    def run_in_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        with self._transaction():
            return drive(fn(SqliteTransaction(self)))

    def migrate_door(self, door: str, scripts: list[str]) -> int:
        self._conn.execute(sql.DOOR_SCHEMA)
        version = self._run(sql.DOOR_VERSION, door=door).fetchone()
        done = 0 if version is None else int(version[0])
        for n, script in enumerate(scripts[done:], start=done + 1):
            with self._transaction():
                for statement in schema.statements(script):
                    # None: an ADD COLUMN IF NOT EXISTS (which SQLite lacks) of a present column
                    if (text := schema.sqlite_statement(statement, self._columns)) is not None:
                        self._conn.execute(text)
                self._run(sql.SET_DOOR_VERSION, door=door, version=n)
        return max(done, len(scripts))

    def _columns(self, table: str) -> set[str]:
        rows = self._conn.execute("SELECT name FROM pragma_table_info(?)", (table,))
        return {r["name"] for r in rows}

    # -- missions (each does what ``protocols.MissionRepo`` promises) ----------------------------

    def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
    ) -> int:
        values = sql.new_mission(token_hash, mission, normalised, kind, time.time())
        return self._insert_rows([values])[0]

    def insert_pinned_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
        owner: str,
        lease_s: float,
    ) -> int:
        with self._transaction():
            mission_id = self.insert_mission(token_hash, mission, normalised, kind)
            self._run(
                sql.PIN_MISSION,
                mission_id=mission_id,
                owner=owner,
                lease_s=lease_s,
                now=time.time(),
            )
        return mission_id

    def renew_pins(self, owner: str, lease_s: float) -> None:
        self._run(sql.RENEW_PINS, owner=owner, lease_s=lease_s, now=time.time())

    def insert_missions(
        self, batch: list[tuple[str, dict[str, Any], dict[str, Any], str]]
    ) -> list[int]:
        """Store queued missions ``(token_hash, mission, normalised, kind)`` in one transaction
        (one commit, one fsync) and return their ids in order; all or none are stored.

        A group of up to ``INSERT_ROWS_MAX`` missions is one ``INSERT`` of that many rows, a
        transaction by itself: ``sqlite3`` lets go of the GIL around every statement it steps
        and must take it back after, and on a busy server each taking back waits for the event
        loop's thread to hand it over (about three context switches). One statement per group
        instead of one per mission plus ``BEGIN`` and ``COMMIT`` took the server's CPU per
        submission down by about a tenth under ``bench.intake_bench``.
        """
        now = time.time()
        rows = [sql.new_mission(*item, now) for item in batch]
        if not rows:
            return []
        if len(rows) <= INSERT_ROWS_MAX:
            return self._insert_rows(rows)
        ids: list[int] = []
        with self._transaction():
            for start in range(0, len(rows), INSERT_ROWS_MAX):
                ids += self._insert_rows(rows[start : start + INSERT_ROWS_MAX])
        return ids

    def _insert_rows(self, rows: list[dict[str, Any]]) -> list[int]:
        """One ``INSERT`` of ``rows`` (``sql.new_mission`` values); their ids in order."""
        args: list[Any] = []
        for values in rows:
            args += sql.INSERT_MISSION.sqlite_args(values)
        last = self._conn.execute(_insert_rows_text(len(rows)), args).lastrowid
        assert last is not None
        # One statement's rows take consecutive ids (AUTOINCREMENT: one more than the largest
        # ever used, row after row), so the last one's id gives every id.
        return list(range(last - len(rows) + 1, last + 1))

    def get_mission(self, mission_id: int) -> MissionRow | None:
        row = self._run(sql.GET_MISSION, mission_id=mission_id).fetchone()
        return None if row is None else mission_row(row)

    def list_missions(self, token_hash: str, limit: int, offset: int = 0) -> list[MissionRow]:
        values = {"token_hash": token_hash, "limit": limit, "offset": offset}
        return [mission_row(r) for r in self._run(sql.LIST_MISSIONS, **values)]

    def count_missions(self, token_hash: str) -> int:
        return int(self._run(sql.COUNT_MISSIONS, token_hash=token_hash).fetchone()["n"])

    def claim(self, mission_id: int, owner: str = "", lease_s: float = 0.0) -> MissionRow | None:
        with self._transaction(durable=False):
            cur = self._run(
                sql.CLAIM, mission_id=mission_id, owner=owner, lease_s=lease_s, now=time.time()
            )
            if cur.rowcount == 0:
                return None
            return self.get_mission(mission_id)

    def claim_next(
        self, owner: str, lease_s: float, images: Collection[str] | None = None
    ) -> MissionRow | None:
        # One node, one writer at a time: a SELECT then an UPDATE in a transaction is the
        # claim PostgreSQL makes in one statement with FOR UPDATE SKIP LOCKED.
        now = time.time()
        names = sorted(images or ())
        marks = ", ".join(["''", *"?" * len(names)])
        only = "" if images is None else f" AND image IN ({marks})"
        with self._transaction(durable=False) as conn:
            row = conn.execute(
                "SELECT id FROM missions WHERE ((state = 'queued' AND (lease_owner IN ('', ?)"
                f" OR lease_until < ?)) OR (state = 'running' AND lease_until < ?)){only}"
                " ORDER BY id LIMIT 1",
                (owner, now, now, *names),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE missions SET state = 'running', runs = runs + 1, updated_at = ?,"
                " lease_owner = ?, lease_until = ? WHERE id = ?",
                (now, owner, now + lease_s, row["id"]),
            )
            return self.get_mission(row["id"])

    def renew_lease(self, mission_id: int, owner: str, lease_s: float) -> bool | None:
        with self._transaction() as conn:
            cur = self._run(
                sql.RENEW_LEASE,
                mission_id=mission_id,
                owner=owner,
                lease_s=lease_s,
                now=time.time(),
            )
            if cur.rowcount == 0:
                return None
            row = conn.execute(
                "SELECT cancel_requested FROM missions WHERE id = ?", (mission_id,)
            ).fetchone()
        return bool(row["cancel_requested"])

    def request_cancel(self, mission_id: int) -> bool:
        return self._run(sql.REQUEST_CANCEL, mission_id=mission_id).rowcount > 0

    def finish(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        cur = self._run(
            sql.FINISH,
            mission_id=mission_id,
            state=state,
            result=json.dumps(result),
            owner=owner,
            now=time.time(),
            door_due=int(door_due),
        )
        return cur.rowcount > 0

    def cancel_queued(
        self, mission_id: int, result: dict[str, Any], door_due: bool = False
    ) -> bool:
        cur = self._run(
            sql.CANCEL_QUEUED,
            mission_id=mission_id,
            result=json.dumps(result),
            now=time.time(),
            door_due=int(door_due),
        )
        return cur.rowcount > 0

    def fail(
        self,
        mission_id: int,
        error: str,
        result: dict[str, Any] | None = None,
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        cur = self._run(
            sql.FAIL_UNDELIVERABLE if result is None else sql.FAIL_WITH_RESULT,
            mission_id=mission_id,
            error=error,
            result=None if result is None else json.dumps(result),
            owner=owner,
            now=time.time(),
            door_due=int(door_due),
        )
        return cur.rowcount > 0

    def requeue(self, mission_id: int, owner: str, *, started: bool = True) -> bool:
        statement = sql.REQUEUE_ONE if started else sql.UNCLAIM_ONE
        cur = self._run(statement, mission_id=mission_id, owner=owner, now=time.time())
        return cur.rowcount > 0

    def requeue_unfinished(self, owner: str | None = None) -> list[int]:
        with self._transaction() as conn:
            self._run(sql.REQUEUE_RUNNING, owner=owner, now=time.time())
            self._run(sql.RELEASE_CALLBACKS_OF, owner=owner)
            rows = conn.execute(sql.QUEUED_IDS).fetchall()
        return [r["id"] for r in rows]

    def running_by_owner(self) -> dict[str, int]:
        """Running missions per node holding them (one node here)."""
        return {r["lease_owner"]: r["n"] for r in self._conn.execute(sql.RUNNING_BY_OWNER)}

    def queued_count(self) -> int:
        return int(self._conn.execute(sql.QUEUED_COUNT).fetchone()["n"])

    def counts(self) -> dict[str, int]:
        return state_counts(self._conn)

    # -- callbacks (``protocols.CallbackRepo``) --------------------------------------------------

    def pending_callbacks(self) -> list[int]:
        return [r["id"] for r in self._conn.execute(sql.PENDING_CALLBACKS)]

    def claim_callbacks(self, owner: str, lease_s: float, limit: int) -> list[int]:
        # One writer at a time: PostgreSQL claims these with FOR UPDATE SKIP LOCKED instead.
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM missions WHERE callback_state = 'pending'"
                " AND callback_lease_until < ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
            ids = [r["id"] for r in rows]
            conn.executemany(
                "UPDATE missions SET callback_owner = ?, callback_lease_until = ? WHERE id = ?",
                [(owner, now + lease_s, i) for i in ids],
            )
        return ids

    def renew_callbacks(self, mission_ids: list[int], owner: str, lease_s: float) -> None:
        # One statement per id: SQLite has no array parameter (PostgreSQL uses ``= ANY``).
        self._conn.executemany(
            "UPDATE missions SET callback_lease_until = ? WHERE id = ? AND callback_owner = ?",
            [(time.time() + lease_s, i, owner) for i in mission_ids],
        )

    def release_callback(self, mission_id: int, owner: str) -> None:
        self._run(sql.RELEASE_CALLBACK, mission_id=mission_id, owner=owner)

    def set_callback(self, mission_id: int, state: str, attempts: int, error: str) -> None:
        self._run(
            sql.SET_CALLBACK,
            mission_id=mission_id,
            state=state,
            attempts=attempts,
            error=error,
            now=time.time(),
        )

    def callback_counts(self) -> dict[str, int]:
        return {r["callback_state"]: r["n"] for r in self._conn.execute(sql.CALLBACK_COUNTS)}

    # -- tokens (``protocols.TokenRepo``) --------------------------------------------------------

    def add_token(self, name: str) -> str:
        """Create a token called ``name`` and return it; only its hash is stored.

        Raises ``ValueError`` when the name is empty or taken.
        """
        token = new_token(name)
        try:
            self._run(sql.ADD_TOKEN, hash=hash_token(token), name=name, now=time.time())
        except sqlite3.IntegrityError as e:
            raise ValueError(f"a token named '{name}' exists") from e
        return token

    def list_tokens(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute(sql.LIST_TOKENS)]

    def revoke_token(self, name: str) -> bool:
        return self._run(sql.REVOKE_TOKEN, name=name, now=time.time()).rowcount > 0

    def token_active(self, token_hash: str) -> bool:
        return self._run(sql.TOKEN_ACTIVE, token_hash=token_hash).fetchone() is not None
