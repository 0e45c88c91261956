"""The storage interface: one protocol per aggregate, implemented by every engine.

SQLite (``sqlite.py``, one node, the default) and PostgreSQL (``postgres.py``, many nodes)
implement all of them; ``Storage`` is what the service holds. Every method is one statement or
one transaction. Owners and leases only matter with many nodes: on SQLite one node holds every
lease.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol, Self, TypeVar

from service.store.records import MISSION_KIND, MissionRow
from service.store.sql import Statement

T = TypeVar("T")


class MissionRepo(Protocol):
    """Missions and their results: intake, claim under a lease, finish, cancel."""

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
        then: Callable[[int], None] | None = None,
    ) -> int:
        """Store a queued mission (committed when this returns) and return its id.

        ``then(id)`` is called on the loop once it is committed, before this returns, even when
        the caller was cancelled meanwhile (it must not block)."""
        ...

    async def insert_pinned_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str,
        owner: str,
        lease_s: float,
    ) -> int:
        """Store a queued mission only ``owner`` may claim while it renews the pin
        (``renew_pins``): its files are in that node's memory. Returns its id."""
        ...

    async def renew_pins(self, owner: str, lease_s: float) -> None:
        """Keep ``owner``'s queued pinned missions its own for ``lease_s`` more."""
        ...

    async def get_mission(self, mission_id: int) -> MissionRow | None: ...

    async def list_missions(self, token_hash: str, limit: int, offset: int = 0) -> list[MissionRow]:
        """``token_hash``'s missions (every kind), newest first: at most ``limit`` of them after
        skipping ``offset``."""
        ...

    async def count_missions(self, token_hash: str) -> int:
        """How many missions ``list_missions`` pages through."""
        ...

    async def claim(
        self, mission_id: int, owner: str = "", lease_s: float = 0.0
    ) -> MissionRow | None:
        """Move a queued mission to ``running`` under ``owner``'s lease of ``lease_s`` and
        return it; None when it is not queued."""
        ...

    async def claim_next(
        self, owner: str, lease_s: float, images: Collection[str] | None = None
    ) -> MissionRow | None:
        """Claim the oldest queued mission, or a running one whose lease expired (its node
        died), for ``owner``; None when there is none. With ``images`` only a mission whose
        image is one of them (or that names none: the default image) is claimed."""
        ...

    async def renew_lease(self, mission_id: int, owner: str, lease_s: float) -> bool | None:
        """Extend ``owner``'s lease on a running mission; returns whether a cancel was asked
        for it, None when ``owner`` no longer holds it."""
        ...

    async def request_cancel(self, mission_id: int) -> bool:
        """Ask whichever node runs a mission to cancel it; False when it is not running."""
        ...

    async def finish(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        """Store the result of a running mission and make its callback due, in one statement
        (a front door's mission's only with ``door_due``); with ``owner``, only while it holds
        the lease. True when stored."""
        ...

    async def cancel_queued(
        self, mission_id: int, result: dict[str, Any], door_due: bool = False
    ) -> bool:
        """Finish a mission that is still queued as ``cancelled`` with ``result``; True if it was
        queued (its callback is then due; a front door's mission's only with ``door_due``)."""
        ...

    async def fail(
        self,
        mission_id: int,
        error: str,
        result: dict[str, Any] | None = None,
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        """Mark a mission the judge could not run (an error inside the judge). With a
        ``result`` (every execute ``SE``) its callback is due like any other; without one
        there is nothing to deliver (a front door's mission with ``door_due``: its door builds
        one anyway). With ``owner``, only while it holds the lease."""
        ...

    async def requeue(self, mission_id: int, owner: str, *, started: bool = True) -> bool:
        """Put a mission ``owner`` holds back in the queue (the engine failed under it: it is
        run again from the start, by any node); False when ``owner`` no longer holds it.
        ``started`` False: it was claimed but never started, so its claim's run is uncounted
        (``runs`` counts only runs that started)."""
        ...

    async def requeue_unfinished(self, owner: str | None = None) -> list[int]:
        """At start: missions a crash or a stop interrupted go back to the queue (they are
        re-run from the start, keeping their ids); with ``owner``, only those it held.
        Returns every queued id, oldest first."""
        ...

    async def running_by_owner(self) -> dict[str, int]:
        """Running missions per node holding them (the cluster's, on PostgreSQL)."""
        ...

    async def queued_count(self) -> int:
        """Missions waiting in the queue (of every node)."""
        ...

    async def counts(self) -> dict[str, int]: ...


class CallbackRepo(Protocol):
    """Callback deliveries of finished missions, claimed by one node at a time."""

    async def pending_callbacks(self) -> list[int]: ...

    async def claim_callbacks(self, owner: str, lease_s: float, limit: int) -> list[int]:
        """Claim up to ``limit`` due callbacks nobody holds (or whose holder's lease expired)
        for ``owner``; returns their mission ids, oldest first."""
        ...

    async def renew_callbacks(self, mission_ids: list[int], owner: str, lease_s: float) -> None:
        """Extend ``owner``'s lease on callbacks it is still delivering (retries wait long)."""
        ...

    async def release_callback(self, mission_id: int, owner: str) -> None:
        """``owner`` stops holding a callback (delivered, given up, or left for later)."""
        ...

    async def set_callback(
        self, mission_id: int, state: str, attempts: int, error: str
    ) -> None: ...

    async def callback_counts(self) -> dict[str, int]: ...


class TokenRepo(Protocol):
    """API tokens, stored as hashes."""

    async def add_token(self, name: str) -> str:
        """Create a token called ``name`` and return it; only its hash is stored.

        Raises ``ValueError`` when the name is empty or taken."""
        ...

    async def list_tokens(self) -> list[dict[str, Any]]: ...

    async def revoke_token(self, name: str) -> bool: ...

    async def token_active(self, token_hash: str) -> bool: ...


class Transaction(Protocol):
    """One open transaction (``DoorSqlRepo.run_in_transaction``): a door's statements on its
    own tables and the store's own writes it offers here commit together or not at all."""

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        """Run one statement; returns the rows it touched."""
        ...

    async def fetch_one(self, statement: Statement, /, **values: Any) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None."""
        ...

    async def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]:
        """Every row of a query, as dicts."""
        ...

    async def insert_mission(
        self,
        token_hash: str,
        mission: dict[str, Any],
        normalised: dict[str, Any],
        kind: str = MISSION_KIND,
    ) -> int:
        """Store a queued mission as ``MissionRepo.insert_mission`` does (the nodes hear of it
        at the commit) and return its id."""
        ...

    async def delete_ended_missions(self, cutoff: float, kept: Statement) -> int:
        """Retention: delete the missions that ended before ``cutoff`` and whose callback is
        settled, except the ids ``kept`` selects (a query of one column, no parameters: the
        missions a door's rows still refer to). Returns how many went."""
        ...

    async def finish_mission(
        self,
        mission_id: int,
        state: str,
        result: dict[str, Any],
        owner: str | None = None,
        door_due: bool = False,
    ) -> bool:
        """End a running mission as ``MissionRepo.finish`` does (the nodes hear of it at the
        commit); False, touching nothing, when ``owner`` no longer holds it."""
        ...


class DoorSqlRepo(Protocol):
    """Front doors' own tables: statements (``service.store.sql.Statement``, one text for both
    engines) run as they are, transactions spanning them and the store's missions, and the
    doors' migrations."""

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        """Run one statement; returns the rows it touched."""
        ...

    async def fetch_one(self, statement: Statement, /, **values: Any) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None."""
        ...

    async def fetch_all(self, statement: Statement, /, **values: Any) -> list[dict[str, Any]]:
        """Every row of a query, as dicts."""
        ...

    async def batch(self, steps: list[tuple[Statement, dict[str, Any]]]) -> list[int]:
        """Run ``(statement, values)`` steps in one transaction (all or none); the rows each
        touched."""
        ...

    async def run_in_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """``await fn(tx)`` inside one transaction: committed when it returns (its value is
        returned), rolled back when it raises (and that is raised). ``fn`` awaits only ``tx``:
        on SQLite it runs in one step on the store's thread, and awaiting anything else raises
        ``TransactionSuspended`` (``service.store.transactions`` says how)."""
        ...

    async def migrate_door(self, door: str, scripts: list[str]) -> int:
        """Apply the door's migration scripts not applied yet (by position, from 1), each in
        its own transaction; returns the door's schema version. A script may say
        ``ALTER TABLE t ADD COLUMN IF NOT EXISTS c ...`` on both engines (SQLite, which lacks
        it, skips the statement when ``t`` has ``c`` at that point of the script)."""
        ...


class EveryRepository:
    """Base of an engine that implements every repository itself: each is the store."""

    @property
    def missions(self) -> Self:
        return self

    @property
    def callbacks(self) -> Self:
        return self

    @property
    def tokens(self) -> Self:
        return self

    @property
    def sql(self) -> Self:
        return self
