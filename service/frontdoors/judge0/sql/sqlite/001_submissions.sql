-- The Judge0 door's submissions: what the client sent (its inputs, kept with the mission that
-- runs it, so a restart or a re-run needs nothing else) and how it ended, in Judge0's terms.
-- SQLite's types (postgresql/ holds the same tables in PostgreSQL's).
CREATE TABLE IF NOT EXISTS judge0_submissions (
    token TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    mission_id INTEGER,
    batch TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    finished_at REAL,
    language_id INTEGER NOT NULL,
    params TEXT NOT NULL,
    source_code BLOB,
    stdin BLOB,
    expected_output BLOB,
    additional_files BLOB,
    status_id INTEGER NOT NULL DEFAULT 1,
    outcome TEXT,
    stdout BLOB,
    stderr BLOB,
    compile_output BLOB
);
CREATE INDEX IF NOT EXISTS judge0_submissions_owner ON judge0_submissions(token_hash, created_at);
CREATE INDEX IF NOT EXISTS judge0_submissions_mission ON judge0_submissions(mission_id);
CREATE INDEX IF NOT EXISTS judge0_submissions_batch ON judge0_submissions(batch);
-- A batch with a top-level callback_url: called once, when its last submission ended.
CREATE TABLE IF NOT EXISTS judge0_batches (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    size INTEGER NOT NULL,
    called INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
