-- The WebGME door's tables: blobs, who may see them (owners), what artifacts point at (refs) and
-- their contents (every node reads every file: no shared file system), executor jobs (one per
-- token and hash) and their streamed output segments. The store's first schema version made
-- them before this door had migrations: on such a database this changes nothing.
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime TEXT NOT NULL,
    content TEXT NOT NULL,
    last_modified DOUBLE PRECISION NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'object',
    doc TEXT
);
CREATE INDEX IF NOT EXISTS blobs_content ON blobs(content);
CREATE TABLE IF NOT EXISTS blob_owners (
    hash TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    touched_at DOUBLE PRECISION NOT NULL,
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
CREATE TABLE IF NOT EXISTS blob_contents (
    hash TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS executor_jobs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    mission_id BIGINT,
    status TEXT NOT NULL,
    create_time DOUBLE PRECISION NOT NULL,
    start_time DOUBLE PRECISION,
    finish_time DOUBLE PRECISION,
    worker TEXT,
    result_hashes TEXT,
    output TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (token_hash, hash)
);
CREATE INDEX IF NOT EXISTS executor_jobs_status ON executor_jobs(status);
CREATE TABLE IF NOT EXISTS executor_outputs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    number INTEGER NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (token_hash, hash, number)
);
