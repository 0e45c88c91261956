"""The WebGME door's repository: its blobs, jobs and their output, and the retention sweep, on
the store's ``DoorSqlRepo`` (either engine, the same statements: ``tables``).

What must change together runs in one transaction (``run_in_transaction``): a blob with its
references and its owner, a job with its mission (``job_rows``, handed to ``Core.submit``), the
sweep of jobs, missions and blobs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from service.frontdoors.webgme import tables as t
from service.frontdoors.webgme.tables import BlobRef, BlobRow, JobRow, SweepResult, job_row
from service.store.protocols import DoorSqlRepo, Transaction

# Output segment numbers are a 32-bit INTEGER on PostgreSQL (asyncpg refuses a larger bound);
# the executor numbers them from 0, so no segment is beyond this on either engine.
_MAX_SEGMENT = (1 << 31) - 1


class WebgmeRepo:
    """Every read and write of the door's tables; each method is one statement or one
    transaction."""

    def __init__(self, sql: DoorSqlRepo) -> None:
        self._sql = sql

    # -- blobs ------------------------------------------------------------------------------------

    async def put_blob(
        self, blob: BlobRow, token_hash: str, refs: tuple[BlobRef, ...] = ()
    ) -> BlobRow:
        """Record a blob's metadata (a blob with the same hash keeps its first record) and make
        it visible to ``token_hash``; returns the stored record."""

        async def put(tx: Transaction) -> dict[str, Any] | None:
            await tx.execute(t.INSERT_BLOB, **dataclasses.asdict(blob))
            for ref in refs:
                await tx.execute(
                    t.INSERT_BLOB_REF, parent=blob.hash, kind=ref.kind, child=ref.child
                )
            await tx.execute(t.OWN_BLOB, hash=blob.hash, token_hash=token_hash, now=time.time())
            return await tx.fetch_one(t.GET_OWNED_BLOB, hash=blob.hash, token_hash=token_hash)

        row = await self._sql.run_in_transaction(put)
        assert row is not None
        return BlobRow(**row)

    async def get_blob(self, blob_hash: str, token_hash: str | None = None) -> BlobRow | None:
        """A blob's metadata; with ``token_hash``, None unless that token may see it, and its
        ``last_modified`` is when that token last stored it (never another token's time, which
        would tell it someone else holds the same file)."""
        if token_hash is None:
            row = await self._sql.fetch_one(t.GET_BLOB, hash=blob_hash)
        else:
            row = await self._sql.fetch_one(t.GET_OWNED_BLOB, hash=blob_hash, token_hash=token_hash)
        return None if row is None else BlobRow(**row)

    async def touch_blob(self, blob_hash: str, token_hash: str) -> None:
        """The token used its blob now: the retention period starts again."""
        await self._sql.execute(
            t.TOUCH_BLOB, hash=blob_hash, token_hash=token_hash, now=time.time()
        )

    async def list_blobs(self, token_hash: str) -> list[BlobRow]:
        return [
            BlobRow(**r) for r in await self._sql.fetch_all(t.LIST_BLOBS, token_hash=token_hash)
        ]

    async def owns_content(self, content_hash: str, token_hash: str) -> bool:
        """True when ``token_hash`` sees a file blob with this content."""
        row = await self._sql.fetch_one(t.OWNS_CONTENT, content=content_hash, token_hash=token_hash)
        return row is not None

    async def storage_used(self, token_hash: str) -> int:
        """Bytes the blobs visible to a token hold (files by size, artifacts by document)."""
        row = await self._sql.fetch_one(t.STORAGE_USED, token_hash=token_hash)
        assert row is not None
        return int(row["n"])

    # -- blob contents (only where the store keeps them: ``Storage.blob_contents``) ---------------

    async def put_content(self, content_hash: str, data: bytes) -> None:
        """Store a file's bytes under its hash (once: the same hash is the same bytes)."""
        await self._sql.execute(t.PUT_CONTENT, hash=content_hash, data=data)

    async def has_content(self, content_hash: str) -> bool:
        return await self._sql.fetch_one(t.HAS_CONTENT, hash=content_hash) is not None

    async def get_content(self, content_hash: str) -> bytes | None:
        row = await self._sql.fetch_one(t.GET_CONTENT, hash=content_hash)
        return None if row is None else bytes(row["data"])

    async def delete_contents(self, content_hashes: tuple[str, ...]) -> tuple[int, int]:
        """Delete files no blob refers to (checked again here: another node may have stored
        one since the sweep chose them); returns how many went and their bytes."""

        async def delete(tx: Transaction) -> list[int]:
            sizes = []
            for content_hash in content_hashes:
                row = await tx.fetch_one(t.DELETE_CONTENT, hash=content_hash)
                if row is not None:
                    sizes.append(int(row["n"]))
            return sizes

        sizes = await self._sql.run_in_transaction(delete)
        return len(sizes), sum(sizes)

    # -- executor jobs ----------------------------------------------------------------------------

    async def get_job(self, token_hash: str, job_hash: str) -> JobRow | None:
        row = await self._sql.fetch_one(t.GET_JOB, token_hash=token_hash, job_hash=job_hash)
        return None if row is None else job_row(row)

    async def list_jobs(self, token_hash: str, status: str | None) -> list[JobRow]:
        rows = await self._sql.fetch_all(t.LIST_JOBS, token_hash=token_hash, status=status)
        return [job_row(r) for r in rows]

    async def put_job(self, token_hash: str, job_hash: str, doc_id: str) -> JobRow:
        """Create (or re-create) a token's job of ``job_hash`` as CREATED, without a mission
        yet; the output of an earlier run is dropped."""

        async def put(tx: Transaction) -> dict[str, Any] | None:
            await _put_job(tx, token_hash, job_hash, doc_id)
            return await tx.fetch_one(t.GET_JOB, token_hash=token_hash, job_hash=job_hash)

        row = await self._sql.run_in_transaction(put)
        assert row is not None
        return job_row(row)

    def job_rows(
        self, token_hash: str, job_hash: str, doc_id: str
    ) -> Callable[[Transaction, int], Awaitable[None]]:
        """The job (created or re-created, as ``put_job``) of a mission being stored, for
        ``Core.submit(rows=...)``: written in the mission's transaction, so a crash leaves both
        or neither (never a CREATED job without a mission, which ``create`` would return
        forever)."""

        async def rows(tx: Transaction, mission_id: int) -> None:
            await _put_job(tx, token_hash, job_hash, doc_id)
            await tx.execute(
                t.SET_JOB_MISSION, mission_id=mission_id, token_hash=token_hash, job_hash=job_hash
            )

        return rows

    async def update_job(self, token_hash: str, job_hash: str, changes: dict[str, Any]) -> None:
        """Set columns of a job (``result_hashes`` as a dict)."""
        statement, values = t.update_job(changes)
        await self._sql.execute(statement, **values, token_hash=token_hash, job_hash=job_hash)

    async def delete_job(self, token_hash: str, job_hash: str) -> None:
        await self._sql.execute(t.DELETE_JOB, token_hash=token_hash, job_hash=job_hash)

    async def add_output(self, token_hash: str, job_hash: str, number: int, output: str) -> None:
        """Store output segment ``number`` of a job (replacing one of that number)."""
        await self._sql.execute(
            t.ADD_OUTPUT, token_hash=token_hash, job_hash=job_hash, number=number, output=output
        )

    async def clear_outputs(self, token_hash: str, job_hash: str) -> None:
        await self._sql.execute(t.CLEAR_OUTPUTS, token_hash=token_hash, job_hash=job_hash)

    async def get_outputs(
        self, token_hash: str, job_hash: str, start: int | None, end: int | None
    ) -> list[tuple[int, str]]:
        """Segments ``start`` <= number < ``end`` of a job, in order."""
        rows = await self._sql.fetch_all(
            t.GET_OUTPUTS,
            token_hash=token_hash,
            job_hash=job_hash,
            start=0 if start is None else min(start, _MAX_SEGMENT),
            end=_MAX_SEGMENT if end is None else min(end, _MAX_SEGMENT),
        )
        return [(r["number"], r["output"]) for r in rows]

    # -- retention --------------------------------------------------------------------------------

    async def sweep(self, cutoff: float) -> SweepResult:
        """Remove what ended before ``cutoff``: finished jobs (and their output), finished
        missions whose callback is settled and no job refers to, blobs no token touched since
        (unless a live job or a kept artifact needs them). Returns what went, with the file
        hashes no blob refers to any more (the caller deletes those files)."""
        return await self._sql.run_in_transaction(lambda tx: _sweep(tx, cutoff))


async def _put_job(tx: Transaction, token_hash: str, job_hash: str, doc_id: str) -> None:
    """The job made again, its earlier output dropped."""
    await tx.execute(
        t.PUT_JOB, token_hash=token_hash, job_hash=job_hash, doc_id=doc_id, now=time.time()
    )
    await tx.execute(t.CLEAR_OUTPUTS, token_hash=token_hash, job_hash=job_hash)


async def _sweep(tx: Transaction, cutoff: float) -> SweepResult:
    outputs = await tx.execute(t.SWEEP_OUTPUTS, cutoff=cutoff)
    jobs = await tx.execute(t.SWEEP_JOBS, cutoff=cutoff)
    missions = await tx.delete_ended_missions(cutoff, kept=t.JOB_MISSIONS)
    await tx.execute(t.SWEEP_OWNERS, cutoff=cutoff)
    removed: set[str] = set()
    candidates: set[str] = set()
    while True:  # soft links keep their targets: repeat until nothing more goes
        rows = await tx.fetch_all(t.UNOWNED_BLOBS)
        if not rows:
            break
        for row in rows:
            removed.add(row["hash"])
            if row["content_type"] == "object":
                candidates.add(row["content"])
            refs = await tx.fetch_all(t.CONTENT_REFS, hash=row["hash"])
            candidates.update(r["child"] for r in refs)
            await tx.execute(t.DELETE_BLOB_REFS, hash=row["hash"])
            await tx.execute(t.DELETE_BLOB, hash=row["hash"])
    contents = []
    for content in sorted(candidates):
        if await tx.fetch_one(t.CONTENT_USED, content=content) is None:
            contents.append(content)
    return SweepResult(jobs, outputs, missions, len(removed), tuple(contents))
