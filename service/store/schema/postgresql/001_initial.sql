CREATE TABLE missions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    mission TEXT NOT NULL,
    normalised TEXT NOT NULL,
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    delivery_id TEXT NOT NULL,
    callback_state TEXT NOT NULL DEFAULT 'waiting',
    callback_attempts INTEGER NOT NULL DEFAULT 0,
    callback_error TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'mission',
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    callback_owner TEXT NOT NULL DEFAULT '',
    callback_lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX missions_queued ON missions(id) WHERE state = 'queued';
CREATE INDEX missions_running ON missions(lease_until) WHERE state = 'running';
CREATE INDEX missions_state ON missions(state);
CREATE INDEX missions_callback_due ON missions(id) WHERE callback_state = 'pending';
CREATE INDEX missions_callback_state ON missions(callback_state);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime TEXT NOT NULL,
    content TEXT NOT NULL,
    last_modified DOUBLE PRECISION NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'object',
    doc TEXT
);
CREATE INDEX blobs_content ON blobs(content);
CREATE TABLE blob_owners (
    hash TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    touched_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hash, token_hash)
);
CREATE INDEX blob_owners_token ON blob_owners(token_hash);
CREATE TABLE blob_refs (
    parent TEXT NOT NULL,
    kind TEXT NOT NULL,
    child TEXT NOT NULL,
    PRIMARY KEY (parent, kind, child)
);
CREATE INDEX blob_refs_child ON blob_refs(child);
CREATE TABLE blob_contents (
    hash TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE executor_jobs (
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
CREATE INDEX executor_jobs_status ON executor_jobs(status);
CREATE TABLE executor_outputs (
    token_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    number INTEGER NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (token_hash, hash, number)
);
