-- The tables of a new database (IF NOT EXISTS: run at every start).
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
CREATE INDEX IF NOT EXISTS missions_token ON missions(token_hash, id);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
