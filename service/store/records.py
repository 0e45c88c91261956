"""What the stores hand back: plain frozen records, the same for every engine."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from orchestrator.mission.result import MissionState

MISSION_KIND = "mission"
"""The kind of missions submitted to the mission API; only they have callbacks. Front doors
(``executor``, ``exec``) store their missions under their own kind."""

MISSION_STATES = tuple(state.value for state in MissionState)
"""Every state a mission row may hold (``orchestrator.mission.result.MissionState``)."""
CALLBACK_STATES = ("none", "waiting", "pending", "delivered", "failed")


class StoreFull(Exception):
    """The database cannot write: its disk (the data directory) is full. Nothing of the write
    was stored; the same write succeeds once there is room again."""


def hash_token(token: str) -> str:
    """Tokens are stored and compared as SHA-256 hex digests, never in clear."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str) -> str:
    """A fresh token for a token called ``name``. Raises ``ValueError`` when the name is empty
    (a name already taken is the store's to find)."""
    if not name.strip():
        raise ValueError("a token needs a name")
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class MissionRow:
    id: int
    token_hash: str
    state: str
    mission: dict[str, Any]
    normalised: dict[str, Any]
    result: dict[str, Any] | None
    error: str
    created_at: float
    updated_at: float
    runs: int
    delivery_id: str
    callback_state: str
    callback_attempts: int
    callback_error: str
    kind: str = MISSION_KIND
    mission_bytes: int = 0
    """The stored mission document's JSON text, in characters (0: not known). What decides
    whether reading it again is cheap enough for the event loop."""


def mission_row(row: Any) -> MissionRow:
    """A mission record from a row of either engine (JSON columns as text)."""
    return MissionRow(
        id=row["id"],
        token_hash=row["token_hash"],
        state=row["state"],
        mission=json.loads(row["mission"]),
        normalised=json.loads(row["normalised"]),
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        runs=row["runs"],
        delivery_id=row["delivery_id"],
        callback_state=row["callback_state"],
        callback_attempts=row["callback_attempts"],
        callback_error=row["callback_error"],
        kind=row["kind"],
        mission_bytes=len(row["mission"]),
    )
