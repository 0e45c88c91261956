-- Jobs belong to the token that created them: two tokens creating a job from the same blob get
-- two jobs. Databases made before held one job per hash (the store rebuilds those).
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
CREATE INDEX IF NOT EXISTS executor_jobs_status ON executor_jobs(status);
