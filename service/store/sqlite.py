"""Durable state in an embedded SQLite database (WAL): missions, results, callbacks, tokens.

``SqliteStore`` runs the synchronous ``Database`` (``service.store.sqlitedb``) on one thread the
service owns, so the event loop never blocks on disk; statements run one at a time there, and
concurrent submissions share one commit (group commit). A mission is committed before it is
acknowledged, so a crash never loses an accepted mission. Counts for ``/healthz`` and
``/metrics`` are read on a read-only connection and thread of their own.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from service.store import sql
from service.store.groupcommit import GroupCommit
from service.store.protocols import EveryRepository, Transaction
from service.store.records import (
    MISSION_KIND,
    StoreFull,
)
from service.store.sqlitedb import Database, state_counts

T = TypeVar("T")
P = ParamSpec("P")

ANSWERED_RECENTLY_S = 1.0
"""A statement that succeeded this recently answers ``ping`` (``/healthz``) without asking again."""


def _open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store's database (WAL: it reads beside the writer)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _probe(conn: sqlite3.Connection) -> None:
    conn.execute(sql.PROBE).fetchall()


def _full_disk_told(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, a full disk raised as ``StoreFull`` (SQLite's own error says
    only "database or disk is full", which reads as a bug in the judge)."""
    try:
        return fn(*args, **kwargs)
    except sqlite3.OperationalError as e:
        if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(e):
            raise StoreFull(f"the data directory is full ({e})") from e
        raise


def _on_store_thread(
    fn: Callable[Concatenate[Database, P], T],
) -> Callable[Concatenate[SqliteStore, P], Coroutine[Any, Any, T]]:
    """A ``SqliteStore`` method awaiting ``Database`` method ``fn`` on the store thread.

    It keeps ``fn``'s parameters, so mypy checks ``Database`` against the repository protocols
    the store must satisfy.
    """

    async def method(self: SqliteStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._call(fn, *args, **kwargs)

    method.__name__ = fn.__name__
    method.__qualname__ = f"SqliteStore.{fn.__name__}"
    method.__doc__ = fn.__doc__
    return method


class SqliteStore(EveryRepository):
    """The database on a single thread of its own, awaited from the event loop; implements
    every repository protocol (``service.store.protocols``) by running ``Database`` there.

    Build it with ``await SqliteStore.open(path)``; ``await close()`` when done.
    """

    engine = "sqlite"
    clustered = False  # one node
    blob_contents = False  # files a door stores stay on this node's disk

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        db: Database,
        reader: sqlite3.Connection,
        reader_executor: ThreadPoolExecutor,
    ) -> None:
        self._executor = executor
        self._db = db
        # Counts (for /healthz and /metrics) read on a connection and thread of their own: WAL
        # lets a reader run beside the writer, so a health check never queues behind a large
        # write (a 10,000-execute result is ~2 MB of JSON to encode and store).
        self._reader = reader
        self._reader_executor = reader_executor
        self._answered_at = -ANSWERED_RECENTLY_S  # monotonic: the last statement that succeeded
        # Group commit: concurrent submissions share one transaction on the store's thread.
        self._intake = GroupCommit(self._insert_missions, "store-intake")

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
        then: Callable[[int], None] | None = None,
    ) -> int:
        """Store a queued mission and return its id once it is committed.

        Concurrent submissions share one transaction and one fsync (group commit): while the
        store thread commits one group, the next one gathers, so an idle server commits each
        at once and a busy one commits many per fsync. A submission whose caller is cancelled
        is still stored. Raises what the database raised for the whole group.
        """
        return await self._intake.submit((token_hash, mission, normalised, kind), then)

    async def _insert_missions(
        self, batch: list[tuple[str, dict[str, Any], dict[str, Any], str]]
    ) -> list[int]:
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(
            self._executor, _full_disk_told, self._db.insert_missions, batch
        )
        self._answered_at = time.monotonic()
        return ids

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, Database, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        reader_executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-read")
        try:
            reader = await loop.run_in_executor(reader_executor, _open_reader, path)
        except BaseException:
            reader_executor.shutdown(wait=False)
            await loop.run_in_executor(executor, db.close)
            executor.shutdown(wait=False)
            raise
        return cls(executor, db, reader, reader_executor)

    async def _call(
        self, fn: Callable[Concatenate[Database, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``Database`` method ``fn`` (e.g. ``Database.get_mission``) on the store thread.

        A call that was started finishes even if the awaiting task is cancelled.
        """
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            self._executor, functools.partial(_full_disk_told, fn, self._db, *args, **kwargs)
        )
        self._answered_at = time.monotonic()
        return answer

    async def close(self) -> None:
        await self._intake.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reader_executor, self._reader.close)
        self._reader_executor.shutdown(wait=True)
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)

    async def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """No other node to hear from: this node's own queue wakes its workers."""

    async def ping(self) -> bool:
        """True when the database answers: at once when a statement of this store succeeded in
        the last ``ANSWERED_RECENTLY_S`` (the database is this process's own file: it answered),
        else one row read on the reader's connection and thread (never queued behind a write).

        (A thread needs the GIL at each step; while the loop's thread is busy with a large
        mission, even that one-row read waited up to 75 ms for it, measured.)"""
        if time.monotonic() - self._answered_at < ANSWERED_RECENTLY_S:
            return True
        try:
            await self._read(_probe)
        except (sqlite3.Error, StoreFull):
            return False
        return True

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(reader)`` on the reader's connection and thread, beside the writer (WAL)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._reader_executor, functools.partial(_full_disk_told, fn, self._reader)
        )

    # -- the repository protocols: each runs its ``Database`` method on the store thread -------
    # (insert_mission, above, is the one that does more: group commit).

    insert_pinned_mission = _on_store_thread(Database.insert_pinned_mission)
    renew_pins = _on_store_thread(Database.renew_pins)
    get_mission = _on_store_thread(Database.get_mission)
    list_missions = _on_store_thread(Database.list_missions)
    count_missions = _on_store_thread(Database.count_missions)
    claim = _on_store_thread(Database.claim)
    claim_next = _on_store_thread(Database.claim_next)
    renew_lease = _on_store_thread(Database.renew_lease)
    request_cancel = _on_store_thread(Database.request_cancel)
    finish = _on_store_thread(Database.finish)
    cancel_queued = _on_store_thread(Database.cancel_queued)
    fail = _on_store_thread(Database.fail)
    requeue = _on_store_thread(Database.requeue)
    requeue_unfinished = _on_store_thread(Database.requeue_unfinished)
    running_by_owner = _on_store_thread(Database.running_by_owner)
    queued_count = _on_store_thread(Database.queued_count)

    async def counts(self) -> dict[str, int]:
        """Missions per state, read beside the writer (never queued behind a write)."""
        return await self._read(state_counts)

    pending_callbacks = _on_store_thread(Database.pending_callbacks)
    claim_callbacks = _on_store_thread(Database.claim_callbacks)
    renew_callbacks = _on_store_thread(Database.renew_callbacks)
    release_callback = _on_store_thread(Database.release_callback)
    set_callback = _on_store_thread(Database.set_callback)
    callback_counts = _on_store_thread(Database.callback_counts)

    execute = _on_store_thread(Database.execute)
    fetch_one = _on_store_thread(Database.fetch_one)
    fetch_all = _on_store_thread(Database.fetch_all)
    batch = _on_store_thread(Database.batch)
    migrate_door = _on_store_thread(Database.migrate_door)

    async def run_in_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """On the store's thread, in one step (``service.store.transactions``)."""
        return await self._call(Database.run_in_transaction, fn)

    add_token = _on_store_thread(Database.add_token)
    list_tokens = _on_store_thread(Database.list_tokens)
    revoke_token = _on_store_thread(Database.revoke_token)
    token_active = _on_store_thread(Database.token_active)
