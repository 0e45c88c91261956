"""SQL fragments both engines use word for word (SQLite and PostgreSQL read them alike)."""

from __future__ import annotations

from service.store.records import MISSION_KIND

# A blob's columns as one token sees it: its own time, not the first uploader's.
OWNED_BLOB = "hash, name, size, mime, content, o.touched_at AS last_modified, content_type, doc"

# A finished mission's callback becomes due only for the mission API's own missions, and only
# for those with a ``return`` (the others are polled: their callback state stays 'none').
CALLBACK_DUE = (
    f"(CASE WHEN kind = '{MISSION_KIND}' AND callback_state != 'none' THEN 'pending'"
    " ELSE callback_state END)"
)

# A mission that failed without a result has nothing to deliver: a callback it was owed is
# recorded as failed, with the reason.
CALLBACK_UNDELIVERABLE = (
    f"(CASE WHEN kind = '{MISSION_KIND}' AND callback_state != 'none' THEN 'failed'"
    " ELSE callback_state END), callback_error = (CASE WHEN callback_state = 'none'"
    " THEN '' ELSE 'no result to deliver' END)"
)
