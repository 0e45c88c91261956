-- A token's missions, newest first (GET /api/missions and the doors' lists).
CREATE INDEX missions_token ON missions(token_hash, id);
