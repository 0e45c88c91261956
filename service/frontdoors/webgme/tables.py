"""The WebGME door's rows and the statements on its tables (blobs, their owners and references,
blob contents on PostgreSQL, executor jobs and their output segments).

Each statement is written once for both engines (``service.store.sql.Statement``); the tables
are made by this door's migrations (``sql/<engine>/NNN_*.sql``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from service.store.sql import Statement


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


def job_row(row: dict[str, Any]) -> JobRow:
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


# -- executor jobs --------------------------------------------------------------------------------

JOB_SELECT = (
    "SELECT j.*, (SELECT MAX(number) FROM executor_outputs o WHERE"
    " o.token_hash = j.token_hash AND o.hash = j.hash) AS output_number"
    " FROM executor_jobs j"
)
GET_JOB = Statement(f"{JOB_SELECT} WHERE j.token_hash = :token_hash AND j.hash = :job_hash")
LIST_JOBS = Statement(
    f"{JOB_SELECT} WHERE j.token_hash = :token_hash"
    " AND (CAST(:status AS TEXT) IS NULL OR j.status = :status) ORDER BY j.create_time"
)
# A job made again starts over: every column but its document goes back to its default.
PUT_JOB = Statement(
    "INSERT INTO executor_jobs (token_hash, hash, doc_id, status, create_time)"
    " VALUES (:token_hash, :job_hash, :doc_id, 'CREATED', :now)"
    " ON CONFLICT (token_hash, hash) DO UPDATE SET doc_id = excluded.doc_id,"
    " status = 'CREATED', create_time = excluded.create_time, mission_id = NULL,"
    " start_time = NULL, finish_time = NULL, worker = NULL, result_hashes = NULL, output = '',"
    " error = ''"
)
SET_JOB_MISSION = Statement(
    "UPDATE executor_jobs SET mission_id = :mission_id"
    " WHERE token_hash = :token_hash AND hash = :job_hash"
)
DELETE_JOB = Statement(
    "DELETE FROM executor_jobs WHERE token_hash = :token_hash AND hash = :job_hash"
)
ADD_OUTPUT = Statement(
    "INSERT INTO executor_outputs (token_hash, hash, number, output)"
    " VALUES (:token_hash, :job_hash, :number, :output) ON CONFLICT (token_hash, hash, number)"
    " DO UPDATE SET output = excluded.output"
)
CLEAR_OUTPUTS = Statement(
    "DELETE FROM executor_outputs WHERE token_hash = :token_hash AND hash = :job_hash"
)
GET_OUTPUTS = Statement(
    "SELECT number, output FROM executor_outputs WHERE token_hash = :token_hash"
    " AND hash = :job_hash AND number >= :start AND number < :end ORDER BY number"
)

_JOB_CHANGES = frozenset(
    {"mission_id", "status", "start_time", "finish_time", "worker", "result_hashes", "output"}
    | {"error"}
)


def update_job(changes: dict[str, Any]) -> tuple[Statement, dict[str, Any]]:
    """The statement setting ``changes`` (columns of a job) and its values, ``result_hashes``
    as JSON text; the caller adds ``token_hash`` and ``job_hash``."""
    fields = dict(changes)
    if "result_hashes" in fields:
        fields["result_hashes"] = json.dumps(fields["result_hashes"])
    assert set(fields) <= _JOB_CHANGES, fields
    return _update_job(tuple(fields)), fields


@lru_cache(maxsize=64)
def _update_job(columns: tuple[str, ...]) -> Statement:
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    return Statement(
        f"UPDATE executor_jobs SET {assignments}"
        " WHERE token_hash = :token_hash AND hash = :job_hash"
    )


# -- blobs ----------------------------------------------------------------------------------------

# A blob's columns as one token sees it: its own time, not the first uploader's.
OWNED_BLOB = "hash, name, size, mime, content, o.touched_at AS last_modified, content_type, doc"

INSERT_BLOB = Statement(
    "INSERT INTO blobs (hash, name, size, mime, content, last_modified, content_type, doc)"
    " VALUES (:hash, :name, :size, :mime, :content, :last_modified, :content_type, :doc)"
    " ON CONFLICT (hash) DO NOTHING"
)
INSERT_BLOB_REF = Statement(
    "INSERT INTO blob_refs (parent, kind, child) VALUES (:parent, :kind, :child)"
    " ON CONFLICT DO NOTHING"
)
OWN_BLOB = Statement(
    "INSERT INTO blob_owners (hash, token_hash, touched_at) VALUES (:hash, :token_hash, :now)"
    " ON CONFLICT (hash, token_hash) DO UPDATE SET touched_at = excluded.touched_at"
)
GET_BLOB = Statement("SELECT * FROM blobs WHERE hash = :hash")
GET_OWNED_BLOB = Statement(
    f"SELECT {OWNED_BLOB} FROM blobs JOIN blob_owners o USING (hash)"
    " WHERE hash = :hash AND o.token_hash = :token_hash"
)
TOUCH_BLOB = Statement(
    "UPDATE blob_owners SET touched_at = :now WHERE hash = :hash AND token_hash = :token_hash"
)
LIST_BLOBS = Statement(
    f"SELECT {OWNED_BLOB} FROM blobs JOIN blob_owners o USING (hash)"
    " WHERE o.token_hash = :token_hash ORDER BY o.touched_at, hash"
)
OWNS_CONTENT = Statement(
    "SELECT 1 FROM blobs JOIN blob_owners USING (hash) WHERE content = :content"
    " AND content_type = 'object' AND token_hash = :token_hash LIMIT 1"
)
STORAGE_USED = Statement(
    "SELECT COALESCE(SUM(CASE WHEN content_type = 'object' THEN size"
    " ELSE LENGTH(COALESCE(doc, content)) END), 0) AS n"
    " FROM blobs JOIN blob_owners USING (hash) WHERE token_hash = :token_hash"
)

# -- blob contents (a table only where the store keeps them: ``Storage.blob_contents``) ---------

PUT_CONTENT = Statement(
    "INSERT INTO blob_contents (hash, data) VALUES (:hash, :data) ON CONFLICT DO NOTHING"
)
HAS_CONTENT = Statement("SELECT 1 AS n FROM blob_contents WHERE hash = :hash")
GET_CONTENT = Statement("SELECT data FROM blob_contents WHERE hash = :hash")
# Checked again when deleting: another node may have stored a blob of it since the sweep.
DELETE_CONTENT = Statement(
    "DELETE FROM blob_contents WHERE hash = :hash AND NOT EXISTS (SELECT 1 FROM blobs b"
    " WHERE b.content = blob_contents.hash AND b.content_type = 'object') AND NOT EXISTS"
    " (SELECT 1 FROM blob_refs r WHERE r.kind = 'content' AND r.child = blob_contents.hash)"
    " RETURNING LENGTH(data) AS n"
)

# -- the retention sweep (one transaction; ``:cutoff`` is when kept things must have ended) -------

_FINISHED_JOB = "('SUCCESS', 'FAILED_TO_EXECUTE', 'CANCELED')"
SWEEP_OUTPUTS = Statement(
    "DELETE FROM executor_outputs WHERE EXISTS (SELECT 1 FROM executor_jobs j"
    " WHERE j.token_hash = executor_outputs.token_hash AND j.hash = executor_outputs.hash"
    f" AND j.status IN {_FINISHED_JOB} AND COALESCE(j.finish_time, j.create_time) < :cutoff)"
)
SWEEP_JOBS = Statement(
    f"DELETE FROM executor_jobs WHERE status IN {_FINISHED_JOB}"
    " AND COALESCE(finish_time, create_time) < :cutoff"
)
# The missions a job still refers to stay (the store's retention deletes the others).
JOB_MISSIONS = Statement("SELECT mission_id FROM executor_jobs WHERE mission_id IS NOT NULL")
# A live job's source blob stays with its token.
SWEEP_OWNERS = Statement(
    "DELETE FROM blob_owners WHERE touched_at < :cutoff AND NOT EXISTS (SELECT 1 FROM"
    " executor_jobs j WHERE j.hash = blob_owners.hash AND j.token_hash = blob_owners.token_hash"
    " AND j.status IN ('CREATED', 'RUNNING'))"
)
# Blobs no token sees and no artifact links to (soft links keep their targets).
UNOWNED_BLOBS = Statement(
    "SELECT hash, content, content_type FROM blobs WHERE NOT EXISTS"
    " (SELECT 1 FROM blob_owners o WHERE o.hash = blobs.hash) AND NOT EXISTS"
    " (SELECT 1 FROM blob_refs r WHERE r.kind = 'meta' AND r.child = blobs.hash)"
)
CONTENT_REFS = Statement("SELECT child FROM blob_refs WHERE kind = 'content' AND parent = :hash")
DELETE_BLOB_REFS = Statement("DELETE FROM blob_refs WHERE parent = :hash")
DELETE_BLOB = Statement("DELETE FROM blobs WHERE hash = :hash")
CONTENT_USED = Statement(
    "SELECT 1 FROM blobs WHERE content = :content AND content_type = 'object'"
    " UNION ALL SELECT 1 FROM blob_refs WHERE kind = 'content' AND child = :content LIMIT 1"
)
