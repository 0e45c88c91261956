"""The Judge0 door's rows: submissions (inputs and outcome) and batches with a callback.

Statements are written once (``service.store.sql.Statement``) and run on either engine through
``SqlRunner``. A submission row is written in the transaction that stores its mission, with its
id: both are stored or neither, in one commit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any, Protocol

from service.store.sql import Statement


class SqlRunner(Protocol):
    """One statement at a time on the store's engine."""

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        """Run a statement; returns the rows it touched."""
        ...

    async def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]: ...


@dataclass
class SubmissionRow:
    token: str
    token_hash: str
    mission_id: int | None
    batch: str
    created_at: float
    finished_at: float | None
    language_id: int
    params: dict[str, Any]
    source_code: bytes | None
    stdin: bytes | None
    expected_output: bytes | None
    additional_files: bytes | None
    status_id: int
    outcome: dict[str, Any] | None
    stdout: bytes | None
    stderr: bytes | None
    compile_output: bytes | None


_COLUMNS = (
    "token, token_hash, mission_id, batch, created_at, finished_at, language_id, params, "
    "source_code, stdin, expected_output, additional_files, status_id, outcome, stdout, stderr, "
    "compile_output"
)
INSERT = Statement(
    f"INSERT INTO judge0_submissions ({_COLUMNS}) VALUES (:token, :token_hash, :mission_id, "
    ":batch, :created_at, :finished_at, :language_id, :params, :source_code, :stdin, "
    ":expected_output, :additional_files, :status_id, :outcome, :stdout, :stderr, "
    ":compile_output)"
)
SET_MISSION = Statement(
    "UPDATE judge0_submissions SET mission_id = :mission_id WHERE token = :token"
)
GET = Statement(f"SELECT {_COLUMNS} FROM judge0_submissions WHERE token = :token")
BY_MISSION = Statement(f"SELECT {_COLUMNS} FROM judge0_submissions WHERE mission_id = :mission_id")
BY_BATCH = Statement(
    f"SELECT {_COLUMNS} FROM judge0_submissions WHERE batch = :batch ORDER BY created_at, token"
)
PAGE = Statement(
    f"SELECT {_COLUMNS} FROM judge0_submissions WHERE token_hash = :token_hash "
    "ORDER BY created_at DESC, token LIMIT :limit OFFSET :offset"
)
COUNT = Statement("SELECT COUNT(*) AS n FROM judge0_submissions WHERE token_hash = :token_hash")
FINISH = Statement(
    "UPDATE judge0_submissions SET status_id = :status_id, outcome = :outcome, stdout = :stdout, "
    "stderr = :stderr, compile_output = :compile_output, finished_at = :finished_at "
    "WHERE token = :token AND finished_at IS NULL"
)
DELETE = Statement(
    "DELETE FROM judge0_submissions WHERE token = :token AND token_hash = :token_hash"
)
INSERT_BATCH = Statement(
    "INSERT INTO judge0_batches (id, token_hash, callback_url, size, called, created_at) "
    "VALUES (:id, :token_hash, :callback_url, :size, 0, :created_at)"
)
GET_BATCH = Statement(
    "SELECT id, token_hash, callback_url, size, called FROM judge0_batches WHERE id = :id"
)
SWEEP = Statement(
    "DELETE FROM judge0_submissions WHERE finished_at IS NOT NULL AND finished_at < :cutoff"
)
SWEEP_BATCHES = Statement("DELETE FROM judge0_batches WHERE created_at < :cutoff")
CLAIM_BATCH_CALL = Statement("UPDATE judge0_batches SET called = 1 WHERE id = :id AND called = 0")


@functools.lru_cache(maxsize=64)
def _get_many(count: int) -> Statement:
    names = ", ".join(f":t{i}" for i in range(count))
    return Statement(f"SELECT {_COLUMNS} FROM judge0_submissions WHERE token IN ({names})")


def _row(r: dict[str, Any]) -> SubmissionRow:
    def blob(v: Any) -> bytes | None:
        return None if v is None else bytes(v)

    return SubmissionRow(
        token=r["token"],
        token_hash=r["token_hash"],
        mission_id=r["mission_id"],
        batch=r["batch"],
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        language_id=r["language_id"],
        params=json.loads(r["params"]),
        source_code=blob(r["source_code"]),
        stdin=blob(r["stdin"]),
        expected_output=blob(r["expected_output"]),
        additional_files=blob(r["additional_files"]),
        status_id=r["status_id"],
        outcome=json.loads(r["outcome"]) if r["outcome"] else None,
        stdout=blob(r["stdout"]),
        stderr=blob(r["stderr"]),
        compile_output=blob(r["compile_output"]),
    )


_OUTPUTS = ("stdout", "stderr", "compile_output")


def _outcome_fields(outcome: dict[str, Any]) -> dict[str, Any]:
    """What of an outcome goes into the ``outcome`` column (the outputs have columns)."""
    return {k: v for k, v in outcome.items() if k not in _OUTPUTS}


def ended_row(row: SubmissionRow, outcome: dict[str, Any], finished_at: float) -> SubmissionRow:
    """``row`` as ``Judge0Repo.finish(row.token, outcome, finished_at)`` leaves it stored, as
    ``get`` would read it (the column's JSON decoded)."""
    return dataclasses.replace(
        row,
        status_id=outcome["status_id"],
        outcome=json.loads(json.dumps(_outcome_fields(outcome))),
        stdout=outcome.get("stdout"),
        stderr=outcome.get("stderr"),
        compile_output=outcome.get("compile_output"),
        finished_at=finished_at,
    )


class Judge0Repo:
    """The door's statements, each one round trip to the store."""

    def __init__(self, sql: SqlRunner) -> None:
        self._sql = sql

    async def insert(self, row: SubmissionRow, runner: SqlRunner | None = None) -> None:
        """Store a new row, on ``runner`` when given (the transaction storing its mission)."""
        values = dict(row.__dict__)
        values["params"] = json.dumps(row.params)
        values["outcome"] = json.dumps(row.outcome) if row.outcome is not None else None
        await (runner or self._sql).execute(INSERT, **values)

    async def get(self, token: str) -> SubmissionRow | None:
        rows = await self._sql.fetch_all(GET, token=token)
        return _row(rows[0]) if rows else None

    async def get_many(self, tokens: list[str]) -> dict[str, SubmissionRow]:
        """The rows of ``tokens`` (at most a batch's) that exist, by token; one query."""
        unique = list(dict.fromkeys(tokens))
        if not unique:
            return {}
        values = {f"t{i}": token for i, token in enumerate(unique)}
        rows = await self._sql.fetch_all(_get_many(len(unique)), **values)
        return {r["token"]: _row(r) for r in rows}

    async def by_mission(self, mission_id: int) -> SubmissionRow | None:
        rows = await self._sql.fetch_all(BY_MISSION, mission_id=mission_id)
        return _row(rows[0]) if rows else None

    async def page(self, token_hash: str, offset: int, limit: int) -> list[SubmissionRow]:
        rows = await self._sql.fetch_all(PAGE, token_hash=token_hash, offset=offset, limit=limit)
        return [_row(r) for r in rows]

    async def count(self, token_hash: str) -> int:
        rows = await self._sql.fetch_all(COUNT, token_hash=token_hash)
        return int(rows[0]["n"])

    async def finish(
        self,
        token: str,
        outcome: dict[str, Any],
        finished_at: float,
        runner: SqlRunner | None = None,
    ) -> bool:
        """Store how a submission ended (once: a second end of the same submission, e.g. the
        re-run of a mission another node finished, is ignored), on ``runner`` when given (the
        transaction storing its mission's end). True when stored."""
        touched = await (runner or self._sql).execute(
            FINISH,
            token=token,
            status_id=outcome["status_id"],
            outcome=json.dumps(_outcome_fields(outcome)),
            stdout=outcome.get("stdout"),
            stderr=outcome.get("stderr"),
            compile_output=outcome.get("compile_output"),
            finished_at=finished_at,
        )
        return touched > 0

    async def delete(self, token: str, token_hash: str) -> bool:
        return await self._sql.execute(DELETE, token=token, token_hash=token_hash) > 0

    async def insert_batch(
        self, batch: str, token_hash: str, callback_url: str, size: int, created_at: float
    ) -> None:
        await self._sql.execute(
            INSERT_BATCH,
            id=batch,
            token_hash=token_hash,
            callback_url=callback_url,
            size=size,
            created_at=created_at,
        )

    async def batch(self, batch: str) -> dict[str, Any] | None:
        rows = await self._sql.fetch_all(GET_BATCH, id=batch)
        return rows[0] if rows else None

    async def batch_rows(self, batch: str) -> list[SubmissionRow]:
        """A batch's submissions in the order they were created (the request's)."""
        return [_row(r) for r in await self._sql.fetch_all(BY_BATCH, batch=batch)]

    async def claim_batch_call(self, batch: str) -> bool:
        """True for exactly one caller once the batch may be called back."""
        return await self._sql.execute(CLAIM_BATCH_CALL, id=batch) > 0

    async def sweep(self, cutoff: float) -> int:
        """Forget submissions that ended before ``cutoff`` (and batches made before it), as
        the judge forgets its missions after its retention period; returns how many went."""
        gone = await self._sql.execute(SWEEP, cutoff=cutoff)
        await self._sql.execute(SWEEP_BATCHES, cutoff=cutoff)
        return gone
