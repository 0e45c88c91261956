"""PostgreSQL: the tables of blobs (their owners, references and contents) and of executor
jobs and their outputs, kept in the store for the WebGME door; ``PgStore`` inherits these
methods."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from service.store import sql
from service.store.records import (
    BlobRef,
    BlobRow,
    JobRow,
    SweepResult,
    job_row,
)


def _count(status: str) -> int:
    """Rows a statement touched, from asyncpg's status string (``DELETE 3``)."""
    return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


class PgTables:
    """The pool and the transaction every write uses."""

    _pool: asyncpg.Pool

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn


class BlobsAndJobs(PgTables):
    """Each method does what its protocol (``BlobRepo``, ``JobRepo``, ``ContentRepo``) promises."""

    # -- blobs (``protocols.BlobRepo``) -----------------------------------------------------------

    async def put_blob(
        self, blob: BlobRow, token_hash: str, refs: tuple[BlobRef, ...] = ()
    ) -> BlobRow:
        async with self._tx() as conn:
            await conn.execute(*sql.INSERT_BLOB.bind_pg(**dataclasses.asdict(blob)))
            if refs:
                await conn.executemany(
                    sql.INSERT_BLOB_REF.pg_text,
                    [
                        sql.INSERT_BLOB_REF.pg_args(
                            {"parent": blob.hash, "kind": ref.kind, "child": ref.child}
                        )
                        for ref in refs
                    ],
                )
            await conn.execute(
                *sql.OWN_BLOB.bind_pg(hash=blob.hash, token_hash=token_hash, now=time.time())
            )
            row = await conn.fetchrow(
                *sql.GET_OWNED_BLOB.bind_pg(hash=blob.hash, token_hash=token_hash)
            )
        assert row is not None
        return BlobRow(**dict(row))

    async def get_blob(self, blob_hash: str, token_hash: str | None = None) -> BlobRow | None:
        if token_hash is None:
            row = await self._pool.fetchrow(*sql.GET_BLOB.bind_pg(hash=blob_hash))
        else:
            row = await self._pool.fetchrow(
                *sql.GET_OWNED_BLOB.bind_pg(hash=blob_hash, token_hash=token_hash)
            )
        return None if row is None else BlobRow(**dict(row))

    async def touch_blob(self, blob_hash: str, token_hash: str) -> None:
        await self._pool.execute(
            *sql.TOUCH_BLOB.bind_pg(hash=blob_hash, token_hash=token_hash, now=time.time())
        )

    async def list_blobs(self, token_hash: str) -> list[BlobRow]:
        rows = await self._pool.fetch(*sql.LIST_BLOBS.bind_pg(token_hash=token_hash))
        return [BlobRow(**dict(r)) for r in rows]

    async def owns_content(self, content_hash: str, token_hash: str) -> bool:
        row = await self._pool.fetchrow(
            *sql.OWNS_CONTENT.bind_pg(content=content_hash, token_hash=token_hash)
        )
        return row is not None

    async def storage_used(self, token_hash: str) -> int:
        return int(await self._pool.fetchval(*sql.STORAGE_USED.bind_pg(token_hash=token_hash)))

    async def sweep(self, cutoff: float) -> SweepResult:
        # The same steps as SQLite's sweep (there run synchronously), in one transaction.
        async with self._tx() as conn:
            outputs = _count(await conn.execute(*sql.SWEEP_OUTPUTS.bind_pg(cutoff=cutoff)))
            jobs = _count(await conn.execute(*sql.SWEEP_JOBS.bind_pg(cutoff=cutoff)))
            missions = _count(await conn.execute(*sql.SWEEP_MISSIONS.bind_pg(cutoff=cutoff)))
            await conn.execute(*sql.SWEEP_OWNERS.bind_pg(cutoff=cutoff))
            removed: set[str] = set()
            candidates: set[str] = set()
            while True:  # soft links keep their targets: repeat until nothing more goes
                rows = await conn.fetch(sql.UNOWNED_BLOBS)
                if not rows:
                    break
                for row in rows:
                    removed.add(row["hash"])
                    if row["content_type"] == "object":
                        candidates.add(row["content"])
                    refs = await conn.fetch(*sql.CONTENT_REFS.bind_pg(hash=row["hash"]))
                    candidates.update(r["child"] for r in refs)
                    await conn.execute(*sql.DELETE_BLOB_REFS.bind_pg(hash=row["hash"]))
                    await conn.execute(*sql.DELETE_BLOB.bind_pg(hash=row["hash"]))
            contents = []
            for c in sorted(candidates):
                if await conn.fetchval(*sql.CONTENT_USED.bind_pg(content=c)) is None:
                    contents.append(c)
        return SweepResult(jobs, outputs, missions, len(removed), tuple(contents))

    # -- blob contents (files every node reads) ---------------------------------------------------

    async def put_content(self, content_hash: str, data: bytes) -> None:
        """Store a file's bytes under its hash (once: the same hash is the same bytes)."""
        await self._pool.execute(
            "INSERT INTO blob_contents (hash, data) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            content_hash,
            data,
        )

    async def has_content(self, content_hash: str) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM blob_contents WHERE hash = $1)", content_hash
            )
        )

    async def get_content(self, content_hash: str) -> bytes | None:
        data = await self._pool.fetchval(
            "SELECT data FROM blob_contents WHERE hash = $1", content_hash
        )
        return None if data is None else bytes(data)

    async def delete_contents(self, content_hashes: tuple[str, ...]) -> tuple[int, int]:
        """Delete files no blob refers to (checked again here: another node may have stored
        one since the sweep chose them); returns how many went and their bytes."""
        rows = await self._pool.fetch(
            "DELETE FROM blob_contents c WHERE hash = ANY($1::text[]) AND NOT EXISTS"
            " (SELECT 1 FROM blobs b WHERE b.content = c.hash AND b.content_type = 'object')"
            " AND NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.kind = 'content'"
            " AND r.child = c.hash) RETURNING LENGTH(data) AS n",
            list(content_hashes),
        )
        return len(rows), sum(r["n"] for r in rows)

    # -- executor jobs (``protocols.JobRepo``) ----------------------------------------------------

    async def get_job(self, token_hash: str, job_hash: str) -> JobRow | None:
        row = await self._pool.fetchrow(
            *sql.GET_JOB.bind_pg(token_hash=token_hash, job_hash=job_hash)
        )
        return None if row is None else job_row(row)

    async def list_jobs(self, token_hash: str, status: str | None) -> list[JobRow]:
        rows = await self._pool.fetch(*sql.LIST_JOBS.bind_pg(token_hash=token_hash, status=status))
        return [job_row(r) for r in rows]

    async def put_job(self, token_hash: str, job_hash: str, doc_id: str) -> JobRow:
        async with self._tx() as conn:
            await self._put_job(conn, token_hash, job_hash, doc_id)
            row = await conn.fetchrow(
                *sql.GET_JOB.bind_pg(token_hash=token_hash, job_hash=job_hash)
            )
        assert row is not None
        return job_row(row)

    async def _put_job(
        self, conn: asyncpg.Connection, token_hash: str, job_hash: str, doc_id: str
    ) -> None:
        """The job made again, its earlier output dropped (inside the caller's transaction)."""
        await conn.execute(
            *sql.PUT_JOB.bind_pg(
                token_hash=token_hash, job_hash=job_hash, doc_id=doc_id, now=time.time()
            )
        )
        await conn.execute(*sql.CLEAR_OUTPUTS.bind_pg(token_hash=token_hash, job_hash=job_hash))

    async def update_job(self, token_hash: str, job_hash: str, changes: dict[str, Any]) -> None:
        statement, values = sql.update_job(changes)
        await self._pool.execute(
            *statement.bind_pg(**values, token_hash=token_hash, job_hash=job_hash)
        )

    async def delete_job(self, token_hash: str, job_hash: str) -> None:
        await self._pool.execute(*sql.DELETE_JOB.bind_pg(token_hash=token_hash, job_hash=job_hash))

    async def add_output(self, token_hash: str, job_hash: str, number: int, output: str) -> None:
        await self._pool.execute(
            *sql.ADD_OUTPUT.bind_pg(
                token_hash=token_hash, job_hash=job_hash, number=number, output=output
            )
        )

    async def clear_outputs(self, token_hash: str, job_hash: str) -> None:
        await self._pool.execute(
            *sql.CLEAR_OUTPUTS.bind_pg(token_hash=token_hash, job_hash=job_hash)
        )

    async def get_outputs(
        self, token_hash: str, job_hash: str, start: int | None, end: int | None
    ) -> list[tuple[int, str]]:
        # ``number`` is a 32-bit INTEGER here: asyncpg refuses a larger bound.
        int_max = (1 << 31) - 1
        rows = await self._pool.fetch(
            *sql.GET_OUTPUTS.bind_pg(
                token_hash=token_hash,
                job_hash=job_hash,
                start=0 if start is None else start,
                end=int_max if end is None else min(end, int_max),
            )
        )
        return [(r["number"], r["output"]) for r in rows]
