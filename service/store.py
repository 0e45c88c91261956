"""Durable state in an embedded SQLite database (WAL): missions, results, callbacks, tokens.

``Database`` is synchronous (the tokens CLI uses it directly); ``Store`` runs it on one thread the
service owns so the event loop never blocks on disk. A mission is committed before it is
acknowledged, so a crash never loses an accepted mission.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS missions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    mission TEXT NOT NULL,
    normalised TEXT NOT NULL,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    callback_state TEXT NOT NULL DEFAULT 'waiting',
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS missions_state ON missions(state);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""

UNFINISHED = ("queued", "running")


def hash_token(token: str) -> str:
    """Tokens are stored and compared as SHA-256 hex digests, never in clear."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class MissionRow:
    id: int
    token_hash: str
    state: str
    mission: dict[str, Any]
    normalised: dict[str, Any]
    result: dict[str, Any] | None
    created_at: float
    updated_at: float
    callback_state: str
    callback_attempts: int
    callback_error: str


class Database:
    """Synchronous access to the judge database; one connection, one thread at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged mission survives power loss, not just a process crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # -- missions -------------------------------------------------------------------------------

    def insert_mission(
        self, token_hash: str, mission: dict[str, Any], normalised: dict[str, Any]
    ) -> int:
        now = time.time()
        cur = self._conn.execute(
            "INSERT INTO missions (token_hash, state, mission, normalised, created_at, updated_at)"
            " VALUES (?, 'queued', ?, ?, ?, ?)",
            (token_hash, json.dumps(mission), json.dumps(normalised), now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def get_mission(self, mission_id: int) -> MissionRow | None:
        row = self._conn.execute("SELECT * FROM missions WHERE id = ?", (mission_id,)).fetchone()
        return None if row is None else _mission_row(row)

    def set_state(self, mission_id: int, state: str) -> None:
        self._conn.execute(
            "UPDATE missions SET state = ?, updated_at = ? WHERE id = ?",
            (state, time.time(), mission_id),
        )

    def finish(self, mission_id: int, state: str, result: dict[str, Any]) -> None:
        """Store the result and make the callback due, in one transaction."""
        self._conn.execute(
            "UPDATE missions SET state = ?, result = ?, updated_at = ?, callback_state = 'pending'"
            " WHERE id = ?",
            (state, json.dumps(result), time.time(), mission_id),
        )

    def unfinished(self) -> list[int]:
        rows = self._conn.execute(
            "SELECT id FROM missions WHERE state IN (?, ?) ORDER BY id", UNFINISHED
        ).fetchall()
        return [r["id"] for r in rows]

    def pending_callbacks(self) -> list[int]:
        rows = self._conn.execute(
            "SELECT id FROM missions WHERE callback_state = 'pending' ORDER BY id"
        ).fetchall()
        return [r["id"] for r in rows]

    def set_callback(self, mission_id: int, state: str, attempts: int, error: str) -> None:
        self._conn.execute(
            "UPDATE missions SET callback_state = ?, callback_attempts = ?, callback_error = ?,"
            " updated_at = ? WHERE id = ?",
            (state, attempts, error, time.time(), mission_id),
        )

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT state, COUNT(*) AS n FROM missions GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def callback_counts(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT callback_state, COUNT(*) AS n FROM missions GROUP BY callback_state"
        )
        return {r["callback_state"]: r["n"] for r in rows}

    # -- tokens ---------------------------------------------------------------------------------

    def add_token(self, name: str) -> str:
        """Create a token called ``name`` and return it; only its hash is stored.

        Raises ``ValueError`` when the name is taken.
        """
        token = secrets.token_urlsafe(24)
        try:
            self._conn.execute(
                "INSERT INTO tokens (hash, name, created_at) VALUES (?, ?, ?)",
                (hash_token(token), name, time.time()),
            )
        except sqlite3.IntegrityError as e:
            raise ValueError(f"a token named '{name}' exists") from e
        return token

    def list_tokens(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT name, created_at, revoked_at FROM tokens ORDER BY name")
        return [dict(r) for r in rows]

    def revoke_token(self, name: str) -> bool:
        cur = self._conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (time.time(), name),
        )
        return cur.rowcount > 0

    def token_active(self, token_hash: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM tokens WHERE hash = ? AND revoked_at IS NULL", (token_hash,)
        ).fetchone()
        return row is not None


def _mission_row(row: sqlite3.Row) -> MissionRow:
    return MissionRow(
        id=row["id"],
        token_hash=row["token_hash"],
        state=row["state"],
        mission=json.loads(row["mission"]),
        normalised=json.loads(row["normalised"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        callback_state=row["callback_state"],
        callback_attempts=row["callback_attempts"],
        callback_error=row["callback_error"],
    )


class Store:
    """The database on a single thread of its own, awaited from the event loop."""

    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self._db: Database = self._executor.submit(Database, path).result()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``Database`` method ``fn`` (e.g. ``Database.get_mission``) on the store thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, self._db, *args))

    def close(self) -> None:
        self._executor.submit(self._db.close).result()
        self._executor.shutdown(wait=True)
