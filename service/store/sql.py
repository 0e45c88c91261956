"""SQL both engines run: each statement written once, with named parameters (``:mission_id``).

``Statement`` renders such a text for each engine when it is made (at import): ``?`` in order
for ``sqlite3``, ``$1, $2`` for ``asyncpg`` (a name used twice is one ``$n`` there, two ``?``
here). Two names mean time:

* ``:now`` is the caller's ``time.time()`` (``updated_at``, ``created_at``, ...);
* ``:clock`` is the clock leases are measured on: PostgreSQL's own (nodes' clocks may
  disagree, the database's is the one they share), and on SQLite (one node) the same ``:now``.

Where the engines really differ (claims with ``FOR UPDATE SKIP LOCKED``, ``RETURNING``,
NOTIFY, group commit, transactions) the statement stays in its engine's module.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from service.store.records import MISSION_KIND

_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

PG_CLOCK = "extract(epoch from clock_timestamp())"
"""The database's clock on PostgreSQL, in seconds since the epoch (what ``:clock`` becomes)."""


class Statement:
    """One SQL text with named parameters, rendered for both engines once.

    ``bind_sqlite(**values)`` gives ``(text, args)`` for ``sqlite3``'s ``execute``;
    ``bind_pg(**values)`` gives ``(text, *args)`` for asyncpg's ``execute``/``fetch``. Values
    the statement does not name are ignored; a missing one raises ``KeyError``.
    """

    __slots__ = ("_pg_names", "_sqlite_names", "pg_text", "sqlite_text", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        sqlite_names: list[str] = []
        pg_names: list[str] = []

        def to_sqlite(match: re.Match[str]) -> str:
            name = match[1]
            sqlite_names.append("now" if name == "clock" else name)
            return "?"

        def to_pg(match: re.Match[str]) -> str:
            name = match[1]
            if name == "clock":
                return PG_CLOCK
            if name not in pg_names:
                pg_names.append(name)
            return f"${pg_names.index(name) + 1}"

        self.sqlite_text = _PARAMETER.sub(to_sqlite, text)
        self.pg_text = _PARAMETER.sub(to_pg, text)
        self._sqlite_names = tuple(sqlite_names)
        self._pg_names = tuple(pg_names)

    def returning(self, columns: str) -> Statement:
        """The same statement handing back ``columns`` of the rows it touched."""
        return Statement(f"{self.text} RETURNING {columns}")

    def sqlite_args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self._sqlite_names)

    def pg_args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] for name in self._pg_names)

    def bind_sqlite(self, **values: Any) -> tuple[str, tuple[Any, ...]]:
        return self.sqlite_text, self.sqlite_args(values)

    def bind_pg(self, **values: Any) -> tuple[Any, ...]:
        return (self.pg_text, *self.pg_args(values))

    def __repr__(self) -> str:
        return f"Statement({self.text!r})"


# A finished mission's callback becomes due for the mission API's own missions with a
# ``return`` (the others are polled: their callback state stays 'none'), and for a front door's
# mission when its door says it has one (``:door_due`` = 1, decided by the caller at the end).
_DOOR_DUE = "CAST(:door_due AS INTEGER) = 1 AND callback_state != 'none'"
CALLBACK_DUE = (
    f"(CASE WHEN {_DOOR_DUE} THEN 'pending'"
    f" WHEN kind = '{MISSION_KIND}' AND callback_state != 'none' THEN 'pending'"
    " ELSE callback_state END)"
)

# A mission of the API that failed without a result has nothing to deliver: a callback it was
# owed is recorded as failed, with the reason. A door builds its callback without one.
CALLBACK_UNDELIVERABLE = (
    f"(CASE WHEN {_DOOR_DUE} THEN 'pending'"
    f" WHEN kind = '{MISSION_KIND}' AND callback_state != 'none' THEN 'failed'"
    " ELSE callback_state END), callback_error = (CASE WHEN callback_state = 'none'"
    f" OR ({_DOOR_DUE}) THEN '' ELSE 'no result to deliver' END)"
)


# -- front doors' schema versions -----------------------------------------------------------------

DOOR_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS door_schema (door TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)
DOOR_VERSION = Statement("SELECT version FROM door_schema WHERE door = :door")
SET_DOOR_VERSION = Statement(
    "INSERT INTO door_schema (door, version) VALUES (:door, :version)"
    " ON CONFLICT (door) DO UPDATE SET version = excluded.version"
)


# -- missions -------------------------------------------------------------------------------------

# Only the node holding the lease (``:owner``), or anyone when ``:owner`` is NULL. The cast tells
# PostgreSQL the parameter's type; SQLite reads it the same way.
_ANY_OR_OWNER = "(CAST(:owner AS TEXT) IS NULL OR lease_owner = :owner)"

INSERT_MISSION = Statement(
    "INSERT INTO missions (token_hash, state, mission, normalised, created_at, updated_at,"
    " delivery_id, kind, callback_state, image) VALUES (:token_hash, 'queued', :mission,"
    " :normalised, :now, :now, :delivery_id, :kind, :callback_state, :image)"
)


def new_mission(
    token_hash: str, mission: dict[str, Any], normalised: dict[str, Any], kind: str, now: float
) -> dict[str, Any]:
    """The values ``INSERT_MISSION`` stores for a queued mission: JSON as text, a fresh
    delivery id, a callback only missions of the mission API without a ``return`` lack, and
    the image it runs in (``judge/x`` for ``judge/x:latest``; '' for the default image)."""
    image = str(normalised.get("image") or "")
    return {
        "token_hash": token_hash,
        "mission": json.dumps(mission),
        "normalised": json.dumps(normalised),
        "now": now,
        "delivery_id": uuid.uuid4().hex,
        "kind": kind,
        "callback_state": "waiting" if kind != MISSION_KIND or "return" in normalised else "none",
        "image": image.removesuffix(":latest"),
    }


PIN_MISSION = Statement(
    "UPDATE missions SET lease_owner = :owner, lease_until = :clock + :lease_s"
    " WHERE id = :mission_id"
)
RENEW_PINS = Statement(
    "UPDATE missions SET lease_until = :clock + :lease_s"
    " WHERE state = 'queued' AND lease_owner = :owner"
)
GET_MISSION = Statement("SELECT * FROM missions WHERE id = :mission_id")
CLAIM = Statement(
    "UPDATE missions SET state = 'running', runs = runs + 1, updated_at = :now,"
    " lease_owner = :owner, lease_until = :clock + :lease_s, cancel_requested = false"
    " WHERE id = :mission_id AND state = 'queued'"
)
RENEW_LEASE = Statement(
    "UPDATE missions SET lease_until = :clock + :lease_s WHERE id = :mission_id"
    " AND state = 'running' AND lease_owner = :owner"
)
REQUEST_CANCEL = Statement(
    "UPDATE missions SET cancel_requested = true WHERE id = :mission_id AND state = 'running'"
)
FINISH = Statement(
    "UPDATE missions SET state = :state, result = :result, updated_at = :now,"
    f" callback_state = {CALLBACK_DUE} WHERE id = :mission_id AND state = 'running'"
    f" AND {_ANY_OR_OWNER}"
)
CANCEL_QUEUED = Statement(
    "UPDATE missions SET state = 'cancelled', result = :result, updated_at = :now,"
    f" callback_state = {CALLBACK_DUE} WHERE id = :mission_id AND state = 'queued'"
)


def _fail(callback: str) -> Statement:
    return Statement(
        "UPDATE missions SET state = 'failed', error = :error, updated_at = :now,"
        f" result = COALESCE(:result, result), callback_state = {callback}"
        " WHERE id = :mission_id AND state IN ('queued', 'running')"
        " AND (CAST(:owner AS TEXT) IS NULL OR state = 'queued' OR lease_owner = :owner)"
    )


FAIL_WITH_RESULT = _fail(f"{CALLBACK_DUE}, callback_error = ''")
FAIL_UNDELIVERABLE = _fail(CALLBACK_UNDELIVERABLE)

REQUEUE_RUNNING = Statement(
    "UPDATE missions SET state = 'queued', updated_at = :now, lease_owner = '',"
    f" lease_until = 0 WHERE state = 'running' AND {_ANY_OR_OWNER}"
)
# One mission this node holds, queued again after an infrastructure failure (its runs count on).
REQUEUE_ONE = Statement(
    "UPDATE missions SET state = 'queued', updated_at = :now, lease_owner = '', lease_until = 0"
    " WHERE id = :mission_id AND state = 'running' AND lease_owner = :owner"
)
# The same for a mission claimed but never started (the engine went down between): the run its
# claim counted did not happen.
UNCLAIM_ONE = Statement(
    "UPDATE missions SET state = 'queued', updated_at = :now, lease_owner = '', lease_until = 0,"
    " runs = runs - 1 WHERE id = :mission_id AND state = 'running' AND lease_owner = :owner"
)
# Callbacks it was delivering are due again at once, not when their lease expires.
RELEASE_CALLBACKS_OF = Statement(
    "UPDATE missions SET callback_lease_until = 0"
    " WHERE (CAST(:owner AS TEXT) IS NULL OR callback_owner = :owner)"
)
QUEUED_IDS = "SELECT id FROM missions WHERE state = 'queued' ORDER BY id"
RUNNING_BY_OWNER = (
    "SELECT lease_owner, COUNT(*) AS n FROM missions WHERE state = 'running' GROUP BY lease_owner"
)
# A token's own missions (every kind), newest first: GET /api/missions pages through them
# (index missions_token).
_OWN = "FROM missions WHERE token_hash = :token_hash"
LIST_MISSIONS = Statement(f"SELECT * {_OWN} ORDER BY id DESC LIMIT :limit OFFSET :offset")
COUNT_MISSIONS = Statement(f"SELECT COUNT(*) AS n {_OWN}")
QUEUED_COUNT = "SELECT COUNT(*) AS n FROM missions WHERE state = 'queued'"
PROBE = "SELECT id FROM missions LIMIT 1"  # the database answers (/healthz), whatever its size
COUNTS = "SELECT state, COUNT(*) AS n FROM missions GROUP BY state"

# -- callbacks ------------------------------------------------------------------------------------

PENDING_CALLBACKS = "SELECT id FROM missions WHERE callback_state = 'pending' ORDER BY id"
RELEASE_CALLBACK = Statement(
    "UPDATE missions SET callback_lease_until = 0 WHERE id = :mission_id"
    " AND callback_owner = :owner"
)
SET_CALLBACK = Statement(
    "UPDATE missions SET callback_state = :state, callback_attempts = :attempts,"
    " callback_error = :error, updated_at = :now WHERE id = :mission_id"
)
CALLBACK_COUNTS = "SELECT callback_state, COUNT(*) AS n FROM missions GROUP BY callback_state"

# -- tokens ---------------------------------------------------------------------------------------

ADD_TOKEN = Statement("INSERT INTO tokens (hash, name, created_at) VALUES (:hash, :name, :now)")
LIST_TOKENS = "SELECT name, created_at, revoked_at FROM tokens ORDER BY name"
REVOKE_TOKEN = Statement(
    "UPDATE tokens SET revoked_at = :now WHERE name = :name AND revoked_at IS NULL"
)
TOKEN_ACTIVE = Statement("SELECT 1 FROM tokens WHERE hash = :token_hash AND revoked_at IS NULL")

# -- retention ------------------------------------------------------------------------------------

_ENDED_MISSIONS = (
    "DELETE FROM missions WHERE state IN ('done', 'cancelled', 'failed')"
    " AND callback_state != 'pending' AND updated_at < :cutoff"
)


@lru_cache(maxsize=16)
def _delete_ended_missions(kept: str) -> Statement:
    return Statement(f"{_ENDED_MISSIONS} AND id NOT IN ({kept})")


def delete_ended_missions(kept: Statement) -> Statement:
    """Missions that ended before ``:cutoff`` with their callback settled, except the ids the
    query ``kept`` selects (``Transaction.delete_ended_missions``)."""
    return _delete_ended_missions(kept.text)
