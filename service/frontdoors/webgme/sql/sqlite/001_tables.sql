-- The WebGME door's tables: blobs, who may see them (owners) and what artifacts point at (refs),
-- executor jobs (one per token and hash) and their streamed output segments. Blob contents stay
-- on the node's disk (one node). Data directories made before this door had migrations hold
-- these tables already (the store made them); the first release's layout is brought up to date.
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    content TEXT NOT NULL,
    last_modified REAL NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'object',
    doc TEXT
);
ALTER TABLE blobs ADD COLUMN IF NOT EXISTS content_type TEXT NOT NULL DEFAULT 'object';
ALTER TABLE blobs ADD COLUMN IF NOT EXISTS doc TEXT;
CREATE TABLE IF NOT EXISTS blob_owners (
    hash TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    touched_at REAL NOT NULL,
    PRIMARY KEY (hash, token_hash)
);
CREATE INDEX IF NOT EXISTS blob_owners_token ON blob_owners(token_hash);
CREATE TABLE IF NOT EXISTS blob_refs (
    parent TEXT NOT NULL,
    kind TEXT NOT NULL,
    child TEXT NOT NULL,
    PRIMARY KEY (parent, kind, child)
);
CREATE INDEX IF NOT EXISTS blob_refs_child ON blob_refs(child);
CREATE TABLE IF NOT EXISTS executor_outputs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    number INTEGER NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (token_hash, hash, number)
);
CREATE TABLE IF NOT EXISTS executor_jobs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    mission_id INTEGER,
    status TEXT NOT NULL,
    create_time REAL NOT NULL,
    start_time REAL,
    finish_time REAL,
    worker TEXT,
    result_hashes TEXT,
    output TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (token_hash, hash)
);
-- Jobs belong to the token that created them. The first release held one job per hash: its
-- jobs (no token: '') go to the token of their mission, and their source and result blobs become
-- visible to that token (blobs no job used stay visible to nobody and age out). The table is
-- rebuilt for its primary key; jobs that have a token are copied as they are.
ALTER TABLE executor_jobs ADD COLUMN IF NOT EXISTS token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE executor_jobs RENAME TO executor_jobs_old;
DROP INDEX IF EXISTS executor_jobs_status;
CREATE TABLE executor_jobs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    mission_id INTEGER,
    status TEXT NOT NULL,
    create_time REAL NOT NULL,
    start_time REAL,
    finish_time REAL,
    worker TEXT,
    result_hashes TEXT,
    output TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (token_hash, hash)
);
CREATE INDEX executor_jobs_status ON executor_jobs(status);
CREATE TEMP TABLE executor_jobs_moved AS
    SELECT COALESCE((SELECT m.token_hash FROM missions m WHERE m.id = o.mission_id), '') AS token,
        o.hash AS hash, COALESCE(NULLIF(o.result_hashes, ''), '{}') AS results
    FROM executor_jobs_old o WHERE o.token_hash = '';
INSERT INTO executor_jobs (token_hash, hash, doc_id, mission_id, status, create_time, start_time,
        finish_time, worker, result_hashes, output, error)
    SELECT CASE WHEN o.token_hash = '' THEN COALESCE((SELECT m.token_hash FROM missions m
            WHERE m.id = o.mission_id), '') ELSE o.token_hash END,
        o.hash, o.doc_id, o.mission_id, o.status, o.create_time, o.start_time, o.finish_time,
        o.worker, o.result_hashes, o.output, o.error
    FROM executor_jobs_old o;
INSERT OR IGNORE INTO blob_owners (hash, token_hash, touched_at)
    SELECT hash, token, (julianday('now') - 2440587.5) * 86400.0 FROM executor_jobs_moved
    UNION ALL SELECT r.value, j.token, (julianday('now') - 2440587.5) * 86400.0
    FROM executor_jobs_moved j, json_each(j.results) r;
DROP TABLE executor_jobs_moved;
DROP TABLE executor_jobs_old;
