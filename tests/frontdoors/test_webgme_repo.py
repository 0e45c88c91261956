"""The WebGME door's repository (its tables: blobs, owners, references, contents, jobs and their
output) on both engines, made by the door's own migrations; a job and its mission are stored in
one transaction of the store (``run_in_transaction``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.frontdoors.webgme.frontdoor import WebgmeDoor
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.tables import BlobRef, BlobRow
from service.store import PgStore, SqliteStore, Storage
from service.store.protocols import Transaction

MISSION: dict[str, Any] = {"tasks": {"task": []}}
NORMALISED: dict[str, Any] = {"return": {"url": "http://127.0.0.1:9/"}}


async def webgme_repo(store: Storage) -> WebgmeRepo:
    """The door's repository with its tables made (as the app makes them at start)."""
    assert WebgmeDoor.migrations is not None
    folder = WebgmeDoor.migrations / ("postgresql" if store.clustered else "sqlite")
    scripts = [p.read_text() for p in sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))]
    await store.sql.migrate_door(WebgmeDoor.name, scripts)
    return WebgmeRepo(store.sql)


async def insert_job_mission(
    store: Storage,
    repo: WebgmeRepo,
    token_hash: str,
    mission: dict[str, Any],
    normalised: dict[str, Any],
    kind: str,
    job_hash: str,
    doc_id: str,
) -> int:
    """What ``Core.submit(rows=repo.job_rows(...))`` stores: the mission and its job at once."""

    async def both(tx: Transaction) -> int:
        mission_id = await tx.insert_mission(token_hash, mission, normalised, kind)
        await repo.job_rows(token_hash, job_hash, doc_id)(tx, mission_id)
        return mission_id

    return await store.sql.run_in_transaction(both)


class WebgmeRepoTests:
    """Tests every engine passes; a subclass provides the ``store`` fixture."""

    @pytest.fixture
    async def repo(self, store: Storage) -> WebgmeRepo:
        return await webgme_repo(store)

    async def test_blobs_are_per_token_and_swept(self, repo: WebgmeRepo) -> None:
        blob = BlobRow("h1", "a.txt", 5, "text/plain", "c1", 0.0)
        stored = await repo.put_blob(blob, "tok-a")
        assert stored.hash == "h1"
        assert stored.last_modified > 0
        assert await repo.get_blob("h1", "tok-b") is None
        assert await repo.get_blob("h1") is not None
        assert [b.hash for b in await repo.list_blobs("tok-a")] == ["h1"]
        assert await repo.owns_content("c1", "tok-a")
        assert not await repo.owns_content("c1", "tok-b")
        assert await repo.storage_used("tok-a") == 5
        art = BlobRow("h2", "art", 0, "application/json", '{"a": 1}', 0.0, "complex", '{"d":1}')
        await repo.put_blob(art, "tok-a", (BlobRef("content", "c1"),))
        assert await repo.storage_used("tok-a") == 5 + len('{"d":1}')
        await repo.touch_blob("h1", "tok-a")
        swept = await repo.sweep(cutoff=1e12)  # everything is older than this
        assert swept.blobs == 2
        assert swept.contents == ("c1",)
        assert await repo.get_blob("h1") is None

    async def test_jobs_and_their_output(self, repo: WebgmeRepo) -> None:
        job = await repo.put_job("tok", "jh", "doc")
        assert (job.status, job.mission_id, job.output_number) == ("CREATED", None, None)
        await repo.update_job("tok", "jh", {"status": "RUNNING", "result_hashes": {"a": "b"}})
        await repo.add_output("tok", "jh", 0, "zero")
        await repo.add_output("tok", "jh", 1, "one")
        await repo.add_output("tok", "jh", 1, "ONE")
        got = await repo.get_job("tok", "jh")
        assert got is not None
        assert (got.status, got.result_hashes, got.output_number) == ("RUNNING", {"a": "b"}, 1)
        assert await repo.get_outputs("tok", "jh", 1, None) == [(1, "ONE")]
        assert await repo.get_outputs("tok", "jh", None, 1) == [(0, "zero")]
        assert [j.hash for j in await repo.list_jobs("tok", "RUNNING")] == ["jh"]
        assert await repo.list_jobs("tok", "CREATED") == []
        assert await repo.get_job("other", "jh") is None
        again = await repo.put_job("tok", "jh", "doc2")
        assert (again.status, again.result_hashes, again.output_number) == ("CREATED", None, None)
        await repo.clear_outputs("tok", "jh")
        await repo.delete_job("tok", "jh")
        assert await repo.get_job("tok", "jh") is None

    async def test_the_sweep_removes_finished_jobs_with_their_output(
        self, repo: WebgmeRepo
    ) -> None:
        await repo.put_job("tok", "done", "doc")
        await repo.update_job("tok", "done", {"status": "SUCCESS", "finish_time": 1.0})
        await repo.add_output("tok", "done", 0, "a")
        await repo.add_output("tok", "done", 1, "b")
        await repo.put_job("tok", "live", "doc")
        await repo.add_output("tok", "live", 0, "c")
        assert [j.hash for j in await repo.list_jobs("tok", None)] == ["done", "live"]
        swept = await repo.sweep(cutoff=1e12)
        assert (swept.jobs, swept.outputs) == (1, 2)
        assert [j.hash for j in await repo.list_jobs("tok", None)] == ["live"]
        assert await repo.get_outputs("tok", "live", None, None) == [(0, "c")]

    async def test_a_job_and_its_mission_are_stored_together(
        self, store: Storage, repo: WebgmeRepo
    ) -> None:
        first = await insert_job_mission(
            store, repo, "tok", MISSION, NORMALISED, "executor", "jh", "doc"
        )
        job = await repo.get_job("tok", "jh")
        assert job is not None
        assert (job.status, job.mission_id, job.doc_id) == ("CREATED", first, "doc")
        await repo.add_output("tok", "jh", 0, "old run")
        await repo.update_job("tok", "jh", {"status": "CANCELED"})
        again = await insert_job_mission(
            store, repo, "tok", MISSION, NORMALISED, "executor", "jh", "doc2"
        )
        job = await repo.get_job("tok", "jh")
        assert job is not None
        assert (job.status, job.mission_id, job.output_number) == ("CREATED", again, None)
        row = await store.missions.get_mission(again)
        assert row is not None
        assert (row.kind, row.state) == ("executor", "queued")

    async def test_a_job_whose_mission_cannot_be_stored_is_not_stored_either(
        self, store: Storage, repo: WebgmeRepo
    ) -> None:
        unstorable = {"tasks": {"task": [object()]}}  # not JSON: the mission's insert fails
        with pytest.raises(TypeError):
            await insert_job_mission(
                store, repo, "tok", unstorable, NORMALISED, "executor", "jh", "doc"
            )
        # Both or neither: no job left in CREATED without a mission.
        assert await repo.get_job("tok", "jh") is None
        assert await repo.list_jobs("tok", "CREATED") == []


class TestSqlite(WebgmeRepoTests):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Storage]:
        store = await SqliteStore.open(tmp_path / "judge.sqlite3")
        yield store
        await store.close()


@pytest.mark.postgres
class TestPostgres(WebgmeRepoTests):
    @pytest.fixture
    async def store(self, pg_url: str) -> AsyncIterator[Storage]:
        store = await PgStore.open(pg_url)
        yield store
        await store.close()

    async def test_blob_contents_are_shared(self, repo: WebgmeRepo) -> None:
        await repo.put_content("c1", b"\x00bytes")
        await repo.put_content("c1", b"\x00bytes")
        assert await repo.get_content("c1") == b"\x00bytes"
        assert await repo.has_content("c1")
        # A file a blob refers to is kept, even when a sweep listed it before that blob came.
        await repo.put_blob(BlobRow("h1", "a", 6, "text/plain", "c1", 0.0), "tok")
        assert await repo.delete_contents(("c1",)) == (0, 0)
        await repo.put_blob(BlobRow("h1", "a", 6, "text/plain", "c1", 0.0), "tok")
        await repo.sweep(cutoff=1e12)
        assert await repo.delete_contents(("c1", "c2")) == (1, 6)
        assert await repo.get_content("c1") is None
        assert not await repo.has_content("c1")
