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


@dataclass(frozen=True)
class BlobRow:
    """A blob's metadata. ``content`` is the SHA-1 of the file for an ``object``, the JSON of
    the file map for a ``complex`` artifact; ``doc`` is the metadata document its hash was
    computed from (None for blobs stored before documents were kept)."""

    hash: str
    name: str
    size: int
    mime: str
    content: str
    last_modified: float
    content_type: str = "object"
    doc: str | None = None


@dataclass(frozen=True)
class BlobRef:
    """What a complex artifact points at: a file's content (``content``) or another blob's
    metadata (``meta``, a soft link)."""

    kind: str
    child: str


@dataclass(frozen=True)
class SweepResult:
    """What one retention sweep removed; ``contents`` are file hashes nothing refers to now."""

    jobs: int = 0
    outputs: int = 0
    missions: int = 0
    blobs: int = 0
    contents: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRow:
    hash: str
    doc_id: str
    mission_id: int | None
    status: str
    create_time: float
    start_time: float | None
    finish_time: float | None
    worker: str | None
    result_hashes: dict[str, str] | None
    output: str
    error: str
    token_hash: str = ""
    output_number: int | None = None  # the last streamed output segment, None for none


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
    )


def job_row(row: Any) -> JobRow:
    hashes = row["result_hashes"]
    return JobRow(
        hash=row["hash"],
        doc_id=row["doc_id"],
        mission_id=row["mission_id"],
        status=row["status"],
        create_time=row["create_time"],
        start_time=row["start_time"],
        finish_time=row["finish_time"],
        worker=row["worker"],
        result_hashes=None if hashes is None else json.loads(hashes),
        output=row["output"],
        error=row["error"],
        token_hash=row["token_hash"],
        output_number=row["output_number"],
    )
