"""SQLite: the tables of blobs (their owners and references) and of executor jobs and their
outputs, kept in the store for the WebGME door; ``Database`` inherits these methods."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service.store import schema, sql
from service.store.records import (
    BlobRef,
    BlobRow,
    JobRow,
    SweepResult,
    job_row,
)
from service.store.sql import Statement

# Jobs belong to the token that created them; databases made before held one job per hash
# (``_migrate_jobs`` rebuilds them).
JOBS_TABLE = schema.read("sqlite", "jobs.sql")
_JOB_COLUMNS = (
    "hash, doc_id, mission_id, status, create_time, start_time, finish_time, worker,"
    " result_hashes, output, error"
)


class SqliteTables:
    """The connection and the two ways every method uses it."""

    _conn: sqlite3.Connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _run(self, statement: Statement, **values: Any) -> sqlite3.Cursor:
        """Execute a shared statement (``service.store.sql``) with its named ``values``."""
        return self._conn.execute(*statement.bind_sqlite(**values))


class BlobsAndJobs(SqliteTables):
    """Each method does what its protocol (``BlobRepo``, ``JobRepo``) promises."""

    def _migrate_jobs(self) -> None:
        """Make the jobs table per token; an older one is rebuilt in one transaction.

        Its jobs go to the token of their mission, and their source and result blobs become
        visible to that token (blobs no job used stay visible to nobody and age out).
        """
        columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(executor_jobs)")}
        if not columns or "token_hash" in columns:
            self._conn.executescript(JOBS_TABLE)
            return
        now = time.time()
        with self._transaction() as conn:
            conn.execute("ALTER TABLE executor_jobs RENAME TO executor_jobs_old")
            conn.execute("DROP INDEX IF EXISTS executor_jobs_status")
            for statement in JOBS_TABLE.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                f"INSERT INTO executor_jobs (token_hash, {_JOB_COLUMNS}) SELECT COALESCE("
                "(SELECT token_hash FROM missions WHERE missions.id = mission_id), ''),"
                f" {_JOB_COLUMNS} FROM executor_jobs_old"
            )
            conn.execute("DROP TABLE executor_jobs_old")
            rows = conn.execute("SELECT token_hash, hash, result_hashes FROM executor_jobs")
            for row in rows.fetchall():
                owned = [row["hash"], *json.loads(row["result_hashes"] or "{}").values()]
                for blob_hash in owned:
                    conn.execute(
                        "INSERT OR IGNORE INTO blob_owners (hash, token_hash, touched_at)"
                        " VALUES (?, ?, ?)",
                        (blob_hash, row["token_hash"], now),
                    )

    # -- blobs (``protocols.BlobRepo``) ----------------------------------------------------------

    def put_blob(self, blob: BlobRow, token_hash: str, refs: tuple[BlobRef, ...] = ()) -> BlobRow:
        with self._transaction() as conn:
            self._run(sql.INSERT_BLOB, **dataclasses.asdict(blob))
            conn.executemany(
                sql.INSERT_BLOB_REF.sqlite_text,
                [
                    sql.INSERT_BLOB_REF.sqlite_args(
                        {"parent": blob.hash, "kind": ref.kind, "child": ref.child}
                    )
                    for ref in refs
                ],
            )
            self._run(sql.OWN_BLOB, hash=blob.hash, token_hash=token_hash, now=time.time())
            stored = self.get_blob(blob.hash, token_hash)
        assert stored is not None
        return stored

    def get_blob(self, blob_hash: str, token_hash: str | None = None) -> BlobRow | None:
        if token_hash is None:
            row = self._run(sql.GET_BLOB, hash=blob_hash).fetchone()
        else:
            row = self._run(sql.GET_OWNED_BLOB, hash=blob_hash, token_hash=token_hash).fetchone()
        return None if row is None else BlobRow(**dict(row))

    def touch_blob(self, blob_hash: str, token_hash: str) -> None:
        self._run(sql.TOUCH_BLOB, hash=blob_hash, token_hash=token_hash, now=time.time())

    def list_blobs(self, token_hash: str) -> list[BlobRow]:
        return [BlobRow(**dict(r)) for r in self._run(sql.LIST_BLOBS, token_hash=token_hash)]

    def owns_content(self, content_hash: str, token_hash: str) -> bool:
        row = self._run(sql.OWNS_CONTENT, content=content_hash, token_hash=token_hash).fetchone()
        return row is not None

    def storage_used(self, token_hash: str) -> int:
        return int(self._run(sql.STORAGE_USED, token_hash=token_hash).fetchone()["n"])

    def sweep(self, cutoff: float) -> SweepResult:
        # The same steps as PostgreSQL's sweep (there awaited on one connection).
        with self._transaction():
            outputs = self._run(sql.SWEEP_OUTPUTS, cutoff=cutoff).rowcount
            jobs = self._run(sql.SWEEP_JOBS, cutoff=cutoff).rowcount
            missions = self._run(sql.SWEEP_MISSIONS, cutoff=cutoff).rowcount
            self._run(sql.SWEEP_OWNERS, cutoff=cutoff)
            removed: set[str] = set()
            candidates: set[str] = set()
            while True:  # soft links keep their targets: repeat until nothing more goes
                rows = self._conn.execute(sql.UNOWNED_BLOBS).fetchall()
                if not rows:
                    break
                for row in rows:
                    removed.add(row["hash"])
                    if row["content_type"] == "object":
                        candidates.add(row["content"])
                    refs = self._run(sql.CONTENT_REFS, hash=row["hash"])
                    candidates.update(r["child"] for r in refs)
                    self._run(sql.DELETE_BLOB_REFS, hash=row["hash"])
                    self._run(sql.DELETE_BLOB, hash=row["hash"])
            contents = tuple(
                sorted(
                    c
                    for c in candidates
                    if self._run(sql.CONTENT_USED, content=c).fetchone() is None
                )
            )
        return SweepResult(jobs, outputs, missions, len(removed), contents)

    # -- executor jobs (``protocols.JobRepo``) ---------------------------------------------------

    def get_job(self, token_hash: str, job_hash: str) -> JobRow | None:
        row = self._run(sql.GET_JOB, token_hash=token_hash, job_hash=job_hash).fetchone()
        return None if row is None else job_row(row)

    def list_jobs(self, token_hash: str, status: str | None) -> list[JobRow]:
        return [job_row(r) for r in self._run(sql.LIST_JOBS, token_hash=token_hash, status=status)]

    def put_job(self, token_hash: str, job_hash: str, doc_id: str) -> JobRow:
        with self._transaction():
            self._put_job(token_hash, job_hash, doc_id)
        row = self.get_job(token_hash, job_hash)
        assert row is not None
        return row

    def _put_job(self, token_hash: str, job_hash: str, doc_id: str) -> None:
        """The job made again, its earlier output dropped (inside the caller's transaction)."""
        self._run(
            sql.PUT_JOB, token_hash=token_hash, job_hash=job_hash, doc_id=doc_id, now=time.time()
        )
        self._run(sql.CLEAR_OUTPUTS, token_hash=token_hash, job_hash=job_hash)

    def update_job(self, token_hash: str, job_hash: str, changes: dict[str, Any]) -> None:
        statement, values = sql.update_job(changes)
        self._run(statement, **values, token_hash=token_hash, job_hash=job_hash)

    def delete_job(self, token_hash: str, job_hash: str) -> None:
        self._run(sql.DELETE_JOB, token_hash=token_hash, job_hash=job_hash)

    def add_output(self, token_hash: str, job_hash: str, number: int, output: str) -> None:
        self._run(
            sql.ADD_OUTPUT, token_hash=token_hash, job_hash=job_hash, number=number, output=output
        )

    def clear_outputs(self, token_hash: str, job_hash: str) -> None:
        self._run(sql.CLEAR_OUTPUTS, token_hash=token_hash, job_hash=job_hash)

    def get_outputs(
        self, token_hash: str, job_hash: str, start: int | None, end: int | None
    ) -> list[tuple[int, str]]:
        rows = self._run(
            sql.GET_OUTPUTS,
            token_hash=token_hash,
            job_hash=job_hash,
            start=0 if start is None else start,
            end=(1 << 62) if end is None else end,  # SQLite's integers have 64 bits
        )
        return [(r["number"], r["output"]) for r in rows]
