-- Columns added after the first release, for databases made before: each statement runs only
-- when its table lacks the column (SQLite has no ADD COLUMN IF NOT EXISTS).
-- Leases (lease_*, cancel_requested, callback_*): which node runs a mission until when (one node
-- here, the same interface as PostgreSQL). image: the image a mission runs in ('' = default).
ALTER TABLE missions ADD COLUMN kind TEXT NOT NULL DEFAULT 'mission';
ALTER TABLE missions ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE missions ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE missions ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE missions ADD COLUMN callback_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE missions ADD COLUMN callback_lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE missions ADD COLUMN image TEXT NOT NULL DEFAULT '';
