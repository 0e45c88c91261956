"""The executor's tables (the WebGME door's, made by its migrations): an older data directory
still opens (jobs go to their mission's token), blobs and jobs are per token, and a retention
sweep removes exactly what is old and unused."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from service.frontdoors.webgme.blobs import file_doc, metadata_hash, parse_metadata
from service.frontdoors.webgme.mimes import mime_type
from service.frontdoors.webgme.repo import WebgmeRepo
from service.frontdoors.webgme.tables import BlobRow
from service.store import SqliteStore, hash_token
from service.store.sql import Statement
from tests.frontdoors.test_webgme_repo import webgme_repo

ALICE, BOB = hash_token("alice"), hash_token("bob")

# The schema of the first release, as a data directory made then holds it.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS missions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    mission TEXT NOT NULL,
    normalised TEXT NOT NULL,
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    delivery_id TEXT NOT NULL,
    callback_state TEXT NOT NULL DEFAULT 'waiting',
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_error TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'mission'
);
CREATE INDEX IF NOT EXISTS missions_state ON missions(state);
CREATE INDEX IF NOT EXISTS missions_callback_state ON missions(callback_state);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    content TEXT NOT NULL,
    last_modified REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS executor_jobs (
    hash TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    mission_id INTEGER,
    status TEXT NOT NULL,
    create_time REAL NOT NULL,
    start_time REAL,
    finish_time REAL,
    worker TEXT,
    result_hashes TEXT,
    output TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS executor_jobs_status ON executor_jobs(status);
"""


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[WebgmeRepo]:
    """The data directory's database opened as the server opens it: the store, then the
    door's migrations."""
    store = await SqliteStore.open(path)
    try:
        yield await webgme_repo(store)
    finally:
        await store.close()


def _file(name: str, content: str, size: int = 3) -> BlobRow:
    doc = file_doc(name, size, content)
    return BlobRow(
        metadata_hash(doc), name, size, doc["mime"], content, time.time(), "object", json.dumps(doc)
    )


async def test_an_older_database_opens_and_its_jobs_keep_their_token(tmp_path: Path) -> None:
    path = tmp_path / "judge.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    now = time.time()
    conn.execute(
        "INSERT INTO missions (token_hash, state, mission, normalised, created_at, updated_at,"
        " delivery_id, kind) VALUES (?, 'done', '{}', '{}', ?, ?, 'd', 'executor')",
        (ALICE, now, now),
    )
    conn.execute(
        "INSERT INTO blobs VALUES (?, 'job.zip', 3, 'application/zip', ?, ?)",
        ("a" * 40, "c" * 40, now),
    )
    conn.execute(
        "INSERT INTO blobs VALUES (?, 'all.zip', 3, 'application/zip', ?, ?)",
        ("b" * 40, "d" * 40, now),
    )
    conn.execute(
        "INSERT INTO executor_jobs (hash, doc_id, mission_id, status, create_time,"
        " result_hashes) VALUES (?, 'x', 1, 'SUCCESS', ?, ?)",
        ("a" * 40, now, json.dumps({"all": "b" * 40})),
    )
    conn.commit()
    conn.close()

    async with opened(path) as db:
        job = await db.get_job(ALICE, "a" * 40)
        assert job is not None
        assert (job.status, job.result_hashes, job.output_number) == (
            "SUCCESS",
            {"all": "b" * 40},
            None,
        )
        assert await db.get_job(BOB, "a" * 40) is None
        for blob in ("a" * 40, "b" * 40):
            row = await db.get_blob(blob, ALICE)
            assert row is not None
            assert (row.content_type, row.doc) == ("object", None)
            assert await db.get_blob(blob, BOB) is None
    async with opened(path):
        pass  # opening it again changes nothing


async def test_jobs_and_outputs_are_per_token(tmp_path: Path) -> None:
    async with opened(tmp_path / "db") as db:
        await db.put_job(ALICE, "h" * 40, "a")
        await db.put_job(BOB, "h" * 40, "b")
        await db.add_output(ALICE, "h" * 40, 0, "one ")
        await db.add_output(ALICE, "h" * 40, 1, "two")
        alice_job = await db.get_job(ALICE, "h" * 40)
        bob_job = await db.get_job(BOB, "h" * 40)
        assert alice_job is not None
        assert bob_job is not None
        assert (alice_job.output_number, bob_job.output_number) == (1, None)
        assert await db.get_outputs(ALICE, "h" * 40, 1, None) == [(1, "two")]
        assert await db.get_outputs(BOB, "h" * 40, None, None) == []
        assert [j.hash for j in await db.list_jobs(BOB, "CREATED")] == ["h" * 40]
        await db.put_job(ALICE, "h" * 40, "c")  # created anew: the old output goes
        assert await db.get_outputs(ALICE, "h" * 40, None, None) == []


async def test_a_sweep_removes_what_is_old_and_unused(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "db")
    db = await webgme_repo(store)
    try:
        old, live, linked, shared = (
            _file("old.txt", "1" * 40),
            _file("live.zip", "2" * 40),
            _file("linked.txt", "3" * 40),
            _file("shared.txt", "4" * 40),
        )
        for row in (old, live, linked, shared):
            await db.put_blob(row, ALICE)
        await db.put_blob(shared, BOB)
        doc, refs = parse_metadata(
            json.dumps(
                {
                    "name": "a.zip",
                    "contentType": "complex",
                    "content": {"x": {"content": linked.hash, "contentType": "softLink"}},
                }
            ).encode()
        )
        art = BlobRow(
            metadata_hash(doc),
            "a.zip",
            0,
            "",
            json.dumps(doc["content"]),
            time.time(),
            "complex",
            json.dumps(doc),
        )
        await db.put_blob(art, BOB, refs)
        await db.put_job(ALICE, live.hash, "live")
        await db.put_job(ALICE, old.hash, "done")
        await db.update_job(ALICE, old.hash, {"status": "SUCCESS", "finish_time": time.time()})
        # Everything is older than the cutoff except Bob's touches, which come later.
        cutoff = time.time() + 1
        await store.sql.execute(
            Statement("UPDATE blob_owners SET touched_at = touched_at + 10 WHERE token_hash = :t"),
            t=BOB,
        )
        result = await db.sweep(cutoff)
        assert result.jobs == 1  # the finished job; the live one stays
        assert await db.get_job(ALICE, live.hash) is not None
        assert await db.get_blob(live.hash, ALICE) is not None  # a live job's source
        assert await db.get_blob(old.hash) is None
        assert await db.get_blob(shared.hash, BOB) is not None
        assert await db.get_blob(linked.hash) is not None  # Bob's artifact links to it
        assert await db.get_blob(linked.hash, ALICE) is None
        assert result.contents == ("1" * 40,)
        assert await db.storage_used(BOB) == shared.size + len(art.doc or "")
    finally:
        await store.close()


def test_mime_types_follow_webgme() -> None:
    assert mime_type("jobdefinition.zip") == "application/zip"
    assert mime_type("a/b/run.JS") == "text/javascript"
    assert mime_type("Makefile") is None
    assert mime_type("dir/zip") is None
    assert mime_type("zip") == "application/zip"  # as mime.getType does


def test_the_seed_file_hash_is_webgme_serialisation() -> None:
    doc = file_doc("jobdefinition.zip", 278, "f9d5a93b1e76a5ead51d7762c9520e6998911cb5")
    text = json.dumps(doc, separators=(",", ":"))
    assert text.startswith('{"name":"jobdefinition.zip","size":278,"mime":"application/zip",')
    assert metadata_hash(doc) == hashlib.sha1(text.encode()).hexdigest()
