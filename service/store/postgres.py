"""Durable state in PostgreSQL (asyncpg), shared by every judge node.

The same repositories as the SQLite engine (``service.store.protocols``), plus what many nodes
need: missions and callbacks are claimed with ``FOR UPDATE SKIP LOCKED`` under a lease whose
clock is the database's (nodes' clocks may disagree), an expired lease is claimed again by the
same query, and ``NOTIFY`` tells the other nodes that work arrived or a cancel was asked for (a
hint: polling stays the truth). The schema is created and migrated at start, versioned in
``judge_schema``. Statements SQLite runs as well are in ``service.store.sql``; the ones written
here are PostgreSQL's own (claims, NOTIFY).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, ParamSpec, TypeVar

import asyncpg

from service.store import schema, sql
from service.store.groupcommit import GroupCommit
from service.store.protocols import EveryRepository, Transaction
from service.store.records import (
    MISSION_KIND,
    MissionRow,
    StoreFull,
    hash_token,
    mission_row,
    new_token,
)
from service.store.transactions import PgTransaction
from service.store.transactions import pg_count as _count

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

MISSIONS_CHANNEL = "judge_missions"
"""NOTIFY channel: a mission was queued (payload: its id)."""
CANCEL_CHANNEL = "judge_cancel"
"""NOTIFY channel: a cancel was asked for a running mission (payload: its id)."""
CALLBACKS_CHANNEL = "judge_callbacks"
"""NOTIFY channel: a callback became due (payload: the mission id)."""
ENDED_CHANNEL = "judge_ended"
"""NOTIFY channel: a mission reached a final state (payload: its id)."""

_NOW = sql.PG_CLOCK

# Shared statements (``service.store.sql``) handing back what SQLite reads in a second statement.
_INSERT_MISSION = sql.INSERT_MISSION.returning("id")
_CLAIM = sql.CLAIM.returning("*")
_RENEW_LEASE = sql.RENEW_LEASE.returning("cancel_requested")
_FINISH = sql.FINISH.returning("callback_state")
_CANCEL_QUEUED = sql.CANCEL_QUEUED.returning("callback_state")
_FAIL_WITH_RESULT = sql.FAIL_WITH_RESULT.returning("callback_state")
_FAIL_UNDELIVERABLE = sql.FAIL_UNDELIVERABLE.returning("callback_state")


async def _end_on(
    conn: asyncpg.Connection, statement: sql.Statement, *, mission_id: int, **values: Any
) -> bool:
    """``PgStore._end`` on ``conn``, inside the caller's transaction."""
    row = await conn.fetchrow(*statement.bind_pg(mission_id=mission_id, now=time.time(), **values))
    if row is None:
        return False
    await conn.execute("SELECT pg_notify($1, $2)", ENDED_CHANNEL, str(mission_id))
    if row["callback_state"] == "pending":
        await conn.execute("SELECT pg_notify($1, $2)", CALLBACKS_CHANNEL, str(mission_id))
    return True


async def _finish_on(
    conn: asyncpg.Connection,
    mission_id: int,
    state: str,
    result: dict[str, Any],
    owner: str | None,
    door_due: bool,
) -> bool:
    """``MissionRepo.finish`` on ``conn``, inside the caller's transaction."""
    return await _end_on(
        conn,
        _FINISH,
        mission_id=mission_id,
        state=state,
        result=json.dumps(result),
        owner=owner,
        door_due=int(door_due),
    )


# Group commit: a group's ids are drawn first, in submission order, then its rows are inserted
# in one pipelined batch naming them (the shared statement plus the id).
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('missions', 'id')) FROM generate_series(1, $1)"
_INSERT_NUMBERED = sql.Statement(
    sql.INSERT_MISSION.text.replace("(token_hash,", "(id, token_hash,", 1).replace(
        "VALUES (:token_hash,", "VALUES (:mission_id, :token_hash,", 1
    )
)
assert ":mission_id" in _INSERT_NUMBERED.text  # the replacement found its place
_NOTIFY_EACH = "SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) AS id"

# Each file moves the schema one version up (service/store/schema/postgresql/NNN_*.sql).
MIGRATIONS: tuple[str, ...] = schema.migrations("postgresql")


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema to the newest version in one transaction (nodes starting together
    wait on an advisory lock); returns the version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7301013)")
        await conn.execute("CREATE TABLE IF NOT EXISTS judge_schema (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT MAX(version) FROM judge_schema") or 0
        for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO judge_schema (version) VALUES ($1)", n)
            log.info("database schema migrated to version %d", n)
        return len(MIGRATIONS)


@contextmanager
def _full_disk_told() -> Iterator[None]:
    """PostgreSQL's own disk full (SQLSTATE 53100: "could not extend file", "No space left on
    device") raised as ``StoreFull``, as SQLite's full data directory is: a 503 with
    ``Retry-After`` (this node cannot store now) rather than a 500 that reads as a bug."""
    try:
        yield
    except asyncpg.DiskFullError as e:
        raise StoreFull(f"the database's disk is full ({e})") from e


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Every connection of the store's pool: each statement (a transaction's COMMIT too, and the
    pool's own ``execute``/``fetch*``, which run on one of these) tells a full disk."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        with _full_disk_told():
            return await super().execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        with _full_disk_told():
            return await super().executemany(*args, **kwargs)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        with _full_disk_told():
            return await super().fetch(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        with _full_disk_told():
            return await super().fetchrow(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        with _full_disk_told():
            return await super().fetchval(*args, **kwargs)


class PgStore(EveryRepository):
    """A pool of connections to PostgreSQL implementing every repository protocol (each method
    does what its protocol promises), and a dedicated connection for ``LISTEN``.

    Build it with ``await PgStore.open(url)``; ``await close()`` when done.
    """

    engine = "postgresql"
    clustered = True  # many nodes may share it: claims, leases, NOTIFY
    blob_contents = True  # every node reads every door's file, no shared file system

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._listener: asyncpg.Connection | None = None
        self._subscribers: dict[str, list[Callable[[str], None]]] = {}
        # Group commit: concurrent submissions share one transaction (as on SQLite).
        self._intake = GroupCommit(self._insert_missions, "store-intake")

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10, connect_s: float = 0.0) -> PgStore:
        """Connect (retrying for ``connect_s``: the database may be starting with the nodes)
        and migrate the schema. Raises what asyncpg raises when it cannot."""
        deadline = time.monotonic() + connect_s
        while True:
            try:
                pool = await asyncpg.create_pool(
                    url, min_size=1, max_size=max_connections, connection_class=_Connection
                )
                break
            except (OSError, asyncpg.CannotConnectNowError) as e:
                if time.monotonic() >= deadline:
                    raise
                log.warning("database not reachable yet (%s); retrying", e)
                await asyncio.sleep(1)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    async def close(self) -> None:
        await self._intake.close()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self._pool.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    # -- notifications ----------------------------------------------------------------------------

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` on every NOTIFY on ``channel`` (one dedicated connection
        for all). A lost connection loses hints only: callers poll as well."""
        if self._listener is None:
            self._listener = await asyncpg.connect(self._url)
        first = channel not in self._subscribers
        self._subscribers.setdefault(channel, []).append(callback)
        if first:
            await self._listener.add_listener(channel, self._notified)

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self._subscribers.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("a NOTIFY subscriber on %s failed", channel)

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with asyncio.timeout(5):
                return bool(await self._pool.fetchval("SELECT 1"))
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return False

    # -- missions (each does what ``protocols.MissionRepo`` promises) -----------------------------

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
        then: Callable[[int], None] | None = None,
    ) -> int:
        """Store a queued mission (committed when this returns), tell the nodes, return its id.

        Concurrent submissions share one transaction (group commit): while one group commits,
        the next gathers. A submission whose caller is cancelled is still stored. Raises what
        the database raised for the whole group (nothing of it is stored then).
        """
        return await self._intake.submit((token_hash, mission, normalised, kind), then)

    async def _insert_missions(
        self, batch: list[tuple[str, dict[str, Any], dict[str, Any], str]]
    ) -> list[int]:
        """Store ``batch`` in one transaction, NOTIFY each id; returns the ids in order."""
        now = time.time()
        async with self._tx() as conn:
            ids = sorted(int(r[0]) for r in await conn.fetch(_NEXT_IDS, len(batch)))
            rows = [
                _INSERT_NUMBERED.pg_args({**sql.new_mission(*args, now), "mission_id": mission_id})
                for args, mission_id in zip(batch, ids, strict=True)
            ]
            await conn.executemany(_INSERT_NUMBERED.pg_text, rows)
            await conn.execute(_NOTIFY_EACH, MISSIONS_CHANNEL, ids)
        return ids

    async def _insert_mission(
        self,
        conn: asyncpg.Connection,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
    ) -> int:
        values = sql.new_mission(token_hash, mission, normalised, kind, time.time())
        mission_id = await conn.fetchval(*_INSERT_MISSION.bind_pg(**values))
        await conn.execute("SELECT pg_notify($1, $2)", MISSIONS_CHANNEL, str(mission_id))
        return int(mission_id)

    async def insert_pinned_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
        owner: str,
        lease_s: float,
    ) -> int:
        async with self._tx() as conn:
            mission_id = await self._insert_mission(conn, token_hash, mission, normalised, kind)
            await conn.execute(
                *sql.PIN_MISSION.bind_pg(mission_id=mission_id, owner=owner, lease_s=lease_s)
            )
            return mission_id

    async def renew_pins(self, owner: str, lease_s: float) -> None:
        await self._pool.execute(*sql.RENEW_PINS.bind_pg(owner=owner, lease_s=lease_s))

    async def get_mission(self, mission_id: int) -> MissionRow | None:
        row = await self._pool.fetchrow(*sql.GET_MISSION.bind_pg(mission_id=mission_id))
        return None if row is None else mission_row(row)

    async def list_missions(self, token_hash: str, limit: int, offset: int = 0) -> list[MissionRow]:
        values = {"token_hash": token_hash, "limit": limit, "offset": offset}
        rows = await self._pool.fetch(*sql.LIST_MISSIONS.bind_pg(**values))
        return [mission_row(r) for r in rows]

    async def count_missions(self, token_hash: str) -> int:
        bound = sql.COUNT_MISSIONS.bind_pg(token_hash=token_hash)
        return int(await self._pool.fetchval(*bound))

    async def claim(
        self, mission_id: int, owner: str = "", lease_s: float = 0.0
    ) -> MissionRow | None:
        """None also when another node claimed it first."""
        row = await self._pool.fetchrow(
            *_CLAIM.bind_pg(mission_id=mission_id, owner=owner, lease_s=lease_s, now=time.time())
        )
        return None if row is None else mission_row(row)

    async def claim_next(
        self, owner: str, lease_s: float, images: Collection[str] | None = None
    ) -> MissionRow | None:
        """In one statement that skips rows other nodes are claiming (SQLite, one node, needs
        none of this)."""
        row = await self._pool.fetchrow(
            "WITH next AS (SELECT id FROM missions WHERE ((state = 'queued'"
            f" AND (lease_owner IN ('', $1) OR lease_until < {_NOW}))"
            f" OR (state = 'running' AND lease_until < {_NOW}))"
            " AND ($4::text[] IS NULL OR image = '' OR image = ANY($4::text[]))"
            " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " UPDATE missions m SET state = 'running', runs = m.runs + 1, updated_at = $3,"
            f" lease_owner = $1, lease_until = {_NOW} + $2"
            " FROM next WHERE m.id = next.id RETURNING m.*",
            owner,
            lease_s,
            time.time(),
            None if images is None else sorted(images),
        )
        return None if row is None else mission_row(row)

    async def renew_lease(self, mission_id: int, owner: str, lease_s: float) -> bool | None:
        got = await self._pool.fetchrow(
            *_RENEW_LEASE.bind_pg(mission_id=mission_id, owner=owner, lease_s=lease_s)
        )
        return None if got is None else bool(got["cancel_requested"])

    async def request_cancel(self, mission_id: int) -> bool:
        """And NOTIFY the node running it."""
        async with self._tx() as conn:
            status = await conn.execute(*sql.REQUEST_CANCEL.bind_pg(mission_id=mission_id))
            if _count(status) == 0:
                return False
            await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, str(mission_id))
            return True

    async def finish(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        async with self._tx() as conn:
            return await _finish_on(conn, mission_id, state, result, owner, door_due)

    async def cancel_queued(
        self, mission_id: int, result: dict[str, Any], door_due: bool = False
    ) -> bool:
        return await self._end(
            _CANCEL_QUEUED,
            mission_id=mission_id,
            result=json.dumps(result),
            door_due=int(door_due),
        )

    async def fail(
        self,
        mission_id: int,
        error: str,
        result: dict[str, Any] | None = None,
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        return await self._end(
            _FAIL_UNDELIVERABLE if result is None else _FAIL_WITH_RESULT,
            mission_id=mission_id,
            error=error,
            result=None if result is None else json.dumps(result),
            owner=owner,
            door_due=int(door_due),
        )

    async def _end(self, statement: sql.Statement, *, mission_id: int, **values: Any) -> bool:
        """Run ``statement`` (one ending a mission, returning its callback state) and, when it
        ended one, tell the nodes (and the callback deliverers when its callback is due)."""
        async with self._tx() as conn:
            return await _end_on(conn, statement, mission_id=mission_id, **values)

    async def requeue(self, mission_id: int, owner: str, *, started: bool = True) -> bool:
        """Queued again, and every node told (another one may claim it first)."""
        statement = sql.REQUEUE_ONE if started else sql.UNCLAIM_ONE
        async with self._tx() as conn:
            status = await conn.execute(
                *statement.bind_pg(mission_id=mission_id, owner=owner, now=time.time())
            )
            if status != "UPDATE 1":
                return False
            await conn.execute("SELECT pg_notify($1, $2)", MISSIONS_CHANNEL, str(mission_id))
        return True

    # -- front doors' own tables (``protocols.DoorSqlRepo``) --------------------------------------

    async def execute(self, statement: sql.Statement, /, **values: Any) -> int:
        return _count(await self._pool.execute(*statement.bind_pg(**values)))

    async def fetch_one(self, statement: sql.Statement, /, **values: Any) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(*statement.bind_pg(**values))
        return None if row is None else dict(row)

    async def fetch_all(self, statement: sql.Statement, /, **values: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._pool.fetch(*statement.bind_pg(**values))]

    async def batch(self, steps: list[tuple[sql.Statement, dict[str, Any]]]) -> list[int]:
        async with self._tx() as conn:
            return [_count(await conn.execute(*s.bind_pg(**values))) for s, values in steps]

    async def run_in_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        async with self._tx() as conn:
            return await fn(PgTransaction(conn, self._insert_mission, _finish_on))

    async def migrate_door(self, door: str, scripts: list[str]) -> int:
        async with self._pool.acquire() as conn:
            for n in range(1, len(scripts) + 1):
                async with conn.transaction():
                    # Nodes starting together: one applies, the others then see it applied.
                    await conn.execute("SELECT pg_advisory_xact_lock(7301014)")
                    await conn.execute(sql.DOOR_SCHEMA)
                    done = await conn.fetchval(*sql.DOOR_VERSION.bind_pg(door=door)) or 0
                    if n <= done:
                        continue
                    await conn.execute(scripts[n - 1])
                    await conn.execute(*sql.SET_DOOR_VERSION.bind_pg(door=door, version=n))
                    log.info("door %s: schema migrated to version %d", door, n)
        return len(scripts)

    async def requeue_unfinished(self, owner: str | None = None) -> list[int]:
        """Other nodes' missions come back when their leases expire."""
        async with self._tx() as conn:
            await conn.execute(*sql.REQUEUE_RUNNING.bind_pg(owner=owner, now=time.time()))
            await conn.execute(*sql.RELEASE_CALLBACKS_OF.bind_pg(owner=owner))
            rows = await conn.fetch(sql.QUEUED_IDS)
        return [r["id"] for r in rows]

    async def running_by_owner(self) -> dict[str, int]:
        """Across the cluster."""
        rows = await self._pool.fetch(sql.RUNNING_BY_OWNER)
        return {r["lease_owner"]: r["n"] for r in rows}

    async def queued_count(self) -> int:
        return int(await self._pool.fetchval(sql.QUEUED_COUNT))

    async def counts(self) -> dict[str, int]:
        rows = await self._pool.fetch(sql.COUNTS)
        return {r["state"]: r["n"] for r in rows}

    # -- callbacks (``protocols.CallbackRepo``) ---------------------------------------------------

    async def pending_callbacks(self) -> list[int]:
        return [r["id"] for r in await self._pool.fetch(sql.PENDING_CALLBACKS)]

    async def claim_callbacks(self, owner: str, lease_s: float, limit: int) -> list[int]:
        """In one statement that skips rows other nodes are claiming."""
        rows = await self._pool.fetch(
            "WITH due AS (SELECT id FROM missions WHERE callback_state = 'pending'"
            f" AND callback_lease_until < {_NOW} ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)"
            f" UPDATE missions m SET callback_owner = $1, callback_lease_until = {_NOW} + $2"
            " FROM due WHERE m.id = due.id RETURNING m.id",
            owner,
            lease_s,
            limit,
        )
        return sorted(r["id"] for r in rows)

    async def renew_callbacks(self, mission_ids: list[int], owner: str, lease_s: float) -> None:
        await self._pool.execute(
            f"UPDATE missions SET callback_lease_until = {_NOW} + $3"
            " WHERE id = ANY($1::bigint[]) AND callback_owner = $2",
            mission_ids,
            owner,
            lease_s,
        )

    async def release_callback(self, mission_id: int, owner: str) -> None:
        await self._pool.execute(*sql.RELEASE_CALLBACK.bind_pg(mission_id=mission_id, owner=owner))

    async def set_callback(self, mission_id: int, state: str, attempts: int, error: str) -> None:
        await self._pool.execute(
            *sql.SET_CALLBACK.bind_pg(
                mission_id=mission_id,
                state=state,
                attempts=attempts,
                error=error,
                now=time.time(),
            )
        )

    async def callback_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch(sql.CALLBACK_COUNTS)
        return {r["callback_state"]: r["n"] for r in rows}

    # -- tokens (``protocols.TokenRepo``) ---------------------------------------------------------

    async def add_token(self, name: str) -> str:
        """Create a token called ``name`` and return it; only its hash is stored.

        Raises ``ValueError`` when the name is empty or taken.
        """
        token = new_token(name)
        try:
            await self._pool.execute(
                *sql.ADD_TOKEN.bind_pg(hash=hash_token(token), name=name, now=time.time())
            )
        except asyncpg.UniqueViolationError as e:
            raise ValueError(f"a token named '{name}' exists") from e
        return token

    async def list_tokens(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(sql.LIST_TOKENS)]

    async def revoke_token(self, name: str) -> bool:
        status = await self._pool.execute(*sql.REVOKE_TOKEN.bind_pg(name=name, now=time.time()))
        return _count(status) > 0

    async def token_active(self, token_hash: str) -> bool:
        row = await self._pool.fetchrow(*sql.TOKEN_ACTIVE.bind_pg(token_hash=token_hash))
        return row is not None
